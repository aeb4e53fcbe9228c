// Soak run: the reward server under hostile clients. The server runs as a child process (`stageward
// serve` with the bundled model, short hello and upgrade deadlines); well-behaved robots stream to it
// from a separate load process (bench/load-worker.ts); hostile clients of every kind run from this
// process beside them. Its RSS is read from /proc.
//
//   npm run soak                                   # 4 minutes, then 60 s of scripts/fuzz.ts
//   npm run soak -- --minutes 1 --fuzz-seconds 0   # a short run
//
// A (baseline, half of --minutes): `robots` robots at `hz`, 3 views of 96x96 JPEG per step; step p99.
// B (attack, the other half): the same robots (connected first), and beside them, repeatedly:
//   bombs, in two lanes of one at a time: a flat MessagePack array of millions of empty maps before
//     hello (/v1/stream and /openpi), a 1M-deep JSON array and a flat JSON [{},{},...] as text
//     frames, the flat array as a step's `state` after hello/reset, one message in 1M 1-byte fragments;
//   slot holders (never a valid hello; junk every 500 ms, or nothing), checked at helloTimeoutMs + 1.5 s;
//   echo amplifiers that stop reading after one reply (hello with a 1 MiB task / model / view name,
//     openpi observations with a 1 MiB prompt);
//   heavy frames (3 views of a noisy 2048x2048 JPEG per step, closed loop);
//   slow upgrades (raw TCP, a partial HTTP upgrade held, or trickled a byte a second);
//   abrupt disconnects (after a step, halfway through a frame, halfway through the upgrade);
//   numbers that are not numbers (rewards 1e308, scale 1e308, NaN, infinities, seq 1e308);
//   fragments (a valid step in 4096 fragments) and non-reading clients with small replies.
// A and B alternate, --rounds times each (default 2), so drift in the machine's other load falls on
// both alike; each phase's p99 is the median over its rounds.
// Every hostile request on a client that reads must get exactly one reply, or a close: one that got
// neither within REPLY_TIMEOUT_MS is lost; a reply nothing asked for is extra. /healthz is polled every
// 20 ms from a worker thread throughout (a fallback measure of the server's stalls).
// Then: is the server alive, GET /metrics (stageward_message_decode_max_seconds, the longest main-thread
// decode of one message -> max_stall_ms; stageward_event_loop_delay_max_seconds, every cause together),
// `scripts/fuzz.ts --seconds <fuzz-seconds>`, and SIGTERM, which must end it within shutdownGraceMs.
// Last output line: {"p99_ratio_under_attack", "peak_rss_mb", "max_stall_ms", "slots_held_past_deadline",
// "lost_replies", "crashes", "fuzz_execs", "fuzz_findings", ...}. Exit status 0 whatever the figures
// (a measurement); non-zero only when the script itself fails. Every wait is bounded.

import { RssSampler } from '../bench/proc-rss.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import { Packr, Unpackr } from 'msgpackr';
import sharp from 'sharp';
import WebSocket from 'ws';
import { framePool, pacedRobots, type LoadConfig, type LoadResult } from '../bench/load-worker.ts';
import { REPO_ROOT } from '../core/paths.ts';
import { quantile } from '../core/stats.ts';

const TARGETS = { p99_ratio: 2, peak_rss_mb: 600, max_stall_ms: 50, slots_held_past_deadline: 0, lost_replies: 0, crashes: 0 };
/** Deadlines the server runs with here (env), short so that the attack phase sees them act. */
const HELLO_TIMEOUT_MS = 3000;
const UPGRADE_TIMEOUT_MS = 3000;
/** Grace past a deadline before a connection still open counts as held past it. */
const DEADLINE_SLACK_MS = 1500;
/** A request on a reading client with no reply and no close after this long is lost. */
const REPLY_TIMEOUT_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 120_000;
const HEALTHZ_PERIOD_MS = 20;
const BIN = join(REPO_ROOT, 'bin', 'stageward.js');
const WORKER = join(REPO_ROOT, 'bench', 'load-worker.ts');
const FUZZ = join(REPO_ROOT, 'scripts', 'fuzz.ts');

// Hostile clients: how many run at once. The robots hold `robots` of the server's maxSessions slots;
// the WebSocket attackers below hold at most about 30 more, slow upgrades hold none (not upgraded).
// Bombs run in lanes, each one bomb at a time with its kinds in turn, so that every kind runs early
// even when each one stalls the server.
const BOMB_LANES = 2;
const SLOT_HOLDERS = 16;
const ECHO_CLIENTS = 3;
const HEAVY_CLIENTS = 3;
const SLOW_UPGRADES = 50;
const ABRUPT_LOOPS = 2;
const QUIET_READERS = 2;
const MAX_ATTACK_SOCKETS = 150;

interface Options {
  minutes: number;
  hz: number;
  robots: number;
  fuzzSeconds: number;
  /** Baseline and attack phases alternate this many times each. */
  rounds: number;
  /** Attacker kinds to run (default all). */
  attackers: AttackerKind[];
  /** Model package the server serves (default: the bundled one). */
  model?: string;
}

const ATTACKER_KINDS = [
  'numbers',
  'fragments',
  'bombs',
  'heavy',
  'slot-holders',
  'echo',
  'slow-upgrades',
  'abrupt',
  'quiet-readers',
] as const;
type AttackerKind = (typeof ATTACKER_KINDS)[number];

interface Limits {
  maxPayloadBytes: number;
  maxSessions: number;
  shutdownGraceMs: number;
}

const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const pack = (v: unknown): Buffer => packr.pack(v);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));
const now = () => performance.now();
const round = (x: number, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : null);

// -- child processes ---------------------------------------------------------------------------

/** Every child this script started, killed on the way out (normal exit, error or Ctrl-C). */
const children = new Set<ChildProcess>();
/** Of those, the ones started in a process group of their own (they have children too): killed as a group. */
const groups = new WeakSet<ChildProcess>();

function track(child: ChildProcess, group = false): ChildProcess {
  children.add(child);
  if (group) groups.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

function kill(c: ChildProcess): void {
  if (c.exitCode !== null || c.signalCode !== null) return;
  try {
    if (groups.has(c) && c.pid !== undefined) process.kill(-c.pid, 'SIGKILL');
    else c.kill('SIGKILL');
  } catch {
    c.kill('SIGKILL');
  }
}

function killChildren(): void {
  for (const c of children) kill(c);
}

interface ServerChild {
  child: ChildProcess;
  url: string;
  http: string;
  host: string;
  port: number;
  /** Set when it exits; `expected` once we sent SIGTERM. */
  exit?: { code: number | null; signal: NodeJS.Signals | null; at: number; expected: boolean };
  stopping: boolean;
  stderr: string[];
  internalErrors: number;
}

/** `stageward serve` on a free port, with the soak's deadlines; resolves once it prints its URL. */
function startServer(model?: string): Promise<ServerChild> {
  const env = {
    ...process.env,
    STAGEWARD_HELLO_TIMEOUT_MS: String(HELLO_TIMEOUT_MS),
    STAGEWARD_UPGRADE_TIMEOUT_MS: String(UPGRADE_TIMEOUT_MS),
  };
  const args = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...(model === undefined ? [] : ['--model', model])];
  const child = track(spawn(process.execPath, args, { cwd: REPO_ROOT, env }));
  const s: ServerChild = { child, url: '', http: '', host: '127.0.0.1', port: 0, stopping: false, stderr: [], internalErrors: 0 };
  let partial = '';
  child.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (/internal error/i.test(line)) s.internalErrors++;
      s.stderr.push(line);
      if (s.stderr.length > 200) s.stderr.shift();
    }
  });
  child.once('exit', (code, signal) => (s.exit = { code, signal, at: now(), expected: s.stopping }));
  return new Promise((resolve, reject) => {
    let buffered = '';
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`stageward serve: ${why}\n${s.stderr.slice(-20).join('\n')}`));
    };
    const timer = setTimeout(() => fail(`no URL on its output within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      if (done) return;
      buffered += d.toString();
      const m = /native\s+ws:\/\/([^\s:/]+):(\d+)\/v1\/stream/.exec(buffered);
      if (m) {
        done = true;
        clearTimeout(timer);
        s.host = m[1]!;
        s.port = Number(m[2]);
        s.url = `ws://${s.host}:${s.port}`;
        s.http = `http://${s.host}:${s.port}`;
        resolve(s);
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    child.once('error', (err) => fail(err.message));
  });
}

