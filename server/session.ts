// What the two WebSocket protocols share: the native one on `/v1/stream` (native-session.ts) and the
// openpi-client one on `/openpi` (openpi-session.ts). Here: the dependencies every session gets, the
// model description and limits a greeting advertises, the one episode a session runs at a time (its
// start, label, steps with their timing and metrics) and the error map. Each protocol file keeps only
// what is its own: how messages are read, when an episode starts or ends, what a reply looks like and
// which frame carries an error.

import { performance } from 'node:perf_hooks';
import { boundedMessage, StagewardError } from '../core/errors.ts';
import type { ModelCard } from '../models/card.ts';
import type { Episode, EpisodeOptions, RewardEngine, StepInput, StepResult } from '../models/engine.ts';
import type { MissingViewsPolicy, ServerLimits } from './config.ts';
import type { MessageContext } from './connection.ts';
import type { LiveSession } from './live.ts';
import { rewardFields, type StepTiming } from './messages.ts';
import type { ServerMetrics } from './metrics.ts';

/** What every session is given, whatever its protocol. */
export interface SessionContext {
  engine: RewardEngine;
  limits: ServerLimits;
  metrics: ServerMetrics;
  /** The server's id for the connection ("s1", "s2", ...), sent in the greeting; unique within a replica. */
  sessionId: string;
  /** The replica's name, sent in the greeting (ids are unique per replica, not across them). */
  replica: string;
  /** Prompt text -> task id (config `promptMap`; models/tasks.ts). */
  promptMap: Readonly<Record<string, string>>;
  /** Config `missingViews`: refuse a client without every camera, or fill what it lacks. */
  missingViews: MissingViewsPolicy;
  /** Where the session's episodes and steps are recorded for the dashboard (server/live.ts); absent: nowhere. */
  live?: LiveSession;
}

/**
 * The model as a greeting describes it. `between` holds the protocol's own task and stage fields,
 * placed after `views` (the order the replies have always had).
 */
export function describeModel(card: ModelCard, between: Record<string, unknown>): Record<string, unknown> {
  return {
    name: card.name,
    version: card.version,
    views: card.views,
    ...between,
    image: { height: card.image.height, width: card.image.width },
    fps: card.fps,
    grm: card.grm.present,
  };
}

const ADVERTISED_LIMITS = ['maxPayloadBytes', 'maxImagePixels', 'maxViews', 'maxInFlightSteps', 'idleTimeoutMs'] as const;
export type AdvertisedLimit = (typeof ADVERTISED_LIMITS)[number];

/** The server limits a greeting tells the client about, in this order, less those in `omit`. */
export function advertisedLimits(limits: ServerLimits, omit: readonly AdvertisedLimit[] = []): Partial<Record<AdvertisedLimit, number>> {
  const out: Partial<Record<AdvertisedLimit, number>> = {};
  for (const key of ADVERTISED_LIMITS) if (!omit.includes(key)) out[key] = limits[key];
  return out;
}

/** The error map both protocols send: {type: "error", seq?, code, message}. */
export function errorBody(err: StagewardError, seq: number | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = { type: 'error' };
  if (seq !== undefined) out.seq = seq;
  out.code = err.code;
  out.message = boundedMessage(err.message);
  return out;
}

/**
 * The one episode a session runs at a time and the label its replies carry: the client's label when
 * it gave one, else 0, 1, 2, ... by episodes started on this connection.
 */
export class SessionEpisode {
  readonly #d: SessionContext;
  #episode: Episode | undefined;
  #label: string | number = 0;
  #started = 0;

  constructor(deps: SessionContext) {
    this.#d = deps;
  }

  /** The running episode, if any. */
  get current(): Episode | undefined {
    return this.#episode;
  }

  /** The label of the latest episode started (0 before any). */
  get label(): string | number {
    return this.#label;
  }

  /**
   * Drop the running episode (no summary) and start a new one. If the engine refuses the options,
   * the session is left with no episode and the label and count unchanged.
   */
  async start(options: EpisodeOptions, label: string | number | undefined): Promise<Episode> {
    this.#episode = undefined;
    const episode = await this.#d.engine.start(options);
    this.#episode = episode;
    this.#label = label ?? this.#started;
    this.#started++;
    this.#d.metrics.episodes.inc();
    this.#d.live?.episodeStarted(options.task, this.#label);
    return episode;
  }

  /** Forget the running episode (ended, or the connection is gone). */
  drop(): void {
    this.#episode = undefined;
  }

  /**
   * One step of the running episode (the caller checks there is one): the engine's result, and the
   * reward fields of the reply with the step's timing, which is recorded in the metrics too.
   */
  async step(input: StepInput, ctx: MessageContext): Promise<{ result: StepResult; fields: Record<string, unknown> }> {
    const episode = this.#episode;
    if (episode === undefined) throw new StagewardError('SW_ERR_INTERNAL', 'a step reached the session with no running episode');
    const result = await episode.step(input);
    const timing: StepTiming = {
      queueMs: ctx.startedAt - ctx.receivedAt,
      inferMs: result.timing.total_ms,
      totalMs: performance.now() - ctx.receivedAt,
    };
    const { metrics } = this.#d;
    metrics.steps.inc();
    metrics.stepSeconds.observe(timing.totalMs / 1000);
    metrics.queueSeconds.observe(timing.queueMs / 1000);
    this.#d.live?.stepped(result, timing.totalMs, input.frames);
    return { result, fields: rewardFields(result, this.#label, timing) };
  }
}
