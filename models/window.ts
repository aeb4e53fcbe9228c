// The causal window of the SARM head (models/PACKAGE.md, "The window"): which frame each slot holds
// for the step at frame t. Pure; mirrored by models/train/stageward_train/windows.py.

export interface WindowSpec {
  /** T, the number of slots. */
  length: number;
  /** Frames between consecutive past slots. */
  strideFrames: number;
  /** Slot 0 holds the episode's first frame. */
  includeInitial: boolean;
}

/**
 * Frame index per slot for the step at frame `t` (>= 0); -1 marks a padding slot (no such frame).
 * The last slot is always `t`.
 */
export function windowIndices(t: number, spec: WindowSpec): number[] {
  const { length, strideFrames, includeInitial } = spec;
  const slots: number[] = [];
  const strided = includeInitial ? length - 1 : length;
  if (includeInitial) slots.push(0);
  for (let j = 0; j < strided; j++) {
    const frame = t - (strided - 1 - j) * strideFrames;
    slots.push(frame >= 0 ? frame : -1);
  }
  return slots;
}

/**
 * How many of the most recent frames a step can still need, besides frame 0: the feature cache keeps
 * this many and drops older ones, so an episode's memory stays bounded however long it runs.
 */
export function framesRetained(spec: WindowSpec): number {
  const strided = spec.includeInitial ? spec.length - 1 : spec.length;
  // GRM's incremental perspective needs frame t-1 at the next step; the window needs t-(strided-1)*stride.
  return Math.max((strided - 1) * spec.strideFrames, 1) + 1;
}
