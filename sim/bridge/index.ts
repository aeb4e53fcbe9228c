// The simulator bridge: simulator episodes with per-step rewards from the reward model (in process or
// over the WebSocket server), or from the simulator's true progress, for RL (learn/rl). types.ts lists
// the reward modes.

export { SimBridge } from './bridge.ts';
export { expertPolicies, hoverPolicies } from './expert-policy.ts';
export { DEFAULT_GAMMA, MAX_ENVS, resolveBridgeOptions, type ResolvedBridgeOptions } from './options.ts';
export { summarizeEpisode } from './returns.ts';
export {
  isModelRewardMode,
  REWARD_MODE_SPEC,
  REWARD_MODES,
  REWARD_TRANSPORTS,
  type BridgeOptions,
  type EpisodeResult,
  type ModelFreeRewardMode,
  type ModelRewardMode,
  type ModelShaping,
  type Policy,
  type PotentialSource,
  type RewardMode,
  type RewardModeSpec,
  type RewardTransport,
  type StepRecord,
} from './types.ts';
