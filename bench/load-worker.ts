// Load generator for `stageward bench server`, run as its own process so the server under test keeps
// its CPU and its RSS is its own: simulated robots stream 3 camera views per step over 127.0.0.1 and
// account for every reply.
//
//   node --import tsx bench/load-worker.ts '<LoadConfig as JSON>'
//
// Protocols: `native` (stageward's /v1/stream: hello, reset, step, end; replies checked by type and
// seq) and `openpi` (a metadata map first, then one observation dict per step, as openpi-client
// does; bench/baseline/server.py speaks it). Modes: `closed-loop` (one step in flight: send, await
// the reply, send the next; for latency) and `paced` (each robot sends at `hz` on its own clock,
// phases spread, at most `maxInFlight` steps outstanding; a tick that finds the robot at that bound
// is skipped and counted, as a robot would drop a frame rather than queue it).
// Last stdout line: one LoadResult JSON object. Everything is bounded: steps, duration, drain time.

import { pathToFileURL } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { encodeJpeg } from '../core/image.ts';
import WebSocket from 'ws';
import { mulberry32 } from '../core/random.ts';
import { renderDemoView } from './demo-episode.ts';
import { quantile } from '../core/stats.ts';
import type { ProgressSource } from '../models/engine.ts';

export interface LoadConfig {
  url: string;
  protocol: 'native' | 'openpi';
  mode: 'closed-loop' | 'paced';
  robots: number;
  /** closed-loop: timed steps per robot, after `warmupSteps` untimed ones */
  steps: number;
  warmupSteps: number;
  /** paced: steps per second per robot, for `durationS`; the first `warmupS` are not counted */
  hz: number;
  durationS: number;
  warmupS: number;
  maxInFlight: number;
  /** steps per episode before the robot ends it and starts another */
  episodeSteps: number;
  views: string[];
  task: string;
  height: number;
  width: number;
  /** `jpeg`: encoded JPEG bytes per view; `raw`: uint8 HWC arrays (openpi numpy maps) */
  payload: 'jpeg' | 'raw';
  /** native hello fields */
  gamma: number;
  progress: ProgressSource;
  /** openpi: observation key -> view (the server's `openpi.views` setting) */
  openpiKeys: Record<string, string>;
  drainTimeoutMs: number;
  connectTimeoutMs: number;
  apiKey?: string;
}

export interface LoadResult {
  robots: number;
  connected: number;
  sent: number;
  /** step replies that were rewards (not errors) */
  rewards: number;
  /** error replies by code */
  errors: Record<string, number>;
  /** steps sent that never got a reply (after the drain) */
  lost: number;
  /** replies whose type or seq did not match the request they answered */
  out_of_order: number;
  /** paced ticks skipped because the robot already had maxInFlight steps outstanding */
  skipped_ticks: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  latency_max_ms: number;
  /** reward replies received per second in the timed window */
  steps_per_s: number;
  timed_s: number;
  payload_bytes_per_step: number;
}

type Kind = 'hello' | 'reset' | 'end' | 'step' | 'metadata';
interface Expected {
  kind: Kind;
  seq: number;
  t: number;
  sentAt: number;
}

const REPLY_TYPE: Record<Kind, string> = { hello: 'ready', reset: 'episode', end: 'summary', step: 'reward', metadata: '' };
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const KEYS = ['__ndarray__', 'data', 'dtype', 'shape'].map((k) => Buffer.from(k));

/** A pool of frame sets (one image per view) to cycle through; encoded before any timing. */
export async function framePool(
  c: Pick<LoadConfig, 'views' | 'height' | 'width' | 'payload'>,
  size = 16,
): Promise<Record<string, unknown>[]> {
  const rand = mulberry32(11);
  const pool: Record<string, unknown>[] = [];
  for (let i = 0; i < size; i++) {
    const set: Record<string, unknown> = {};
    for (const [j, view] of c.views.entries()) {
      const img = renderDemoView(j, i / (size - 1), c.height, c.width, rand);
      set[view] =
        c.payload === 'jpeg'
          ? await encodeJpeg(img)
          : new Map<Buffer, unknown>([
              [KEYS[0]!, true],
              [KEYS[1]!, Buffer.from(img.data)],
              [KEYS[2]!, '|u1'],
              [KEYS[3]!, [img.height, img.width, 3]],
            ]);
    }
    pool.push(set);
  }
  return pool;
}

class Robot {
  ws!: WebSocket;
  private queue: Expected[] = [];
  private head = 0;
  seq = 0;
  t = 0;
  inFlight = 0;
  sent = 0;
  rewards = 0;
  outOfOrder = 0;
  errors: Record<string, number> = {};
  latencies: number[] = [];
  /** receive times of all reward replies */
  rewardTimes: number[] = [];
  closed = false;
  private waiters: Array<() => void> = [];
  private handshake?: { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void };
  onStepReply?: () => void;

  constructor(
    private c: LoadConfig,
    private pool: Record<string, unknown>[],
    readonly index: number,
    private timedFrom: () => number,
  ) {}

