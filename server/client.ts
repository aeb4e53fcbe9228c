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
}

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
  protocol: number;
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

export class StagewardClient {
  readonly url: string;
  readonly #ws: WebSocket;
  readonly #opts: ClientOptions;
  readonly #pending: Pending[] = [];
  #seq = 0;
  #t = 0;
  #failure: StagewardError | undefined;
  #closed: Promise<void>;

  private constructor(url: string, ws: WebSocket, opts: ClientOptions) {
    this.url = url;
    this.#ws = ws;
    this.#opts = opts;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#dispatch(data, isBinary));
    this.#closed = new Promise<void>((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        const text = reason.toString('utf8');
        const m = /^(SW_ERR_[A-Z_]+): ?(.*)$/s.exec(text);
        const err =
          m && isCode(m[1]!)
            ? new StagewardError(m[1]!, `${m[2]} (connection closed ${code})`)
            : new StagewardError('SW_ERR_CONNECTION_CLOSED', `connection closed (${code}${text ? ` ${text}` : ''})`);
        this.#fail(err);
        resolve();
      });
    });
    ws.on('error', () => {}); // 'close' follows and carries the reason
  }

  static connect(url: string, opts: ClientOptions = {}): Promise<StagewardClient> {
    const target = streamUrl(url);
    const headers: Record<string, string> = {};
    if (opts.apiKey !== undefined && (opts.apiKeyIn ?? 'header') === 'header') headers.authorization = `Api-Key ${opts.apiKey}`;
    const ws = new WebSocket(target, {
      headers,
      perMessageDeflate: false,
      maxPayload: opts.maxPayloadBytes ?? 16 * 1024 * 1024,
      handshakeTimeout: opts.connectTimeoutMs ?? 10_000,
    });
    return new Promise((resolve, reject) => {
      const client = new StagewardClient(target, ws, opts);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        reject(new StagewardError('SW_ERR_CONNECT', `could not open ${target}: HTTP ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('error', (err) => reject(new StagewardError('SW_ERR_CONNECT', `could not open ${target}: ${err.message}`)));
    });
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.#pending.length;
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
    return this.#request(msg, undefined);
  }

  /** Start an episode (goal frames feed GRM's backward-anchored view); the next step is t = 0. */
  reset(goal?: Record<string, ImageInput>, opts: { episode?: string | number } = {}): Promise<EpisodeReply> {
    const msg: Record<string, unknown> = { type: 'reset' };
    if (opts.episode !== undefined) msg.episode = opts.episode;
    if (goal !== undefined) msg.goal = this.#frames(goal);
    this.#t = 0;
    return this.#request(msg, undefined);
  }

  step(frames: Record<string, ImageInput>, o: StepOptions = {}): Promise<RewardReply> {
    const seq = this.#seq++;
    const msg: Record<string, unknown> = { type: 'step', seq, t: this.#t++, frames: this.#frames(frames) };
    if (o.reward !== undefined) msg.reward = o.reward;
    if (o.terminated !== undefined) msg.terminated = o.terminated;
    if (o.truncated !== undefined) msg.truncated = o.truncated;
    return this.#request(msg, seq);
  }

  end(o: { terminated?: boolean; truncated?: boolean; success?: boolean } = {}): Promise<SummaryReply> {
    return this.#request({ type: 'end', ...o }, undefined);
  }

  /** Send any message as it is (tests, debugging); resolves to the raw reply. */
  raw(msg: Record<string, unknown>): Promise<Record<string, unknown>> {
    return this.#request(msg, typeof msg.seq === 'number' ? msg.seq : undefined);
  }

  async close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING) this.#ws.close(1000);
    await this.#closed;
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
      // Not an answer to a request: the server is about to close (idle timeout, shutdown).
      if (err) this.#failure ??= err;
      return;
    }
    if (next.seq !== undefined && msg.seq !== undefined && msg.seq !== next.seq) {
      next.reject(new StagewardError('SW_ERR_PROTOCOL', `reply for seq ${String(msg.seq)} arrived where seq ${next.seq} was next`));
      return;
    }
    if (err) next.reject(err);
    else next.resolve(msg);
  }

  #fail(err: StagewardError): void {
    this.#failure ??= err;
    for (const p of this.#pending.splice(0)) p.reject(this.#failure);
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