/** SIGTERM; resolves with the ms it took to exit, or null when it needed SIGKILL after `graceMs`. */
async function stopServer(s: ServerChild, graceMs: number): Promise<number | null> {
  if (s.exit) return 0;
  s.stopping = true;
  const t0 = now();
  const exited = new Promise<void>((r) => s.child.once('exit', () => r()));
  s.child.kill('SIGTERM');
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    s.child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
  return killed ? null : now() - t0;
}

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat; NaN when unreadable. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ, 100 on Linux)
  } catch {
    return NaN;
  }
}

/** Share of one core a process used since `from` (cpuSeconds at `fromAt`). */
function cpuPct(pid: number, from: { cpu: number; at: number }): number {
  return ((cpuSeconds(pid) - from.cpu) / ((now() - from.at) / 1000)) * 100;
}

/** One paced load phase in bench/load-worker.ts as its own process; its last stdout line is the LoadResult. */
function runRobots(config: LoadConfig): Promise<LoadResult> {
  const limitMs = config.durationS * 1000 + config.drainTimeoutMs + config.connectTimeoutMs + 60_000;
  return new Promise((resolve, reject) => {
    const child = track(
      spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as LoadResult);
      else reject(new Error(`load worker failed (${code ?? signal})${err ? `: ${err.trim()}` : ''}`));
    });
  });
}

// -- HTTP --------------------------------------------------------------------------------------

function fetchText(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function sessionsNow(s: ServerChild): Promise<number | undefined> {
  try {
    const r = await fetchText(`${s.http}/healthz`, 5000);
    const n = (JSON.parse(r.body) as { sessions?: unknown }).sessions;
    return typeof n === 'number' ? n : undefined;
  } catch {
    return undefined;
  }
}

// GET /healthz every HEALTHZ_PERIOD_MS on a keep-alive socket (reopened when the server closes it),
// from a worker thread so that this process's own work (the attackers) does not add to the latencies
// it measures. A failed request counts as a failure, not as a latency.
const POLLER = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let stop = false;
parentPort.on('message', () => { stop = true; });
const get = () => new Promise((resolve) => {
  const req = http.get(workerData.url, { agent, timeout: 60000 }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode === 200));
    res.on('error', () => resolve(false));
  });
  req.on('timeout', () => req.destroy());
  req.on('error', () => resolve(false));
});
(async () => {
  const lat = [];
  let failures = 0;
  while (!stop) {
    const t0 = performance.now();
    const ok = await get();
    const dt = performance.now() - t0;
    if (ok) lat.push(dt); else failures++;
    await new Promise((r) => setTimeout(r, Math.max(1, workerData.periodMs - dt)));
  }
  agent.destroy();
  lat.sort((a, b) => a - b);
  parentPort.postMessage({ polls: lat.length + failures, failures, max: lat.length ? lat[lat.length - 1] : NaN, p99: lat.length ? lat[Math.floor((lat.length - 1) * 0.99)] : NaN });
})();
`;

interface HealthzStats {
  polls: number;
  failures: number;
  max: number;
  p99: number;
}

function startPoller(url: string): { stop: () => Promise<HealthzStats> } {
  const worker = new Worker(POLLER, { eval: true, workerData: { url, periodMs: HEALTHZ_PERIOD_MS } });
  const result = new Promise<HealthzStats>((resolve) => {
    worker.once('message', (m: HealthzStats) => resolve(m));
    worker.once('error', () => resolve({ polls: 0, failures: 0, max: NaN, p99: NaN }));
    worker.once('exit', () => resolve({ polls: 0, failures: 0, max: NaN, p99: NaN }));
  });
  return {
    stop: async () => {
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 65_000); // a poll can wait up to 60 s
      const r = await result;
      clearTimeout(timer);
      await worker.terminate();
      return r;
    },
  };
}

// -- hostile clients: accounting ---------------------------------------------------------------

type Counts = Record<string, number>;

function add(c: Counts, key: string, n = 1): void {
  c[key] = (c[key] ?? 0) + n;
}

function fmt(c: Counts): string {
  const e = Object.entries(c);
  return e.length === 0 ? '-' : e.map(([k, v]) => `${k} ${v}`).join(', ');
}

/** What one kind of hostile client did. */
class Tally {
  connects = 0;
  connectFailures: Counts = {};
  sent = 0;
  replies: Counts = {};
  /** Close codes of closes the server started (or that came with no close frame, 1006). */
  closes: Counts = {};
  /** Error frames that answer no message (the server's deadline or capacity refusals). */
  unsolicited: Counts = {};
  /** Requests outstanding when the server closed the connection (the close answers them). */
  answeredByClose = 0;
  lost = 0;
  extra = 0;
  nonFinite = 0;
  maxMessageBytes = 0;
  replyMs: number[] = [];
  notes: Counts = {};

  constructor(readonly name: string) {}

  line(): string {
    const parts = [`${this.connects} conns`];
    if (Object.keys(this.connectFailures).length) parts.push(`connect failed ${fmt(this.connectFailures)}`);
    parts.push(`${this.sent} msgs`, `replies ${fmt(this.replies)}`, `server closes ${fmt(this.closes)}`);
    if (Object.keys(this.unsolicited).length) parts.push(`unasked ${fmt(this.unsolicited)}`);
    if (this.answeredByClose) parts.push(`answered by close ${this.answeredByClose}`);
    parts.push(`lost ${this.lost}`);
    if (this.extra) parts.push(`EXTRA ${this.extra}`);
    if (this.nonFinite) parts.push(`non-finite numbers in ${this.nonFinite} replies`);
    if (this.replyMs.length) parts.push(`reply p50 ${ms(quantile(this.replyMs, 0.5))} max ${ms(maxOf(this.replyMs))}`);
    if (this.maxMessageBytes) parts.push(`largest message ${kib(this.maxMessageBytes)}`);
    if (Object.keys(this.notes).length) parts.push(fmt(this.notes));
    return `  ${this.name.padEnd(24)} ${parts.join('; ')}`;
  }
}

/** The largest value (NaN for none; no spread, so any length). */
function maxOf(xs: readonly number[]): number {
  return xs.reduce((m, x) => Math.max(m, x), xs.length ? -Infinity : NaN);
}

function kib(bytes: number): string {
  return bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(0)} KiB`;
}

function ms(x: number): string {
  return Number.isFinite(x) ? `${x < 10 ? x.toFixed(1) : Math.round(x)} ms` : '-';
}

/** Open hostile sockets (WebSocket and raw TCP), cut when the attack is over. */
const live = new Set<{ kill: () => void }>();

type Reply = Record<string, unknown> | undefined;

/** Codes the server may send on its own before closing (deadline, capacity, shutdown), answering no message. */
const UNSOLICITED = new Set([
  'SW_ERR_IDLE_TIMEOUT',
  'SW_ERR_TOO_MANY_SESSIONS',
  'SW_ERR_SLOW_READER',
  'SW_ERR_SHUTTING_DOWN',
  'SW_ERR_AUTH',
]);

/** Zero mask keys: legal, and ws then skips masking, so a 16 MiB send costs this process no copy. */
const zeroMask = (mask: Buffer) => void mask.fill(0);

/**
 * A hostile WebSocket client that accounts for every reply: requests expecting one are queued by
 * send time; each message from the server answers the oldest (openpi's greeting and the server's
 * unasked errors excepted); a close answers all outstanding ones.
 */
