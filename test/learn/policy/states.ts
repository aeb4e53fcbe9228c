// Seeded pick_place observation.state vectors that visit every phase of the gated features (hand far
// from / above / at the cube, cube held, held over the bowl, resting in the bowl), for the
// behaviour-cloning tests. Layout: ee xyz, gripper opening, cube xyz, cube grasped, bowl xyz.

import { BOWL } from '../../../sim/scenes/objects.ts';
import { TABLE_TOP_Z } from '../../../sim/scenes/workcell.ts';
import { CUBE_HALF } from '../../../sim/tasks/pick-place.ts';

import { mulberry32 as rng } from '../../../core/random.ts';

export { rng };

export function pickPlaceStates(n: number, seed: number): Float32Array[] {
  const r = rng(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  const out: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const bowl = [u(-0.15, 0.15), u(0.05, 0.2), TABLE_TOP_Z];
    const placeZ = TABLE_TOP_Z + BOWL.baseTop + CUBE_HALF;
    const scenario = i % 4;
    // the cube: on the table, carried, over the bowl, or resting in it
    const cube =
      scenario === 0
        ? [u(-0.15, 0.15), u(-0.2, 0), TABLE_TOP_Z + CUBE_HALF]
        : scenario === 1
          ? [u(-0.15, 0.15), u(-0.2, 0.2), TABLE_TOP_Z + u(0.03, 0.2)]
          : [bowl[0]! + u(-0.02, 0.02), bowl[1]! + u(-0.02, 0.02), placeZ + (scenario === 2 ? u(0, 0.12) : u(-0.01, 0.02))];
    const scale = [0.004, 0.012, 0.04, 0.15][Math.floor(r() * 4)]!;
    const ee = [cube[0]! + u(-scale, scale), cube[1]! + u(-scale, scale), cube[2]! + u(-scale / 2, scale)];
    const grasped = scenario === 0 ? 0 : r() < 0.7 ? 1 : 0;
    out.push(Float32Array.from([...ee, u(0, 0.08), ...cube, grasped, ...bowl]));
  }
  return out;
}
