// SimBridge: runs simulator episodes for an RL learner and returns, per step, the reward the learner
// trains on (types.ts lists the modes), with the model's progress and the simulator's true progress.
//
//   const bridge = await SimBridge.create({ task: 'pick_place', reward: 'pbrs', gamma: 0.99, envs: 8 });
//   const results = await bridge.runEpisodes([0, 1, 2, 3], (state) => myPolicy(state));   // or one policy per seed
//   await bridge.close();
//
// `envs` simulations step side by side on this thread; the seeds are dealt to them as they free up. The
// policy sees the state only, so after each control step the scene goes to a render thread
// (render-pool.ts; `renderThreads: 0` renders here) and its frames to the reward model without waiting
// for the reply: the simulator runs ahead while frames render and the model computes on its own thread,
// and the frames of the environments that arrive together go to ONNX Runtime as one batch. Each
// environment has at most `maxInFlightSteps` reward steps unanswered. Every episode is a fresh engine
// (or server) episode, started with s_0 and ended after its last step, so no shaping crosses an episode
// boundary. Results depend only on the seeds and the policies (not on `envs`, threads or transport).

import { StagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import { SimEnv } from '../env.ts';
import { createRenderer } from '../render/index.ts';
import type { SimTask } from '../tasks/task.ts';
import { EngineRewardService } from './engine-rewards.ts';
import { resolveBridgeOptions, type ResolvedBridgeOptions } from './options.ts';
import { RenderPool } from './render-pool.ts';
import { modelFreeReward, summarizeEpisode } from './returns.ts';
import type { RewardService, RewardStream } from './reward-stream.ts';
import {
  isModelRewardMode,
  REWARD_MODE_SPEC,
  type BridgeOptions,
  type EpisodeResult,
  type ModelFreeRewardMode,
  type Policy,
  type StepRecord,
} from './types.ts';
import { WsRewardService } from './ws-rewards.ts';

/** One call of runEpisodes: the work queue shared by the environments, and the first failure. */
interface Run {
  seeds: readonly number[];
  policy: (i: number) => Policy;
  next: number;
  results: EpisodeResult[];
  /** Episodes whose steps are all issued, waiting for their last rewards. */
  finishing: Promise<void>[];
  error: unknown;
  failed: boolean;
}

/** A reward request of one environment, settled or not (its failure is recorded on the run). */
interface InFlight {
  done: Promise<void>;
  settled: boolean;
}

type Frames = Record<string, RawImage>;

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Calls to one stream in the order they are made, each once its input is ready (frames still being
 * rendered), without waiting for the previous call's reply.
 */
function inOrder(): <A, T>(input: A | Promise<A>, call: (a: A) => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (input, call) => {
    // A render that fails while earlier calls wait must not count as an unhandled rejection; the failure
    // still reaches the caller through the returned promise (and every later call of this stream).
    if (input instanceof Promise) input.catch(() => undefined);
    const issued = tail.then(() => input).then((a) => ({ reply: call(a) }));
    tail = issued;
    return issued.then((x) => x.reply);
  };
}

export class SimBridge {
  readonly options: ResolvedBridgeOptions;
  readonly task: SimTask;
  /** Episode length limit in control steps. */
  readonly maxSteps: number;
  /** Metres the end effector moves per control step at |action| = 1 (the scripted expert needs it). */
  readonly eeStepM: number;
  /** Views rendered for the reward model (none for sparse and pbrs-true). */
  readonly views: readonly string[];
  /** Size of the rendered frames, or undefined when nothing is rendered. */
  readonly image: { height: number; width: number } | undefined;
  readonly #envs: SimEnv[];
  readonly #service: RewardService | undefined;
  readonly #streams: RewardStream[];
  readonly #pool: RenderPool | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(
    options: ResolvedBridgeOptions,
    envs: SimEnv[],
    service: RewardService | undefined,
    streams: RewardStream[],
    pool: RenderPool | undefined,
  ) {
    this.options = options;
    this.#envs = envs;
    this.#service = service;
    this.#streams = streams;
    this.#pool = pool;
    const env = envs[0]!;
    this.task = env.task;
    this.maxSteps = env.maxSteps;
    this.eeStepM = env.maxEeSpeedMps / env.controlHz;
    this.views = service ? [...service.views] : [];
    this.image = service ? { ...env.image } : undefined;
  }

  /** Check the options, load the model (or connect to / start a server) when the mode needs one, create the environments. */
  static async create(opts: BridgeOptions): Promise<SimBridge> {
    const o = resolveBridgeOptions(opts);
    let service: RewardService | undefined;
    if (isModelRewardMode(o.reward)) {
      const settings = {
        task: o.task,
        gamma: o.gamma,
        shaping: REWARD_MODE_SPEC[o.reward].shaping,
        scale: o.scale,
        model: o.model,
        providers: o.providers,
        envs: o.envs,
      };
      service =
        o.transport === 'inprocess'
          ? await EngineRewardService.load(settings)
          : await WsRewardService.connect({ ...settings, url: o.url, apiKey: o.apiKey });
    }
    const envs: SimEnv[] = [];
    const streams: RewardStream[] = [];
    let pool: RenderPool | undefined;
    try {
      const size = o.imageSize;
      const image = service === undefined ? undefined : size === undefined ? service.image : { height: size, width: size };
      // With render threads the environments render nothing themselves; the bridge sends their snapshots.
      if (service && o.renderThreads > 0) pool = await RenderPool.start(o.renderThreads);
      const renderer = service && !pool ? createRenderer() : undefined;
      for (let i = 0; i < o.envs; i++) {
        const views = service ? [...service.views] : undefined;
        envs.push(
          await SimEnv.create({
            task: o.task,
            controlHz: o.controlHz,
            maxSteps: o.maxSteps,
            terminateOnSuccess: o.terminateOnSuccess,
            image,
            views,
            renderer,
          }),
        );
        if (service) streams.push(await service.open());
      }
    } catch (err) {
      for (const env of envs) env.close();
      await pool?.close();
      await service?.close();
      throw err;
    }
    return new SimBridge(o, envs, service, streams, pool);
  }

  /** Parallel environments. */
  get envs(): number {
    return this.#envs.length;
  }

  /**
   * Run one episode per seed, the environments in parallel; result i belongs to seeds[i]. With a list
   * of policies, policy i acts in the episode of seeds[i] only (so a stateful policy such as a
   * scripted expert sees its own episode). Calls on one bridge run one after another.
   */
  runEpisodes(seeds: number[], policy: Policy | Policy[]): Promise<EpisodeResult[]> {
    this.#assertOpen();
    checkSeeds(seeds);
    const policyFor = checkPolicies(policy, seeds.length);
    const run = this.#queue.then(() => this.#run(seeds, policyFor));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Wait for a run in progress, then free the environments and the model (or connections and server). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    for (const env of this.#envs) env.close();
    await this.#pool?.close();
    await this.#service?.close();
  }

  async #run(seeds: readonly number[], policy: (i: number) => Policy): Promise<EpisodeResult[]> {
    this.#assertOpen();
    const run: Run = {
      seeds: [...seeds],
      policy,
      next: 0,
      results: new Array(seeds.length),
      finishing: [],
      error: undefined,
      failed: false,
    };
    const slots = Math.min(this.#envs.length, seeds.length);
    const loops = [];
    for (let slot = 0; slot < slots; slot++) loops.push(this.#runSlot(slot, run).catch((err: unknown) => fail(run, err)));
    await Promise.all(loops);
    await Promise.all(run.finishing);
    if (run.failed) throw run.error;
    return run.results;
  }

  /** One environment: take the next seed, run its episode, until the run's seeds are used up. */
  async #runSlot(slot: number, run: Run): Promise<void> {
    const env = this.#envs[slot]!;
    const stream = this.#streams[slot];
    const o = this.options;
    const inFlight: InFlight[] = [];
    const track = (p: Promise<unknown>): Promise<void> => {
      const entry: InFlight = { done: Promise.resolve(), settled: false };
      entry.done = p.then(
        () => {
          entry.settled = true;
        },
        (err: unknown) => {
          entry.settled = true;
          fail(run, err);
        },
      );
      inFlight.push(entry);
      return entry.done;
    };
    const issue = inOrder();
    const pool = this.#pool;
    const views = this.views;
    const image = this.image!;
    /** Frames of the environment's current state, for the reward model. */
    const frames = (obs: { frames: Frames }): Frames | Promise<Frames> =>
      pool ? pool.render(env.snapshot(), views, image.width, image.height) : obs.frames;
    let first = true;
    while (!run.failed && run.next < run.seeds.length) {
      const index = run.next++;
      const seed = run.seeds[index]!;
      const policy = run.policy(index);
      let obs = env.reset(seed);
      const steps: StepRecord[] = [];
      const episode: Promise<void>[] = [];
      let phi0 = NaN;
      let phi = NaN;
      let success = false;
      if (stream) {
        if (first) await stream.begin();
        else episode.push(track(issue(undefined, () => stream.reset())));
        episode.push(
          track(
            issue(frames(obs), (f) => stream.step(f)).then((r) => {
              phi0 = r.progress;
            }),
          ),
        );
      } else if (REWARD_MODE_SPEC[o.reward].potential === 'simulator') {
        phi0 = phi = env.info().trueProgress;
      }
      first = false;
      for (;;) {
        const action = policy(obs.state, slot, index);
        const out = env.step(action);
        const rec: StepRecord = {
          state: obs.state,
          action: Float32Array.from(action),
          envReward: out.reward,
          shaped: NaN,
          progress: NaN,
          trueProgress: out.info.trueProgress,
          terminated: out.terminated,
          truncated: out.truncated,
        };
        steps.push(rec);
        success ||= out.info.success;
        if (stream) {
          const transition = { reward: out.reward, terminated: out.terminated, truncated: out.truncated };
          episode.push(
            track(
              issue(frames(out.observation), (f) => stream.step(f, transition)).then((r) => {
                rec.shaped = r.shaped;
                rec.progress = r.progress;
              }),
            ),
          );
        } else {
          const transition = { phiBefore: phi, trueProgressAfter: out.info.trueProgress, reward: out.reward, terminated: out.terminated };
          const m = modelFreeReward(o.reward as ModelFreeRewardMode, transition, o.gamma, o.scale);
          rec.shaped = m.shaped;
          rec.progress = m.progress;
          phi = m.progress;
        }
        obs = out.observation;
        if (out.terminated || out.truncated) break;
        await this.#pace(inFlight, run);
        if (run.failed) return;
      }
      const last = steps[steps.length - 1]!;
      if (stream)
        episode.push(track(issue(undefined, () => stream.end({ terminated: last.terminated, truncated: last.truncated, success }))));
      run.finishing.push(
        Promise.all(episode).then(() => {
          run.results[index] = summarizeEpisode(seed, steps, phi0, success, o.gamma);
        }),
      );
      await this.#pace(inFlight, run);
    }
  }

  /** Let the other environments and the replies in, then wait while too many steps are unanswered. */
  async #pace(inFlight: InFlight[], run: Run): Promise<void> {
    await nextTurn();
    while (inFlight.length > 0 && inFlight[0]!.settled) inFlight.shift();
    while (!run.failed && inFlight.length > this.options.maxInFlightSteps) {
      await inFlight[0]!.done;
      while (inFlight.length > 0 && inFlight[0]!.settled) inFlight.shift();
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new StagewardError('SW_ERR_EPISODE_ENDED', 'the bridge is closed');
  }
}

function fail(run: Run, err: unknown): void {
  if (run.failed) return;
  run.failed = true;
  run.error = err;
}

function checkSeeds(seeds: unknown): asserts seeds is number[] {
  if (!Array.isArray(seeds)) throw new StagewardError('SW_ERR_BAD_OPTION', '`seeds` must be a list of integers');
  for (const s of seeds) {
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff)
      throw new StagewardError('SW_ERR_BAD_OPTION', `seed ${JSON.stringify(s)} is not an integer in [0, 2^32)`);
  }
}

function checkPolicies(policy: Policy | Policy[], n: number): (i: number) => Policy {
  if (typeof policy === 'function') return () => policy;
  if (!Array.isArray(policy) || policy.length !== n || policy.some((p) => typeof p !== 'function')) {
    throw new StagewardError('SW_ERR_BAD_OPTION', `pass one policy, or a list of ${n} policies (one per seed)`);
  }
  return (i) => policy[i]!;
}