class Peer {
  readonly ws: WebSocket;
  readonly openedAt = now();
  closedAt: number | undefined;
  #pending: number[] = [];
  #greeting: boolean;
  #replies: Reply[] = [];
  #waiters: Array<() => void> = [];
  #byUs = false;
  #opened = false;
  /** Paused (never reads): what reaches it anyway (ws hands over buffered data at close) is no reply. */
  #deaf = false;
  readonly #handle = { kill: () => this.terminate() };

  private constructor(
    url: string,
    readonly tally: Tally,
    greeting: boolean,
  ) {
    this.#greeting = greeting;
    this.ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS, generateMask: zeroMask });
    this.ws.binaryType = 'nodebuffer';
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.#message(data, isBinary));
    this.ws.on('close', (code: number) => this.#close(code));
    this.ws.on('error', (err: Error) => {
      if (!this.#opened) add(tally.connectFailures, err.message.slice(0, 60));
    });
  }

  /** Connect (to /openpi with `greeting`: its metadata frame is not a reply); undefined when it failed. */
  static open(url: string, tally: Tally, greeting = false): Promise<Peer | undefined> {
    tally.connects++;
    const p = new Peer(url, tally, greeting);
    return new Promise((resolve) => {
      p.ws.once('open', () => {
        p.#opened = true;
        live.add(p.#handle);
        resolve(p);
      });
      p.ws.once('close', () => resolve(undefined));
    });
  }

  get closed(): boolean {
    return this.closedAt !== undefined;
  }

  get pending(): number {
    return this.#pending.length;
  }

  /** Send one message (a Buffer; text frame with `text`); `reply: false` for clients that never read. */
  send(data: Buffer, opts: { text?: boolean; reply?: boolean } = {}): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(data, { binary: !opts.text });
    this.#sent(opts.reply ?? true);
    return true;
  }

  /** Write hand-made frames on the socket under ws (fragments, half frames); `messages` of them expect replies. */
  sendRaw(frames: Buffer, messages: number): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    socketOf(this.ws).write(frames);
    for (let i = 0; i < messages; i++) this.#sent(true);
    return true;
  }

  /** Send, then wait for the reply: the decoded reply, or 'closed' / 'lost' (after REPLY_TIMEOUT_MS, counted). */
  async request(data: Buffer, opts: { text?: boolean } = {}): Promise<Reply | 'closed' | 'lost'> {
    if (!this.send(data, opts)) return 'closed';
    return this.next();
  }

  /** The next reply (each reply is handed out once), 'closed', or 'lost' after the timeout. */
  async next(timeoutMs = REPLY_TIMEOUT_MS): Promise<Reply | 'closed' | 'lost'> {
    const deadline = now() + timeoutMs;
    while (this.#replies.length === 0 && !this.closed && now() < deadline) await this.#wait(deadline - now());
    if (this.#replies.length > 0) return this.#replies.shift();
    if (this.closed) return 'closed';
    this.abandon();
    return 'lost';
  }

  /** Resolves when the server closed the connection or `timeoutMs` passed. */
  async waitClose(timeoutMs: number): Promise<void> {
    const deadline = now() + timeoutMs;
    while (!this.closed && now() < deadline) await this.#wait(deadline - now());
  }

  /** Wait for every outstanding reply (bounded), count the rest lost, and close. */
  async finish(timeoutMs = REPLY_TIMEOUT_MS): Promise<void> {
    const deadline = now() + timeoutMs;
    while (this.#pending.length > 0 && !this.closed && now() < deadline) await this.#wait(deadline - now());
    this.abandon();
  }

  /** Count what is still outstanding as lost and cut the connection. */
  abandon(): void {
    if (!this.closed) {
      this.tally.lost += this.#pending.length;
      this.#pending = [];
    }
    this.terminate();
  }

  pause(): void {
    this.#deaf = true;
    this.ws.pause();
  }

  /** Cut the TCP connection (no close handshake). */
  terminate(): void {
    this.#byUs = true;
    live.delete(this.#handle);
    this.ws.terminate();
  }

  #sent(expectsReply: boolean): void {
    this.tally.sent++;
    if (expectsReply) this.#pending.push(now());
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(1, ms));
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  #message(data: Buffer, isBinary: boolean): void {
    const t = this.tally;
    let msg: Reply;
    try {
      msg = (isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8'))) as Reply;
    } catch {
      msg = undefined;
    }
    const code = msg?.type === 'error' ? String(msg.code) : undefined;
    if (this.#greeting && isBinary && code === undefined) {
      this.#greeting = false;
      return;
    }
    t.maxMessageBytes = Math.max(t.maxMessageBytes, data.length);
    if (code !== undefined && UNSOLICITED.has(code) && this.#pending.length === 0 && msg?.seq === undefined) {
      add(t.unsolicited, code);
      return;
    }
    const key = code ?? (typeof msg?.type === 'string' ? msg.type : msg !== undefined && 'progress' in msg ? 'reward' : 'undecodable');
    if (this.#deaf) {
      add(t.notes, `read at close ${key}`);
      return;
    }
    const sentAt = this.#pending.shift();
    if (sentAt === undefined) {
      t.extra++;
      add(t.notes, `extra ${key}`);
      return;
    }
    add(t.replies, key);
    t.replyMs.push(now() - sentAt);
    if (hasNonFinite(msg)) t.nonFinite++;
    this.#replies.push(msg);
    if (this.#replies.length > 256) this.#replies.shift();
    this.#wake();
  }

  #close(code: number): void {
    if (this.closedAt !== undefined) return;
    this.closedAt = now();
    live.delete(this.#handle);
    if (!this.#byUs) {
      add(this.tally.closes, String(code));
      this.tally.answeredByClose += this.#pending.length;
    }
    this.#pending = [];
    this.#wake();
  }
}

/** The TCP socket under a ws client (private to ws; used to write hand-made frames). */
function socketOf(ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket;
}

function hasNonFinite(v: unknown, depth = 0): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (depth > 8 || v === null || typeof v !== 'object' || v instanceof Uint8Array) return false;
  return Object.values(v).some((x) => hasNonFinite(x, depth + 1));
}

// -- hostile clients: payloads -----------------------------------------------------------------

/** A client frame header with a zero mask key (FIN bit per `fin`). */
function frameHeader(opcode: number, fin: boolean, length: number): Buffer {
  const ext = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const h = Buffer.alloc(2 + ext + 4);
  h[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) h[1] = 0x80 | length;
  else if (ext === 2) {
    h[1] = 0x80 | 126;
    h.writeUInt16BE(length, 2);
  } else {
    h[1] = 0x80 | 127;
    h.writeBigUInt64BE(BigInt(length), 2);
  }
  return h;
}

/** One binary message as `count` frames (continuation frames after the first), ready to write. */
function fragmented(payload: Buffer, count: number): Buffer {
  if (count === payload.length) {
    // one byte per frame: 2 header bytes, 4 zero mask bytes, the byte
    const out = Buffer.alloc(payload.length * 7);
    for (let i = 0; i < payload.length; i++) {
      out[i * 7] = (i === 0 ? 0x2 : 0x0) | (i === payload.length - 1 ? 0x80 : 0);
      out[i * 7 + 1] = 0x81;
      out[i * 7 + 6] = payload[i]!;
    }
    return out;
  }
  const size = Math.ceil(payload.length / count);
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < payload.length; at += size, i++) {
    const chunk = payload.subarray(at, at + size);
    parts.push(frameHeader(i === 0 ? 0x2 : 0x0, at + size >= payload.length, chunk.length), chunk);
  }
  return Buffer.concat(parts);
}

/** MessagePack array32 of `bytes - 5` empty fixmaps: millions of objects from a flat buffer. */
function flatMsgpackBomb(bytes: number): Buffer {
  const b = Buffer.alloc(bytes, 0x80);
  b[0] = 0xdd;
  b.writeUInt32BE(bytes - 5, 1);
  return b;
}

/** `[{},{},...]` of about `bytes` bytes. */
function flatJsonBomb(bytes: number): Buffer {
  const n = Math.floor((bytes - 1) / 3);
  const b = Buffer.alloc(3 * n + 1);
  b[0] = 0x5b; // [
  b.fill('{},', 1);
  b[3 * n] = 0x5d; // ] over the last comma
  return b;
}

interface Payloads {
  hello: Buffer;
  reset: Buffer;
  end: Buffer;
  /** A valid step without seq (small frames). */
  step: Buffer;
  frames: Record<string, Buffer>;
  /** openpi observation keys -> small frames */
  openpiFrames: Record<string, Buffer>;
  bombs: { name: string; path: 'native' | 'openpi'; text: boolean; session: boolean; data: Buffer; raw?: boolean }[];
  heavyStep: Buffer;
  heavyJpegBytes: number;
  echo: { name: string; path: 'native' | 'openpi'; data: Buffer }[];
  fragmentedStep: Buffer;
}

interface Card {
  views: string[];
  tasks: string[];
  image: { height: number; width: number };
}

/** What GET /v1/models says of the served model (the fields used here). */
interface ModelInfo {
  name: string;
  views: string[];
  tasks: { task: string }[];
  image: { height: number; width: number };
}

async function buildPayloads(card: Card, limits: Limits, openpiKeys: Record<string, string>): Promise<Payloads> {
  const task = card.tasks[0]!;
  const frames = (
    await framePool({ views: card.views, height: card.image.height, width: card.image.width, payload: 'jpeg' }, 2)
  )[0] as Record<string, Buffer>;
  const openpiFrames: Record<string, Buffer> = {};
  for (const [key, view] of Object.entries(openpiKeys)) openpiFrames[key] = frames[view]!;
  const hello = pack({ type: 'hello', protocol: 1, task, views: card.views, gamma: 0.99, shaping: 'pbrs' });
  const step = pack({ type: 'step', frames, reward: 0 });

  // Bombs fill a message up to just under maxPayloadBytes.
  const size = limits.maxPayloadBytes - 16;
  const flat = flatMsgpackBomb(size);
  const head = pack({ type: 'step', seq: 0, frames, state: null });
  if (head[head.length - 1] !== 0xc0) throw new Error('internal: the state bomb prefix does not end in nil');
  const stateBomb = Buffer.concat([head.subarray(0, -1), flatMsgpackBomb(size - head.length + 1)]);
  const flood = fragmented(pack(Buffer.alloc((1 << 20) - 5)), 1 << 20);
  const bombs: Payloads['bombs'] = [
    { name: 'flat-msgpack/native', path: 'native', text: false, session: false, data: flat },
    { name: 'flat-msgpack/openpi', path: 'openpi', text: false, session: false, data: flat },
    { name: 'deep-json', path: 'native', text: true, session: false, data: Buffer.from('['.repeat(1 << 20) + ']'.repeat(1 << 20)) },
    { name: 'flat-json', path: 'native', text: true, session: false, data: flatJsonBomb(size) },
    { name: 'state-bomb', path: 'native', text: false, session: true, data: stateBomb },
    { name: 'fragment-flood-1M', path: 'native', text: false, session: false, data: flood, raw: true },
  ];

  // One noisy 2048x2048 JPEG (all three views), within maxPayloadBytes and maxImagePixels.
  const noise = { type: 'gaussian' as const, mean: 128, sigma: 60 };
  const heavy = await sharp({ create: { width: 2048, height: 2048, channels: 3, background: { r: 128, g: 128, b: 128 }, noise } })
    .jpeg({ quality: 90 })
    .toBuffer();
  const heavyStep = pack({ type: 'step', frames: Object.fromEntries(card.views.map((v) => [v, heavy])), reward: 0 });
  if (heavyStep.length > limits.maxPayloadBytes)
    throw new Error(`internal: the heavy step is ${heavyStep.length} bytes, over maxPayloadBytes`);

  const big = 'x'.repeat(1 << 20);
  const echo: Payloads['echo'] = [
    { name: 'task', path: 'native', data: pack({ type: 'hello', protocol: 1, task: big, gamma: 0.99, shaping: 'pbrs' }) },
    { name: 'model', path: 'native', data: pack({ type: 'hello', protocol: 1, task, model: big, gamma: 0.99, shaping: 'pbrs' }) },
    { name: 'views', path: 'native', data: pack({ type: 'hello', protocol: 1, task, views: [big], gamma: 0.99, shaping: 'pbrs' }) },
    { name: 'prompt', path: 'openpi', data: pack({ ...openpiFrames, prompt: big }) },
  ];
  return {
    hello,
    reset: pack({ type: 'reset' }),
    end: pack({ type: 'end' }),
    step,
    frames,
    openpiFrames,
    bombs,
    heavyStep,
    heavyJpegBytes: heavy.length,
    echo,
    fragmentedStep: fragmented(step, 4096),
  };
}

// -- hostile clients: behaviours ---------------------------------------------------------------

interface Attack {
  native: string;
  openpi: string;
  host: string;
  port: number;
  p: Payloads;
  task: string;
  /** True while new hostile work may start. */
  running: () => boolean;
  tally: (name: string) => Tally;
  /** Slot holders still open past helloTimeoutMs + slack; slow upgrades likewise for upgradeTimeoutMs. */
  slotsHeld: number;
  slotCloseMs: number[];
  upgradesHeld: number;
  upgradeHoldMs: number[];
}

/** Run `body` again and again while the attack runs (a failure is noted, not fatal), pausing between. */
async function repeat(a: Attack, name: string, pauseMs: number, body: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; a.running(); i++) {
    try {
      await body(i);
    } catch (err) {
      add(a.tally(name).notes, `script error: ${err instanceof Error ? err.message.slice(0, 80) : String(err)}`);
    }
    if (a.running()) await sleep(pauseMs);
  }
}

