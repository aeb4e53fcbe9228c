// Running feature statistics for meta/stats.json, as LeRobot writes them: per feature min, max,
// mean, std (population) and count. Vectors are per dimension with count [frames]; camera images are
// per channel on [0, 1] shaped [3, 1, 1], count [frames]. Welford/Chan updates, O(1) memory.

export interface FeatureStats {
  min: unknown[];
  max: unknown[];
  mean: unknown[];
  std: unknown[];
  count: number[];
}

/** Per-dimension moments of rows of a fixed length. */
export class VectorStats {
  private n = 0;
  private readonly mean: Float64Array;
  private readonly m2: Float64Array;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;

  constructor(readonly dim: number) {
    this.mean = new Float64Array(dim);
    this.m2 = new Float64Array(dim);
    this.lo = new Float64Array(dim).fill(Infinity);
    this.hi = new Float64Array(dim).fill(-Infinity);
  }

  add(row: ArrayLike<number>): void {
    this.n++;
    for (let d = 0; d < this.dim; d++) {
      const x = row[d]!;
      const delta = x - this.mean[d]!;
      this.mean[d]! += delta / this.n;
      this.m2[d]! += delta * (x - this.mean[d]!);
      if (x < this.lo[d]!) this.lo[d] = x;
      if (x > this.hi[d]!) this.hi[d] = x;
    }
  }

  get count(): number {
    return this.n;
  }

  toJSON(): FeatureStats {
    const std = Array.from(this.m2, (m) => (this.n > 0 ? Math.sqrt(m / this.n) : 0));
    return { min: Array.from(this.lo), max: Array.from(this.hi), mean: Array.from(this.mean), std, count: [this.n] };
  }
}

/** Per-channel moments of RGB uint8 frames, reported on [0, 1] as [3, 1, 1] like LeRobot. */
export class ImageStats {
  private frames = 0;
  private pixels = 0;
  private readonly mean = new Float64Array(3);
  private readonly m2 = new Float64Array(3);
  private readonly lo = new Float64Array(3).fill(255);
  private readonly hi = new Float64Array(3).fill(0);

  /** One frame, rgb24 (H*W*3 bytes). */
  addFrame(rgb: Uint8Array): void {
    const n = rgb.length / 3;
    if (n === 0) return;
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      let lo = 255;
      let hi = 0;
      for (let i = c; i < rgb.length; i += 3) {
        const v = rgb[i]!;
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const fm = sum / n;
      let fm2 = 0;
      for (let i = c; i < rgb.length; i += 3) {
        const d = rgb[i]! - fm;
        fm2 += d * d;
      }
      // Chan et al.: merge this frame's (n, mean, M2) into the running one.
      const total = this.pixels + n;
      const delta = fm - this.mean[c]!;
      this.mean[c]! += (delta * n) / total;
      this.m2[c]! += fm2 + (delta * delta * this.pixels * n) / total;
      if (lo < this.lo[c]!) this.lo[c] = lo;
      if (hi > this.hi[c]!) this.hi[c] = hi;
    }
    this.pixels += n;
    this.frames++;
  }

  toJSON(): FeatureStats {
    const chan = (f: (c: number) => number) => [0, 1, 2].map((c) => [[f(c) / 255]]);
    return {
      min: chan((c) => (this.frames > 0 ? this.lo[c]! : 0)),
      max: chan((c) => (this.frames > 0 ? this.hi[c]! : 0)),
      mean: chan((c) => this.mean[c]!),
      std: chan((c) => (this.pixels > 0 ? Math.sqrt(this.m2[c]! / this.pixels) : 0)),
      count: [this.frames],
    };
  }
}
