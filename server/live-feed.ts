// The dashboard's live feed: WebSocket `/v1/live`, JSON text frames (server/LIVE.md). A viewer
// subscribes (with `api_key` when keys are configured and its upgrade carried none), names the
// session it watches, and from then on gets one `tick` every `tickMs` (every session's summary, the
// server's figures, the watched session's new points) and the watched session's thumbnails at most
// `thumbnailHz` times a second.
//
// What it costs the robots: sessions only append to the hub (live.ts); the feed runs on its own
// timer, builds each tick once for all viewers, makes a session's thumbnails once per frame set
// whoever watches, and only while someone does. A viewer that does not read (more than
// `maxViewerBufferBytes` unsent) gets nothing until it catches up, so a slow viewer holds at most
// that much memory; the points it missed come in the next tick it can take (they are kept by the hub).

import type { WebSocket } from 'ws';
import { StagewardError, boundedMessage } from '../core/errors.ts';
import type { ModelCard } from '../models/card.ts';
import type { FrameSet } from '../models/preprocess.ts';
import type { ExecutionProvider } from '../models/runtime.ts';
import { thumbnailJpeg } from '../core/image.ts';
import type { ApiKeys } from './auth.ts';
import type { DashboardConfig } from './config.ts';
import { modelInfo } from './http.ts';
import { POINT_FIELDS, type LiveEpisode, type LiveHub, type LiveSession } from './live.ts';
import type { ServerMetrics } from './metrics.ts';

/** Largest message a viewer may send. */
const MAX_VIEWER_MESSAGE = 4096;
/** A viewer without a key in its upgrade must subscribe with one within this. */
const AUTH_TIMEOUT_MS = 10_000;
const THUMBNAIL_QUALITY = 60;

export interface LiveFeedOptions {
  hub: LiveHub;
  keys: ApiKeys;
  card: ModelCard;
  providers: Record<string, ExecutionProvider>;
  metrics: ServerMetrics;
  config: DashboardConfig;
  log: (line: string) => void;
}

interface Watch {
  session: LiveSession;
  release: () => void;
  /** Sequence number of the last point sent. */
  sentSeq: number;
  thumbnails: boolean;
  /** The session's framesVersion of the last thumbnails sent. */
  thumbVersion: number;
  thumbAt: number;
  thumbBusy: boolean;
}

interface Viewer {
  ws: WebSocket;
  authed: boolean;
  subscribed: boolean;
  watch: Watch | undefined;
  authTimer: NodeJS.Timeout | undefined;
}

