// The TypeScript client of the native protocol (`/v1/stream`; server/native-session.ts describes the
// messages, server/messages.ts their fields).
//
//   const client = await StagewardClient.connect('ws://127.0.0.1:8000', { apiKey });
//   await client.hello({ task: 'pick_place', gamma: 0.99, shaping: 'pbrs' });
//   await client.reset();
//   const r = await client.step({ front: jpeg, side: jpeg, wrist: jpeg });             // step 0: Phi(s_0)
//   const r1 = await client.step(frames, { reward: 0, terminated: false, truncated: false });
//   const summary = await client.end({ success: true });
//   await client.close();
//
// Requests may be pipelined (call step again before the last reply): the server answers every
// request exactly once and in order, so replies are matched first-in first-out, and a step's `seq`
// is checked. An error reply rejects its request with a StagewardError carrying the server's code;
// a closed connection rejects what is pending with the close reason's code (or
// SW_ERR_CONNECTION_CLOSED). Frames are JPEG/PNG bytes or raw uint8 HWC images (sent in openpi's
// numpy encoding); `format: 'json'` sends JSON text with base64 images instead (debugging).
//
// Reconnect (off unless asked: `reconnect: true`, or `{ attempts, backoffMs, maxBackoffMs, jitter }`).
// Behind a load balancer, a replica that drains on SIGTERM answers what it has received and closes
// its connections with 1001. With reconnect on, the client then opens the same URL again (the
// balancer picks a live replica), re-sends the session's hello with the same options, and hands the
// new `ready` to `onReconnect(ready)` (also `client.ready`; `client.reconnects` counts them;
// `onDisconnect(err)` hears of the lost connection as the reconnect begins):
// - only once a hello has succeeded, never after the client's own close() (which also stops a
//   reconnect under way), and only on closes that need not recur: 1001 (not an idle timeout), 1005,
//   1006 (the socket dropped), 1011, 1012, 1013, 1014. A wrong key (4401), the protocol's own
//   errors (1002, 1007-1009, an unreadable reply), a slow reader (4429), an idle timeout and a
//   normal close (1000) stay final, as today: every later call rejects with that error.
// - Requests pending at the close reject first, with the close reason's code (SW_ERR_SHUTTING_DOWN
//   on a drain) or SW_ERR_CONNECTION_CLOSED; they are never re-sent.
// - An episode's state lives on the server and is gone with the connection. If one was open (reset()
//   called, end() not answered), step() and end() reject with SW_ERR_EPISODE_LOST until reset()
//   starts a new episode: a step never continues the old episode, nor starts a new one, silently.
// - A call made while reconnecting waits for it and is sent on the new connection, in call order;
//   so does a call made after a reply said SW_ERR_SHUTTING_DOWN (the replica drains and closes next),
//   which also loses the open episode: nothing more goes to a replica that is leaving.
// - Each attempt (open + hello) waits backoffMs * 2^i first, at most maxBackoffMs, less a random
//   fraction of up to `jitter` (robots of one replica do not all come back at once); defaults 5
//   attempts, 100 ms, 2000 ms, 0.2 (about 3 s in all). An attempt refused for good (HTTP 4xx other
//   than 408/429, SW_ERR_AUTH or any other refusal of the hello but SW_ERR_TOO_MANY_SESSIONS,
//   SW_ERR_SHUTTING_DOWN, SW_ERR_BUSY, SW_ERR_INTERNAL, SW_ERR_INFERENCE) ends the reconnect; when
//   it ends without a connection, waiting and later calls reject with the last attempt's error.
// It is off by default because a reconnect changes what the rewards come from: the new replica may
// serve another model version (a rolling deploy), and one training run would then mix two reward
// functions. Turn it on where that is acceptable, and compare `ready.model` in onReconnect.

import WebSocket from 'ws';
import { ERROR_CODES, StagewardError, type ErrorCode } from '../core/errors.ts';
import type { ImageInput } from '../models/preprocess.ts';
import type { RawImage } from '../core/image.ts';
import type { ShapingMode } from '../models/shaping.ts';
import type { ProgressSource } from '../models/engine.ts';
import { PROTOCOL_VERSION } from './messages.ts';
import { decodeMsgpack, encodeMsgpack } from './msgpack.ts';
import { ndarrayMap, numpyMapHook } from './ndarray.ts';

