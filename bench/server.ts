// Server benchmark: the reward server end to end over WebSocket on 127.0.0.1, against an openpi-style
// Python server running the same network in PyTorch eager (bench/baseline/server.py), same machine,
// same run. The server and the baseline run as child processes (their RSS is read from /proc); the
// robots run in a separate load process (bench/load-worker.ts), the dashboard viewers in a child of
// that one (bench/live-viewer.ts). The baseline needs a Python with torch, msgpack and websockets
// (models/python.ts finds it, STAGEWARD_PYTHON names it); without one the bench stops before it
// starts anything, with what to install.
//
//   npm run bench:server
//   npm run bench:server -- --quick            # a few seconds per phase, same output
//   npm run bench:server -- --dashboard-viewers 0   # skips (d)
//
// (a) one robot, 3 views of 96x96 JPEG per step, closed loop: latency p50/p99 over `steps` steps
// (d) the dashboard's cost, run right after (a): (a) again, on the same server, one robot, in rounds
//     of the same number of steps (what the robot makes in about 1 s (quick) or 2 s without viewers,
//     at least `steps` / rounds) that alternate (closed, open, open, closed, closed, open, ...) between no viewer
//     ("closed") and `dashboardViewers` viewers on /v1/live ("open") watching the robot's session
//     with thumbnails, reading every message; p50 = the median of the rounds' p50s, p99 over all
//     the condition's steps; the open/closed p50 ratio should stay <= 1.1 (also given: the median
//     of the adjacent pairs' ratios, and the server's CPU time per step in each condition)
// (b) `robots` robots at `hz` for `durationS` s: rewards/s sustained, p99, lost or out-of-order
//     replies, the server's peak RSS
// (c) the same load as (b) against the baseline; throughput ratio = (b) / (c)
// Last output line: {"single_p50_ms", "single_p99_ms", "multi_steps_per_s", "multi_p99_ms",
// "lost_replies", "rss_mb", "baseline_steps_per_s", "throughput_ratio", ..., "dashboard_closed_p50_ms",
// "dashboard_open_p50_ms", "dashboard_p50_ratio", "dashboard_closed_p99_ms", "dashboard_open_p99_ms",
// "dashboard_viewer_messages", "dashboard_thumbnails", ...} (the dashboard_ figures are null when (d)
// is skipped; dashboard_viewer_messages and dashboard_thumbnails count what the viewers received
// during the timed open rounds, the proof that they were live).

import { RssSampler } from './proc-rss.ts';
import { spawn, spawnSync } from 'node:child_process';
import { startChild, stopChild } from './child-server.ts';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { DashboardResult, LoadConfig, LoadResult } from './load-worker.ts';
import { median } from '../core/stats.ts';
import { findPython } from '../models/python.ts';
import { REPO_ROOT } from '../core/paths.ts';

/** The package `npm start` serves: what a user of the server gets. */
export const BUNDLED_MODEL = join(REPO_ROOT, 'models', 'zoo', 'pick_place');

export interface ServerBenchOptions {
  /** Short phases (seconds) with the same output. */
  quick: boolean;
  /** Model package to serve (default: BUNDLED_MODEL, what `npm start` serves; the baseline runs its network with seeded weights). */
  model?: string;
  /** (a): timed closed-loop steps. */
  steps: number;
  /** (b), (c): robots, their rate, and how long they stream. */
  robots: number;
  hz: number;
  durationS: number;
  /** Frames as `jpeg` bytes or `raw` uint8 HWC arrays. */
  payload: 'jpeg' | 'raw';
  /** Most steps a robot keeps outstanding (the server's maxInFlightSteps caps it further). */
  maxInFlight: number;
  /** torch intra-op threads of the baseline (0: torch's default, one per core). */
  baselineThreads: number;
  /** (d): dashboard viewers in the open rounds (0: skip (d)). */
  dashboardViewers: number;
}

