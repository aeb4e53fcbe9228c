// Scripted-expert policies for the bridge: one ScriptedExpert per seed (an expert is a state machine
// over one episode), in the Policy[] form of SimBridge.runEpisodes, so policy i acts in seeds[i]'s
// episode. Used by the benchmark, the tests, and as reference policies for learners:
//
//   expertPolicies(bridge, seeds, 'mixed')   the expert with knobs drawn per seed (clean and flawed)
//   hoverPolicies(bridge, seeds)             carries the object over its target and holds it there for
//                                            good: never finishes, yet sits at high progress (the
//                                            policy that the `progress` reward prefers: the semantic trap)

import { CLEAN_KNOBS, planEpisode, ScriptedExpert, type ExpertPlan, type ExpertPreset } from '../expert.ts';
import type { SimBridge } from './bridge.ts';
import type { Policy } from './types.ts';

type BridgeFacts = Pick<SimBridge, 'task' | 'eeStepM'>;

/** Policies for `seeds`: knobs drawn from `preset` per seed (as `stageward sim record` does), or a plan per seed. */
export function expertPolicies(
  bridge: BridgeFacts,
  seeds: readonly number[],
  preset: ExpertPreset | ((seed: number) => ExpertPlan),
): Policy[] {
  return seeds.map((seed) => {
    const plan = typeof preset === 'string' ? planEpisode(preset, seed) : preset(seed);
    const expert = new ScriptedExpert(bridge.task, plan, { stepM: bridge.eeStepM });
    return (state: Float32Array) => expert.act(state);
  });
}

/**
 * The clean expert until it would first lower an object onto its target; from then on it keeps the
 * gripper closed and stands still, the object held above the target until the time limit.
 */
export function hoverPolicies(bridge: BridgeFacts, seeds: readonly number[]): Policy[] {
  return seeds.map((seed) => {
    const expert = new ScriptedExpert(bridge.task, { preset: 'custom', seed, flaws: [], knobs: CLEAN_KNOBS }, { stepM: bridge.eeStepM });
    let hovering = false;
    return (state: Float32Array) => {
      if (!hovering) {
        const action = expert.act(state);
        hovering = expert.currentPhase.endsWith(':lower');
        if (!hovering) return action;
      }
      return Float32Array.from([0, 0, 0, 1]);
    };
  });
}
