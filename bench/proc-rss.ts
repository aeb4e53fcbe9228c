// Peak resident memory of another process, read from /proc (Linux): the benchmarks' memory figures.

import { readFileSync } from 'node:fs';

/** Peak RSS of a process: VmHWM (the kernel's high-water mark) and VmRSS every 250 ms; NaN where /proc is absent. */
export class RssSampler {
  #peakKb = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), 250);
  }

  get peakMb(): number {
    this.#sample();
    return this.#peakKb === 0 ? NaN : this.#peakKb / 1024;
  }

  stop(): void {
    this.#sample();
    clearInterval(this.#timer);
  }

  #sample(): void {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:VmHWM|VmRSS):\s+(\d+)\s+kB/gm)) this.#peakKb = Math.max(this.#peakKb, Number(m[1]));
    } catch {
      // not Linux, or the process is gone
    }
  }
}