export const SERVER_BENCH_DEFAULTS: ServerBenchOptions = {
  quick: false,
  steps: 1000,
  robots: 32,
  hz: 30,
  durationS: 60,
  payload: 'jpeg',
  maxInFlight: 8,
  baselineThreads: 0,
  dashboardViewers: 2,
};

/** What --quick changes. */
export const SERVER_BENCH_QUICK = { steps: 150, durationS: 5 };
const TARGETS = { single_p50_ms: 5, single_p99_ms: 15, rss_mb: 400, throughput_ratio: 3, dashboard_p50_ratio: 1.1 };
/**
 * (d): rounds per condition, a round's length in seconds (the feed's cost comes every 250 ms tick
 * and 500 ms thumbnail, so a round must span several), untimed steps at the start of each round,
 * and bounds on a round's timed steps.
 */
const DASHBOARD = { rounds: 6, quickRounds: 4, roundS: 2, quickRoundS: 1, warmupSteps: 10, minRoundSteps: 100, maxRoundSteps: 5000 };
const BIN = join(REPO_ROOT, 'bin', 'stageward.js');
const WORKER = join(REPO_ROOT, 'bench', 'load-worker.ts');
const BASELINE = join(REPO_ROOT, 'bench', 'baseline', 'server.py');

export async function benchServer(opts: Partial<ServerBenchOptions> = {}): Promise<void> {
  const o: ServerBenchOptions = { ...SERVER_BENCH_DEFAULTS, ...(opts.quick ? SERVER_BENCH_QUICK : {}), ...definedOnly(opts) };
  const python = baselinePython();
  const busy = loadavg()[0]!;
  if (busy > 0.5)
    console.log(
      `note: load average ${busy.toFixed(2)} on ${cpus().length} cores before starting; other work on this machine skews every figure below`,
    );
  const dir = o.model ?? BUNDLED_MODEL;
  const card = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as {
    name: string;
    views: string[];
    tasks: string[];
    image: { height: number; width: number };
  };
  const openpiKeys = (
    JSON.parse(readFileSync(join(REPO_ROOT, 'configs', 'default.json'), 'utf8')) as { openpi: { views: Record<string, string> } }
  ).openpi.views;
  const base: Omit<LoadConfig, 'url' | 'protocol' | 'mode' | 'robots'> = {
    steps: o.steps,
    warmupSteps: o.quick ? 20 : 50,
    hz: o.hz,
    durationS: o.durationS,
    warmupS: Math.min(5, o.durationS / 5),
    maxInFlight: o.maxInFlight,
    episodeSteps: 300,
    views: card.views,
    task: card.tasks[0]!,
    height: card.image.height,
    width: card.image.width,
    payload: o.payload,
    gamma: 0.99,
    progress: 'sarm',
    openpiKeys,
    drainTimeoutMs: 30_000,
    connectTimeoutMs: 10_000,
  };
  console.log(
    `model ${card.name}: ${card.views.length} views at ${card.image.width}x${card.image.height}, ${o.payload} frames; ` +
      `progress head sarm on both sides`,
  );

  // (a) and (b): the stageward server
  const server = await startChild(
    'stageward server',
    process.execPath,
    [BIN, 'serve', '--model', dir, '--host', '127.0.0.1', '--port', '0'],
    (line) => /native\s+(ws:\/\/\S+?)\/v1\/stream/.exec(line)?.[1],
  );
  let single: LoadResult;
  let dashLost = 0;
  let dashErrors = 0;
  let dash: DashboardResult | undefined;
  let multi: LoadResult;
  const rss = new RssSampler(server.child.pid!);
  try {
    console.log(`(a) one robot, closed loop, ${o.steps} timed steps...`);
    single = await runWorker({ ...base, url: `${server.url}/v1/stream`, protocol: 'native', mode: 'closed-loop', robots: 1 });
    console.log(
      `    p50 ${single.latency_p50_ms} ms, p99 ${single.latency_p99_ms} ms (${single.rewards} replies, lost ${single.lost}, errors ${fmtErrors(single.errors)})`,
    );
    if (o.dashboardViewers > 0) {
      const rounds = o.quick ? DASHBOARD.quickRounds : DASHBOARD.rounds;
      const roundS = o.quick ? DASHBOARD.quickRoundS : DASHBOARD.roundS;
      const minRoundSteps = Math.max(DASHBOARD.minRoundSteps, Math.ceil(o.steps / rounds));
      console.log(
        `(d) the dashboard's cost: (a) in ${2 * rounds} rounds of the same number of steps (about ${roundS} s each, at least ${minRoundSteps}), ` +
          `alternately with no viewer and with ${o.dashboardViewers} on /v1/live watching the robot's session with thumbnails...`,
      );
      const r = await runWorker({
        ...base,
        url: `${server.url}/v1/stream`,
        protocol: 'native',
        mode: 'closed-loop',
        robots: 1,
        steps: 2 * rounds * minRoundSteps, // unused with `dashboard` but for runWorker's time limit (rounds last about roundS)
        dashboard: {
          liveUrl: `${server.url}/v1/live`,
          viewers: o.dashboardViewers,
          rounds,
          roundS,
          minRoundSteps,
          maxRoundSteps: DASHBOARD.maxRoundSteps,
          roundWarmupSteps: DASHBOARD.warmupSteps,
          serverPid: server.child.pid,
        },
      });
      dash = r.dashboard!;
      dashLost = r.lost + r.out_of_order;
      dashErrors = sum(r.errors);
      const p50s = (c: 'closed' | 'open') => dash!.rounds.filter((x) => x.condition === c).map((x) => x.p50_ms);
      const ticks = dash.by_type.tick ?? 0;
      console.log(
        `    closed p50 ${round(median(p50s('closed')))} ms, p99 ${dash.closed_p99_ms} ms; open p50 ${round(median(p50s('open')))} ms, ` +
          `p99 ${dash.open_p99_ms} ms; p50 ratio ${round(median(p50s('open')) / median(p50s('closed')))} ` +
          `(median of the ${rounds} pairs' ratios ${round(median(pairedRatios(dash)))}) ` +
          `(${dash.round_steps} steps a round; round p50s closed ${p50s('closed').join(' ')}; open ${p50s('open').join(' ')})`,
      );
      console.log(
        `    server CPU per step closed ${dash.closed_server_cpu_ms_per_step} ms, open ${dash.open_server_cpu_ms_per_step} ms; ` +
          `the viewers read ${dash.viewer_messages} messages (${ticks} ticks, ${dash.thumbnails} thumbnails, ` +
          `${round(dash.viewer_bytes / 2 ** 20)} MB), lost ${r.lost}, errors ${fmtErrors(r.errors)}`,
      );
      if (ticks === 0 || dash.thumbnails === 0 || dash.viewer_errors.length > 0)
        console.log(
          `    note: the viewers were not fully live (${ticks} ticks, ${dash.thumbnails} thumbnails${dash.viewer_errors.length > 0 ? `; ${dash.viewer_errors.join('; ')}` : ''})`,
        );
    } else console.log('(d) the dashboard phase is skipped (--dashboard-viewers 0)');
    console.log(`(b) ${o.robots} robots at ${o.hz} Hz for ${o.durationS} s...`);
    multi = await runWorker({ ...base, url: `${server.url}/v1/stream`, protocol: 'native', mode: 'paced', robots: o.robots });
    console.log(
      `    ${multi.steps_per_s} steps/s of ${o.robots * o.hz} offered, p99 ${multi.latency_p99_ms} ms, lost ${multi.lost}, ` +
        `out of order ${multi.out_of_order}, errors ${fmtErrors(multi.errors)}, skipped ticks ${multi.skipped_ticks}, peak RSS ${round(rss.peakMb)} MB`,
    );
  } finally {
    rss.stop();
    await stopChild(server.child);
  }

  // (c): the baseline, same load
  const baseline = await startChild(
    'baseline server',
    python,
    [BASELINE, '--model', dir, '--host', '127.0.0.1', '--port', '0', '--threads', String(o.baselineThreads)],
    (line) => {
      const m = /^\{"listening": (\d+)\}$/.exec(line.trim());
      return m ? `ws://127.0.0.1:${m[1]}` : undefined;
    },
  );
  let base2: LoadResult;
  const baseRss = new RssSampler(baseline.child.pid!);
  try {
    console.log(`(c) baseline (openpi-style Python, PyTorch eager): ${o.robots} robots at ${o.hz} Hz for ${o.durationS} s...`);
    base2 = await runWorker({ ...base, url: baseline.url, protocol: 'openpi', mode: 'paced', robots: o.robots });
    console.log(
      `    ${base2.steps_per_s} steps/s, p99 ${base2.latency_p99_ms} ms, lost ${base2.lost}, errors ${fmtErrors(base2.errors)}, peak RSS ${round(baseRss.peakMb)} MB`,
    );
  } finally {
    baseRss.stop();
    await stopChild(baseline.child);
  }

  const dashP50 = (c: 'closed' | 'open') =>
    dash === undefined ? null : round(median(dash.rounds.filter((x) => x.condition === c).map((x) => x.p50_ms)));
  const dashboardClosedP50 = dashP50('closed');
  const dashboardOpenP50 = dashP50('open');
  const dashboardPairedRatio = dash === undefined ? null : round(median(pairedRatios(dash)));
  const figures = {
    single_p50_ms: single.latency_p50_ms,
    single_p99_ms: single.latency_p99_ms,
    multi_steps_per_s: multi.steps_per_s,
    multi_p99_ms: multi.latency_p99_ms,
    lost_replies: single.lost + single.out_of_order + dashLost + multi.lost + multi.out_of_order,
    rss_mb: round(rss.peakMb),
    baseline_steps_per_s: base2.steps_per_s,
    throughput_ratio: round(multi.steps_per_s / base2.steps_per_s),
    multi_offered_steps_per_s: o.robots * o.hz,
    multi_errors: sum(multi.errors),
    multi_skipped_ticks: multi.skipped_ticks,
    baseline_p99_ms: base2.latency_p99_ms,
    baseline_lost_replies: base2.lost + base2.out_of_order,
    baseline_rss_mb: round(baseRss.peakMb),
    baseline_torch_threads: o.baselineThreads === 0 ? 'default' : o.baselineThreads,
    robots: o.robots,
    hz: o.hz,
    duration_s: o.durationS,
    payload: o.payload,
    quick: o.quick,
    dashboard_closed_p50_ms: dashboardClosedP50,
    dashboard_open_p50_ms: dashboardOpenP50,
    dashboard_p50_ratio: dashboardClosedP50 === null || dashboardOpenP50 === null ? null : round(dashboardOpenP50 / dashboardClosedP50),
    dashboard_paired_p50_ratio: dashboardPairedRatio,
    dashboard_closed_p99_ms: dash?.closed_p99_ms ?? null,
    dashboard_open_p99_ms: dash?.open_p99_ms ?? null,
    dashboard_viewer_messages: dash?.viewer_messages ?? null,
    dashboard_thumbnails: dash?.thumbnails ?? null,
    dashboard_viewers: o.dashboardViewers,
    dashboard_rounds: dash === undefined ? null : dash.rounds.length / 2,
    dashboard_round_steps: dash?.round_steps ?? null,
    dashboard_closed_server_cpu_ms_per_step: dash?.closed_server_cpu_ms_per_step ?? null,
    dashboard_open_server_cpu_ms_per_step: dash?.open_server_cpu_ms_per_step ?? null,
    dashboard_closed_p50s_ms: dash?.rounds.filter((x) => x.condition === 'closed').map((x) => x.p50_ms) ?? null,
    dashboard_open_p50s_ms: dash?.rounds.filter((x) => x.condition === 'open').map((x) => x.p50_ms) ?? null,
  };
  console.log(
    'targets: ' +
      [
        check('single p50', figures.single_p50_ms, '<=', TARGETS.single_p50_ms, 'ms'),
        check('single p99', figures.single_p99_ms, '<=', TARGETS.single_p99_ms, 'ms'),
        check('lost or out-of-order replies', figures.lost_replies, '<=', 0, ''),
        check('error replies', figures.multi_errors + sum(single.errors) + dashErrors, '<=', 0, ''),
        check('RSS', figures.rss_mb, '<', TARGETS.rss_mb, 'MB'),
        check('throughput ratio', figures.throughput_ratio, '>=', TARGETS.throughput_ratio, 'x'),
        ...(figures.dashboard_p50_ratio === null
          ? []
          : [check('dashboard p50 ratio (open/closed)', figures.dashboard_p50_ratio, '<=', TARGETS.dashboard_p50_ratio, 'x')]),
      ].join('; '),
  );
  console.log(JSON.stringify(figures));
}

