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
// With `dashboard` (closed-loop, native), the robot then runs rounds of the same number of timed
// steps (what it makes in `roundS` seconds without viewers), alternating between no dashboard
// viewer ("closed") and `viewers` viewers on `/v1/live` watching its session with thumbnails
// ("open"), in the order closed, open, open, closed, closed, open, ... so a steady drift of the
// machine's speed favours neither; the viewers run in a child process of their own
// (bench/live-viewer.ts), idle but alive during the closed rounds. The result's `dashboard` holds
// each round's figures and what the viewers received.
// Last stdout line: one LoadResult JSON object. Everything is bounded: steps, duration, drain time.

import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Packr, Unpackr } from 'msgpackr';
import { encodeJpeg } from '../core/image.ts';
import WebSocket from 'ws';
import { mulberry32 } from '../core/random.ts';
import { renderDemoView } from './demo-episode.ts';
import { quantile } from '../core/stats.ts';
import type { ProgressSource } from '../models/engine.ts';
import type { ViewerCommand, ViewerCounts, ViewerReply } from './live-viewer.ts';

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
  /** closed-loop, native: after the warmup, the dashboard rounds instead of `steps` timed steps */
  dashboard?: DashboardConfig;
}

/** The model a load is made for, as GET /v1/models describes it. */
export interface LoadModel {
  views: string[];
  tasks: { task: string }[];
  image: { width: number; height: number };
}

/**
 * `robots` robots at `hz` on /v1/stream for `durationS`, each step 3 views of JPEG at the model's
 * size, at most 8 in flight, episodes of 300 steps, progress head sarm: the paced robots of the soak
 * and of profile:step.
 */
export function pacedRobots(
  url: string,
  model: LoadModel,
  o: Pick<LoadConfig, 'robots' | 'hz' | 'durationS' | 'warmupS' | 'openpiKeys' | 'drainTimeoutMs' | 'connectTimeoutMs'>,
): LoadConfig {
  return {
    ...o,
    url,
    protocol: 'native',
    mode: 'paced',
    steps: 0,
    warmupSteps: 0,
    maxInFlight: 8,
    episodeSteps: 300,
    views: model.views,
    task: model.tasks[0]!.task,
    height: model.image.height,
    width: model.image.width,
    payload: 'jpeg',
    gamma: 0.99,
    progress: 'sarm',
  };
}

export interface DashboardConfig {
  /** ws://host:port/v1/live */
  liveUrl: string;
  viewers: number;
  /** rounds per condition */
  rounds: number;
  /**
   * Timed steps per round: as many as one closed-loop robot makes in `roundS` seconds (measured
   * once, without viewers, before the first round), within [minRoundSteps, maxRoundSteps]; the
   * feed's work comes every 250 ms tick and 500 ms thumbnail, so a round must span several.
   */
  roundS: number;
  minRoundSteps: number;
  maxRoundSteps: number;
  /** untimed steps at the start of each round, after the viewers connected or left */
  roundWarmupSteps: number;
  /** the server's process: its CPU time (all threads, /proc) over each round's timed steps */
  serverPid?: number;
}

export interface DashboardRound {
  condition: 'closed' | 'open';
  steps: number;
  p50_ms: number;
  p99_ms: number;
  /** what the viewers received during the round (zero when closed) */
  viewer_messages: number;
  thumbnails: number;
  ticks: number;
  /** the server's CPU time over the round's timed steps, per step (NaN without /proc) */
  server_cpu_ms_per_step: number;
}