  async connect(): Promise<void> {
    const headers: Record<string, string> = this.c.apiKey ? { Authorization: `Api-Key ${this.c.apiKey}` } : {};
    this.ws = new WebSocket(this.c.url, { perMessageDeflate: false, headers, handshakeTimeout: this.c.connectTimeoutMs });
    this.ws.binaryType = 'nodebuffer';
    // Listeners first: an openpi server's metadata can arrive in the same packet as the upgrade.
    const metadata = this.c.protocol === 'openpi' ? this.request('metadata', null) : undefined;
    metadata?.catch(() => {}); // awaited below once open; a failed connect reports its own error
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.receive(data, isBinary));
    this.ws.on('close', () => {
      this.closed = true;
      this.handshake?.reject(new Error(`robot ${this.index}: the server closed the connection during the handshake`));
      for (const w of this.waiters.splice(0)) w();
    });
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    if (metadata !== undefined) {
      await metadata;
    } else {
      const ready = await this.request('hello', {
        type: 'hello',
        protocol: 1,
        task: this.c.task,
        views: this.c.views,
        gamma: this.c.gamma,
        shaping: 'pbrs',
        progress: this.c.progress,
      });
      const limit = (ready.limits as Record<string, unknown> | undefined)?.maxInFlightSteps;
      if (typeof limit === 'number' && limit < this.c.maxInFlight) this.c = { ...this.c, maxInFlight: limit };
      await this.request('reset', { type: 'reset' });
    }
  }

  /** Send a step now (the caller checks maxInFlight). */
  sendStep(): void {
    const frames = this.pool[(this.index + this.seq) % this.pool.length]!;
    let msg: unknown;
    if (this.c.protocol === 'native') {
      if (this.t >= this.c.episodeSteps) {
        this.expect('end', { type: 'end' });
        this.expect('reset', { type: 'reset' });
        this.t = 0;
      }
      msg = { type: 'step', seq: this.seq, t: this.t, frames, reward: 0 };
    } else {
      if (this.t >= this.c.episodeSteps) this.t = 0;
      const obs: Record<string, unknown> = { prompt: this.c.task, reward: 0, reset: this.t === 0 };
      for (const [key, view] of Object.entries(this.c.openpiKeys)) obs[key] = frames[view];
      msg = obs;
    }
    this.queue.push({ kind: 'step', seq: this.seq, t: this.t, sentAt: performance.now() });
    this.ws.send(packr.pack(msg));
    this.seq++;
    this.t++;
    this.sent++;
    this.inFlight++;
  }

  get outstanding(): number {
    return this.queue.length - this.head;
  }

  /** Resolves when nothing is outstanding, the socket closed, or the deadline passed. */
  async drain(deadline: number): Promise<void> {
    while (this.outstanding > 0 && !this.closed && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.waiters.push(() => {
          clearTimeout(timer); // a pending timer would keep the process alive until the deadline
          resolve();
        });
      });
    }
  }

  lost(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) if (this.queue[i]!.kind === 'step') n++;
    return n;
  }

  close(): void {
    if (!this.closed) this.ws.close(1000);
  }

  private expect(kind: Kind, msg: unknown): void {
    this.queue.push({ kind, seq: -1, t: this.t, sentAt: performance.now() });
    if (msg !== null) this.ws.send(packr.pack(msg)); // null: a message the server sends unasked (metadata)
  }

  private request(kind: Kind, msg: unknown): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`robot ${this.index}: no reply to ${kind} within ${this.c.connectTimeoutMs} ms`)),
        this.c.connectTimeoutMs,
      );
      this.handshake = {
        resolve: (m) => {
          clearTimeout(timer);
          this.handshake = undefined;
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          this.handshake = undefined;
          reject(e);
        },
      };
      this.expect(kind, msg);
    });
  }

  private receive(data: Buffer, isBinary: boolean): void {
    const now = performance.now();
    const exp = this.head < this.queue.length ? this.queue[this.head++]! : undefined;
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    let msg: Record<string, unknown> | undefined;
    try {
      msg = isBinary ? (unpackr.unpack(data) as Record<string, unknown>) : (JSON.parse(data.toString('utf8')) as Record<string, unknown>);
    } catch {
      msg = undefined; // openpi servers answer a failure with a plain text frame
    }
    if (exp === undefined) {
      this.outOfOrder++;
      return;
    }
    if (exp.kind === 'step') this.inFlight--;
    const type = msg?.type;
    if (msg === undefined || type === 'error') {
      const code = msg === undefined ? 'text_reply' : String(msg.code);
      this.errors[code] = (this.errors[code] ?? 0) + 1;
      if (msg?.seq !== undefined && exp.kind === 'step' && msg.seq !== exp.seq) this.outOfOrder++;
      if (exp.kind !== 'step')
        this.handshake?.reject(
          new Error(`robot ${this.index}: ${exp.kind} failed: ${code} ${String(msg?.message ?? data.toString('utf8').slice(0, 200))}`),
        );
    } else if (exp.kind === 'step') {
      const inOrder =
        this.c.protocol === 'native' ? type === 'reward' && msg.seq === exp.seq : typeof msg.step !== 'number' || msg.step === exp.t;
      if (!inOrder) this.outOfOrder++;
      this.rewards++;
      this.rewardTimes.push(now); // throughput: every reward received in the window counts
      if (exp.sentAt >= this.timedFrom()) this.latencies.push(now - exp.sentAt); // latency: steps sent in it
    } else if (this.c.protocol === 'native' && type !== REPLY_TYPE[exp.kind]) {
      this.outOfOrder++;
      this.handshake?.reject(new Error(`robot ${this.index}: expected '${REPLY_TYPE[exp.kind]}', got '${String(type)}'`));
    } else {
      this.handshake?.resolve(msg);
    }
    if (exp.kind === 'step') this.onStepReply?.();
    if (this.outstanding === 0) for (const w of this.waiters.splice(0)) w();
  }
}

