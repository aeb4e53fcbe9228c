// The native protocol on `/v1/stream` (DESIGN.md "WebSocket protocol"): one session per connection,
// introduced by hello; then any number of episodes, one at a time (reset -> steps -> end).
//
//   hello  -> ready     checks the key (unless the upgrade's header carried a valid one) and the
//                       episode options (task, views, gamma, shaping, progress) once, up front
//   reset  -> episode   starts an episode (a running one is dropped without a summary); `episode`
//                       is the client's label for it (string or integer), else 0, 1, 2, ... per session
//   step   -> reward    step 0 is the initial observation (progress = Phi(s_0)); `seq` is echoed
//   end    -> summary   `terminated` / `truncated` / `success` as the client reports them
//
// Replies echo nothing else; errors are {type: "error", seq?, code, message} in the request's format.

import type { Episode, RewardEngine } from '../models/engine.ts';
import { StagewardError } from '../core/errors.ts';
import type { ShapingMode } from '../models/shaping.ts';
import type { EpisodeOptions, ProgressSource } from '../models/engine.ts';
import type { Composition } from '../models/progress.ts';
import type { ApiKeys } from './auth.ts';
import { asMessage, encodeFrame, type FrameKind } from './codec.ts';
import type { ServerLimits } from './config.ts';
import { errorBody, type MessageContext, type Protocol } from './connection.ts';
import {
  messageType, parseEnd, parseHello, parseReset, parseStep, rewardFields, summaryFields, PROTOCOL_VERSION,
  type EndRequest, type HelloRequest, type ResetRequest, type StepRequest,
} from './messages.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Decoded } from './msgpack.ts';

export interface SessionDeps {
  engine: RewardEngine;
  keys: ApiKeys;
  /** The upgrade request carried a valid key. */
  authenticated: boolean;
  limits: ServerLimits;
  metrics: ServerMetrics;
  sessionId: string;
}

export class NativeSession implements Protocol {
  readonly endpoint = 'native' as const;
  readonly #d: SessionDeps;
  #hello: HelloRequest | undefined;
  #episode: Episode | undefined;
  #label: string | number = 0;
  #episodes = 0;

  constructor(deps: SessionDeps) {
    this.#d = deps;
  }

  get awaitingHello(): boolean {
    return this.#hello === undefined;
  }

  greeting(): undefined {
    return undefined;
  }

  errorFrame(err: StagewardError, seq: number | undefined, kind: FrameKind): { data: Buffer | string; kind: FrameKind } {
    return { data: encodeFrame(errorBody(err, seq), kind), kind };
  }

  dispose(): void {
    this.#episode = undefined;
  }

  async handle(message: Decoded, ctx: MessageContext): Promise<object> {
    const m = asMessage(message);
    const type = messageType(m);
    const limits = this.#d.limits;
    if (this.#hello === undefined) {
      if (type !== 'hello') throw new StagewardError('SW_ERR_NO_SESSION', `a ${type} arrived before hello; send hello first`);
      return this.#onHello(parseHello(m, limits));
    }
    switch (type) {
      case 'hello':
        throw new StagewardError('SW_ERR_PROTOCOL', 'this session already had its hello; open a new connection for other settings');
      case 'reset':
        return this.#onReset(parseReset(m, limits));
      case 'step':
        return this.#onStep(parseStep(m, limits), ctx);
      case 'end':
        return this.#onEnd(parseEnd(m));
    }
  }

  async #onHello(h: HelloRequest): Promise<object> {
    const { engine, keys } = this.#d;
    if (keys.required && !this.#d.authenticated && !keys.check(h.apiKey)) {
      throw new StagewardError('SW_ERR_AUTH', h.apiKey === undefined ? 'an API key is required (header `Authorization: Api-Key <key>` or hello `api_key`)' : 'the API key is not valid');
    }
    const card = engine.card;
    if (h.model !== undefined && h.model !== card.name && h.model !== `${card.name}@${card.version}`) {
      throw new StagewardError('SW_ERR_MODEL_UNAVAILABLE', `this server serves model "${card.name}" (version ${card.version}), not "${h.model}"`);
    }
    await engine.start(this.#options(h)); // validates every option now, not at the first reset
    this.#hello = h;
    const taskIndex = card.tasks.indexOf(h.task);
    const { maxPayloadBytes, maxImagePixels, maxViews, maxInFlightSteps, idleTimeoutMs } = this.#d.limits;
    return {
      type: 'ready',
      session: this.#d.sessionId,
      protocol: PROTOCOL_VERSION,
      model: {
        name: card.name,
        version: card.version,
        views: card.views,
        stages: card.stages[taskIndex]!.map((s) => s.name),
        image: { height: card.image.height, width: card.image.width },
        fps: card.fps,
        grm: card.grm.present,
      },
      limits: { maxPayloadBytes, maxImagePixels, maxViews, maxInFlightSteps, idleTimeoutMs },
    };
  }

  #options(h: HelloRequest): EpisodeOptions {
    return {
      task: h.task,
      views: h.views,
      gamma: h.gamma,
      shaping: h.shaping as ShapingMode,
      progress: h.progress as ProgressSource | undefined,
      scale: h.scale,
      composition: h.composition as Composition | undefined,
    };
  }

  async #onReset(r: ResetRequest): Promise<object> {
    this.#episode = undefined;
    const episode = await this.#d.engine.start({ ...this.#options(this.#hello!), goal: r.goal });
    this.#episode = episode;
    this.#label = r.episode ?? this.#episodes;
    this.#episodes++;
    this.#d.metrics.episodes.inc();
    return { type: 'episode', episode: this.#label };
  }

  async #onStep(s: StepRequest, ctx: MessageContext): Promise<object> {
    const episode = this.#episode;
    if (episode === undefined) throw new StagewardError('SW_ERR_NO_EPISODE', 'a step arrived with no episode; send reset first');
    const r = await episode.step({ frames: s.frames, reward: s.reward as number, terminated: s.terminated as boolean, truncated: s.truncated as boolean });
    const now = performance.now();
    const timing = { queueMs: ctx.startedAt - ctx.receivedAt, inferMs: r.timing.total_ms, totalMs: now - ctx.receivedAt };
    this.#d.metrics.steps.inc();
    this.#d.metrics.stepSeconds.observe(timing.totalMs / 1000);
    this.#d.metrics.queueSeconds.observe(timing.queueMs / 1000);
    const out: Record<string, unknown> = { type: 'reward' };
    if (s.seq !== undefined) out.seq = s.seq;
    return Object.assign(out, rewardFields(r, this.#label, timing));
  }

  async #onEnd(e: EndRequest): Promise<object> {
    const episode = this.#episode;
    if (episode === undefined) throw new StagewardError('SW_ERR_NO_EPISODE', 'end arrived with no episode; send reset first');
    this.#episode = undefined;
    const summary = await episode.end();
    return { type: 'summary', ...summaryFields(summary, this.#label, e) };
  }
}