export interface ClientOptions {
  apiKey?: string;
  /** Send the key in hello instead of the Authorization header. */
  apiKeyIn?: 'header' | 'hello';
  format?: 'msgpack' | 'json';
  /** Give up opening the connection after this long (ms). Default 10000. */
  connectTimeoutMs?: number;
  /** Largest reply accepted (bytes). Default 16 MiB. */
  maxPayloadBytes?: number;
  /** Reconnect after a lost connection (see the header). Default false; `true` takes the defaults. */
  reconnect?: ReconnectOptions | boolean;
  /** Called with the new `ready` after each reconnect, before waiting calls are sent; what it throws is ignored. */
  onReconnect?: (ready: ReadyReply) => void;
  /** Called with the close's error when a lost connection starts a reconnect (after pending requests reject); what it throws is ignored. */
  onDisconnect?: (err: StagewardError) => void;
}

export interface ReconnectOptions {
  /** Tries (open + hello) per lost connection. Default 5. */
  attempts?: number;
  /** Wait before the first try (ms), doubled for each next one. Default 100. */
  backoffMs?: number;
  /** Longest wait before a try (ms). Default 2000. */
  maxBackoffMs?: number;
  /** Each wait is shortened by a random fraction of up to this, in [0, 1]. Default 0.2. */
  jitter?: number;
}

export const RECONNECT_DEFAULTS: Readonly<Required<ReconnectOptions>> = { attempts: 5, backoffMs: 100, maxBackoffMs: 2000, jitter: 0.2 };

export interface HelloOptions {
  task: string;
  gamma: number;
  shaping?: ShapingMode;
  views?: string[];
  progress?: ProgressSource;
  model?: string;
  fps?: number;
  scale?: number;
  composition?: 'argmax' | 'expected';
}

export interface ReadyReply {
  type: 'ready';
  session: string;
  /** The replica that answered (its `--replica`, else `<hostname>-<pid>`); `session` is unique within it. */
  replica: string;
  protocol: number;
  /** The task the hello's `task` named (an id, an instruction or alias, a prompt-map key, or the only task), and how. */
  task: string;
  task_match: 'id' | 'instruction' | 'prompt_map';
  model: {
    name: string;
    version: string;
    views: string[];
    stages: string[];
    image: { height: number; width: number };
    fps: number;
    grm: boolean;
  };
  limits: Record<string, number>;
}
export interface EpisodeReply {
  type: 'episode';
  episode: string | number;
}
export interface RewardReply {
  type: 'reward';
  seq: number;
  episode: string | number;
  step: number;
  progress: number;
  stage: { index: number; name: string; probs: number[] };
  tau: number;
  hop?: number;
  heads: { sarm: number; grm?: number };
  /** The SARM head's std of progress (an ensemble package); null when the model has none. */
  uncertainty: number | null;
  reward: number;
  shaped: number;
  done: boolean;
  timing: { queue_ms: number; infer_ms: number; total_ms: number };
}
export interface SummaryReply {
  type: 'summary';
  episode: string | number;
  steps: number;
  final_progress: number;
  max_progress: number;
  shaped_return: number;
  env_return: number;
  terminated: boolean;
  truncated: boolean;
  success?: boolean;
}

export interface StepOptions {
  reward?: number;
  terminated?: boolean;
  truncated?: boolean;
}

interface Pending {
  seq: number | undefined;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

/** A request made while reconnecting: sent, in order, once the new connection has its ready. */
interface Waiting {
  msg: Record<string, unknown>;
  seq: number | undefined;
  resolve: (v: any) => void;
  reject: (e: unknown) => void;
}

function isCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_CODES, s);
}

