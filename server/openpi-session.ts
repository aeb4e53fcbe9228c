// openpi-client compatibility on `/openpi` (and on `/`, where `WebsocketClientPolicy(host, port)`
// connects): the server sends a metadata map first; each message is an observation dict; each reply
// is a dict of reward fields. An unmodified `openpi_client.WebsocketClientPolicy` works: its `infer`
// returns the reply, and it raises on a text frame, which is how errors travel here (JSON text
// {type: "error", code, message}; the connection stays open unless the error's close code says not).
//
// Observation keys (config `openpi`):
//   images        the configured keys map to views, e.g. "observation/image" -> front, or a path into
//                 nested maps ("images/cam_high"); every model view needs its key; uint8 HWC or CHW,
//                 or float in [0, 1]; other keys (state, actions, text arrays, ...) are ignored
//   prompt        the task: a task id, one of the card's instructions or aliases, or a `promptMap` key;
//                 else `openpi.task`, else the model's only task (models/tasks.ts); each reply's
//                 `task` says which task it was scored as
//   reward, terminated, truncated   as in the native step (numpy scalars are fine)
//   gamma, shaping, progress        optional episode options, read when an episode starts
//   reset, episode                  episode boundaries, below
//
// An observation starts a new episode (and is its step 0, the initial observation) when it is the
// first on the connection, has `reset: true`, carries an `episode` id different from the current
// one, carries a `prompt` different from the last one, follows an observation that had `terminated`
// or `truncated` true (a vector env's auto-reset), or arrives `openpi.episodeGapMs` (5 s) or more
// after the previous observation (the stock runtime's `reset()` sends nothing, but a robot resetting
// pauses). The reply says `new_episode: true`; every reply carries `episode` and `step`.
//
// What this shares with the native protocol (model description, episode bookkeeping, step timing and
// metrics, the error map) is in session.ts.

import { echo, StagewardError } from '../core/errors.ts';
import { normalizeInstruction } from '../models/card.ts';
import { resolveTask } from '../models/tasks.ts';
import type { ProgressSource } from '../models/engine.ts';
import type { FrameSet } from '../models/preprocess.ts';
import type { ShapingMode } from '../models/shaping.ts';
import { asMessage, type FrameKind } from './codec.ts';
import type { MissingViewsPolicy, OpenpiConfig } from './config.ts';
import type { MessageContext, Protocol } from './connection.ts';
import { parseEpisodeLabel, parseFrames } from './messages.ts';
import { encodeMsgpack, type Decoded } from './msgpack.ts';
import { NdArray } from './ndarray.ts';
import { advertisedLimits, describeModel, errorBody, SessionEpisode, type SessionContext } from './session.ts';

export interface OpenpiDeps extends SessionContext {
  openpi: OpenpiConfig;
}

/** Check the `openpi` settings against the model at start-up (SW_ERR_CONFIG naming the field). */
export function checkOpenpiConfig(
  openpi: OpenpiConfig,
  views: readonly string[],
  tasks: readonly string[],
  hasGrm: boolean,
  missingViews: MissingViewsPolicy = 'refuse',
): void {
  const bad = (field: string, m: string): never => {
    throw new StagewardError('SW_ERR_CONFIG', `\`openpi.${field}\` ${m}`);
  };
  const mapped = Object.values(openpi.views);
  for (const v of mapped)
    if (!views.includes(v)) bad('views', `maps a key to "${v}", which is not one of the model's views (${views.join(', ')})`);
  if (missingViews === 'refuse') {
    for (const v of views)
      if (!mapped.includes(v))
        bad('views', `maps no observation key to the model's view "${v}" (with missingViews "fill" it would be filled)`);
  } else if (mapped.length === 0) bad('views', "maps no observation key to any of the model's views");
  if (openpi.task !== null && !tasks.includes(openpi.task))
    bad('task', `is "${openpi.task}", not one of the model's tasks (${tasks.join(', ')})`);
  if (openpi.progress !== 'sarm' && !hasGrm) bad('progress', `is "${openpi.progress}", and the model has no GRM head`);
}

export class OpenpiSession implements Protocol {
  readonly endpoint = 'openpi' as const;
  readonly awaitingHello = false;
  readonly #d: OpenpiDeps;
  readonly #episode: SessionEpisode;
  #task: string | undefined;
  /** The last step ended its episode (terminated or truncated): the next observation starts one. */
  #ended = false;
  /** When the previous observation arrived (performance.now ms), for `episodeGapMs`. */
  #lastAt: number | undefined;
  /** The model's views no observation key maps to (filled, with missingViews "fill"). */
  readonly #filled: string[];

  constructor(deps: OpenpiDeps) {
    this.#d = deps;
    const mapped = Object.values(deps.openpi.views);
    this.#filled = deps.engine.card.views.filter((v) => !mapped.includes(v));
    this.#episode = new SessionEpisode(deps);
  }

