// Replicas behind a real nginx: `stageward serve` replicas (child processes, the bundled model) on
// loopback, nginx in front of them with deploy/nginx.conf (bench/nginx.ts), and robots streaming
// 3-view JPEG steps through nginx with the TypeScript client, reconnect on.
//
//   npm run bench:scale                                  # 3 replicas, 32 robots, 30 s, 30 Hz
//   npm run bench:scale -- --robots 8 --duration-s 10
//
// (a) the same robots through nginx to one replica, for `durationS`: steps_per_s_single_replica;
// (b) through nginx to `replicas` replicas; at `drainAtS` the replica holding the most robots gets
//     SIGTERM. It drains (answers what it has, /healthz 503, upgrades 503, then 1001 to each robot);
//     its robots reconnect through nginx, which sends them to the others; they reset and go on.
// Every robot checks each reply: `step` counts up by one within an episode (else out of order) and
// `end`'s summary counts the steps it was answered. A request on an open connection that gets no
// reply (no reply within 20 s, or a close that is not the drain's 1001) is a lost reply; requests on
// the wire when the drain's close arrived are counted apart (in_flight_at_close): the client rejects
// them with the close, so the robot knows, and the protocol never re-sends them.
// Last output line: {"replicas", "robots", "lost_replies", "out_of_order", "sessions_per_replica",
// "failover_reconnects", "steps_per_s", "steps_per_s_single_replica", ...}

import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/paths.ts';
import { quantile } from '../core/stats.ts';
import { StagewardError } from '../core/errors.ts';
import { StagewardClient, type ReadyReply } from '../server/client.ts';
import { framePool } from './load-worker.ts';
import { startChild, stopChild, type Started } from './child-server.ts';
import { findNginx, startNginx, type Nginx } from './nginx.ts';

export interface ScaleOptions {
  replicas: number;
  robots: number;
  /** Steps per second per robot (each robot has one step in flight; a slower reply slows it). */
  hz: number;
  /** Seconds of each phase. */
  durationS: number;
  /** Seconds into phase (b) when one replica gets SIGTERM; null: no drain. Default (undefined): half of durationS. */
  drainAtS?: number | null;
  /** Run phase (a) too. */
  single: boolean;
  /** Steps per episode before end and reset. */
  episodeSteps: number;
  /** Model package the replicas serve (default: the bundled one). */
  model?: string;
  task: string;
  /** Progress lines on stderr. */
  log: (line: string) => void;
}

export const SCALE_BENCH_DEFAULTS: ScaleOptions = {
  replicas: 3,
  robots: 32,
  hz: 30,
  durationS: 30,
  single: true,
  episodeSteps: 90,
  task: 'pick_place',
  log: (line) => console.error(line),
};

const BIN = join(REPO_ROOT, 'bin', 'stageward.js');
const REPLY_TIMEOUT_MS = 20_000;
const RECONNECT = { attempts: 8, backoffMs: 50, maxBackoffMs: 1000, jitter: 0.5 };

export interface ScaleFigures {
  replicas: number;
  robots: number;
  lost_replies: number;
  out_of_order: number;
  sessions_per_replica: Record<string, number>;
  failover_reconnects: number;
  steps_per_s: number;
  steps_per_s_single_replica: number | null;
  /** The replica that got SIGTERM, how many robots it held, and how it ended. */
  drained_replica: string | null;
  drained_robots: number;
  drained_exit_code: number | null;
  drain_ms: number | null;
  /** Reconnects that reached the drained replica again (nginx must send them elsewhere). */
  reconnects_to_drained: number;
  /** Drained robots that reconnected (each must). */
  drained_robots_reconnected: number;
  /** From the 1001 to the new `ready`, per reconnect (ms). */
  failover_p50_ms: number | null;
  failover_max_ms: number | null;
  in_flight_at_close: number;
  refused_while_draining: number;
  summary_mismatches: number;
  other_errors: Record<string, number>;
  robots_failed: number;
  step_p50_ms: number;
  step_p99_ms: number;
  steps: number;
  single_step_p99_ms: number | null;
  cpus: number;
  loadavg_1m: number;
}