/** Open/closed p50 ratio of each pair of adjacent rounds (rounds 0 and 1, 2 and 3, ...): drift between pairs cancels. */
function pairedRatios(d: DashboardResult): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < d.rounds.length; i += 2) {
    const [a, b] = [d.rounds[i]!, d.rounds[i + 1]!];
    const [open, closed] = a.condition === 'open' ? [a, b] : [b, a];
    out.push(open.p50_ms / closed.p50_ms);
  }
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The interpreter for the baseline: one with torch (models/python.ts) that also has msgpack and websockets. */
function baselinePython(): string {
  const python = findPython();
  const r = spawnSync(python, ['-c', 'import msgpack, websockets'], { stdio: 'ignore', timeout: 60_000 });
  if (r.status !== 0) {
    throw new Error(
      `${python} cannot import msgpack and websockets, which the baseline server needs; ` +
        'install them (Debian/Ubuntu: `sudo apt-get install -y python3-msgpack python3-websockets`, or `pip install msgpack websockets`)',
    );
  }
  return python;
}

/** Run one load phase in a separate Node process; its last stdout line is the LoadResult. `onSpawn` gets its pid. */
export function runWorker(config: LoadConfig, onSpawn?: (pid: number) => void): Promise<LoadResult> {
  const limitMs = (config.mode === 'paced' ? config.durationS * 1000 : config.steps * 200) + config.drainTimeoutMs + 120_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) onSpawn?.(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as LoadResult);
      else reject(new Error(`load worker failed (${code ?? signal})${err ? `: ${err.trim()}` : ''}`));
    });
  });
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function fmtErrors(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  return entries.length === 0 ? '0' : entries.map(([k, v]) => `${k} ${v}`).join(', ');
}

function check(name: string, value: number, op: '<=' | '<' | '>=', target: number, unit: string): string {
  const ok = op === '<=' ? value <= target : op === '<' ? value < target : value >= target;
  return `${name} ${value}${unit} ${op} ${target}${unit} ${ok ? 'met' : 'MISSED'}`;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

// Direct use until `stageward bench server` is registered: node --import tsx bench/server.ts [--quick]
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      model: { type: 'string' },
      steps: { type: 'string' },
      robots: { type: 'string' },
      hz: { type: 'string' },
      'duration-s': { type: 'string' },
      payload: { type: 'string' },
      'baseline-threads': { type: 'string' },
      'dashboard-viewers': { type: 'string' },
    },
  });
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  benchServer({
    quick: values.quick ?? false,
    model: values.model,
    steps: num(values.steps),
    robots: num(values.robots),
    hz: num(values.hz),
    durationS: num(values['duration-s']),
    payload: values.payload as ServerBenchOptions['payload'] | undefined,
    baselineThreads: num(values['baseline-threads']),
    dashboardViewers: num(values['dashboard-viewers']),
  }).catch((err: unknown) => {
    console.error(`bench server: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  });
}