/** A native session that got its hello and reset answered; undefined (closed) otherwise. */
async function session(a: Attack, t: Tally, hello = a.p.hello): Promise<Peer | undefined> {
  const peer = await Peer.open(a.native, t);
  if (!peer) return undefined;
  for (const msg of [hello, a.p.reset]) {
    const r = await peer.request(msg);
    if (typeof r !== 'object') return undefined;
  }
  return peer;
}

/** The bombs of one lane in turn, each on a fresh connection, waiting for its reply or close. */
async function bombs(a: Attack, lane: number, lanes: number): Promise<void> {
  const mine = a.p.bombs.filter((_, j) => j % lanes === lane);
  await repeat(a, 'bombs', 1000, async (i) => {
    const b = mine[i % mine.length]!;
    const t = a.tally(`bomb ${b.name}`);
    const peer = b.session ? await session(a, t) : await Peer.open(b.path === 'native' ? a.native : a.openpi, t, b.path === 'openpi');
    if (!peer) return;
    if (b.raw) peer.sendRaw(b.data, 1);
    else peer.send(b.data, { text: b.text });
    await peer.finish();
  });
}

/** Connections that never send a valid hello; each is checked at helloTimeoutMs + slack after opening. */
async function slotHolder(a: Attack, kind: 'junk-step' | 'junk-bytes' | 'silent'): Promise<void> {
  const t = a.tally(`slot-holder ${kind}`);
  const junk = pack({ type: 'step' });
  await repeat(a, t.name, 200, async () => {
    const peer = await Peer.open(a.native, t);
    if (!peer) return;
    const deadline = peer.openedAt + HELLO_TIMEOUT_MS + DEADLINE_SLACK_MS;
    while (!peer.closed && now() < deadline) {
      if (kind === 'junk-step') peer.send(junk);
      else if (kind === 'junk-bytes') peer.send(randomBytes(64));
      await peer.waitClose(Math.min(500, deadline - now()));
    }
    if (peer.closed) a.slotCloseMs.push(peer.closedAt! - peer.openedAt);
    else {
      a.slotsHeld++;
      add(t.notes, 'held past deadline');
    }
    await peer.finish(5000);
  });
}