export interface DashboardResult {
  /** the robot's session, the one the viewers watched */
  session: string;
  viewers: number;
  /** timed steps per round */
  round_steps: number;
  rounds: DashboardRound[];
  /** p99 over every timed step of the condition */
  closed_p99_ms: number;
  open_p99_ms: number;
  /** the server's CPU time per timed step, over all of the condition's rounds (NaN without /proc) */
  closed_server_cpu_ms_per_step: number;
  open_server_cpu_ms_per_step: number;
  /** received during the timed open rounds (the warm-up's are not counted) */
  viewer_messages: number;
  thumbnails: number;
  viewer_bytes: number;
  by_type: Record<string, number>;
  viewer_errors: string[];
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
  dashboard?: DashboardResult;
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
  /** the `session` of the native ready */
  session: string | undefined;
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
      if (typeof ready.session === 'string') this.session = ready.session;
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
  let dashboard: DashboardResult | undefined;
  if (c.mode === 'closed-loop') {
    await closedLoop(robots, c.warmupSteps, c.drainTimeoutMs);
    timedFrom = performance.now();
    windowStart = timedFrom;
    if (c.dashboard === undefined) await closedLoop(robots, c.steps, c.drainTimeoutMs);
    else dashboard = await dashboardRounds(c, c.dashboard, robots, (t) => (timedFrom = t));
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
    ...(dashboard !== undefined ? { dashboard } : {}),
  };
  return result;
}

/** Each robot sends `steps` more steps, one at a time, each once the previous one's reply came. */
function closedLoop(robots: Robot[], steps: number, timeoutMs: number): Promise<void> {
  return Promise.all(
    robots.map(
      (r) =>
        new Promise<void>((resolve) => {
          const until = r.sent + steps;
          let watchdog: NodeJS.Timeout | undefined;
          const finish = (): void => {
            clearTimeout(watchdog);
            r.onStepReply = undefined;
            resolve();
          };
          const next = (): void => {
            clearTimeout(watchdog);
            if (r.sent < until && !r.closed) {
              r.sendStep();
              watchdog = setTimeout(finish, timeoutMs); // no reply: stop; the step counts as lost
            } else finish();
          };
          r.onStepReply = next;
          next();
        }),
    ),
  ).then(() => undefined);
}

/** CPU time of every thread of a process so far, ns (/proc/<pid>/task/<tid>/schedstat); NaN without /proc. */
export function cpuNs(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    let ns = 0;
    // a thread that ended meanwhile reads NaN and is left out (its time is lost: a few ms at most)
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += threadCpuNs(pid, Number(tid)) || 0;
    return ns;
  } catch {
    return NaN;
  }
}

/** CPU time of one thread of a process so far, ns (/proc/<pid>/task/<tid>/schedstat); NaN when gone or without /proc. */
export function threadCpuNs(pid: number, tid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

const VIEWER = fileURLToPath(new URL('./live-viewer.ts', import.meta.url));

/** The dashboard viewers' process (bench/live-viewer.ts), one command at a time. */
class ViewerProcess {
  readonly #child: ChildProcess;
  #pending: { resolve: (r: ViewerReply) => void; reject: (e: Error) => void } | undefined;
  #stderr = '';
  #exited = false;

  constructor() {
    // execArgv is this process's (`--import tsx`)
    this.#child = fork(VIEWER, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.#child.stderr!.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-2000)));
    this.#child.on('message', (r: ViewerReply) => {
      const p = this.#pending;
      this.#pending = undefined;
      if (r.type === 'failed') p?.reject(new Error(`dashboard viewers: ${r.message}`));
      else p?.resolve(r);
    });
    this.#child.once('exit', (code, signal) => {
      this.#exited = true;
      this.#pending?.reject(
        new Error(`the dashboard viewers' process exited (${code ?? signal})${this.#stderr ? `: ${this.#stderr.trim()}` : ''}`),
      );
      this.#pending = undefined;
    });
  }

  request(cmd: ViewerCommand, timeoutMs: number): Promise<ViewerReply> {
    if (this.#exited) return Promise.reject(new Error("the dashboard viewers' process is gone"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        reject(new Error(`dashboard viewers: no answer to ${cmd.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#child.send(cmd);
    });
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.send({ type: 'exit' } satisfies ViewerCommand);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * The dashboard rounds: closed and open alternate (closed, open, open, closed, closed, open, ...),
 * each `roundWarmupSteps` untimed then the same number of timed steps, after one untimed open
 * warm-up of the feed's path (its first ticks and thumbnails) and the closed run that sets the
 * round's steps (`roundS`).
 */