interface Replica extends Started {
  name: string;
  port: number;
}

async function startReplica(name: string, model: string | undefined): Promise<Replica> {
  const args = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--replica', name, ...(model === undefined ? [] : ['--model', model])];
  const started = await startChild(
    `replica ${name}`,
    process.execPath,
    args,
    (line) => /native\s+(ws:\/\/127\.0\.0\.1:\d+)\/v1\/stream/.exec(line)?.[1],
  );
  return { ...started, name, port: Number(new URL(started.url).port) };
}

/** What every robot of a phase adds to. */
interface Tally {
  steps: number;
  latencies: number[];
  lost: number;
  outOfOrder: number;
  inFlightAtClose: number;
  refusedWhileDraining: number;
  summaryMismatches: number;
  otherErrors: Record<string, number>;
  failed: number;
  sessions: Record<string, number>;
  reconnects: { robot: number; from: string; to: string; ms: number }[];
}

const newTally = (): Tally => ({
  steps: 0,
  latencies: [],
  lost: 0,
  outOfOrder: 0,
  inFlightAtClose: 0,
  refusedWhileDraining: 0,
  summaryMismatches: 0,
  otherErrors: {},
  failed: 0,
  sessions: {},
  reconnects: [],
});

class LostReply extends Error {}

function withTimeout<T>(p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LostReply()), REPLY_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** One robot: hello, then episodes of `episodeSteps` steps at `hz` until `until` (performance.now ms). */
class Robot {
  replica = '';
  closedAt = 0;
  client!: StagewardClient;

  constructor(
    readonly index: number,
    readonly tally: Tally,
    readonly o: ScaleOptions,
  ) {}

  async run(url: string, frames: Record<string, unknown>[], until: number): Promise<void> {
    this.client = await StagewardClient.connect(url, {
      reconnect: RECONNECT,
      onReconnect: (ready) => this.#reconnected(ready),
      onDisconnect: () => (this.closedAt = performance.now()),
    });
    const ready = await this.client.hello({ task: this.o.task, gamma: 0.99 });
    this.#session(ready);
    const period = 1000 / this.o.hz;
    let frame = this.index;
    try {
      while (performance.now() < until) {
        if (!(await this.#request(() => this.client.reset()))) continue;
        let expected = 0;
        let answered = 0;
        let episodeOver = false;
        for (let k = 0; k < this.o.episodeSteps && performance.now() < until; k++) {
          const sentAt = performance.now();
          const set = frames[frame++ % frames.length]! as Record<string, Buffer>;
          const r = await this.#request(() => this.client.step(set, k === 0 ? {} : { reward: 0 }));
          if (r === undefined) {
            episodeOver = true;
            break;
          }
          if (r.step !== expected) this.tally.outOfOrder++;
          expected = r.step + 1;
          answered++;
          this.tally.steps++;
          this.tally.latencies.push(performance.now() - sentAt);
          await sleep(sentAt + period - performance.now());
        }
        if (episodeOver) continue;
        const summary = await this.#request(() => this.client.end());
        if (summary !== undefined && summary.steps !== answered) this.tally.summaryMismatches++;
      }
    } finally {
      await this.client.close();
    }
  }

  #session(ready: ReadyReply): void {
    this.replica = ready.replica;
    this.tally.sessions[ready.replica] = (this.tally.sessions[ready.replica] ?? 0) + 1;
  }

  #reconnected(ready: ReadyReply): void {
    this.tally.reconnects.push({
      robot: this.index,
      from: this.replica,
      to: ready.replica,
      ms: this.closedAt > 0 ? performance.now() - this.closedAt : NaN,
    });
    this.#session(ready);
  }

