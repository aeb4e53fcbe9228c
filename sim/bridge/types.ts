// The simulator bridge's public types: what a caller (the RL learner, a benchmark) passes in and gets
// back. Rewards per mode (the shaping formulas are models/shaping.ts's; Phi is progress in [0, 1]):
//
//   sparse     r                                                   no reward model, no frames rendered
//   progress   r + lambda * Phi_model(s')                          the "semantic trap": not policy-invariant
//   pbrs       r + lambda * (gamma * Phi_model(s') * (1 - term) - Phi_model(s))
//   pbrs-true  the same with Phi = the simulator's true progress   no reward model, no frames rendered
//
// A StepRecord is one transition s_t -> s_(t+1): the state the policy saw, its action, and the rewards of
// the transition. Truncation (the time limit) keeps Phi(s'); nothing is shaped across an episode boundary.

import type { ExecutionProvider } from '../../models/runtime.ts';
import type { ShapingMode } from '../../models/shaping.ts';
import type { TaskId } from '../tasks/task.ts';

/** Where a reward mode's potential Phi comes from: the reward model's progress, the simulator's true progress, or none. */
export type PotentialSource = 'model' | 'simulator' | null;

export interface RewardModeSpec {
  /** How the engine's shaping turns the potential into the learner's reward (models/shaping.ts). */
  shaping: ShapingMode;
  potential: PotentialSource;
}

/**
 * The learner's reward modes, each as one of the engine's shaping modes over a potential source.
 *
 * There are two lists on purpose. The engine's SHAPING_MODES (models/shaping.ts) say how a potential
 * becomes a reward; the engine only sees frames, so its potential is always the reward model's
 * progress. A reward mode here also says where the potential comes from, and the simulator has one
 * the engine cannot know: its own true progress (pbrs-true is the engine's pbrs over that potential).
 */
export const REWARD_MODE_SPEC = {
  sparse: { shaping: 'sparse', potential: null },
  progress: { shaping: 'progress', potential: 'model' },
  pbrs: { shaping: 'pbrs', potential: 'model' },
  'pbrs-true': { shaping: 'pbrs', potential: 'simulator' },
} as const satisfies Record<string, RewardModeSpec>;

export type RewardMode = keyof typeof REWARD_MODE_SPEC;
export const REWARD_MODES: readonly RewardMode[] = Object.keys(REWARD_MODE_SPEC) as RewardMode[];

type Spec = typeof REWARD_MODE_SPEC;
/** The modes whose potential is the reward model's progress (they render frames and need a model). */
export type ModelRewardMode = { [M in RewardMode]: Spec[M]['potential'] extends 'model' ? M : never }[RewardMode];
/** The engine shaping modes a model reward mode asks the engine (or a reward server) for. */
export type ModelShaping = Spec[ModelRewardMode]['shaping'];
/** The modes that need no model: the bridge computes their reward from the simulator alone. */
export type ModelFreeRewardMode = Exclude<RewardMode, ModelRewardMode>;

/** Whether `mode` takes its potential from the reward model. */
export function isModelRewardMode(mode: RewardMode): mode is ModelRewardMode {
  return REWARD_MODE_SPEC[mode].potential === 'model';
}

/** Where model rewards come from: the engine in this process, or a reward server over a real WebSocket. */
export type RewardTransport = 'inprocess' | 'ws';
export const REWARD_TRANSPORTS: readonly RewardTransport[] = ['inprocess', 'ws'];

export interface BridgeOptions {
  task: TaskId;
  reward: RewardMode;
  /** The learner's discount, in [0, 1]; default 0.99. */
  gamma: number;
  /** lambda, the scale of the shaping term; default 1. */
  scale?: number;
  /** Parallel environments; default 1. Their frames go to the reward model together (one batch). */
  envs: number;
  /** Default 'inprocess'. Ignored by sparse and pbrs-true, which need no model. */
  transport?: RewardTransport;
  /** Model package folder; default models/zoo/<task>. */
  model?: string;
  /** Reward server URL (ws://host:port) when transport is 'ws'; absent: a server is started here on a free port. */
  url?: string;
  /** API key for `url`. */
  apiKey?: string;
  /** Episode length limit in control steps; default the task's. */
  maxSteps?: number;
  /** Default true; false: episodes run to the time limit after a success (SimEnvOptions.terminateOnSuccess). */
  terminateOnSuccess?: boolean;
  /** Control steps per second; default the simulator's (10). */
  controlHz?: number;
  /** Rendered frame side in pixels; default the model's (the engine resizes any other size). */
  imageSize?: number;
  /** ONNX Runtime execution providers for the in-process model (and a server started here); default ['cpu']. */
  providers?: ExecutionProvider[];
  /**
   * Threads that render frames for the reward model, beside the simulator's; 0 renders on the main
   * thread. Default: one per core beyond the first, at most 4. Frames are the same either way.
   */
  renderThreads?: number;
  /** Reward steps of one environment sent and not yet answered before it waits; default 32. */
  maxInFlightSteps?: number;
}

/**
 * The policy: observation.state -> action[4] in [-1, 1] (end-effector dx, dy, dz, gripper). `envIndex` is
 * the environment slot running the episode; `seedIndex` the episode's index in the seeds of the run.
 */
export type Policy = (state: Float32Array, envIndex: number, seedIndex: number) => Float32Array;

export interface StepRecord {
  /** observation.state of s_t (what the policy saw). */
  state: Float32Array;
  /** The action taken, as the policy returned it (the simulator clips it to [-1, 1]). */
  action: Float32Array;
  /** The simulator's sparse reward of the transition (1 on the step that succeeds). */
  envReward: number;
  /** The learner's reward for the transition, per the reward mode. */
  shaped: number;
  /** Phi(s_(t+1)) used for the shaping: the model's, the true progress for pbrs-true, NaN for sparse. */
  progress: number;
  /** The simulator's true progress of s_(t+1). */
  trueProgress: number;
  terminated: boolean;
  truncated: boolean;
}

export interface EpisodeResult {
  seed: number;
  steps: StepRecord[];
  /** The task succeeded at some step. */
  success: boolean;
  /** Sum over t of gamma^t * shaped_t. */
  shapedReturn: number;
  undiscountedShaped: number;
  /** Undiscounted sum of the simulator's rewards. */
  envReturn: number;
  /** Phi(s_0) (the model's, the true progress for pbrs-true, NaN for sparse). */
  phi0: number;
  /** Phi of the last state (phi0 for an episode without steps). */
  finalProgress: number;
  /** The simulator's true progress of the last state. */
  finalTrueProgress: number;
  /** Steps taken (= steps.length). */
  length: number;
  /** How the episode ended: a terminal state (success or failure), or the time limit. */
  terminated: boolean;
  truncated: boolean;
}
