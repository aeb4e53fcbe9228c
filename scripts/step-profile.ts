// Where a step's CPU goes in the reward server. `stageward serve` (the bundled model) runs with
// --cpu-prof under `robots` robots at `hz` (3 views of 96x96 JPEG per step, bench:server's load, from
// a load process of its own). Over the timed window it reads the CPU of every server thread
// (/proc/<pid>/task/*/schedstat: the main thread, and the others together: libuv's pool, where JPEG
// decodes and ONNX Runtime's runs happen, the inference worker's JavaScript, V8's helpers), and the
// load process's own CPU. The main thread's share is then split by what its code does, from its CPU
// profile: WebSocket framing and masking (ws), the wire codec (MessagePack/JSON), session and reply
// logic, the engine, preprocessing (the decode queue and its hand-off), the hand-off to inference
// (batching, postMessage), socket writes, HTTP, garbage collection, other. Microseconds per step.
//
//   npm run profile:step                              # 32 robots at 15 Hz for 20 s
//   npm run profile:step -- --robots 8 --hz 30 --seconds 10
//
// Last output line: {"steps", "steps_per_s", "server_cpu_us_per_step", "main_thread_cpu_us_per_step",
// "other_threads_cpu_us_per_step", "load_generator_cpu_us_per_step", "main_us_per_step": {category: us}}.
// Linux only (/proc); the profile comes from the server's own exit, so it is stopped with SIGTERM.

import { Command, InvalidArgumentError } from 'commander';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, stopChild } from '../bench/child-server.ts';
import { cpuNs, pacedRobots, threadCpuNs, type LoadModel } from '../bench/load-worker.ts';
import { runWorker } from '../bench/server.ts';
import { REPO_ROOT } from '../core/paths.ts';

const BIN = join(REPO_ROOT, 'bin', 'stageward.js');

interface Options {
  robots: number;
  hz: number;
  seconds: number;
  model?: string;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

/** What a main-thread profile frame is doing, from its script and function name. */
function category(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)' || fn === '(root)') return 'other (native, unattributed)';
  if (url.includes('/node_modules/ws/') || url.includes('/node_modules/bufferutil/')) return 'WebSocket framing and masking';
  if (/\/server\/(msgpack|codec|ndarray)\.ts$/.test(url) || url.includes('/node_modules/msgpackr/')) return 'wire codec';
  if (/\/models\/(preprocess|native-jpeg)\.ts$/.test(url) || url.includes('/core/fair-queue.ts') || url.includes('/node_modules/sharp/'))
    return 'preprocess (decode queue, hand-off)';
  if (/\/models\/(batching|worker-model)\.ts$/.test(url) || fn === 'postMessage') return 'inference hand-off (batching, postMessage)';
  if (url.includes('/models/') || url.includes('/engine/')) return 'engine (windows, heads, shaping)';
  if (url.includes('/server/')) return 'session and reply logic';
  if (
    fn === 'writev' ||
    fn === 'writeUtf8String' ||
    fn === 'writeBuffer' ||
    /^node:(net|stream|internal\/stream)/.test(url) ||
    url.includes('stream_base')
  )
    return 'socket I/O (node streams, writev)';
  if (url.startsWith('node:_http') || url.startsWith('node:http')) return 'HTTP';
  return 'other JavaScript';
}

/** Self time of the samples in [fromUs, toUs) (the profile's clock), idle left out, summed by `key` of their frame. */
function selfTime(p: CpuProfile, fromUs: number, toUs: number, key: (frame: ProfileNode['callFrame']) => string): Map<string, number> {
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const out = new Map<string, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < fromUs || t >= toUs) continue;
    const f = byId.get(p.samples[i]!)!;
    if (f.functionName === '(idle)') continue;
    const k = key(f);
    out.set(k, (out.get(k) ?? 0) + p.timeDeltas[i]!);
  }
  return out;
}

const byCategory = (f: ProfileNode['callFrame']) => category(f.url, f.functionName);
const byFunction = (f: ProfileNode['callFrame']) => `${f.functionName || '(anonymous)'} ${f.url.split('/').at(-1) ?? ''}`.trim();

