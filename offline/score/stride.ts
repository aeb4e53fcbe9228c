// Which frames offline scoring computes, pure. With `--stride N` the SARM head runs on every N-th
// frame and on the last one ("scored" frames); the frames between are filled in afterwards by linear
// interpolation. A scored frame's window still reaches back to full-rate frames (frame 0 and every
// `stride_frames`-th frame before it), so those frames are encoded too, and nothing else: the
// encoder is the costly graph, and a frame no scored window reads is never encoded. GRM's incremental
// perspective chains through every frame (Phi_t depends on Phi_(t-1)), so when GRM progress is asked
// for, every frame is encoded and GRM runs on every frame; then only SARM is skipped.

import type { WindowSpec } from '../../models/window.ts';

/** Whether frame `t` is scored: every `stride`-th frame, and the last one once it is known. */
export function isScored(t: number, stride: number, last: number | undefined): boolean {
  return t % stride === 0 || t === last;
}

/** Strided past slots of the window (all slots but the initial one). */
function stridedSlots(spec: WindowSpec): number {
  return spec.includeInitial ? spec.length - 1 : spec.length;
}

/** How many frames before t the window of frame t reaches (its oldest strided slot). */
export function windowLookback(spec: WindowSpec): number {
  return (stridedSlots(spec) - 1) * spec.strideFrames;
}

/**
 * Whether frame `f` must be encoded: some scored frame's window reads it, or GRM runs on every frame.
 * `last` is the episode's last frame index, or undefined while unknown (then only the regular
 * stride decides; callers decide a frame only once `last` is known or is beyond f + lookback).
 */
export function frameNeeded(f: number, o: { stride: number; spec: WindowSpec; grm: boolean; last: number | undefined }): boolean {
  if (o.grm || o.stride === 1) return true;
  if (f === 0 && o.spec.includeInitial) return true;
  const slots = stridedSlots(o.spec);
  for (let j = 0; j < slots; j++) {
    const s = f + j * o.spec.strideFrames;
    if (o.last !== undefined && s > o.last) break;
    if (isScored(s, o.stride, o.last)) return true;
  }
  return false;
}

/**
 * Fill the unscored entries of `values` in place by linear interpolation between the scored frames
 * around them; scored entries are left exactly as they are. `scored` must mark the first and the
 * last entry.
 */
export function interpolateUnscored(values: number[], scored: ArrayLike<boolean | number>): void {
  const n = values.length;
  if (n === 0) return;
  if (!scored[0] || !scored[n - 1]) throw new RangeError('interpolateUnscored: the first and the last frame must be scored');
  let a = 0;
  for (let b = 1; b < n; b++) {
    if (!scored[b]) continue;
    const va = values[a]!;
    const vb = values[b]!;
    for (let t = a + 1; t < b; t++) values[t] = va + ((vb - va) * (t - a)) / (b - a);
    a = b;
  }
}

/** Fill the unscored entries of `values` in place with the value of the last scored frame before them. */
export function holdUnscored<T>(values: T[], scored: ArrayLike<boolean | number>): void {
  for (let t = 1; t < values.length; t++) if (!scored[t]) values[t] = values[t - 1]!;
}
