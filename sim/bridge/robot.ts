// The simulator as a robot streaming to a reward server: the embedded MuJoCo simulator with the
// scripted expert, its camera views sent as JPEG over a real WebSocket with the TypeScript client
// (server/client.ts), alternating clean and flawed episodes; what `stageward start` runs beside the
// server (serveSimRobot: the server of server/run.ts and the robot, until done or a signal).
// `expertEpisode` is the loop itself (also what `stageward demo` feeds the engine in process).
//
//   await runSimRobot({ url: server.url, apiKey, episodes: 4 }, { onEpisode: (e) => console.log(e.summary.final_progress) });
//   await serveSimRobot(configFromFlags({ port: 0 }), { episodes: 2 }, { log: console.log });

import { isStagewardError } from '../../core/errors.ts';
import { encodeJpegFrames } from '../../core/image.ts';
import { StagewardClient, type ReadyReply, type SummaryReply } from '../../server/client.ts';
import type { ServerConfig } from '../../server/config.ts';
import { describeServer, shutdownOnSignals, startServer } from '../../server/run.ts';
import type { ShapingMode } from '../../models/shaping.ts';
import { SimEnv, type StepInfo } from '../env.ts';
import { ScriptedExpert, planEpisode, type ExpertPreset } from '../expert.ts';
import { createRenderer } from '../render/index.ts';
import type { TaskId } from '../tasks/task.ts';

/** Even episodes run the clean expert, odd ones a preset whose every episode fails. */
export const ROBOT_PRESETS: readonly ExpertPreset[] = ['expert', 'failed'];
/** An expert idle this many control steps has stopped: the episode is truncated. */
export const MAX_IDLE_STEPS = 20;

export const ROBOT_DEFAULTS = {
  task: 'pick_place' as TaskId,
  /** Camera resolution in pixels (the server resizes to the model). */
  size: 96,
  /** Seed of the first episode (episode i uses seed + i). */
  seed: 0,
  /** The episode settings the robot asks the server for. */
  gamma: 0.99,
  shaping: 'pbrs' as ShapingMode,
} as const;

/** What the robot sends with each observation: the transition into it (for s_0: reward 0, not ended). */
export interface RobotTransition {
  reward: number;
  terminated: boolean;
  truncated: boolean;
}

/**
 * One scripted-expert episode from `seed`, observation by observation: `send` gets each observation's
 * frames as JPEG, the transition into it and the simulator's info of the state, and answers whether the
 * episode is over (the reward source says done, or the caller stops). An expert idle for
 * MAX_IDLE_STEPS control steps truncates the episode.
 */
export async function expertEpisode(
  env: SimEnv,
  preset: ExpertPreset,
  seed: number,
  send: (frames: Record<string, Uint8Array>, transition: RobotTransition, info: StepInfo) => Promise<boolean>,
): Promise<{ success: boolean }> {
  let obs = env.reset(seed);
  const expert = new ScriptedExpert(env.task, planEpisode(preset, seed), { stepM: env.maxEeSpeedMps / env.controlHz });
  let info = env.info();
  let reward = 0;
  let terminated = false;
  let truncated = false;
  let success = false;
  for (;;) {
    const frames = await encodeJpegFrames(obs.frames);
    if (await send(frames, { reward, terminated, truncated }, info)) break;
    const out = env.step(expert.act(obs.state));
    ({ observation: obs, reward, terminated, truncated, info } = out);
    success ||= out.info.success;
    if (!terminated && !truncated && expert.idleSteps >= MAX_IDLE_STEPS) truncated = true;
  }
  return { success };
}

export interface SimRobotOptions {
  /** The reward server (ws://host:port). */
  url: string;
  apiKey?: string;
  /** Default ROBOT_DEFAULTS.task. */
  task?: string;
  /** Camera resolution; default ROBOT_DEFAULTS.size. */
  size?: number;
  /** Episode i uses seed + i; default ROBOT_DEFAULTS.seed. */
  seed?: number;
  /** Stop after this many episodes; default: until `stopping` says so. */
  episodes?: number;
}