/** `ws://host:port` (no path) means the native endpoint. */
export function streamUrl(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    throw new StagewardError('SW_ERR_CONNECT', `expected a ws:// or wss:// URL, got ${url}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/v1/stream';
  return u.toString();
}

/** Close codes after which a reconnect may succeed (going away, dropped, server fault, restart, try later). */
const RECONNECT_CLOSE_CODES: ReadonlySet<number> = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);
/** Refusals of a re-sent hello that another try (or replica) may not repeat. */
const RETRY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SW_ERR_TOO_MANY_SESSIONS',
  'SW_ERR_SHUTTING_DOWN',
  'SW_ERR_BUSY',
  'SW_ERR_INTERNAL',
  'SW_ERR_INFERENCE',
]);
/** Whether a close or connect error is worth another try (errors made here); others go by RETRY_CODES. */
const retryable = new WeakMap<StagewardError, boolean>();
function mayRetry(err: StagewardError): boolean {
  return retryable.get(err) ?? RETRY_CODES.has(err.code);
}

function closeError(code: number, reason: Buffer): StagewardError {
  const text = reason.toString('utf8');
  const m = /^(SW_ERR_[A-Z_]+): ?(.*)$/s.exec(text);
  const err =
    m && isCode(m[1]!)
      ? new StagewardError(m[1]!, `${m[2]} (connection closed ${code})`)
      : new StagewardError('SW_ERR_CONNECTION_CLOSED', `connection closed (${code}${text ? ` ${text}` : ''})`);
  retryable.set(err, RECONNECT_CLOSE_CODES.has(code) && err.code !== 'SW_ERR_IDLE_TIMEOUT');
  return err;
}

function openSocket(target: string, opts: ClientOptions): WebSocket {
  const headers: Record<string, string> = {};
  if (opts.apiKey !== undefined && (opts.apiKeyIn ?? 'header') === 'header') headers.authorization = `Api-Key ${opts.apiKey}`;
  return new WebSocket(target, {
    headers,
    perMessageDeflate: false,
    maxPayload: opts.maxPayloadBytes ?? 16 * 1024 * 1024,
    handshakeTimeout: opts.connectTimeoutMs ?? 10_000,
  });
}

/** Resolves once the socket is open; rejects with SW_ERR_CONNECT (retryable unless an HTTP 4xx other than 408/429). */
function whenOpen(ws: WebSocket, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 0;
      const err = new StagewardError('SW_ERR_CONNECT', `could not open ${target}: HTTP ${status}`);
      retryable.set(err, status >= 500 || status === 408 || status === 429);
      reject(err);
      ws.terminate();
    });
    ws.once('error', (e) => {
      const err = new StagewardError('SW_ERR_CONNECT', `could not open ${target}: ${e.message}`);
      retryable.set(err, true);
      reject(err);
    });
  });
}

function reconnectSettings(r: ClientOptions['reconnect']): Required<ReconnectOptions> | undefined {
  if (r === undefined || r === false) return undefined;
  const o: ReconnectOptions = r === true ? {} : r;
  const d = RECONNECT_DEFAULTS;
  const s = {
    attempts: o.attempts ?? d.attempts,
    backoffMs: o.backoffMs ?? d.backoffMs,
    maxBackoffMs: o.maxBackoffMs ?? d.maxBackoffMs,
    jitter: o.jitter ?? d.jitter,
  };
  const within = (v: unknown, lo: number, hi: number) => typeof v === 'number' && v >= lo && v <= hi;
  if (
    !Number.isInteger(s.attempts) ||
    s.attempts < 0 ||
    !within(s.backoffMs, 0, Infinity) ||
    !within(s.maxBackoffMs, 0, Infinity) ||
    !within(s.jitter, 0, 1)
  ) {
    throw new RangeError(
      `reconnect: expected attempts an integer >= 0, backoffMs and maxBackoffMs >= 0, jitter in [0, 1]; got ${JSON.stringify(r)}`,
    );
  }
  return s;
}

export class StagewardClient {
  readonly url: string;
  /** The current socket: replaced by each reconnect attempt. */
  #ws: WebSocket;
  readonly #opts: ClientOptions;
  readonly #reconnect: Required<ReconnectOptions> | undefined;
  readonly #pending: Pending[] = [];
  readonly #waiting: Waiting[] = [];
  #seq = 0;
  #t = 0;
  /** Final: every request rejects with it (a close not reconnected, a failed reconnect, close()). */
  #failure: StagewardError | undefined;
  /** This connection's unsolicited error (the server is about to close it): requests reject with it. */
  #closing: StagewardError | undefined;
  #closed!: Promise<void>;
  /** The hello that succeeded, re-sent on each reconnect. */
  #hello: Record<string, unknown> | undefined;
  #ready: ReadyReply | undefined;
  /** open: reset() called and end() not answered; lost: it was open when the connection closed. */
  #episode: 'none' | 'open' | 'lost' = 'none';
  #reconnecting = false;
  /** A reply said SW_ERR_SHUTTING_DOWN: the replica drains, so new calls wait for the next connection. */
  #leaving = false;
  #reconnectLoop: Promise<void> | undefined;
  #reconnects = 0;
  #userClosed = false;
  /** Ends the reconnect's backoff wait early (close()). */
  #wake: (() => void) | undefined;

  private constructor(url: string, ws: WebSocket, opts: ClientOptions, reconnect: Required<ReconnectOptions> | undefined) {
    this.url = url;
    this.#opts = opts;
    this.#reconnect = reconnect;
    this.#ws = ws;
    this.#attach(ws);
  }

  /** Open the connection (a bad URL or reconnect setting throws at once). */
  static connect(url: string, opts: ClientOptions = {}): Promise<StagewardClient> {
    const target = streamUrl(url);
    const reconnect = reconnectSettings(opts.reconnect);
    const ws = openSocket(target, opts);
    const client = new StagewardClient(target, ws, opts, reconnect);
    return whenOpen(ws, target).then(() => client);
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#pending.length;
  }

  /** The `ready` of the latest successful hello (the one re-sent on the last reconnect, if any). */
  get ready(): ReadyReply | undefined {
    return this.#ready;
  }

  /** Reconnects that succeeded. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** A reconnect is under way: calls wait for it. */
  get reconnecting(): boolean {
    return this.#reconnecting;
  }

  hello(o: HelloOptions): Promise<ReadyReply> {
    const msg: Record<string, unknown> = {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      task: o.task,
      gamma: o.gamma,
      shaping: o.shaping ?? 'pbrs',
    };
    for (const key of ['views', 'progress', 'model', 'fps', 'scale', 'composition'] as const) if (o[key] !== undefined) msg[key] = o[key];
    if (this.#opts.apiKey !== undefined && this.#opts.apiKeyIn === 'hello') msg.api_key = this.#opts.apiKey;
    return this.#request<ReadyReply>(msg, undefined).then((ready) => {
      this.#hello = msg;
      this.#ready = ready;
      return ready;
    });
  }

  /** Start an episode (goal frames feed GRM's backward-anchored view); the next step is t = 0. */
  reset(goal?: Record<string, ImageInput>, opts: { episode?: string | number } = {}): Promise<EpisodeReply> {
    const msg: Record<string, unknown> = { type: 'reset' };
    if (opts.episode !== undefined) msg.episode = opts.episode;
    if (goal !== undefined) msg.goal = this.#frames(goal);
    this.#t = 0;
    this.#episode = 'open';
    return this.#request(msg, undefined);
  }

  step(frames: Record<string, ImageInput>, o: StepOptions = {}): Promise<RewardReply> {
    const lost = this.#lost();
    if (lost) return Promise.reject(lost);
    const seq = this.#seq++;
    const msg: Record<string, unknown> = { type: 'step', seq, t: this.#t++, frames: this.#frames(frames) };
    if (o.reward !== undefined) msg.reward = o.reward;
    if (o.terminated !== undefined) msg.terminated = o.terminated;
    if (o.truncated !== undefined) msg.truncated = o.truncated;
    return this.#request(msg, seq);
  }

  end(o: { terminated?: boolean; truncated?: boolean; success?: boolean } = {}): Promise<SummaryReply> {
    const lost = this.#lost();
    if (lost) return Promise.reject(lost);
    return this.#request<SummaryReply>({ type: 'end', ...o }, undefined).then((summary) => {
      if (this.#episode === 'open') this.#episode = 'none';
      return summary;
    });
  }

  /** Send any message as it is (tests, debugging); resolves to the raw reply. */
  raw(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#request(msg, typeof msg.seq === 'number' ? msg.seq : undefined);
  }

  /** Close the connection and stop any reconnect; every later call rejects. */
  async close(): Promise<void> {
    this.#userClosed = true;
    this.#wake?.();
    const ws = this.#ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
    await this.#closed;
    await this.#reconnectLoop;
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    this.#closing = undefined;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (ws === this.#ws) this.#dispatch(data, isBinary);
    });
    this.#closed = new Promise<void>((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        if (ws === this.#ws) this.#onClose(closeError(code, reason));
        resolve();
      });
    });
    ws.on('error', () => {}); // 'close' follows and carries the reason
  }

  #lost(): StagewardError | undefined {
    if (this.#failure) return this.#failure;
    if (this.#episode !== 'lost') return undefined;
    return new StagewardError(
      'SW_ERR_EPISODE_LOST',
      "the connection closed mid-episode; the episode's state was lost with it; call reset() to start a new episode",
    );
  }

  #frames(frames: Record<string, ImageInput>): Record<string, unknown> {
    const json = this.#opts.format === 'json';
    const out: Record<string, unknown> = {};
    for (const [view, img] of Object.entries(frames)) {
      if (img instanceof Uint8Array) out[view] = json ? Buffer.from(img.buffer, img.byteOffset, img.byteLength).toString('base64') : img;
      else out[view] = rawImage(img, json);
    }
    return out;
  }

  #request<T>(msg: Record<string, unknown>, seq: number | undefined): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#reconnecting || this.#leaving) return new Promise<T>((resolve, reject) => this.#waiting.push({ msg, seq, resolve, reject }));
    return this.#send(msg, seq);
  }

  /** Send on the current socket now (the reconnect's hello goes this way, past the waiting calls). */
  #send<T>(msg: Record<string, unknown>, seq: number | undefined): Promise<T> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(this.#closing);
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ seq, resolve, reject });
      const data = this.#opts.format === 'json' ? JSON.stringify(msg) : encodeMsgpack(msg);
      this.#ws.send(data, { binary: this.#opts.format !== 'json' });
    });
  }

  #dispatch(data: Buffer, isBinary: boolean): void {
    let msg: Record<string, unknown>;
    try {
      msg = (
        isBinary
          ? decodeMsgpack(data, { maxNestingDepth: 64, maxElements: 1 << 20, mapHook: numpyMapHook })
          : JSON.parse(data.toString('utf8'))
      ) as Record<string, unknown>;
      if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') throw new Error('not a message');
    } catch {
      this.#fail(new StagewardError('SW_ERR_PROTOCOL', 'the server sent a reply this client cannot read'));
      this.#ws.close(1002);
      return;
    }
    const next = this.#pending.shift();
    const err = msg.type === 'error' ? errorOf(msg) : undefined;
    if (next === undefined) {
      // Not an answer to a request: the server is about to close (idle timeout, shutdown, a refusal).
      if (err) this.#closing ??= err;
      return;
    }
    if (next.seq !== undefined && msg.seq !== undefined && msg.seq !== next.seq) {
      next.reject(new StagewardError('SW_ERR_PROTOCOL', `reply for seq ${String(msg.seq)} arrived where seq ${next.seq} was next`));
      return;
    }
    if (err?.code === 'SW_ERR_SHUTTING_DOWN') this.#replicaLeaving();
    if (err) next.reject(err);
    else next.resolve(msg);
  }

  /**
   * The replica is draining (it answered SW_ERR_SHUTTING_DOWN) and will close with 1001. With
   * reconnect on, nothing more is sent on this connection: the open episode is lost, and new calls
   * wait for the reconnect, so none of them meets the close frame unanswered.
   */
  #replicaLeaving(): void {
    if (this.#reconnect === undefined || this.#hello === undefined || this.#reconnecting || this.#userClosed) return;
    this.#leaving = true;
    if (this.#episode === 'open') this.#episode = 'lost';
  }

  /** Final failure: this request and every later one reject with it; no reconnect. */
  #fail(err: StagewardError): void {
    this.#failure ??= err;
    for (const p of this.#pending.splice(0)) p.reject(this.#failure);
    for (const w of this.#waiting.splice(0)) w.reject(this.#failure);
  }

  #onClose(closeErr: StagewardError): void {
    const err = this.#closing ?? closeErr;
    if (this.#closing) retryable.set(err, mayRetry(closeErr) && mayRetry(err));
    for (const p of this.#pending.splice(0)) p.reject(this.#failure ?? err);
    if (this.#reconnecting) return; // an attempt's socket: the attempt sees its hello fail
    // Leaving, the episode was marked lost already; one opened since waits for the next connection.
    const wasLeaving = this.#leaving;
    this.#leaving = false;
    if (this.#failure) return;
    if (this.#reconnect === undefined || this.#hello === undefined || this.#userClosed || !mayRetry(err)) {
      this.#fail(err);
      return;
    }
    if (this.#episode === 'open' && !wasLeaving) this.#episode = 'lost';
    this.#reconnecting = true;
    try {
      this.#opts.onDisconnect?.(err);
    } catch {
      // the hook's own failure is not the connection's
    }
    const loop = this.#reconnectAll(this.#reconnect, err);
    this.#reconnectLoop = loop;
    void loop.finally(() => {
      if (this.#reconnectLoop === loop) this.#reconnectLoop = undefined;
    });
  }

  /** Tries until one opens a socket and gets a ready; never rejects (failure ends in #fail). */
  async #reconnectAll(r: Required<ReconnectOptions>, cause: StagewardError): Promise<void> {
    let last = cause;
    for (let i = 0; i < r.attempts && !this.#userClosed; i++) {
      await this.#sleep(Math.min(r.maxBackoffMs, r.backoffMs * 2 ** i) * (1 - r.jitter * Math.random()));
      if (this.#userClosed) break;
      const result = await this.#attempt();
      if ('ready' in result) {
        this.#ready = result.ready;
        this.#reconnects++;
        try {
          this.#opts.onReconnect?.(result.ready);
        } catch {
          // a logging callback must not undo the reconnect
        }
        this.#reconnecting = false;
        for (const w of this.#waiting.splice(0)) this.#send(w.msg, w.seq).then(w.resolve, w.reject);
        return;
      }
      last = result.error;
      if (!mayRetry(last)) break;
    }
    this.#reconnecting = false;
    this.#fail(this.#userClosed ? new StagewardError('SW_ERR_CONNECTION_CLOSED', 'the client was closed') : last);
  }

  /** One try: open the URL, re-send the hello; an unanswered hello is cut after connectTimeoutMs. */
  async #attempt(): Promise<{ ready: ReadyReply } | { error: StagewardError }> {
    const ws = openSocket(this.url, this.#opts);
    this.#attach(ws);
    let timer: NodeJS.Timeout | undefined;
    try {
      await whenOpen(ws, this.url);
      if (this.#userClosed) throw new StagewardError('SW_ERR_CONNECTION_CLOSED', 'the client was closed');
      timer = setTimeout(() => ws.terminate(), this.#opts.connectTimeoutMs ?? 10_000);
      return { ready: await this.#send<ReadyReply>(this.#hello!, undefined) };
    } catch (err) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
      return { error: err instanceof StagewardError ? err : new StagewardError('SW_ERR_CONNECT', String(err)) };
    } finally {
      clearTimeout(timer);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}

function errorOf(msg: Record<string, unknown>): StagewardError {
  const code = String(msg.code);
  const e = new StagewardError(isCode(code) ? code : 'SW_ERR_PROTOCOL', String(msg.message ?? ''));
  if (!isCode(code)) e.message = `${code}: ${e.message}`;
  return e;
}

function rawImage(img: RawImage, json: boolean): unknown {
  const shape = [img.height, img.width, img.channels];
  if (!json) return ndarrayMap('|u1', shape, img.data);
  return {
    __ndarray__: true,
    data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength).toString('base64'),
    dtype: '|u1',
    shape,
  };
}