export async function runLoad(c: LoadConfig): Promise<LoadResult> {
  const pool = await framePool(c);
  const firstSet = pool[0]!;
  const payloadBytes = c.views.reduce((n, v) => {
    const f = firstSet[v];
    return n + (Buffer.isBuffer(f) ? f.length : c.height * c.width * 3);
  }, 0);
  let timedFrom = Infinity;
  const robots = Array.from({ length: c.robots }, (_, i) => new Robot(c, pool, i, () => timedFrom));
  const settled = await Promise.allSettled(robots.map((r) => r.connect()));
  const failed = settled.filter((s) => s.status === 'rejected') as PromiseRejectedResult[];
  if (failed.length > 0)
    throw new Error(`${failed.length} of ${c.robots} robots could not connect: ${String(failed[0]!.reason?.message ?? failed[0]!.reason)}`);

  let windowStart: number;
  let windowEnd: number;
  let skipped = 0;
  if (c.mode === 'closed-loop') {
    await Promise.all(
      robots.map(
        (r) =>
          new Promise<void>((resolve) => {
            const total = c.warmupSteps + c.steps;
            let watchdog: NodeJS.Timeout | undefined;
            const next = (): void => {
              clearTimeout(watchdog);
              if (r.sent === c.warmupSteps && timedFrom === Infinity) timedFrom = performance.now();
              if (r.sent < total && !r.closed) {
                r.sendStep();
                watchdog = setTimeout(resolve, c.drainTimeoutMs); // no reply: stop; the step counts as lost
              } else resolve();
            };
            r.onStepReply = next;
            next();
          }),
      ),
    );
    windowStart = timedFrom;
    windowEnd = performance.now();
  } else {
    const period = 1000 / c.hz;
    const start = performance.now() + 50;
    timedFrom = start + c.warmupS * 1000;
    const end = start + c.durationS * 1000;
    await Promise.all(
      robots.map(
        (r, i) =>
          new Promise<void>((resolve) => {
            let k = 0;
            const phase = (i / c.robots) * period;
            const tick = (): void => {
              const now = performance.now();
              if (now >= end || r.closed) return resolve();
              if (r.inFlight >= c.maxInFlight) skipped++;
              else r.sendStep();
              k++;
              // Next tick on the robot's own clock; ticks that a late timer missed are skipped, not bunched.
              let at = start + phase + k * period;
              while (at < performance.now()) {
                at += period;
                k++;
                skipped++;
              }
              setTimeout(tick, at - performance.now());
            };
            setTimeout(tick, Math.max(0, start + phase - performance.now()));
          }),
      ),
    );
    windowStart = timedFrom;
    windowEnd = end;
  }
  const deadline = performance.now() + c.drainTimeoutMs;
  await Promise.all(robots.map((r) => r.drain(deadline)));
  for (const r of robots) r.close();

  const latencies = robots.flatMap((r) => r.latencies);
  const inWindow = robots.reduce((n, r) => n + r.rewardTimes.filter((t) => t >= windowStart && t <= windowEnd).length, 0);
  const errors: Record<string, number> = {};
  for (const r of robots) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const timedS = (windowEnd - windowStart) / 1000;
  const result: LoadResult = {
    robots: c.robots,
    connected: robots.length,
    sent: robots.reduce((n, r) => n + r.sent, 0),
    rewards: robots.reduce((n, r) => n + r.rewards, 0),
    errors,
    lost: robots.reduce((n, r) => n + r.lost(), 0),
    out_of_order: robots.reduce((n, r) => n + r.outOfOrder, 0),
    skipped_ticks: skipped,
    latency_p50_ms: round(quantile(latencies, 0.5)),
    latency_p99_ms: round(quantile(latencies, 0.99)),
    latency_max_ms: round(latencies.reduce((m, x) => Math.max(m, x), 0)),
    steps_per_s: round(c.mode === 'paced' ? inWindow / timedS : latencies.length / timedS),
    timed_s: round(timedS),
    payload_bytes_per_step: payloadBytes,
  };
  return result;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg) throw new Error("usage: node --import tsx bench/load-worker.ts '<LoadConfig JSON>'");
  const result = await runLoad(JSON.parse(arg) as LoadConfig);
  console.log(JSON.stringify(result));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`load-worker: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
