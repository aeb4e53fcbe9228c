// Recording episodes: run an actor (the scripted expert, or a state policy with exploration noise and
// perturbations: rollout.ts) in the simulator with the renderer on and hand each episode (frames per
// view, state, action, reward, the annotator's per-frame stage and progress, subtask spans from that
// stage sequence) to a sink such as the LeRobot dataset writer.
//
// Frame t holds observation t and the action taken after it (LeRobot's convention); the episode's
// last frame is the observation after the final action, recorded with a hold action (zero motion,
// the last gripper command) so the finished state is in the video.

import { SimEnv, type SimEnvOptions } from './env.ts';
import { ScriptedExpert, planEpisode, type ExpertPreset } from './expert.ts';
import { RolloutDriver, type RolloutOptions, type StatePolicy } from './rollout.ts';
import type { RecordedEpisode, SubtaskSpan } from '../datasets/types.ts';

/** Who acts in an episode: `act` every control step; `finished` ends the episode early (a stopped operator). */
export interface EpisodeActor {
  act(state: Float32Array): Float32Array<ArrayBuffer>;
  readonly meta: Record<string, unknown>;
  finished(): boolean;
}

/** What drives the recorded episodes: the scripted expert, or a state policy rolled out as a learner would. */
export type EpisodeSource =
  | { kind: 'expert'; preset: ExpertPreset; /** End an episode after the expert has idled this many control steps. */ maxIdleSteps: number }
  | {
      kind: 'policy';
      policy: StatePolicy;
      /** Provenance for the episode meta (e.g. "weak", a file name). */ name: string;
      rollout: RolloutOptions;
    };

export interface RecordOptions {
  /** Episode i uses simulator seed `seedBase + i`. */
  seedBase: number;
  source: EpisodeSource;
}

/** The actor of one episode of `source` in `env`, for simulator seed `seed`. */
export function actorFor(env: SimEnv, seed: number, source: EpisodeSource): EpisodeActor {
  if (source.kind === 'expert') {
    const expert = new ScriptedExpert(env.task, planEpisode(source.preset, seed), { stepM: env.maxEeSpeedMps / env.controlHz });
    return {
      act: (state) => Float32Array.from(expert.act(state)),
      get meta() {
        return { preset: source.preset, ...expert.meta };
      },
      finished: () => expert.idleSteps >= source.maxIdleSteps,
    };
  }
  const driver = new RolloutDriver(env.task, source.policy, seed, source.rollout);
  return {
    act: (state) => driver.act(state),
    get meta() {
      return { policy: source.name, ...driver.meta };
    },
    finished: () => false,
  };
}

/** Runs of equal stage index -> subtask spans (a regression shows as an earlier stage again). */
export function spansFromStages(stages: readonly number[], names: readonly string[]): SubtaskSpan[] {
  const spans: SubtaskSpan[] = [];
  for (let t = 0; t < stages.length; t++) {
    const last = spans.at(-1);
    const name = names[stages[t]!]!;
    if (last !== undefined && last.name === name && last.end === t - 1) last.end = t;
    else spans.push({ name, start: t, end: t });
  }
  return spans;
}

/** Record one expert episode with frames. `env` must have a renderer. */
export function recordEpisode(env: SimEnv, seed: number, preset: ExpertPreset, maxIdleSteps: number): RecordedEpisode {
  return recordSourceEpisode(env, seed, { kind: 'expert', preset, maxIdleSteps });
}

/** Record one episode of `source` with frames. `env` must have a renderer. */
export function recordSourceEpisode(env: SimEnv, seed: number, source: EpisodeSource): RecordedEpisode {
  let obs = env.reset(seed);
  const actor = actorFor(env, seed, source);
  const views = Object.keys(obs.frames);
  const ep: RecordedEpisode = {
    task: env.task.instruction,
    frames: Object.fromEntries(views.map((v) => [v, []])),
    state: [],
    action: [],
    reward: [],
    trueStage: [],
    trueProgress: [],
    subtasks: [],
    success: false,
    meta: {},
  };
  let info = env.info();
  let done = false;
  let lastAction = new Float32Array(env.actionNames.length);
  while (true) {
    for (const v of views) ep.frames[v]!.push(obs.frames[v]!);
    ep.state.push(obs.state);
    ep.trueStage.push(info.trueStage);
    ep.trueProgress.push(info.trueProgress);
    if (done) {
      const hold = new Float32Array(lastAction.length);
      hold[hold.length - 1] = lastAction[lastAction.length - 1]!;
      ep.action.push(hold);
      ep.reward.push(0);
      break;
    }
    const action = actor.act(obs.state);
    const r = env.step(action);
    ep.action.push(action);
    ep.reward.push(r.reward);
    lastAction = action;
    obs = r.observation;
    info = r.info;
    if (info.success) ep.success = true;
    done = r.terminated || r.truncated || actor.finished();
  }
  ep.meta = { seed, task_id: env.task.id, ...actor.meta };
  ep.subtasks = spansFromStages(ep.trueStage, env.task.stageNames);
  return ep;
}

/** Record `episodes` episodes, calling `sink` with each (awaited before the next is simulated). */
export async function recordEpisodes(
  envOptions: SimEnvOptions,
  episodes: number,
  opts: RecordOptions,
  sink: (ep: RecordedEpisode, index: number) => Promise<void>,
): Promise<void> {
  const env = await SimEnv.create(envOptions);
  try {
    for (let i = 0; i < episodes; i++) await sink(recordSourceEpisode(env, opts.seedBase + i, opts.source), i);
  } finally {
    env.close();
  }
}

/** Seeds of different --seed values never overlap for fewer than this many episodes. */
export const SEEDS_PER_RUN = 100_000;

/** The simulator seeds of run seed `runSeed`: episode i uses runSeed * SEEDS_PER_RUN + i. */
export function runSeeds(runSeed: number, episodes: number): number[] {
  const base = runSeed * SEEDS_PER_RUN;
  return Array.from({ length: episodes }, (_, i) => base + i);
}
