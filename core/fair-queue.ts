// Fair queueing of CPU-heavy jobs (image decoding) between tenants (sessions): start-time fair
// queueing over each job's cost (its bytes), at most `slots` jobs at once, of which at most
// `largeSlots` may be large. A tenant that sends 3 MB frames is charged for 3 MB per frame, so a
// tenant that sends 5 kB frames is served next whenever a slot frees, not after the big frames
// queued before it; and since large jobs never hold every slot, a small job never waits behind one.
// With `largeShare` below 1, large jobs also leave the CPU to the others: while small jobs have been
// seen in the last second, a large job that ran d ms is followed by a pause of d * (1 / share - 1)
// before the next large one, so large frames take at most that share of a core from robots streaming
// small ones (and all of it when nobody else is there).
//
//   const q = new FairQueue({ slots: 2, largeSlots: 1, largeCost: 262_144 });
//   const pixels = await q.run(sessionId, bytes.length, () => decode(bytes));
//
// Start-time fair queueing (Goyal, Vin and Cheng, 1996): a job's start tag is max(virtual time, the
// finish tag of its tenant's previous job); its finish tag is start + cost; the waiting job with the
// smallest start tag goes next (ties: arrival order), and the virtual time is the start tag of the
// job last started.

export interface FairQueueOptions {
  /** Jobs running at once. */
  slots: number;
  /** Of those, most running jobs with cost >= largeCost (below slots, small jobs always have a slot). */
  largeSlots: number;
  /** Cost from which a job counts as large. */
  largeCost: number;
  /** Most of one core's time large jobs take while small jobs are about, in (0, 1]; default 1. */
  largeShare?: number;
}

/** How recently a small job must have been seen for large jobs to be held to largeShare (ms). */
export const SHARE_WINDOW_MS = 1000;

interface Job {
  tenant: string;
  cost: number;
  start: number;
  order: number;
  large: boolean;
  run: () => void;
}

export class FairQueue {
  readonly options: FairQueueOptions;
  readonly #waiting: Job[] = [];
  /** Finish tag of each tenant's last queued job. */
  readonly #finish = new Map<string, number>();
  #virtual = 0;
  #running = 0;
  #runningLarge = 0;
  #order = 0;
  /** performance.now() of the last small job queued. */
  #lastSmall = -Infinity;
  /** No large job starts before this (performance.now()). */
  #largeNotBefore = 0;
  #wake: NodeJS.Timeout | undefined;

  constructor(options: FairQueueOptions) {
    if (!(Number.isInteger(options.slots) && options.slots >= 1)) throw new RangeError('FairQueue: slots must be an integer >= 1');
    if (!(Number.isInteger(options.largeSlots) && options.largeSlots >= 1 && options.largeSlots <= options.slots))
      throw new RangeError('FairQueue: largeSlots must be an integer in [1, slots]');
    if (!(options.largeCost > 0)) throw new RangeError('FairQueue: largeCost must be > 0');
    const share = options.largeShare ?? 1;
    if (!(share > 0 && share <= 1)) throw new RangeError('FairQueue: largeShare must be in (0, 1]');
    this.options = { ...options, largeShare: share };
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Run `fn` when the tenant's turn comes; resolves or rejects with what `fn` does. */
  run<T>(tenant: string, cost: number, fn: () => Promise<T>): Promise<T> {
    const c = Number.isFinite(cost) && cost > 0 ? cost : 1;
    const start = Math.max(this.#virtual, this.#finish.get(tenant) ?? 0);
    this.#finish.set(tenant, start + c);
    return new Promise<T>((resolve, reject) => {
      const large = c >= this.options.largeCost;
      if (!large) this.#lastSmall = performance.now();
      this.#waiting.push({
        tenant,
        cost: c,
        start,
        order: this.#order++,
        large,
        run: () => {
          const t0 = performance.now();
          let p: Promise<T>;
          try {
            p = fn();
          } catch (err) {
            p = Promise.reject(err);
          }
          // The slot is free (and the next job started) before the caller hears back.
          p.then(
            (v) => {
              this.#done(large, t0);
              resolve(v);
            },
            (err: unknown) => {
              this.#done(large, t0);
              reject(err);
            },
          );
        },
      });
      this.#dispatch();
    });
  }

  #done(large: boolean, startedAt: number): void {
    this.#running--;
    if (large) {
      this.#runningLarge--;
      const now = performance.now();
      const share = this.options.largeShare!;
      if (share < 1 && now - this.#lastSmall < SHARE_WINDOW_MS) {
        this.#largeNotBefore = Math.max(this.#largeNotBefore, now + (now - startedAt) * (1 / share - 1));
      }
    }
    this.#dispatch();
  }

  #dispatch(): void {
    while (this.#running < this.options.slots) {
      const i = this.#next();
      if (i < 0) return;
      const job = this.#waiting.splice(i, 1)[0]!;
      this.#running++;
      if (job.large) this.#runningLarge++;
      this.#virtual = Math.max(this.#virtual, job.start);
      this.#forgetIdle();
      job.run();
    }
  }

  /** The eligible waiting job with the smallest start tag (then the earliest), or -1. */
  #next(): number {
    const wait = this.#largeNotBefore - performance.now();
    const largeOk = this.#runningLarge < this.options.largeSlots && wait <= 0;
    if (wait > 0 && this.#wake === undefined && this.#waiting.some((j) => j.large)) {
      this.#wake = setTimeout(() => {
        this.#wake = undefined;
        this.#dispatch();
      }, wait);
    }
    let best = -1;
    for (let i = 0; i < this.#waiting.length; i++) {
      const j = this.#waiting[i]!;
      if (j.large && !largeOk) continue;
      const b = best < 0 ? undefined : this.#waiting[best]!;
      if (b === undefined || j.start < b.start || (j.start === b.start && j.order < b.order)) best = i;
    }
    return best;
  }

  /** Tenants whose last job finished (in virtual time) before now start again from the virtual time anyway. */
  #forgetIdle(): void {
    if (this.#finish.size < 1024) return;
    for (const [tenant, f] of this.#finish) if (f <= this.#virtual) this.#finish.delete(tenant);
  }
}