async function profileStep(o: Options): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'stageward-step-profile-'));
  try {
    const server = await startChild(
      'stageward server',
      process.execPath,
      ['--cpu-prof', `--cpu-prof-dir=${dir}`, BIN, 'serve', '--host', '127.0.0.1', '--port', '0', ...(o.model ? ['--model', o.model] : [])],
      (line) => /native\s+(ws:\/\/\S+?)\/v1\/stream/.exec(line)?.[1],
    );
    const pid = server.child.pid!;
    const models = JSON.parse(await (await fetch(`${server.url.replace('ws://', 'http://')}/v1/models`)).text()) as { models: LoadModel[] };
    const m = models.models[0]!;
    const load = pacedRobots(`${server.url}/v1/stream`, m, {
      robots: o.robots,
      hz: o.hz,
      durationS: 5,
      warmupS: 0,
      openpiKeys: {},
      drainTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
    });
    console.log(`server pid ${pid}; warming up for 5 s (${o.robots} robots at ${o.hz} Hz)...`);
    await runWorker(load);
    console.log(`timing ${o.seconds} s...`);
    const tids = readdirSync(`/proc/${pid}/task`).map(Number);
    const threadsBefore = new Map(tids.map((t) => [t, threadCpuNs(pid, t)]));
    const before = { total: cpuNs(pid), main: threadCpuNs(pid, pid), at: performance.timeOrigin + performance.now() };
    let loadPid = 0;
    let loadNs = 0;
    const sampler = setInterval(() => {
      const ns = cpuNs(loadPid);
      if (Number.isFinite(ns)) loadNs = ns; // the last reading before it exits (250 ms at most unseen)
    }, 250);
    const result = await runWorker({ ...load, durationS: o.seconds, warmupS: 0 }, (p) => (loadPid = p));
    clearInterval(sampler);
    const after = { total: cpuNs(pid), main: threadCpuNs(pid, pid), at: performance.timeOrigin + performance.now() };
    // Each thread's share (they are all named "node"; tid order is creation order, the main thread first).
    const threads = readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .map((t) => ({ tid: t, ns: threadCpuNs(pid, t) - (threadsBefore.get(t) ?? 0) }))
      .filter((t) => Number.isFinite(t.ns) && t.ns > 0)
      .sort((a, b) => b.ns - a.ns);
    await stopChild(server.child);
    const exitedAt = performance.timeOrigin + performance.now();

    const steps = result.rewards;
    const us = (ns: number) => ns / 1000 / steps;
    const serverUs = us(after.total - before.total);
    const mainUs = us(after.main - before.main);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    // The main thread's profile is the one named after the process's first isolate (".0.").
    const mainFile = files.find((f) => /\.0\.\d+\.cpuprofile$/.test(f));
    const main = new Map<string, number>();
    if (mainFile !== undefined) {
      const p = JSON.parse(await readFile(join(dir, mainFile), 'utf8')) as CpuProfile;
      // The profile's clock has an origin of its own: the window is located back from the profile's end,
      // which is the server's exit.
      let end = p.startTime;
      for (const d of p.timeDeltas) end += d;
      const windowUs = (after.at - before.at) * 1000;
      const stopUs = end - (exitedAt - after.at) * 1000;
      const self = selfTime(p, stopUs - windowUs, stopUs, byCategory);
      const busy = [...self.values()].reduce((a, b) => a + b, 0);
      for (const [c, v] of [...self.entries()].sort((a, b) => b[1] - a[1])) main.set(c, (v / busy) * mainUs);
    }
    // The other isolates (the inference worker, tsx's loader): the busiest one's top functions, by self time.
    const workerTop: { fn: string; share: number }[] = [];
    let workerBusyMs = 0;
    for (const f of files.filter((x) => x !== mainFile)) {
      const p = JSON.parse(await readFile(join(dir, f), 'utf8')) as CpuProfile;
      let end = p.startTime;
      for (const d of p.timeDeltas) end += d;
      const stopUs = end - (exitedAt - after.at) * 1000;
      const byFn = selfTime(p, stopUs - (after.at - before.at) * 1000, stopUs, byFunction);
      const busy = [...byFn.values()].reduce((a, b) => a + b, 0);
      if (busy / 1000 <= workerBusyMs) continue;
      workerBusyMs = busy / 1000;
      workerTop.length = 0;
      for (const [fn, v] of [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6)) workerTop.push({ fn, share: v / busy });
    }
    const loadUs = us(loadNs);
    console.log(
      `${steps} steps in ${result.timed_s} s (${result.steps_per_s} steps/s of ${o.robots * o.hz} offered), p50 ${result.latency_p50_ms} ms, p99 ${result.latency_p99_ms} ms; ${tids.length} server threads`,
    );
    console.log(
      `CPU per step: server ${serverUs.toFixed(0)} us (main thread ${mainUs.toFixed(0)}, other threads ${(serverUs - mainUs).toFixed(0)}), load generator ${loadUs.toFixed(0)} us`,
    );
    console.log(
      `busiest threads, us per step: ${threads
        .slice(0, 8)
        .map((t) => `${t.tid === pid ? 'main' : `tid ${t.tid}`} ${us(t.ns).toFixed(0)}`)
        .join(', ')}`,
    );
    console.log('main thread, by what it does (its CPU profile, scaled to its CPU):');
    for (const [c, v] of main) console.log(`  ${v.toFixed(0).padStart(6)} us  ${c}`);
    console.log(
      `busiest other isolate (the inference worker): busy ${workerBusyMs.toFixed(0)} ms of the window; by self time: ` +
        workerTop.map((w) => `${w.fn} ${(100 * w.share).toFixed(0)}%`).join(', '),
    );
    const round = (x: number) => Math.round(x);
    console.log(
      JSON.stringify({
        steps,
        steps_per_s: result.steps_per_s,
        server_cpu_us_per_step: round(serverUs),
        main_thread_cpu_us_per_step: round(mainUs),
        other_threads_cpu_us_per_step: round(serverUs - mainUs),
        load_generator_cpu_us_per_step: round(loadUs),
        threads_us_per_step: threads.map((t) => round(us(t.ns))),
        main_us_per_step: Object.fromEntries([...main].map(([c, v]) => [c, round(v)])),
        robots: o.robots,
        hz: o.hz,
        seconds: o.seconds,
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function positive(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`must be an integer in [1, ${max}]`);
    return n;
  };
}

const program = new Command('step-profile')
  .description("where a step's CPU goes in the reward server: per thread, per part of the main thread's work, and the load generator's")
  .option('--robots <n>', 'robots (3 views of 96x96 JPEG per step)', positive(64), 32)
  .option('--hz <n>', 'steps per second per robot', positive(100), 15)
  .option('--seconds <n>', 'timed window', positive(600), 20)
  .option('--model <dir>', 'model package to serve (default: the bundled one)');

program.parse(process.argv);
if (process.platform !== 'linux') {
  console.error('step-profile: needs Linux (/proc)');
  process.exit(2);
}
await profileStep(program.opts<Options>());
