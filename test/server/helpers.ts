// Shared helpers of the server tests: a deterministic fake ProgressModel that counts its calls, a
// server on 127.0.0.1 (any free port) around the fixture or a fake model, a raw WebSocket peer that
// queues what it receives, and test images.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import WebSocket from 'ws';
import { parseCard, type ModelCard } from '../../models/card.ts';
import { StagewardError } from '../../core/errors.ts';
import type { GrmBatch, ProgressModel, SarmBatch, SarmOutput } from '../../models/package.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { loadConfig, type ServerConfig } from '../../server/config.ts';
import { decodeMsgpack, encodeMsgpack } from '../../server/msgpack.ts';
import { numpyMapHook } from '../../server/ndarray.ts';
import { StagewardServer } from '../../server/server.ts';
import { FIXTURE_MODEL_DIR } from '../helpers.ts';

export const FIXTURE_CARD: ModelCard = parseCard(JSON.parse(readFileSync(join(FIXTURE_MODEL_DIR, 'model.json'), 'utf8')));
export const VIEWS = ['front', 'side', 'wrist'] as const;
export const KEY = 'test-key-0123456789abcdef';

export interface FakeCall {
  graph: 'encoder' | 'sarm' | 'grm';
  rows: number;
}

/**
 * A ProgressModel with the fixture's card whose outputs are simple functions of its inputs, row by
 * row (so merged and split batches can be checked), that records every call. With `uncertainty`
 * it plays an ensemble package: SARM also returns an uncertainty per window, in [0, 0.1].
 */
export class FakeProgressModel implements ProgressModel {
  readonly card = FIXTURE_CARD;
  readonly providers: Record<string, ExecutionProvider> = { encoder: 'cpu', sarm: 'cpu', grm: 'cpu' };
  readonly calls: FakeCall[] = [];
  readonly uncertainty: boolean;
  delayMs = 0;
  failGraph: FakeCall['graph'] | undefined;
  closed = false;

  constructor(options: { uncertainty?: boolean } = {}) {
    this.uncertainty = options.uncertainty ?? false;
  }

  async #call(graph: FakeCall['graph'], rows: number): Promise<void> {
    if (this.closed) throw new StagewardError('SW_ERR_SHUTTING_DOWN', 'the fake model is closed');
    if (graph === 'grm' && this.card.graphs.grm === undefined)
      throw new StagewardError('SW_ERR_BAD_OPTION', `model ${this.card.name} has no GRM head`);
    this.calls.push({ graph, rows });
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failGraph === graph) {
      throw new StagewardError('SW_ERR_INFERENCE', `inference failed: fake ${graph} failure`);
    }
  }

  async encode(pixels: Uint8Array, n: number): Promise<Float32Array> {
    await this.#call('encoder', n);
    const d = this.card.featureDim;
    const per = pixels.length / n;
    const out = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let j = 0; j < per; j += 97) sum += pixels[i * per + j]!;
      for (let k = 0; k < d; k++) out[i * d + k] = (sum % 1000) / 1000 + k / d;
    }
    return out;
  }

  async sarm(batch: SarmBatch): Promise<SarmOutput> {
    const b = batch.task.length;
    await this.#call('sarm', b);
    const k = this.card.maxStages;
    const per = batch.features.length / b;
    const logits = new Float32Array(b * k);
    const tau = new Float32Array(b);
    const uncertainty = new Float32Array(b);
    for (let i = 0; i < b; i++) {
      let s = 0;
      for (let j = 0; j < per; j++) s += batch.features[i * per + j]!;
      for (let c = 0; c < k; c++) logits[i * k + c] = Math.sin(s + c);
      tau[i] = (Math.cos(s) + 1) / 2;
      uncertainty[i] = (Math.sin(3 * s) + 1) / 20;
    }
    return this.uncertainty ? { stageLogits: logits, tau, uncertainty } : { stageLogits: logits, tau };
  }

  async grm(batch: GrmBatch): Promise<Float32Array> {
    const b = batch.task.length;
    await this.#call('grm', b);
    const per = batch.after.length / b;
    const out = new Float32Array(b);
    for (let i = 0; i < b; i++) out[i] = Math.tanh(batch.after[i * per]! - batch.before[i * per]!);
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

let fixture: Promise<OnnxProgressModel> | undefined;
/** The fixture model, loaded once per test file (never closed by a server: see `keepOpen`). */
export function fixtureModel(): Promise<OnnxProgressModel> {
  fixture ??= OnnxProgressModel.load(FIXTURE_MODEL_DIR);
  return fixture;
}

/** Wrap a model so that a server's shutdown does not close it (it is shared by the file's tests). */
export function keepOpen(model: ProgressModel): ProgressModel {
  return {
    card: model.card,
    providers: model.providers,
    encode: (p, n) => model.encode(p, n),
    sarm: (b) => model.sarm(b),
    grm: (b) => model.grm(b),
    close: async () => {},
  };
}

export function testConfig(overrides: Record<string, unknown> = {}): ServerConfig {
  return loadConfig({ overrides: { host: '127.0.0.1', port: 0, ...overrides } });
}

export async function startTestServer(overrides: Record<string, unknown> = {}, model?: ProgressModel): Promise<StagewardServer> {
  return StagewardServer.start({ config: testConfig(overrides), model: model ?? keepOpen(await fixtureModel()), log: () => {} });
}

export interface Received {
  data: unknown;
  binary: boolean;
}

/** A raw WebSocket peer: send anything, read replies in order, see how it closed. */
export class Peer {
  readonly ws: WebSocket;
  readonly #queue: Received[] = [];
  readonly #waiters: ((r: Received) => void)[] = [];
  closed: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, binary: boolean) => {
      const r: Received = {
        data: binary
          ? decodeMsgpack(data, { maxNestingDepth: 64, maxElements: 1 << 20, mapHook: numpyMapHook })
          : safeJson(data.toString('utf8')),
        binary,
      };
      const w = this.#waiters.shift();
      if (w) w(r);
      else this.#queue.push(r);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<Peer> {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    const peer = new Peer(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(peer));
      ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  send(msg: unknown): void {
    this.ws.send(encodeMsgpack(msg));
  }

  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  next(timeoutMs = 10_000): Promise<Received> {
    const r = this.#queue.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message within timeout')), timeoutMs);
      this.#waiters.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  }

  /** The next message's decoded body. */
  async reply(): Promise<Record<string, any>> {
    return (await this.next()).data as Record<string, any>;
  }

  async request(msg: unknown): Promise<Record<string, any>> {
    this.send(msg);
    return this.reply();
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close(1000);
    return this.closed;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const jpegCache = new Map<string, Buffer>();
/** A small solid-colour JPEG (cached). */
export async function jpeg(width = 96, height = 96, r = 120, g = 80, b = 40): Promise<Buffer> {
  const key = `${width}x${height}:${r},${g},${b}`;
  let out = jpegCache.get(key);
  if (!out) {
    out = await sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
      .jpeg({ quality: 85 })
      .toBuffer();
    jpegCache.set(key, out);
  }
  return out;
}

export async function jpegFrames(shade = 0): Promise<Record<string, Buffer>> {
  return {
    front: await jpeg(96, 96, 120 + shade, 80, 40),
    side: await jpeg(96, 96, 60, 120 + shade, 40),
    wrist: await jpeg(96, 96, 40, 60, 120 + shade),
  };
}

export const HELLO = { type: 'hello', protocol: 1, task: 'pick_place', views: [...VIEWS], gamma: 0.99, shaping: 'pbrs' };

/** Timers alive in this process (Node's active resources). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
