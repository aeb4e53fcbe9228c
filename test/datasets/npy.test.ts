import { describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy } from '../../datasets/npy.ts';
import { parityArray } from '../helpers.ts';

describe('.npy exchange with the Python trainer', () => {
  it('round-trips every dtype stageward uses', () => {
    const cases = [
      { dtype: 'uint8' as const, shape: [2, 3], data: Uint8Array.from([1, 2, 3, 4, 5, 255]) },
      { dtype: 'float32' as const, shape: [3], data: Float32Array.from([0.5, -1, 3e8]) },
      { dtype: 'int64' as const, shape: [2], data: BigInt64Array.from([1n, -7n]) },
      { dtype: 'float64' as const, shape: [1, 1], data: Float64Array.from([Math.PI]) },
    ];
    for (const c of cases) {
      const back = parseNpy(encodeNpy(c));
      expect(back.dtype).toBe(c.dtype);
      expect(back.shape).toEqual(c.shape);
      expect(Array.from(back.data as ArrayLike<unknown>)).toEqual(Array.from(c.data as ArrayLike<unknown>));
    }
  });

  it("reads numpy's own files (the parity fixture) with their shapes", async () => {
    const a = await parityArray('ep_frames');
    expect(a.dtype).toBe('uint8');
    expect(a.shape).toEqual([10, 3, 64, 64, 3]);
    expect(a.data.length).toBe(10 * 3 * 64 * 64 * 3);
  });

  it('refuses a truncated file', () => {
    const bytes = encodeNpy({ dtype: 'float32', shape: [4], data: new Float32Array(4) });
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
  });
});
