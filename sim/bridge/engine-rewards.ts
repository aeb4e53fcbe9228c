// Model rewards in this process: the package loaded on a worker thread (models/worker-model.ts, so the
// simulator keeps stepping and rendering on the main thread while a batch computes), wrapped in the
// server's dynamic batching (models/batching.ts), so the steps of every environment issued in one
// event-loop turn go to ONNX Runtime as one call per graph. One engine episode per bridge episode.

import { BatchingProgressModel, DEFAULT_BATCHING } from '../../models/batching.ts';
import { StagewardError } from '../../core/errors.ts';
import { RewardEngine, type Episode, type EpisodeOptions } from '../../models/engine.ts';
import type { RawImage } from '../../core/image.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import type { ModelReward, RewardService, RewardStream, StreamSettings, Transition } from './reward-stream.ts';
import { loadProgressModel } from '../../models/load.ts';

export interface EngineServiceOptions extends StreamSettings {
  /** Model package folder. */
  model: string;
  providers: ExecutionProvider[];
  /** Environments that will step together: the batch bound is raised to hold all their frames. */
  envs: number;
  log?: (message: string) => void;
}

export class EngineRewardService implements RewardService {
  readonly views: readonly string[];
  readonly image: { height: number; width: number };
  readonly engine: RewardEngine;
  readonly #model: BatchingProgressModel;
  readonly #options: EpisodeOptions;

  private constructor(model: BatchingProgressModel, options: EpisodeOptions) {
    this.#model = model;
    this.#options = options;
    this.engine = new RewardEngine(model);
    this.views = [...model.card.views];
    this.image = { height: model.card.image.height, width: model.card.image.width };
  }

  /** Load the package and check the episode settings against its card (task, gamma, ...). */
  static async load(o: EngineServiceOptions): Promise<EngineRewardService> {
    const inner = await loadProgressModel(o.model, 'worker', { providers: o.providers, intraOpThreads: 1, log: o.log });
    const maxBatch = Math.min(4096, Math.max(DEFAULT_BATCHING.maxBatch, o.envs * inner.card.views.length));
    const model = new BatchingProgressModel(inner, { ...DEFAULT_BATCHING, maxBatch });
    const options: EpisodeOptions = { task: o.task, views: [...inner.card.views], gamma: o.gamma, shaping: o.shaping, scale: o.scale };
    const service = new EngineRewardService(model, options);
    try {
      await (await service.engine.start(options)).end(); // refuses an unknown task or a bad option now
    } catch (err) {
      await model.close();
      throw err;
    }
    return service;
  }

  async open(): Promise<RewardStream> {
    return new EngineRewardStream(this.engine, this.#options);
  }

  async close(): Promise<void> {
    await this.#model.close();
  }
}

class EngineRewardStream implements RewardStream {
  readonly #engine: RewardEngine;
  readonly #options: EpisodeOptions;
  #episode: Promise<Episode> | undefined;

  constructor(engine: RewardEngine, options: EpisodeOptions) {
    this.#engine = engine;
    this.#options = options;
  }

  begin(): Promise<void> {
    return this.reset();
  }

  reset(): Promise<void> {
    const episode = this.#engine.start(this.#options);
    this.#episode = episode;
    return episode.then(() => undefined);
  }

  step(frames: Record<string, RawImage>, t?: Transition): Promise<ModelReward> {
    // `then` callbacks of one promise run in registration order, so the steps reach the episode in call order.
    return this.#current().then(async (episode) => {
      const r = await episode.step({
        frames,
        reward: t?.reward ?? 0,
        terminated: t?.terminated ?? false,
        truncated: t?.truncated ?? false,
      });
      return { progress: r.progress, shaped: r.shaped };
    });
  }

  end(): Promise<void> {
    return this.#current().then(async (episode) => {
      await episode.end();
    });
  }

  async close(): Promise<void> {
    this.#episode = undefined;
  }

  #current(): Promise<Episode> {
    if (this.#episode === undefined) return Promise.reject(new StagewardError('SW_ERR_NO_EPISODE', 'no episode started: call reset first'));
    return this.#episode;
  }
}