async function dashboardRounds(
  c: LoadConfig,
  d: DashboardConfig,
  robots: Robot[],
  setTimedFrom: (t: number) => void,
): Promise<DashboardResult> {
  const session = robots[0]?.session;
  if (c.protocol !== 'native' || session === undefined)
    throw new Error('the dashboard rounds need a native robot (its ready names the session)');
  const viewers = new ViewerProcess();
  const openCmd: ViewerCommand = {
    type: 'open',
    url: d.liveUrl,
    session,
    viewers: d.viewers,
    apiKey: c.apiKey,
    timeoutMs: c.connectTimeoutMs,
  };
  const wait = c.connectTimeoutMs + 10_000;
  const total: ViewerCounts = { messages: 0, by_type: {}, thumbnails: 0, bytes: 0, errors: [] };
  const add = (n: ViewerCounts): void => {
    total.messages += n.messages;
    total.thumbnails += n.thumbnails;
    total.bytes += n.bytes;
    for (const [k, v] of Object.entries(n.by_type)) total.by_type[k] = (total.by_type[k] ?? 0) + v;
    total.errors.push(...n.errors.slice(0, Math.max(0, 8 - total.errors.length)));
  };
  const rounds: DashboardRound[] = [];
  const pooled = { closed: [] as number[], open: [] as number[] };
  const cpu = { closed: 0, open: 0 };
  let roundSteps = d.minRoundSteps;
  try {
    setTimedFrom(Infinity);
    await viewers.request(openCmd, wait);
    const warmUntil = performance.now() + 1500;
    while (performance.now() < warmUntil) await closedLoop(robots, 10, c.drainTimeoutMs);
    const warm = (await viewers.request({ type: 'close' }, wait)) as ViewerCounts;
    if (warm.errors.length > 0) throw new Error(`dashboard viewers: ${warm.errors.join('; ')}`);
    const sentBefore = robots[0]!.sent;
    const calibrateUntil = performance.now() + d.roundS * 1000;
    while (performance.now() < calibrateUntil) await closedLoop(robots, 10, c.drainTimeoutMs);
    roundSteps = Math.min(d.maxRoundSteps, Math.max(d.minRoundSteps, robots[0]!.sent - sentBefore));
    for (let i = 0; i < 2 * d.rounds; i++) {
      const first = Math.floor(i / 2) % 2 === 0 ? 'closed' : 'open';
      const condition = i % 2 === 0 ? first : first === 'closed' ? 'open' : 'closed';
      if (condition === 'open') await viewers.request(openCmd, wait);
      await closedLoop(robots, d.roundWarmupSteps, c.drainTimeoutMs);
      const from = robots.map((r) => r.latencies.length);
      const cpuFrom = cpuNs(d.serverPid);
      setTimedFrom(performance.now());
      await closedLoop(robots, roundSteps, c.drainTimeoutMs);
      setTimedFrom(Infinity);
      const cpuMs = (cpuNs(d.serverPid) - cpuFrom) / 1e6;
      cpu[condition] += cpuMs;
      const lat = robots.flatMap((r, j) => r.latencies.slice(from[j]));
      pooled[condition].push(...lat);
      let got: ViewerCounts = { messages: 0, by_type: {}, thumbnails: 0, bytes: 0, errors: [] };
      if (condition === 'open') {
        got = (await viewers.request({ type: 'close' }, wait)) as ViewerCounts;
        add(got);
      }
      rounds.push({
        condition,
        steps: lat.length,
        p50_ms: round(quantile(lat, 0.5)),
        p99_ms: round(quantile(lat, 0.99)),
        viewer_messages: got.messages,
        thumbnails: got.thumbnails,
        ticks: got.by_type.tick ?? 0,
        server_cpu_ms_per_step: round(cpuMs / lat.length),
      });
    }
  } finally {
    await viewers.stop();
  }
  return {
    session,
    viewers: d.viewers,
    round_steps: roundSteps,
    rounds,
    closed_p99_ms: round(quantile(pooled.closed, 0.99)),
    open_p99_ms: round(quantile(pooled.open, 0.99)),
    closed_server_cpu_ms_per_step: round(cpu.closed / pooled.closed.length),
    open_server_cpu_ms_per_step: round(cpu.open / pooled.open.length),
    viewer_messages: total.messages,
    thumbnails: total.thumbnails,
    viewer_bytes: total.bytes,
    by_type: total.by_type,
    viewer_errors: total.errors,
  };
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