  /** A request's reply, or undefined when it failed in a way the robot recovers from (then it resets). */
  async #request<T>(call: () => Promise<T>): Promise<T | undefined> {
    try {
      return await withTimeout(call());
    } catch (err) {
      if (err instanceof LostReply) {
        this.tally.lost++;
        throw new Error(`robot ${this.index}: a request got no reply within ${REPLY_TIMEOUT_MS / 1000} s`, { cause: err });
      }
      if (!(err instanceof StagewardError)) throw err;
      if (err.code === 'SW_ERR_SHUTTING_DOWN') {
        // The drain's 1001 closed the connection with the request on the wire (the client rejects
        // it with the close's reason), or the draining replica answered it so (its grace ran out).
        if (err.message.endsWith('(connection closed 1001)')) this.tally.inFlightAtClose++;
        else this.tally.refusedWhileDraining++;
        return undefined;
      }
      if (err.code === 'SW_ERR_CONNECTION_CLOSED') {
        this.tally.lost++; // a close that is not a drain's, with a request waiting
        return undefined;
      }
      if (err.code === 'SW_ERR_EPISODE_LOST') return undefined; // the next loop resets on the new connection
      this.tally.otherErrors[err.code] = (this.tally.otherErrors[err.code] ?? 0) + 1;
      if (this.client.reconnecting || err.closeCode !== null) return undefined;
      throw err;
    }
  }
}

interface PhaseResult {
  tally: Tally;
  seconds: number;
  drained?: { name: string; robots: number; exitCode: number | null; drainMs: number };
}