export interface RobotReady {
  task: string;
  instruction: string;
  views: readonly string[];
  size: number;
  /** The server's ready reply (its session id). */
  ready: ReadyReply;
  presets: readonly ExpertPreset[];
}

export interface RobotEpisode {
  index: number;
  preset: ExpertPreset;
  seed: number;
  success: boolean;
  /** The server's summary of the episode. */
  summary: SummaryReply;
  /** Round-trip time of each step, ms. */
  latencyMs: number[];
}

export interface RobotHooks {
  /** Checked before each episode and after each step: true ends the run (the current episode is not ended). */
  stopping?: () => boolean;
  /** Connected, the session open. */
  onReady?: (r: RobotReady) => void;
  /** After each episode the server summarised. */
  onEpisode?: (e: RobotEpisode) => void;
}

/** Stream scripted-expert episodes to the server at `url` until `episodes` are done or `stopping()`. */
export async function runSimRobot(o: SimRobotOptions, hooks: RobotHooks = {}): Promise<void> {
  const task = o.task ?? ROBOT_DEFAULTS.task;
  const size = o.size ?? ROBOT_DEFAULTS.size;
  const firstSeed = o.seed ?? ROBOT_DEFAULTS.seed;
  const stopping = hooks.stopping ?? (() => false);
  const env = await SimEnv.create({ task, image: { width: size, height: size }, renderer: createRenderer() });
  const client = await StagewardClient.connect(o.url, { apiKey: o.apiKey });
  try {
    const ready = await client.hello({ task, gamma: ROBOT_DEFAULTS.gamma, shaping: ROBOT_DEFAULTS.shaping, views: [...env.views] });
    hooks.onReady?.({ task, instruction: env.task.instruction, views: env.views, size, ready, presets: ROBOT_PRESETS });
    for (let i = 0; o.episodes === undefined || i < o.episodes; i++) {
      if (stopping()) break;
      const preset = ROBOT_PRESETS[i % ROBOT_PRESETS.length]!;
      const seed = firstSeed + i;
      await client.reset(undefined, { episode: i });
      const latencyMs: number[] = [];
      const { success } = await expertEpisode(env, preset, seed, async (frames, transition) => {
        const t0 = performance.now();
        const r = await client.step(frames, transition);
        latencyMs.push(performance.now() - t0);
        return r.done || stopping();
      });
      if (stopping()) break;
      const summary = await client.end({ success });
      hooks.onEpisode?.({ index: i, preset, seed, success, summary, latencyMs });
    }
  } finally {
    env.close();
    await client.close();
  }
}

/**
 * The reward server for `config` (server/run.ts: the configured or bundled model) with the simulated
 * robot streaming to it, until the robot's `episodes` are done (then the server shuts down) or SIGINT /
 * SIGTERM (graceful shutdown). The server's lines, and 'stageward: stopped' at the end, go to `log`.
 */
export async function serveSimRobot(
  config: ServerConfig,
  robot: Omit<SimRobotOptions, 'url' | 'apiKey'>,
  hooks: Omit<RobotHooks, 'stopping'> & { log?: (line: string) => void } = {},
): Promise<void> {
  const log = hooks.log ?? console.log;
  const { server, trained, dir } = await startServer(config, log);
  for (const line of describeServer(server, dir, trained)) log(line);
  let stop = false;
  const signals = shutdownOnSignals(server, log, () => {
    stop = true;
  });
  let failure: unknown;
  try {
    await runSimRobot({ ...robot, url: server.url, apiKey: server.config.apiKeys[0] }, { ...hooks, stopping: () => stop });
  } catch (err) {
    // A shutdown under a step ends the robot with the server's error; anything else is reported.
    if (!(stop && isStagewardError(err))) failure = err;
  }
  if (stop) await signals.stopped;
  else await server.shutdown();
  signals.release();
  if (failure !== undefined) throw failure;
  log('stageward: stopped');
}