export class LiveFeed {
  readonly #o: LiveFeedOptions;
  readonly #viewers = new Set<Viewer>();
  /** Per session: the thumbnails of one frame set, made once for every viewer. */
  readonly #thumbs = new WeakMap<LiveSession, { version: number; made: Promise<Record<string, string> | undefined> }>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: LiveFeedOptions) {
    this.#o = o;
  }

  get viewers(): number {
    return this.#viewers.size;
  }

  /** A WebSocket upgraded on `/v1/live`; `auth` is what its Authorization header said. */
  accept(ws: WebSocket, auth: 'none' | 'valid' | 'invalid'): void {
    const { keys, config } = this.#o;
    if (this.#closed) return refuse(ws, new StagewardError('SW_ERR_SHUTTING_DOWN', 'the server is shutting down'));
    if (this.#viewers.size >= config.maxViewers)
      return refuse(
        ws,
        new StagewardError('SW_ERR_TOO_MANY_SESSIONS', `the dashboard already has dashboard.maxViewers (${config.maxViewers}) viewers`),
      );
    if (auth === 'invalid') return refuse(ws, new StagewardError('SW_ERR_AUTH', 'the API key in the Authorization header is not valid'));
    const v: Viewer = { ws, authed: !keys.required || auth === 'valid', subscribed: false, watch: undefined, authTimer: undefined };
    if (!v.authed) {
      v.authTimer = setTimeout(
        () => this.#fail(v, new StagewardError('SW_ERR_AUTH', 'an API key is required: subscribe with `api_key`')),
        AUTH_TIMEOUT_MS,
      );
      v.authTimer.unref();
    }
    this.#viewers.add(v);
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#message(v, data, isBinary));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.#gone(v));
  }

  #message(v: Viewer, data: Buffer, isBinary: boolean): void {
    if (isBinary || data.length > MAX_VIEWER_MESSAGE)
      return this.#fail(v, new StagewardError('SW_ERR_PROTOCOL', `viewer messages are JSON text of at most ${MAX_VIEWER_MESSAGE} bytes`));
    let m: unknown;
    try {
      m = JSON.parse(data.toString('utf8'));
    } catch {
      return this.#fail(v, new StagewardError('SW_ERR_PROTOCOL', 'a viewer message is not valid JSON'));
    }
    const sub = parseSubscribe(m);
    if (typeof sub === 'string') return this.#fail(v, new StagewardError('SW_ERR_PROTOCOL', sub));
    if (!v.authed) {
      if (!this.#o.keys.check(sub.apiKey))
        return this.#fail(
          v,
          new StagewardError(
            'SW_ERR_AUTH',
            sub.apiKey === undefined ? 'an API key is required: subscribe with `api_key`' : 'the API key is not valid',
          ),
        );
      v.authed = true;
      clearTimeout(v.authTimer);
    }
    v.watch?.release();
    v.watch = undefined;
    const session = sub.session === null ? undefined : this.#o.hub.get(sub.session);
    if (sub.session !== null && session === undefined) {
      send(v, { type: 'error', code: 'SW_ERR_NO_SESSION', message: `no session ${JSON.stringify(sub.session.slice(0, 64))}` });
    }
    if (session !== undefined)
      v.watch = {
        session,
        release: session.watch(),
        sentSeq: session.seq,
        thumbnails: sub.thumbnails,
        thumbVersion: -1,
        thumbAt: 0,
        thumbBusy: false,
      };
    v.subscribed = true;
    const { hub, card, providers } = this.#o;
    send(v, {
      type: 'snapshot',
      fields: POINT_FIELDS,
      model: modelInfo(card, providers),
      server: hub.serverView(),
      sessions: hub.sessions().map((s) => s.summary()),
      watch: session === undefined ? null : { session: session.id, episodes: session.episodes.map((e) => episodePayload(e, 0, hub)) },
    });
    this.#arm();
  }

  /** The tick timer runs while someone is subscribed. */
  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#tick(), this.#o.config.tickMs);
    this.#timer.unref();
  }

  #tick(): void {
    const subscribed = [...this.#viewers].filter((v) => v.subscribed);
    if (subscribed.length === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const { hub, config } = this.#o;
    const server = hub.serverView();
    const sessions = hub.sessions().map((s) => s.summary());
    const now = performance.now();
    for (const v of subscribed) {
      if (v.ws.bufferedAmount > config.maxViewerBufferBytes) continue;
      const w = v.watch;
      let watch: object | null = null;
      if (w !== undefined) {
        const episodes = w.session.episodes.filter((e) => e.seqs.length > 0 && e.seqs.at(-1)! > w.sentSeq);
        watch = {
          session: w.session.id,
          kept: w.session.episodes.map((e) => e.ordinal),
          episodes: episodes.map((e) => episodePayload(e, w.sentSeq, hub)),
        };
        w.sentSeq = w.session.seq;
        if (w.thumbnails && !w.thumbBusy && w.session.frames !== undefined && w.session.framesVersion !== w.thumbVersion)
          if (now - w.thumbAt >= 1000 / config.thumbnailHz) this.#sendThumbnails(v, w, now);
      }
      send(v, { type: 'tick', server, sessions, watch });
    }
  }

  #sendThumbnails(v: Viewer, w: Watch, now: number): void {
    const s = w.session;
    const held = s.frames!;
    const version = s.framesVersion;
    let cached = this.#thumbs.get(s);
    if (cached === undefined || cached.version !== version) {
      cached = { version, made: this.#makeThumbnails(held.frames) };
      this.#thumbs.set(s, cached);
    }
    w.thumbBusy = true;
    w.thumbAt = now;
    w.thumbVersion = version;
    void cached.made.then((views) => {
      w.thumbBusy = false;
      if (views === undefined || v.watch !== w) return;
      send(v, { type: 'thumbnail', session: s.id, episode: held.ordinal, step: held.step, mime: 'image/jpeg', views });
    });
  }

  /** Small JPEGs (base64) of one frame set; undefined when one cannot be made. */
  async #makeThumbnails(frames: FrameSet): Promise<Record<string, string> | undefined> {
    try {
      const out: Record<string, string> = {};
      for (const [view, img] of Object.entries(frames))
        out[view] = (await thumbnailJpeg(img, this.#o.config.thumbnailWidth, THUMBNAIL_QUALITY)).toString('base64');
      return out;
    } catch (err) {
      this.#o.log(`stageward: dashboard thumbnail failed: ${(err as Error).message}`);
      return undefined;
    }
  }

  #fail(v: Viewer, err: StagewardError): void {
    this.#o.metrics.errors.inc({ code: err.code });
    refuse(v.ws, err);
    this.#gone(v);
  }

  #gone(v: Viewer): void {
    if (!this.#viewers.delete(v)) return;
    clearTimeout(v.authTimer);
    v.watch?.release();
    v.watch = undefined;
  }

  /** Shutdown: every viewer closes with 1001 and no new one is taken. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
    for (const v of [...this.#viewers]) {
      this.#gone(v);
      v.ws.close(1001, 'server shutting down');
    }
  }
}

function episodePayload(e: LiveEpisode, since: number, hub: LiveHub): object {
  let from = e.seqs.length;
  while (from > 0 && e.seqs[from - 1]! > since) from--;
  return { ordinal: e.ordinal, episode: e.label, task: e.task, stages: hub.stageNames(e.task) ?? [], points: e.points.slice(from) };
}

function send(v: Viewer, body: object): void {
  if (v.ws.readyState === v.ws.OPEN) v.ws.send(JSON.stringify(body));
}

/** Send the error and close with its code (1008 when it has none). */
function refuse(ws: WebSocket, err: StagewardError): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(JSON.stringify({ type: 'error', code: err.code, message: boundedMessage(err.message) }));
  ws.close(err.closeCode ?? 1008, err.code);
}

interface Subscribe {
  apiKey: string | undefined;
  session: string | null;
  thumbnails: boolean;
}

/** A subscribe message, or what is wrong with it. */
export function parseSubscribe(m: unknown): Subscribe | string {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return 'a viewer message must be a JSON object';
  const o = m as Record<string, unknown>;
  if (o.type !== 'subscribe') return 'the only viewer message is {"type": "subscribe", ...}';
  for (const k of Object.keys(o))
    if (!['type', 'api_key', 'session', 'thumbnails'].includes(k)) return `subscribe has no field ${JSON.stringify(k.slice(0, 64))}`;
  if (o.api_key !== undefined && typeof o.api_key !== 'string') return '`api_key` must be a string';
  if (o.session !== undefined && o.session !== null && (typeof o.session !== 'string' || o.session.length > 128))
    return '`session` must be a session id (a string) or null';
  if (o.thumbnails !== undefined && typeof o.thumbnails !== 'boolean') return '`thumbnails` must be true or false';
  return {
    apiKey: o.api_key as string | undefined,
    session: (o.session as string | null | undefined) ?? null,
    thumbnails: o.thumbnails !== false,
  };
}
