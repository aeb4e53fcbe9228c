// The bridge's options, checked and completed with their defaults in one place, before anything is
// loaded or started. A bad value is refused with SW_ERR_BAD_OPTION (SW_ERR_TASK_UNKNOWN for the task)
// and a message that names the option.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { StagewardError } from '../../core/errors.ts';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../../models/runtime.ts';
import { ZOO_DIR } from '../../core/paths.ts';
import { isTaskId, TASK_IDS } from '../tasks/index.ts';
import { MAX_RENDER_THREADS } from './render-pool.ts';
import type { TaskId } from '../tasks/task.ts';
import { isModelRewardMode, REWARD_MODES, REWARD_TRANSPORTS, type BridgeOptions, type RewardMode, type RewardTransport } from './types.ts';

/** Most parallel environments (each holds a simulation, and a server session over ws). */
export const MAX_ENVS = 64;
export const DEFAULT_GAMMA = 0.99;
export const DEFAULT_MAX_IN_FLIGHT_STEPS = 32;

export interface ResolvedBridgeOptions {
  task: TaskId;
  reward: RewardMode;
  gamma: number;
  scale: number;
  envs: number;
  transport: RewardTransport;
  /** Model package folder (in-process engine, or the server started here). */
  model: string;
  url: string | undefined;
  apiKey: string | undefined;
  maxSteps: number | undefined;
  terminateOnSuccess: boolean;
  controlHz: number | undefined;
  imageSize: number | undefined;
  providers: ExecutionProvider[];
  maxInFlightSteps: number;
  /** 0: render on the main thread. */
  renderThreads: number;
  /** The mode's potential is the model's (progress, pbrs): it needs the reward model and rendered frames; sparse and pbrs-true do not. */
  needsModel: boolean;
}

/** One core stays with the simulator (and the model's thread): the rest render, up to 4. */
export function defaultRenderThreads(cores = availableParallelism()): number {
  return Math.max(0, Math.min(4, cores - 1));
}

export function resolveBridgeOptions(o: BridgeOptions): ResolvedBridgeOptions {
  const bad = (msg: string): never => {
    throw new StagewardError('SW_ERR_BAD_OPTION', msg);
  };
  if (o === null || typeof o !== 'object') bad('bridge options must be an object');
  if (typeof o.task !== 'string' || !isTaskId(o.task)) {
    throw new StagewardError('SW_ERR_TASK_UNKNOWN', `unknown simulator task "${String(o.task)}" (known: ${TASK_IDS.join(', ')})`);
  }
  if (!REWARD_MODES.includes(o.reward)) bad(`\`reward\` must be one of ${REWARD_MODES.join(', ')}, got ${JSON.stringify(o.reward)}`);
  const gamma = o.gamma ?? DEFAULT_GAMMA;
  if (typeof gamma !== 'number' || !(gamma >= 0 && gamma <= 1)) bad('`gamma` must be a number in [0, 1]');
  const scale = o.scale ?? 1;
  if (typeof scale !== 'number' || !Number.isFinite(scale)) bad('`scale` must be a finite number');
  const envs = o.envs ?? 1;
  if (!Number.isInteger(envs) || envs < 1 || envs > MAX_ENVS) bad(`\`envs\` must be an integer in [1, ${MAX_ENVS}]`);
  const transport = o.transport ?? 'inprocess';
  if (!REWARD_TRANSPORTS.includes(transport)) bad(`\`transport\` must be one of ${REWARD_TRANSPORTS.join(', ')}`);
  if (o.url !== undefined && transport !== 'ws') bad('`url` needs `transport: "ws"`');
  if (o.url !== undefined && !/^wss?:\/\//.test(o.url)) bad(`\`url\` must be a ws:// or wss:// URL, got ${JSON.stringify(o.url)}`);
  if (o.model !== undefined && (typeof o.model !== 'string' || o.model.length === 0)) bad('`model` must be a package folder path');
  const optionalInt = (name: string, v: number | undefined, min: number, max: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min || v > max)) bad(`\`${name}\` must be an integer in [${min}, ${max}]`);
    return v;
  };
  const maxSteps = optionalInt('maxSteps', o.maxSteps, 1, 1_000_000);
  const terminateOnSuccess = o.terminateOnSuccess ?? true;
  if (typeof terminateOnSuccess !== 'boolean') bad('`terminateOnSuccess` must be true or false');
  const imageSize = optionalInt('imageSize', o.imageSize, 8, 1024);
  const renderThreads = optionalInt('renderThreads', o.renderThreads, 0, MAX_RENDER_THREADS) ?? defaultRenderThreads();
  const maxInFlightSteps = optionalInt('maxInFlightSteps', o.maxInFlightSteps, 1, 4096) ?? DEFAULT_MAX_IN_FLIGHT_STEPS;
  if (o.controlHz !== undefined && (typeof o.controlHz !== 'number' || !(o.controlHz > 0 && o.controlHz <= 500)))
    bad('`controlHz` must be a number in (0, 500]');
  const providers = o.providers ?? ['cpu'];
  if (!Array.isArray(providers) || providers.length === 0 || providers.some((p) => !EXECUTION_PROVIDERS.includes(p))) {
    bad(`\`providers\` must be a non-empty list of ${EXECUTION_PROVIDERS.join(', ')}`);
  }
  return {
    task: o.task,
    reward: o.reward,
    gamma,
    scale,
    envs,
    transport,
    model: o.model ?? join(ZOO_DIR, o.task),
    url: o.url,
    apiKey: o.apiKey,
    maxSteps,
    terminateOnSuccess,
    controlHz: o.controlHz,
    imageSize,
    providers,
    maxInFlightSteps,
    renderThreads,
    needsModel: isModelRewardMode(o.reward),
  };
}
