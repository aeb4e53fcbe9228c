import { describe, expect, it } from 'vitest';
import { framesRetained, windowIndices } from '../../models/window.ts';

describe('causal window', () => {
  const spec = { length: 5, strideFrames: 2, includeInitial: true };

  it('at the first frame holds frame 0 in slot 0 and the last slot, padding between', () => {
    expect(windowIndices(0, spec)).toEqual([0, -1, -1, -1, 0]);
  });

  it('pads slots that would reach before the episode start', () => {
    expect(windowIndices(3, spec)).toEqual([0, -1, -1, 1, 3]);
  });

  it('fills every slot once the episode is long enough, never looking ahead', () => {
    const w = windowIndices(11, spec);
    expect(w).toEqual([0, 5, 7, 9, 11]);
    expect(Math.max(...w)).toBe(11);
  });

  it('without the initial frame uses all slots for strided history', () => {
    expect(windowIndices(4, { length: 3, strideFrames: 3, includeInitial: false })).toEqual([-1, 1, 4]);
  });

  it('retains enough frames for the next step and no more than the window spans', () => {
    for (const s of [spec, { length: 9, strideFrames: 5, includeInitial: true }, { length: 1, strideFrames: 1, includeInitial: false }]) {
      const keep = framesRetained(s);
      for (let t = 0; t < 60; t++) {
        // Frames (other than frame 0) that step t+1 reads from the cache: its window's past slots,
        // and frame t for GRM's incremental perspective. The cache holds frames t-keep+1..t.
        const needed = windowIndices(t + 1, s)
          .filter((f) => f > 0 && f <= t)
          .concat(t > 0 ? [t] : []);
        for (const f of needed) expect(t - f).toBeLessThan(keep);
      }
    }
  });
});