/** Clients that stop reading, sending requests whose error replies would echo 1 MiB. */
async function echoAmplifier(a: Attack, first: number): Promise<void> {
  await repeat(a, 'echo', 200, async (i) => {
    const e = a.p.echo[(first + i) % a.p.echo.length]!;
    const t = a.tally(`echo ${e.name}`);
    const peer = await Peer.open(e.path === 'native' ? a.native : a.openpi, t, e.path === 'openpi');
    if (!peer) return;
    // One reply read (its size shows whether the server echoes the 1 MiB), then no more reads.
    if (typeof (await peer.request(e.data)) !== 'object') return peer.terminate();
    peer.pause();
    for (let k = 0; k < 16 && peer.send(e.data, { reply: false }); k++);
    await peer.waitClose(8000);
    if (peer.closed) add(t.notes, 'closed by server');
    peer.terminate();
  });
}

/** 3 views of a 2048x2048 JPEG per step, the next step as soon as the reply came. */
async function heavyFrames(a: Attack): Promise<void> {
  const t = a.tally('heavy 3x2048x2048');
  await repeat(a, t.name, 500, async () => {
    const peer = await session(a, t);
    if (!peer) return;
    for (let k = 1; a.running() && !peer.closed; k++) {
      const r = await peer.request(a.p.heavyStep);
      if (typeof r !== 'object') break;
      if (k % 100 === 0 && (typeof (await peer.request(a.p.end)) !== 'object' || typeof (await peer.request(a.p.reset)) !== 'object'))
        break;
    }
    await peer.finish();
  });
}

/** Raw TCP sockets with an unfinished upgrade request, held (or trickled a byte a second) until the server cuts them. */
async function slowUpgrade(a: Attack, trickle: boolean): Promise<void> {
  const t = a.tally(`slow-upgrade ${trickle ? 'trickle' : 'hold'}`);
  await repeat(a, t.name, 100, async () => {
    t.connects++;
    const sock = tcpConnect({ host: a.host, port: a.port });
    const handle = { kill: () => sock.destroy() };
    live.add(handle);
    let closedAt: number | undefined;
    let answer = '';
    const closed = new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => (answer += d.toString('latin1').slice(0, 100)));
      sock.on('error', () => {});
      sock.once('close', () => {
        closedAt = now();
        resolve();
      });
    });
    const connected = await Promise.race([
      new Promise<boolean>((r) => sock.once('connect', () => r(true))),
      closed.then(() => false),
      sleep(CONNECT_TIMEOUT_MS).then(() => false),
    ]);
    if (!connected) {
      add(t.connectFailures, 'no connect');
      sock.destroy();
      live.delete(handle);
      return;
    }
    const t0 = now();
    sock.write(`GET /v1/stream HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Slow: `);
    t.sent++;
    const deadline = t0 + UPGRADE_TIMEOUT_MS + DEADLINE_SLACK_MS;
    let counted = false;
    while (closedAt === undefined && a.running()) {
      if (trickle) sock.write('a');
      await Promise.race([closed, sleep(1000)]);
      if (closedAt === undefined && !counted && now() >= deadline) {
        counted = true;
        a.upgradesHeld++;
        add(t.notes, 'held past deadline');
      }
    }
    if (closedAt !== undefined) {
      a.upgradeHoldMs.push(closedAt - t0);
      add(t.closes, answer === '' ? 'tcp close' : `tcp close after "${answer.split('\r\n')[0]}"`);
    } else add(t.notes, 'open at the end');
    sock.destroy();
    live.delete(handle);
  });
}

