// The weak starting policy of the RL experiments: behaviour cloning (learn/policy/bc.ts) of ten `failed`
// scripted-expert demonstrations and one clean one, from state only (nothing rendered). On pick_place it
// reaches, usually grasps and carries, but rarely finishes: about 5% success over held-out seeds.

import { SimEnv } from '../../sim/env.ts';
import { rolloutExpert, type ExpertPreset } from '../../sim/expert.ts';
import { fitBehaviourCloning, type BcSample } from '../policy/bc.ts';
import type { GatedLinearPolicy } from '../policy/linear-policy.ts';
import type { TaskId } from '../../sim/tasks/task.ts';

export const WEAK_START_DEMOS: readonly [ExpertPreset, number][] = [
  ['failed', 10],
  ['expert', 1],
];

/** BC of `WEAK_START_DEMOS`, demonstration seeds drawn from `seed`. Deterministic. */
export async function weakStartPolicy(task: TaskId, seed: number): Promise<GatedLinearPolicy> {
  const env = await SimEnv.create({ task, seed: 0 });
  try {
    const samples: BcSample[] = [];
    for (const [preset, count] of WEAK_START_DEMOS) {
      for (let i = 0; i < count; i++) {
        const r = rolloutExpert(env, preset, 5000 + seed * 100 + i, { maxIdleSteps: 20 });
        r.states.forEach((state, t) => samples.push({ state, action: r.actions[t]!, weight: 1 }));
      }
    }
    return fitBehaviourCloning(task, samples).policy;
  } finally {
    env.close();
  }
}
