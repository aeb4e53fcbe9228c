// --stride planning, pure: which frames a strided run scores and encodes, and interpolation that
// leaves the scored frames' values exactly as they were.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { windowIndices, type WindowSpec } from '../../../models/window.ts';
import { frameNeeded, holdUnscored, interpolateUnscored, isScored, windowLookback } from '../../../offline/score/stride.ts';

const SPEC: WindowSpec = { length: 9, strideFrames: 5, includeInitial: true };

describe('frames scored and encoded', () => {
  it('scores every N-th frame and the last one', () => {
    const scored = Array.from({ length: 23 }, (_, t) => isScored(t, 5, 22));
    expect(scored.flatMap((s, t) => (s ? [t] : []))).toEqual([0, 5, 10, 15, 20, 22]);
  });

  it('encodes exactly the frames some scored window reads (and all of them when GRM runs)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 120 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 2, max: 9 }),
        fc.boolean(),
        (stride, frames, strideFrames, length, includeInitial) => {
          const spec = { length, strideFrames, includeInitial };
          const last = frames - 1;
          const read = new Set<number>();
          for (let s = 0; s <= last; s++) if (isScored(s, stride, last)) for (const f of windowIndices(s, spec)) if (f >= 0) read.add(f);
          for (let f = 0; f <= last; f++) {
            expect(frameNeeded(f, { stride, spec, grm: false, last })).toBe(read.has(f));
            expect(frameNeeded(f, { stride, spec, grm: true, last })).toBe(true);
          }
        },
      ),
      { seed: 7, numRuns: 200 },
    );
  });

  it('with the bundled window and --stride 5, about one frame in five is encoded', () => {
    const last = 599;
    const encoded = Array.from({ length: 600 }, (_, f) => frameNeeded(f, { stride: 5, spec: SPEC, grm: false, last })).filter(
      Boolean,
    ).length;
    expect(encoded).toBeLessThan(130);
    expect(windowLookback(SPEC)).toBe(35);
  });
});

describe('interpolation', () => {
  it('is linear between scored frames and exact on them', () => {
    const values = [0.1, 9, 9, 9, 0.5, 9, 0.2];
    const scored = [1, 0, 0, 0, 1, 0, 1];
    interpolateUnscored(values, scored);
    expect(values[0]).toBe(0.1);
    expect(values[4]).toBe(0.5);
    expect(values[6]).toBe(0.2);
    expect(values[2]).toBeCloseTo(0.3, 12);
    expect(values[5]).toBeCloseTo(0.35, 12);
  });

  it('holds stage and tau of the last scored frame', () => {
    const stage = [0, 7, 7, 2, 7];
    holdUnscored(stage, [1, 0, 0, 1, 0]);
    expect(stage).toEqual([0, 0, 0, 2, 2]);
  });

  it('refuses a series whose first or last frame is not scored', () => {
    expect(() => interpolateUnscored([1, 2], [1, 0])).toThrow(RangeError);
  });
});