/** Clients that vanish: after a step, halfway through a frame, or halfway through the upgrade. */
async function abrupt(a: Attack, first: number): Promise<void> {
  await repeat(a, 'abrupt', 50, async (i) => {
    const kind = (['after-step', 'half-frame', 'mid-upgrade'] as const)[(first + i) % 3]!;
    const t = a.tally(`abrupt ${kind}`);
    if (kind === 'mid-upgrade') {
      t.connects++;
      const sock = tcpConnect({ host: a.host, port: a.port });
      sock.on('error', () => {});
      sock.once('connect', () => {
        const key = randomBytes(16).toString('base64');
        sock.write(
          `GET /v1/stream HTTP/1.1\r\nHost: ${a.host}:${a.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
        );
        t.sent++;
        sock.destroy();
      });
      await Promise.race([new Promise((r) => sock.once('close', r)), sleep(CONNECT_TIMEOUT_MS)]);
      sock.destroy();
      return;
    }
    const peer = await session(a, t);
    if (!peer) return;
    if (kind === 'after-step') peer.send(a.p.step, { reply: false });
    else {
      const header = frameHeader(0x2, true, a.p.step.length);
      socketOf(peer.ws).write(Buffer.concat([header, a.p.step.subarray(0, a.p.step.length >> 1)]));
      t.sent++;
    }
    peer.terminate();
  });
}

/** Rewards of 1e308 (sums overflow), scale 1e308, NaN and infinite values, seq 1e308: each must get one reply. */
async function numbers(a: Attack): Promise<void> {
  const t = a.tally('numbers');
  const { frames } = a.p;
  const step = (fields: Record<string, unknown>) => pack({ type: 'step', frames, ...fields });
  const hello = (fields: Record<string, unknown>) =>
    pack({ type: 'hello', protocol: 1, task: a.task, gamma: 0.99, shaping: 'pbrs', ...fields });
  const base64 = Object.fromEntries(Object.entries(frames).map(([v, b]) => [v, b.toString('base64')]));
  const jsonInfinity = Buffer.from(`{"type":"step","reward":1e999,"frames":${JSON.stringify(base64)}}`);
  await repeat(a, t.name, 200, async (i) => {
    const native = i % 3 !== 2;
    const peer = await Peer.open(native ? a.native : a.openpi, t, !native);
    if (!peer) return;
    let script: { data: Buffer; text?: boolean }[];
    if (i % 3 === 0) {
      script = [
        { data: hello({ scale: 1e308 }) },
        { data: hello({ scale: 1e6 }) }, // a second hello if the first was taken: SW_ERR_PROTOCOL, still one reply
        { data: a.p.reset },
        ...Array.from({ length: 10 }, (_, k) => ({ data: step({ seq: k, reward: k % 2 ? 1e12 : 1e308 }) })),
        { data: a.p.end }, // the summary's sums must stay finite
        { data: a.p.reset },
        { data: step({ reward: NaN }) },
        { data: step({ reward: -Infinity }) },
        { data: step({ reward: 'NaN' }) },
        { data: step({ reward: 1e308, seq: 1e308 }) },
        { data: step({ reward: Number.MAX_VALUE, terminated: 'yes' }) },
        { data: jsonInfinity, text: true },
        { data: step({ reward: -1e308, seq: 99 }) },
        { data: a.p.end },
      ];
    } else if (i % 3 === 1) {
      script = [
        { data: hello({ gamma: NaN }) },
        { data: hello({ gamma: 1e308 }) },
        { data: hello({ scale: Infinity }) },
        { data: hello({ scale: NaN }) },
        { data: hello({ fps: NaN }) },
        { data: hello({ fps: 1e308, scale: -1e308 }) },
        { data: a.p.reset },
        ...Array.from({ length: 3 }, (_, k) => ({ data: step({ seq: k, reward: 1e308 }) })),
        { data: a.p.end },
      ];
    } else {
      const obs = (fields: Record<string, unknown>) => pack({ ...a.p.openpiFrames, prompt: a.task, ...fields });
      script = [
        ...Array.from({ length: 5 }, () => ({ data: obs({ reward: 1e308 }) })),
        { data: obs({ reward: NaN }) },
        { data: obs({ reset: true, gamma: NaN }) },
        { data: obs({ reset: true, gamma: 0.99, reward: Infinity }) },
        { data: obs({ episode: 1e308 }) },
      ];
    }
    for (const m of script) if (typeof (await peer.request(m.data, { text: m.text })) !== 'object') break;
    await peer.finish();
  });
}

/** A valid step in 4096 fragments, five times per connection; each must get its reward. */
async function fragments(a: Attack): Promise<void> {
  const t = a.tally('fragmented step 4096');
  await repeat(a, t.name, 200, async () => {
    const peer = await session(a, t);
    if (!peer) return;
    for (let k = 0; k < 5 && a.running(); k++) {
      if (!peer.sendRaw(a.p.fragmentedStep, 1) || typeof (await peer.next()) !== 'object') break;
    }
    await peer.finish();
  });
}

/** After hello, 1000 small requests (end without an episode) that are never read, held 5 s. */
async function quietReader(a: Attack): Promise<void> {
  const t = a.tally('small replies (no reads)');
  await repeat(a, t.name, 200, async () => {
    const peer = await Peer.open(a.native, t);
    if (!peer) return;
    if (typeof (await peer.request(a.p.hello)) !== 'object') return peer.terminate();
    peer.pause();
    for (let k = 0; k < 1000 && peer.send(a.p.end, { reply: false }); k++);
    await peer.waitClose(5000);
    peer.terminate();
  });
}

/** Every hostile client kind at once until `end`, then a bounded drain; the figures in `a`. */
async function runAttack(a: Attack, end: number, kinds: readonly AttackerKind[]): Promise<void> {
  const on = (k: AttackerKind) => kinds.includes(k);
  const loops: Promise<void>[] = [];
  if (on('numbers')) loops.push(numbers(a));
  if (on('fragments')) loops.push(fragments(a));
  if (on('bombs')) for (let i = 0; i < BOMB_LANES; i++) loops.push(bombs(a, i, BOMB_LANES));
  if (on('heavy')) for (let i = 0; i < HEAVY_CLIENTS; i++) loops.push(heavyFrames(a));
  if (on('slot-holders'))
    for (let i = 0; i < SLOT_HOLDERS; i++) loops.push(slotHolder(a, i % 8 < 3 ? 'junk-step' : i % 8 < 6 ? 'junk-bytes' : 'silent'));
  if (on('echo')) for (let i = 0; i < ECHO_CLIENTS; i++) loops.push(echoAmplifier(a, i));
  if (on('slow-upgrades')) for (let i = 0; i < SLOW_UPGRADES; i++) loops.push(slowUpgrade(a, i % 2 === 1));
  if (on('abrupt')) for (let i = 0; i < ABRUPT_LOOPS; i++) loops.push(abrupt(a, i));
  if (on('quiet-readers')) for (let i = 0; i < QUIET_READERS; i++) loops.push(quietReader(a));
  const all = Promise.all(loops);
  // Waits for replies are bounded by REPLY_TIMEOUT_MS; past that plus slack, whatever is still open is cut.
  const hardStop = end + REPLY_TIMEOUT_MS + 10_000;
  await Promise.race([all, sleep(hardStop - now())]);
  for (const h of [...live]) h.kill();
  await Promise.race([all, sleep(5000)]);
}

// -- the run -----------------------------------------------------------------------------------

function readLimits(): { limits: Limits; openpiKeys: Record<string, string> } {
  const config = JSON.parse(readFileSync(join(REPO_ROOT, 'configs', 'default.json'), 'utf8')) as {
    limits: Record<string, number>;
    openpi: { views: Record<string, string> };
  };
  const pick = (key: string, env: string, fallback: number): number => {
    const v = Number(process.env[env] ?? config.limits[key] ?? fallback);
    return Number.isFinite(v) ? v : fallback;
  };
  return {
    limits: {
      maxPayloadBytes: pick('maxPayloadBytes', 'STAGEWARD_MAX_PAYLOAD_BYTES', 16777216),
      maxSessions: pick('maxSessions', 'STAGEWARD_MAX_SESSIONS', 64),
      shutdownGraceMs: pick('shutdownGraceMs', 'STAGEWARD_SHUTDOWN_GRACE_MS', 10000),
    },
    openpiKeys: config.openpi.views,
  };
}

function robotLine(r: LoadResult, offered: number): string {
  const errors = Object.entries(r.errors);
  return (
    // A figure with no samples is NaN in the worker, null once through JSON.
    `    ${r.steps_per_s} steps/s of ${offered} offered, p50 ${ms(r.latency_p50_ms ?? NaN)}, p99 ${ms(r.latency_p99_ms ?? NaN)}, ` +
    `max ${ms(r.latency_max_ms ?? NaN)}, ` +
    `lost ${r.lost}, out of order ${r.out_of_order}, errors ${errors.length ? errors.map(([k, v]) => `${k} ${v}`).join(', ') : 0}, ` +
    `skipped ticks ${r.skipped_ticks}`
  );
}

async function fuzz(seconds: number): Promise<{ execs: number; findings: number; status: string }> {
  if (seconds === 0) return { execs: 0, findings: 0, status: 'skipped (--fuzz-seconds 0)' };
  if (!existsSync(FUZZ)) return { execs: 0, findings: 0, status: 'not run: scripts/fuzz.ts does not exist' };
  // Its own process group: the fuzzer runs each target in a child of its own, which a kill must reach too.
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', FUZZ, '--seconds', String(seconds)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }),
    true,
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-100_000)));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const timer = setTimeout(() => kill(child), (seconds + 120) * 1000);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  const last = out.trim().split('\n').at(-1) ?? '';
  try {
    const j = JSON.parse(last) as { fuzz_execs?: unknown; fuzz_findings?: unknown };
    if (typeof j.fuzz_execs === 'number') {
      const findings = Number(j.fuzz_findings ?? 0);
      return { execs: j.fuzz_execs, findings, status: code === 0 ? 'ok' : code === 1 && findings > 0 ? 'findings' : `exit ${code}` };
    }
  } catch {
    // reported below
  }
  return { execs: 0, findings: 0, status: `failed (exit ${code}): ${(err.trim().split('\n').at(-1) ?? last).slice(0, 200)}` };
}

async function soak(o: Options): Promise<void> {
  const { limits, openpiKeys } = readLimits();
  const phaseS = (o.minutes * 60) / 2;
  const attackers = SLOT_HOLDERS + ECHO_CLIENTS + HEAVY_CLIENTS + ABRUPT_LOOPS + QUIET_READERS + BOMB_LANES + 2; // + numbers, fragments
  if (attackers + SLOW_UPGRADES > MAX_ATTACK_SOCKETS) throw new Error('internal: too many attacker sockets');
  console.log(
    `soak: ${o.robots} robots at ${o.hz} Hz (${o.robots * o.hz} steps/s offered), ${phaseS} s baseline then ${phaseS} s under attack; ` +
      `helloTimeoutMs ${HELLO_TIMEOUT_MS}, upgradeTimeoutMs ${UPGRADE_TIMEOUT_MS}`,
  );
  if (o.robots + attackers > limits.maxSessions)
    console.log(
      `note: ${o.robots} robots + about ${attackers} hostile WebSocket clients exceed maxSessions (${limits.maxSessions}); some attackers will be refused`,
    );

  const busy = loadavg()[0]!;
  if (busy > 0.5)
    console.log(
      `note: load average ${busy.toFixed(2)} on ${cpus().length} cores before starting; other work on this machine skews every figure below`,
    );
  const server = await startServer(o.model);
  const rss = new RssSampler(server.child.pid!);
  try {
    const info = (JSON.parse((await fetchText(`${server.http}/v1/models`, 10_000)).body) as { models: ModelInfo[] }).models[0]!;
    const card: Card = { views: info.views, tasks: info.tasks.map((t) => t.task), image: info.image };
    console.log(`server ${server.url} (pid ${server.child.pid}), model ${info.name}: views ${card.views.join('/')}, task ${card.tasks[0]}`);
    const robots = pacedRobots(`${server.url}/v1/stream`, info, {
      robots: o.robots,
      hz: o.hz,
      durationS: phaseS,
      warmupS: Math.min(5, phaseS / 5),
      openpiKeys,
      drainTimeoutMs: REPLY_TIMEOUT_MS,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
    });
    const p = await buildPayloads(card, limits, openpiKeys);
    console.log(
      `payloads: bombs of ${(limits.maxPayloadBytes / 2 ** 20).toFixed(0)} MiB less 16 bytes, heavy step ${(p.heavyStep.length / 2 ** 20).toFixed(1)} MiB ` +
        `(3 x ${(p.heavyJpegBytes / 2 ** 20).toFixed(1)} MiB JPEG 2048x2048), echo requests 1 MiB, fragment flood ${(p.bombs.find((b) => b.raw)!.data.length / 2 ** 20).toFixed(1)} MiB of frames`,
    );

    // Rounds of A (the robots alone) and B (the same robots, connected first, then every attacker
    // beside them), alternating, so that drift in what else the machine runs falls on both alike.
    const roundS = phaseS / o.rounds;
    const baselines: (LoadResult | undefined)[] = [];
    const attacks: (LoadResult | undefined)[] = [];
    const healthA: HealthzStats[] = [];
    const healthB: HealthzStats[] = [];
    const cpuA: number[] = [];
    const cpuB: number[] = [];
    let baselineRss = 0;
    const tallies = new Map<string, Tally>();
    let end = 0;
    const attack: Attack = {
      native: `${server.url}/v1/stream`,
      openpi: `${server.url}/openpi`,
      host: server.host,
      port: server.port,
      p,
      task: card.tasks[0]!,
      running: () => now() < end && server.exit === undefined,
      tally: (name) => {
        let t = tallies.get(name);
        if (!t) tallies.set(name, (t = new Tally(name)));
        return t;
      },
      slotsHeld: 0,
      slotCloseMs: [],
      upgradesHeld: 0,
      upgradeHoldMs: [],
    };
    const roundRobots: LoadConfig = { ...robots, durationS: roundS, warmupS: Math.min(5, roundS / 5) };
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    let attackerCpuMs = 0;
    let attackMs = 0;
    for (let round = 1; round <= o.rounds && server.exit === undefined; round++) {
      const of = o.rounds > 1 ? ` (round ${round} of ${o.rounds})` : '';
      console.log(`A. baseline${of}: ${o.robots} robots at ${o.hz} Hz for ${roundS} s...`);
      const pollA = startPoller(`${server.http}/healthz`);
      const fromA = { cpu: cpuSeconds(server.child.pid!), at: now() };
      let baseline: LoadResult | undefined;
      try {
        baseline = await runRobots(roundRobots);
        console.log(robotLine(baseline, o.robots * o.hz));
      } catch (err) {
        console.log(`    robots failed: ${(err as Error).message.slice(0, 400)}`);
      }
      baselines.push(baseline);
      cpuA.push(cpuPct(server.child.pid!, fromA));
      const hA = await pollA.stop();
      healthA.push(hA);
      baselineRss = Math.max(baselineRss, rss.peakMb);
      console.log(
        `    /healthz max ${ms(hA.max)} (p99 ${ms(hA.p99)}, ${hA.polls} polls, ${hA.failures} failed); server peak RSS so far ${rss.peakMb.toFixed(0)} MB, ` +
          `server CPU ${cpuA.at(-1)!.toFixed(0)}% of one core (of ${cpus().length * 100}%)`,
      );

      console.log(`B. attack${of}: ${o.robots} robots at ${o.hz} Hz for ${roundS} s with hostile clients...`);
      const underAttack = runRobots(roundRobots).then(
        (r) => r,
        (err: Error) => err,
      );
      let settled = false;
      void underAttack.then(() => (settled = true));
      const waitUntil = now() + CONNECT_TIMEOUT_MS + 10_000;
      while (!settled && !server.exit && now() < waitUntil && ((await sessionsNow(server)) ?? 0) < o.robots) await sleep(100);
      const pollB = startPoller(`${server.http}/healthz`);
      const fromB = { cpu: cpuSeconds(server.child.pid!), at: now() };
      end = now() + roundS * 1000;
      loopDelay.enable();
      const cpu0 = process.cpuUsage();
      const t0 = now();
      await runAttack(attack, end, o.attackers);
      const cpu = process.cpuUsage(cpu0);
      attackerCpuMs += (cpu.user + cpu.system) / 1000;
      attackMs += now() - t0;
      loopDelay.disable();
      const r = await underAttack;
      attacks.push(r instanceof Error ? undefined : r);
      if (r instanceof Error) console.log(`    robots failed: ${r.message.slice(0, 400)}`);
      else console.log(robotLine(r, o.robots * o.hz));
      cpuB.push(server.exit ? NaN : cpuPct(server.child.pid!, fromB));
      const hB = await pollB.stop();
      healthB.push(hB);
      console.log(
        `    /healthz max ${ms(hB.max)} (p99 ${ms(hB.p99)}, ${hB.polls} polls, ${hB.failures} failed); ` +
          `server CPU ${cpuB.at(-1)!.toFixed(0)}% of one core`,
      );
    }
    const attackerCpuPct = (attackerCpuMs / attackMs) * 100;
    console.log('    hostile clients (every attack round):');
    for (const t of [...tallies.values()].sort((x, y) => x.name.localeCompare(y.name))) console.log(t.line());
    console.log(
      `    slot holders: ${attack.slotsHeld} held past helloTimeoutMs + ${DEADLINE_SLACK_MS} ms; ` +
        `closed ones after p50 ${ms(quantile(attack.slotCloseMs, 0.5))}, max ${ms(maxOf(attack.slotCloseMs))}`,
    );
    console.log(
      `    slow upgrades: ${attack.upgradesHeld} held past upgradeTimeoutMs + ${DEADLINE_SLACK_MS} ms; ` +
        `cut ones held p50 ${ms(quantile(attack.upgradeHoldMs, 0.5))}, max ${ms(maxOf(attack.upgradeHoldMs))}`,
    );
    console.log(
      `    this process (attackers) used ${attackerCpuPct.toFixed(0)}% of one core, event-loop delay max ${ms(loopDelay.max / 1e6)}` +
        (attackerCpuPct > 70 ? ' (CPU-bound: the attackers ran slower than asked)' : ''),
    );

    // After the attack
    const alive = server.exit === undefined;
    if (!alive) {
      console.log(`the server DIED during the attack (exit ${server.exit!.code ?? server.exit!.signal}); its last stderr lines:`);
      for (const line of server.stderr.slice(-15)) console.log(`    ${line}`);
    }
    let stallMs: number | null = null;
    let loopMaxMs: number | null = null;
    let stallSource = 'healthz';
    const serverErrors: Counts = {};
    let sessionsAfter: number | undefined;
    if (alive) {
      try {
        const metrics = (await fetchText(`${server.http}/metrics`, 10_000)).body;
        const gauge = (name: string): number | null => {
          const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`, 'm').exec(metrics);
          return m && Number.isFinite(Number(m[1])) ? Number(m[1]) * 1000 : null;
        };
        loopMaxMs = gauge('stageward_event_loop_delay_max_seconds');
        stallMs = gauge('stageward_message_decode_max_seconds');
        if (stallMs !== null) stallSource = 'metrics';
        for (const e of metrics.matchAll(/^stageward_errors_total\{code="([^"]+)"\}\s+(\S+)/gm)) serverErrors[e[1]!] = Number(e[2]);
      } catch (err) {
        console.log(`GET /metrics failed: ${(err as Error).message}`);
      }
      const until = now() + 10_000;
      do sessionsAfter = await sessionsNow(server);
      while (sessionsAfter !== 0 && now() < until && (await sleep(250).then(() => true)));
    }
    const healthMax = (hs: HealthzStats[]) => Math.max(...hs.map((h) => h.max));
    if (stallMs === null) stallMs = Math.max(healthMax(healthA), healthMax(healthB));
    console.log(
      `server: ${alive ? 'alive' : 'dead'}; max stall from one message ${ms(stallMs)} (${stallSource === 'metrics' ? 'stageward_message_decode_max_seconds' : `/healthz latency: ${alive ? 'the gauge is absent' : 'no /metrics from a dead server'}`}); ` +
        `event-loop delay max ${loopMaxMs === null ? '-' : ms(loopMaxMs)} (all load together); ` +
        `errors_total ${fmt(serverErrors)}; internal errors logged ${server.internalErrors}; sessions 10 s after the attack ${sessionsAfter ?? '-'}`,
    );

    console.log(o.fuzzSeconds > 0 ? `fuzz: scripts/fuzz.ts --seconds ${o.fuzzSeconds}...` : 'fuzz: skipped');
    const f = await fuzz(o.fuzzSeconds);
    console.log(`    ${f.execs} execs, ${f.findings} findings (${f.status})`);

    const graceMs = limits.shutdownGraceMs;
    const shutdownMs = alive ? await stopServer(server, graceMs + 5000) : null;
    if (alive)
      console.log(
        `SIGTERM: ${shutdownMs === null ? `still running after ${graceMs + 5000} ms, killed` : `exited in ${ms(shutdownMs)}`} ` +
          `(shutdownGraceMs ${graceMs})`,
      );
    rss.stop();

    const tl = [...tallies.values()];
    const hostileLost = tl.reduce((n, t) => n + t.lost + t.extra, 0);
    const robotLost = [...baselines, ...attacks].reduce((n, x) => n + (x ? x.lost + x.out_of_order : 0), 0);
    // Each phase's figure is the median over its rounds (a failed round counts as NaN: no figure).
    const med = (rs: (LoadResult | undefined)[], f: (r: LoadResult) => number | null) => {
      const xs = rs.map((r) => (r ? (f(r) ?? NaN) : NaN));
      return xs.some((x) => !Number.isFinite(x)) ? NaN : quantile(xs, 0.5);
    };
    const baseP99 = med(baselines, (r) => r.latency_p99_ms);
    const attackP99 = med(attacks, (r) => r.latency_p99_ms);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const figures = {
      p99_ratio_under_attack: round(attackP99 / baseP99),
      peak_rss_mb: round(rss.peakMb, 1),
      max_stall_ms: round(stallMs, 1),
      slots_held_past_deadline: attack.slotsHeld,
      lost_replies: robotLost + hostileLost,
      crashes: server.exit && !server.exit.expected ? 1 : 0,
      fuzz_execs: f.execs,
      fuzz_findings: f.findings,
      baseline_p99_ms: round(baseP99),
      attack_p99_ms: round(attackP99),
      baseline_p99_ms_rounds: baselines.map((r) => round(r?.latency_p99_ms ?? NaN)),
      attack_p99_ms_rounds: attacks.map((r) => round(r?.latency_p99_ms ?? NaN)),
      attack_max_ms: round(Math.max(...attacks.map((r) => r?.latency_max_ms ?? NaN))),
      steps_per_s: round(med(attacks, (r) => r.steps_per_s)),
      baseline_steps_per_s: round(med(baselines, (r) => r.steps_per_s)),
      robot_errors_under_attack: attacks.every((r) => r !== undefined)
        ? attacks.reduce((n, r) => n + Object.values(r!.errors).reduce((a, b) => a + b, 0), 0)
        : null,
      robot_lost_replies: robotLost,
      hostile_lost_replies: hostileLost,
      stall_source: stallSource,
      event_loop_delay_max_ms: loopMaxMs === null ? null : round(loopMaxMs, 1),
      healthz_max_ms_baseline: round(healthMax(healthA), 1),
      healthz_max_ms_attack: round(healthMax(healthB), 1),
      baseline_peak_rss_mb: round(baselineRss, 1),
      slow_upgrades_held_past_deadline: attack.upgradesHeld,
      slow_upgrade_max_hold_ms: round(maxOf(attack.upgradeHoldMs), 0),
      non_finite_replies: tl.reduce((n, t) => n + t.nonFinite, 0),
      server_internal_errors: server.internalErrors,
      sessions_after_attack: sessionsAfter ?? null,
      shutdown_ms: shutdownMs === null ? null : round(shutdownMs, 0),
      shutdown_within_grace: alive ? shutdownMs !== null && shutdownMs <= graceMs : null,
      attacker_cpu_pct: round(attackerCpuPct, 0),
      server_cpu_pct_baseline: round(mean(cpuA), 0),
      server_cpu_pct_attack: round(mean(cpuB), 0),
      fuzz_status: f.status,
      hz: o.hz,
      robots: o.robots,
      minutes: o.minutes,
      rounds: o.rounds,
    };
    const check = (name: string, value: number | null, target: number, unit = '') =>
      `  ${name.padEnd(28)} ${String(value ?? '-').padStart(10)}${unit.padEnd(3)} target <= ${target}${unit}  ${value !== null && value <= target ? 'met' : 'MISSED'}`;
    console.log('figures vs targets:');
    console.log(check('p99 ratio under attack', figures.p99_ratio_under_attack, TARGETS.p99_ratio, 'x'));
    console.log(check('peak RSS', figures.peak_rss_mb, TARGETS.peak_rss_mb, 'MB'));
    console.log(check(`max stall (${stallSource})`, figures.max_stall_ms, TARGETS.max_stall_ms, 'ms'));
    console.log(check('slots held past deadline', figures.slots_held_past_deadline, TARGETS.slots_held_past_deadline));
    console.log(check('lost replies', figures.lost_replies, TARGETS.lost_replies));
    console.log(check('crashes', figures.crashes, TARGETS.crashes));
    console.log(JSON.stringify(figures));
  } finally {
    rss.stop();
    for (const h of [...live]) h.kill();
    if (!server.exit) await stopServer(server, limits.shutdownGraceMs + 5000);
  }
}

function numberArg(min: number, max: number, integer = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(`must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}]`);
    return n;
  };
}

const program = new Command('soak')
  .description('the reward server under hostile clients beside well-behaved robots: latency, memory, stalls, deadlines, lost replies')
  .option('--minutes <n>', 'length of the two phases together (half baseline, half under attack)', numberArg(0.2, 600), 4)
  .option(
    '--hz <n>',
    'steps per second per robot; the default 5 Hz (160 steps/s for 32 robots) is a load a 2-core machine serves with headroom, ' +
      'while 32 x 30 Hz is more than it serves at all, so the attack phase would measure overload, not the attack',
    numberArg(0.1, 100),
    5,
  )
  .option('--robots <n>', 'well-behaved robots (3 views of 96x96 JPEG per step)', numberArg(1, 64, true), 32)
  .option('--model <dir>', 'model package to serve (default: the bundled one, models/zoo/pick_place)')
  .option('--fuzz-seconds <n>', 'seconds of scripts/fuzz.ts after the attack (0: none)', numberArg(0, 3600, true), 60)
  .option(
    '--rounds <n>',
    'baseline and attack phases alternate this many times each (--minutes is shared among them); the p99s are medians over rounds',
    numberArg(1, 20, true),
    2,
  )
  .option(
    '--attackers <kinds>',
    `comma-separated attacker kinds to run (${ATTACKER_KINDS.join(', ')}); default all`,
    (v: string): AttackerKind[] => {
      const kinds = v.split(',').map((k) => k.trim());
      for (const k of kinds)
        if (!(ATTACKER_KINDS as readonly string[]).includes(k))
          throw new InvalidArgumentError(`unknown attacker kind "${k.slice(0, 40)}" (use ${ATTACKER_KINDS.join(', ')})`);
      return kinds as AttackerKind[];
    },
    [...ATTACKER_KINDS],
  )
  .addHelpText(
    'after',
    `\nTargets: p99 ratio under attack <= ${TARGETS.p99_ratio}, peak RSS <= ${TARGETS.peak_rss_mb} MB, max stall <= ${TARGETS.max_stall_ms} ms, ` +
      'slots held past deadline 0, lost replies 0, crashes 0. The last output line is one JSON object; the exit status is 0 whatever ' +
      'the figures, non-zero only when the script fails.',
  );

async function main(): Promise<void> {
  program.parse(process.argv);
  const o = program.opts<Options>();
  const onSignal = () => {
    console.error('soak: interrupted; stopping its child processes');
    killChildren();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killChildren);
  // Every step has its own bound; this one backs them all.
  const boundMs = o.minutes * 60_000 + o.fuzzSeconds * 1000 + 8 * 60_000;
  setTimeout(() => {
    console.error(`soak: still running after ${Math.round(boundMs / 1000)} s, its outer bound; giving up`);
    killChildren();
    process.exit(1);
  }, boundMs).unref();
  await soak(o);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killChildren();
    process.exit(1);
  },
);
