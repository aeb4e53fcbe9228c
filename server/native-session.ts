// The native protocol on `/v1/stream`: one session per connection, introduced by hello; then any
// number of episodes, one at a time (reset -> steps -> end). Message fields are checked in
// messages.ts; server/client.ts is the TypeScript client.
//
//   hello  -> ready     checks the key (unless the upgrade's header carried a valid one) and the
//                       episode options (task, views, gamma, shaping, progress) once, up front
//   reset  -> episode   starts an episode (a running one is dropped without a summary); `episode`
//                       is the client's label for it (string or integer), else 0, 1, 2, ... per session
//   step   -> reward    step 0 is the initial observation (progress = Phi(s_0)); `seq` is echoed
//   end    -> summary   `terminated` / `truncated` / `success` as the client reports them
//
// Replies echo nothing else; errors are {type: "error", seq?, code, message} in the request's format.
// What this shares with the openpi protocol (model description, episode bookkeeping, step timing and
// metrics, the error map) is in session.ts.

import { resolveTask } from '../models/tasks.ts';
import { echo, StagewardError } from '../core/errors.ts';
import type { EpisodeOptions, ProgressSource } from '../models/engine.ts';
import type { Composition } from '../models/progress.ts';
import type { ShapingMode } from '../models/shaping.ts';
import type { ApiKeys } from './auth.ts';
import { asMessage, encodeFrame, type FrameKind } from './codec.ts';
import type { MessageContext, Protocol } from './connection.ts';
import {
  messageType,
  parseEnd,
  parseHello,
  parseReset,
  parseStep,
  summaryFields,
  PROTOCOL_VERSION,
  type EndRequest,
  type HelloRequest,
  type ResetRequest,
  type StepRequest,
} from './messages.ts';
import type { Decoded } from './msgpack.ts';
import { advertisedLimits, describeModel, errorBody, SessionEpisode, type SessionContext } from './session.ts';

export interface NativeDeps extends SessionContext {
  keys: ApiKeys;
  /** The upgrade request carried a valid key. */
  authenticated: boolean;
}

export class NativeSession implements Protocol {
  readonly endpoint = 'native' as const;
  readonly #d: NativeDeps;
  readonly #episode: SessionEpisode;
  #hello: HelloRequest | undefined;
  /** The model's views the hello did not list, filled (missingViews "fill"). */
  #filled: string[] = [];
  /** The `t` of the episode's last answered step: each step's `t`, when given, must be above it. */
  #lastT = -1;

  constructor(deps: NativeDeps) {
    this.#d = deps;
    this.#episode = new SessionEpisode(deps);
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
    this.#episode.drop();
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
      throw new StagewardError(
        'SW_ERR_AUTH',
        h.apiKey === undefined
          ? 'an API key is required (header `Authorization: Api-Key <key>` or hello `api_key`)'
          : 'the API key is not valid',
      );
    }
    const card = engine.card;
    if (h.model !== undefined && h.model !== card.name && h.model !== `${card.name}@${card.version}`) {
      throw new StagewardError(
        'SW_ERR_MODEL_UNAVAILABLE',
        `this server serves model "${card.name}" (version ${card.version}), not ${echo(h.model)}`,
      );
    }
    // `task` may be an id, an instruction or alias, or a promptMap key (models/tasks.ts); a hello
    // names its task, so a one-task model does not take any text the way an openpi prompt does.
    const match = resolveTask(card, h.task, { promptMap: this.#d.promptMap, onlyTask: false });
    // With missingViews "fill", the model's views the hello does not list are filled (the card's missing_views).
    const filled = this.#d.missingViews === 'fill' && h.views !== undefined ? card.views.filter((v) => !h.views!.includes(v)) : [];
    const resolved = { ...h, task: match.task };
    this.#filled = filled;
    await engine.start(this.#options(resolved)); // validates every option now, not at the first reset
    this.#hello = resolved;
    const taskIndex = card.tasks.indexOf(match.task);
    return {
      type: 'ready',
      session: this.#d.sessionId,
      replica: this.#d.replica,
      protocol: PROTOCOL_VERSION,
      task: match.task,
      task_match: match.by,
      filled_views: filled,
      // The hello fixed the task, so only its stages.
      model: describeModel(card, { stages: card.stages[taskIndex]!.map((s) => s.name) }),
      limits: advertisedLimits(this.#d.limits),
    };
  }

  #options(h: HelloRequest): EpisodeOptions {
    return {
      task: h.task,
      views: h.views,
      ...(this.#filled.length > 0 ? { fill: this.#filled } : {}),
      gamma: h.gamma,
      shaping: h.shaping as ShapingMode,
      progress: h.progress as ProgressSource | undefined,
      scale: h.scale,
      composition: h.composition as Composition | undefined,
      tenant: this.#d.sessionId,
    };
  }

  async #onReset(r: ResetRequest): Promise<object> {
    const progress = this.#hello!.progress ?? 'sarm';
    if (r.goal !== undefined && progress === 'sarm') {
      throw new StagewardError(
        'SW_ERR_BAD_OPTION',
        '`goal` is used only with progress "grm" or "both"; this session\'s hello chose "sarm"',
      );
    }
    await this.#episode.start({ ...this.#options(this.#hello!), goal: r.goal }, r.episode);
    this.#lastT = -1;
    return { type: 'episode', episode: this.#episode.label };
  }

  async #onStep(s: StepRequest, ctx: MessageContext): Promise<object> {
    if (this.#episode.current === undefined)
      throw new StagewardError('SW_ERR_NO_EPISODE', 'a step arrived with no episode; send reset first');
    if (s.t !== undefined && s.t <= this.#lastT) {
      throw new StagewardError('SW_ERR_PROTOCOL', `\`t\` must increase within an episode: ${s.t} follows ${this.#lastT}`);
    }
    const { fields } = await this.#episode.step(
      { frames: s.frames, reward: s.reward as number, terminated: s.terminated as boolean, truncated: s.truncated as boolean },
      ctx,
    );
    if (s.t !== undefined) this.#lastT = s.t;
    const out: Record<string, unknown> = { type: 'reward' };
    if (s.seq !== undefined) out.seq = s.seq;
    return Object.assign(out, fields);
  }

  async #onEnd(e: EndRequest): Promise<object> {
    const episode = this.#episode.current;
    if (episode === undefined) throw new StagewardError('SW_ERR_NO_EPISODE', 'end arrived with no episode; send reset first');
    this.#episode.drop();
    const summary = await episode.end();
    return { type: 'summary', ...summaryFields(summary, this.#episode.label, e) };
  }
}