  greeting(): { data: Buffer; kind: FrameKind } {
    const card = this.#d.engine.card;
    const o = this.#d.openpi;
    const metadata = {
      server: 'stageward',
      protocol: 'openpi',
      session: this.#d.sessionId,
      replica: this.#d.replica,
      // Any observation may name its task, so every task and its stages.
      model: describeModel(card, {
        tasks: card.tasks,
        stages: Object.fromEntries(card.tasks.map((t, i) => [t, card.stages[i]!.map((s) => s.name)])),
      }),
      observation_keys: o.views,
      filled_views: this.#filled,
      defaults: { task: o.task, gamma: o.gamma, shaping: o.shaping, progress: o.progress },
      episode_boundaries: `first observation; reset=true; a new \`episode\` id; a new \`prompt\`; after terminated or truncated; ${o.episodeGapMs > 0 ? `a pause of ${o.episodeGapMs} ms or more` : 'no idle gap'}`,
      instructions: card.instructions,
      // No maxViews: the views come from the configured observation keys, not from the client.
      limits: advertisedLimits(this.#d.limits, ['maxViews']),
    };
    return { data: encodeMsgpack(metadata), kind: 'binary' };
  }

  errorFrame(err: StagewardError, _seq: number | undefined, _kind: FrameKind): { data: string; kind: FrameKind } {
    return { data: JSON.stringify(errorBody(err, undefined)), kind: 'text' };
  }

  dispose(): void {
    this.#episode.drop();
  }

  async handle(message: Decoded, ctx: MessageContext): Promise<object> {
    const obs = asMessage(message);
    const o = this.#d.openpi;
    // The pause is measured from the previous observation, whatever became of it.
    const gap = o.episodeGapMs > 0 && this.#lastAt !== undefined && ctx.receivedAt - this.#lastAt >= o.episodeGapMs;
    this.#lastAt = ctx.receivedAt;
    if (obs.prompt !== undefined && obs.prompt !== null && typeof obs.prompt !== 'string')
      throw new StagewardError('SW_ERR_TASK_UNKNOWN', '`prompt` must be a string: a task id or one of its instructions');
    const text = typeof obs.prompt === 'string' ? obs.prompt : undefined;
    const { task } = resolveTask(this.#d.engine.card, text, { promptMap: this.#d.promptMap, fallback: o.task }, 'prompt');
    // A new prompt text starts a new episode, even one that names the same task.
    const prompt = text === undefined ? `\u0000${task}` : normalizeInstruction(text);
    const reset = obs.reset ?? undefined;
    if (reset !== undefined && typeof reset !== 'boolean') throw new StagewardError('SW_ERR_PROTOCOL', '`reset` must be true or false');
    const id = parseEpisodeLabel(obs.episode);
    const episode = this.#episode;
    const fresh =
      episode.current === undefined ||
      reset === true ||
      (id !== undefined && id !== episode.label) ||
      prompt !== this.#task ||
      this.#ended ||
      gap;
    // An observation that starts an episode and fails leaves no episode running, so the next one
    // starts it again and its reply says `new_episode: true`: a boundary is never lost to an error.
    if (fresh) episode.drop();
    const frames = this.#frames(obs);
    if (fresh) {
      await episode.start(
        {
          task,
          ...(this.#filled.length > 0 ? { fill: this.#filled } : {}),
          gamma: (obs.gamma ?? o.gamma) as number,
          shaping: (obs.shaping ?? o.shaping) as ShapingMode,
          progress: (obs.progress ?? o.progress) as ProgressSource,
          tenant: this.#d.sessionId,
        },
        id,
      );
      this.#task = prompt;
      this.#ended = false;
    }
    let stepped;
    try {
      stepped = await episode.step(
        {
          frames,
          reward: obs.reward as number | undefined,
          terminated: obs.terminated as boolean | undefined,
          truncated: obs.truncated as boolean | undefined,
        },
        ctx,
      );
    } catch (err) {
      if (fresh) episode.drop();
      throw err;
    }
    const { result, fields } = stepped;
    this.#ended = result.done;
    return { ...fields, task, new_episode: fresh };
  }

  /** The configured observation keys -> the model's views. */
  #frames(obs: Record<string, unknown>): FrameSet {
    const picked: Record<string, unknown> = Object.create(null);
    for (const [key, view] of Object.entries(this.#d.openpi.views)) {
      const v = observationValue(obs, key);
      if (v === undefined || v === null) {
        throw new StagewardError('SW_ERR_VIEW_MISSING', `the observation lacks ${echo(key)} (the model's view "${view}")`);
      }
      picked[view] = v;
    }
    return parseFrames(picked, this.#d.limits, 'observation');
  }
}

/**
 * The value of an observation key: the key itself, else a path through nested maps split at `/`
 * (`images/cam_high` reads `{images: {cam_high: ...}}`, as pi0's ALOHA and LIBERO clients send).
 */
export function observationValue(obs: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(obs, key)) return obs[key];
  let node: unknown = obs;
  for (const part of key.split('/')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || node instanceof Uint8Array || node instanceof NdArray)
      return undefined;
    if (!Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
