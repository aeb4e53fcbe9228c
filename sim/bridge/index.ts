// The simulator bridge (DESIGN.md "Learning"): simulator episodes with per-step rewards from the reward
// model (in process or over the WebSocket server), or from the simulator's true progress, for RL.

export { SimBridge } from './bridge.ts';
export { expertPolicies, hoverPolicies } from './expert-policy.ts';
export { DEFAULT_GAMMA, MAX_ENVS, resolveBridgeOptions, type ResolvedBridgeOptions } from './options.ts';
export { summarizeEpisode } from './returns.ts';
export {
  REWARD_MODES,
  REWARD_TRANSPORTS,
  type BridgeOptions,
  type EpisodeResult,
  type Policy,
  type RewardMode,
  type RewardTransport,
  type StepRecord,
} from './types.ts';
