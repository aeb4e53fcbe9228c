// Linear-to-sRGB conversion for the renderer: a lookup table from linear [0, 1] (quantised to 1/4095)
// to sRGB uint8, and the resolve step that turns the linear float frame into RGB uint8 HxWx3,
// averaging supersample x supersample blocks in linear light first.

const LUT_STEPS = 4096;

/** SRGB_LUT[i] = round(255 * srgb(i / (LUT_STEPS - 1))). */
export const SRGB_LUT: Uint8Array = (() => {
  const lut = new Uint8Array(LUT_STEPS);
  for (let i = 0; i < LUT_STEPS; i++) lut[i] = Math.round(255 * linearToSrgb(i / (LUT_STEPS - 1)));
  return lut;
})();

/** The sRGB transfer function on one linear channel in [0, 1]. */
export function linearToSrgb(x: number): number {
  return x <= 0.0031308 ? 12.92 * x : 1.055 * Math.pow(x, 1 / 2.4) - 0.055;
}

/**
 * Writes `out` (width x height x 3 uint8, row 0 at the top) from `lin` (width*ss x height*ss x 3
 * linear floats), averaging each ss x ss block.
 */
export function resolveFrame(lin: Float32Array, width: number, height: number, ss: number, out: Uint8Array): void {
  const scale = LUT_STEPS - 1;
  if (ss === 1) {
    const n = width * height * 3;
    for (let i = 0; i < n; i++) out[i] = SRGB_LUT[toIndex(lin[i]!, scale)]!;
    return;
  }
  const sw = width * ss;
  const norm = scale / (ss * ss);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0;
      for (let dy = 0; dy < ss; dy++) {
        let i = ((y * ss + dy) * sw + x * ss) * 3;
        for (let dx = 0; dx < ss; dx++, i += 3) {
          r += lin[i]!;
          g += lin[i + 1]!;
          b += lin[i + 2]!;
        }
      }
      const o = (y * width + x) * 3;
      out[o] = SRGB_LUT[toIndex(r, norm)]!;
      out[o + 1] = SRGB_LUT[toIndex(g, norm)]!;
      out[o + 2] = SRGB_LUT[toIndex(b, norm)]!;
    }
  }
}

function toIndex(v: number, scale: number): number {
  const i = (v * scale + 0.5) | 0;
  return i < 0 ? 0 : i > LUT_STEPS - 1 ? LUT_STEPS - 1 : i;
}