async function runPhase(
  nginx: Nginx,
  replicas: Replica[],
  frames: Record<string, unknown>[],
  o: ScaleOptions,
  drainAtS: number | null,
): Promise<PhaseResult> {
  const tally = newTally();
  const robots = Array.from({ length: o.robots }, (_, i) => new Robot(i, tally, o));
  const url = nginx.url.replace(/^http/, 'ws');
  const start = performance.now();
  const until = start + o.durationS * 1000;
  let drained: PhaseResult['drained'];
  const drain =
    drainAtS === null
      ? Promise.resolve()
      : sleep(drainAtS * 1000).then(async () => {
          const held: Record<string, number> = {};
          for (const r of robots) held[r.replica] = (held[r.replica] ?? 0) + 1;
          const victim = replicas.reduce((a, b) => ((held[b.name] ?? 0) > (held[a.name] ?? 0) ? b : a));
          o.log(`  SIGTERM to ${victim.name} (${held[victim.name] ?? 0} robots) at ${drainAtS} s`);
          const t0 = performance.now();
          victim.child.kill('SIGTERM');
          const exitCode = await victim.exit;
          drained = { name: victim.name, robots: held[victim.name] ?? 0, exitCode, drainMs: performance.now() - t0 };
          o.log(`  ${victim.name} exited ${exitCode} after ${Math.round(drained.drainMs)} ms`);
        });
  const results = await Promise.allSettled(
    robots.map(async (r, i) => {
      await sleep((i / o.robots) * 500); // connections open over half a second, as a fleet's would
      await r.run(url, frames, until);
    }),
  );
  await drain;
  const seconds = (performance.now() - start) / 1000;
  for (const res of results) {
    if (res.status === 'rejected') {
      tally.failed++;
      o.log(`  robot failed: ${res.reason instanceof Error ? res.reason.message : String(res.reason)}`);
    }
  }
  return { tally, seconds, drained };
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Both phases; returns the figures (the caller prints them). */
export async function runScale(opts: Partial<ScaleOptions> = {}): Promise<ScaleFigures> {
  const o: ScaleOptions = { ...SCALE_BENCH_DEFAULTS, ...opts };
  const drainAtS = o.drainAtS === undefined ? o.durationS / 2 : o.drainAtS;
  const bin = findNginx();
  const replicas: Replica[] = [];
  const nginxes: Nginx[] = [];
  try {
    o.log(`starting ${o.replicas} replicas...`);
    replicas.push(...(await Promise.all(Array.from({ length: o.replicas }, (_, i) => startReplica(`r${i + 1}`, o.model)))));
    const frames = await framePool({ views: ['front', 'side', 'wrist'], height: 96, width: 96, payload: 'jpeg' });
    let single: PhaseResult | undefined;
    if (o.single) {
      const n = await startNginx([replicas[0]!.port], bin);
      nginxes.push(n);
      o.log(`(a) ${o.robots} robots at ${o.hz} Hz for ${o.durationS} s through nginx to 1 replica`);
      single = await runPhase(n, replicas.slice(0, 1), frames, o, null);
      await n.stop();
      nginxes.pop();
    }
    const n = await startNginx(
      replicas.map((r) => r.port),
      bin,
    );
    nginxes.push(n);
    o.log(`(b) ${o.robots} robots at ${o.hz} Hz for ${o.durationS} s through nginx to ${o.replicas} replicas`);
    const multi = await runPhase(n, replicas, frames, o, drainAtS);
    const t = multi.tally;
    const drainedName = multi.drained?.name ?? null;
    const failover = t.reconnects.map((r) => r.ms).filter(Number.isFinite);
    const fromDrained = t.reconnects.filter((r) => r.from === drainedName);
    return {
      replicas: o.replicas,
      robots: o.robots,
      lost_replies: t.lost + (single?.tally.lost ?? 0),
      out_of_order: t.outOfOrder + (single?.tally.outOfOrder ?? 0),
      sessions_per_replica: Object.fromEntries(replicas.map((r) => [r.name, t.sessions[r.name] ?? 0])),
      failover_reconnects: t.reconnects.length,
      steps_per_s: round(t.steps / multi.seconds),
      steps_per_s_single_replica: single === undefined ? null : round(single.tally.steps / single.seconds),
      drained_replica: drainedName,
      drained_robots: multi.drained?.robots ?? 0,
      drained_exit_code: multi.drained?.exitCode ?? null,
      drain_ms: multi.drained === undefined ? null : Math.round(multi.drained.drainMs),
      reconnects_to_drained: t.reconnects.filter((r) => r.to === drainedName).length,
      drained_robots_reconnected: new Set(fromDrained.map((r) => r.robot)).size,
      failover_p50_ms: failover.length ? round(quantile(failover, 0.5)) : null,
      failover_max_ms: failover.length ? round(Math.max(...failover)) : null,
      in_flight_at_close: t.inFlightAtClose,
      refused_while_draining: t.refusedWhileDraining,
      summary_mismatches: t.summaryMismatches + (single?.tally.summaryMismatches ?? 0),
      other_errors: t.otherErrors,
      robots_failed: t.failed + (single?.tally.failed ?? 0),
      step_p50_ms: round(quantile(t.latencies, 0.5)),
      step_p99_ms: round(quantile(t.latencies, 0.99)),
      steps: t.steps,
      single_step_p99_ms: single === undefined ? null : round(quantile(single.tally.latencies, 0.99)),
      cpus: cpus().length,
      loadavg_1m: round(loadavg()[0]!, 2),
    };
  } finally {
    await Promise.all(nginxes.map((n) => n.stop()));
    await Promise.all(replicas.map((r) => stopChild(r.child)));
  }
}

/** `stageward bench scale`: run, describe, and print the figures as the last line. */
export async function benchScale(opts: Partial<ScaleOptions> = {}): Promise<void> {
  const f = await runScale(opts);
  const ok = f.lost_replies === 0 && f.out_of_order === 0 && Object.values(f.sessions_per_replica).every((n) => n > 0);
  console.log(
    `${f.replicas} replicas, ${f.robots} robots: ${f.steps_per_s} steps/s (1 replica: ${f.steps_per_s_single_replica ?? 'not run'}), ` +
      `p50 ${f.step_p50_ms} ms, p99 ${f.step_p99_ms} ms; sessions ${JSON.stringify(f.sessions_per_replica)}`,
  );
  if (f.drained_replica !== null)
    console.log(
      `drained ${f.drained_replica} (${f.drained_robots} robots, exit ${f.drained_exit_code}, ${f.drain_ms} ms): ` +
        `${f.failover_reconnects} reconnects (${f.reconnects_to_drained} back to it), failover p50 ${f.failover_p50_ms} ms, max ${f.failover_max_ms} ms; ` +
        `${f.in_flight_at_close} steps on the wire at the close, ${f.refused_while_draining} refused while draining`,
    );
  console.log(
    `${ok ? 'ok' : 'FAILED'}: ${f.lost_replies} lost, ${f.out_of_order} out of order, ${f.summary_mismatches} summary mismatches, ${f.robots_failed} robots failed`,
  );
  console.log(JSON.stringify(f));
  if (!ok) process.exitCode = 1;
}
