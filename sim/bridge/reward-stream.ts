// The contract between the bridge and a source of model rewards: one `RewardStream` per environment,
// carrying that environment's episodes one after another, opened from one `RewardService` (the model).
// Two implementations: the engine in this process (engine-rewards.ts) and a reward server over a real
// WebSocket (ws-rewards.ts). Both feed the engine the same raw RGB frames and options, so they give the
// same rewards.
//
// Calls may be pipelined: a stream answers its calls in the order they were made, whether or not the
// caller awaited the previous one. Per episode: reset, step(s_0) (no transition: Phi(s_0)), then
// step(s_(t+1), transition) per control step, then end.

import type { RawImage } from '../../core/image.ts';
import type { ModelShaping } from './types.ts';

export interface Transition {
  /** The simulator's reward of the transition into this observation. */
  reward: number;
  terminated: boolean;
  truncated: boolean;
}

export interface ModelReward {
  /** Phi of the observation, in [0, 1]. */
  progress: number;
  /** The shaped reward of the transition into it (the env reward, 0, for s_0). */
  shaped: number;
}

export interface RewardStream {
  /** Start an episode, waiting until it is open; a stream whose connection went idle reconnects once here. */
  begin(): Promise<void>;
  /** Start an episode without waiting (pipelined behind the previous episode's steps). */
  reset(): Promise<void>;
  /** s_0 without a transition, then s_(t+1) with the transition that led to it. */
  step(frames: Record<string, RawImage>, transition?: Transition): Promise<ModelReward>;
  /** End the episode after its last step. */
  end(outcome: { terminated: boolean; truncated: boolean; success: boolean }): Promise<void>;
  close(): Promise<void>;
}

export interface RewardService {
  /** The model's camera views, in its order: the frames each step must carry. */
  readonly views: readonly string[];
  /** The model's input resolution (frames of another size are resized by the engine). */
  readonly image: { height: number; width: number };
  /** A stream for one more environment. */
  open(): Promise<RewardStream>;
  /** Close every stream opened, then the model (or the connection and any server started). */
  close(): Promise<void>;
}

/** The episode settings a stream's episodes use (the engine's shaping modes). */
export interface StreamSettings {
  task: string;
  gamma: number;
  shaping: ModelShaping;
  scale: number;
}
