// Offline scoring benchmark: time steps scored per second for a 3-view 96x96 episode recorded by
// the simulator at 30 Hz (a few hundred time steps, episodes concatenated), end to end (ffmpeg
// decode + timestamp alignment + encoder + heads + engine + per-frame CSV/JSON), from H.264 and from
// AV1 video files, and the same frames through the server path (a server started in-process,
// frames sent as raw uint8 arrays over a real WebSocket by StagewardClient, up to 8 steps in flight).
// Medians over repeats. The server's progress is checked against the offline progress (they must be
// identical). Also times decoding alone, and splits the scorer's time into waiting for frames
// (decode), encoder, heads and engine, so a figure below target says where the time goes.
// Last, sharded scoring on this machine: the same frames as a LeRobot dataset scored by one
// `stageward score --dataset` process against two concurrent `--shard 0/2` and `--shard 1/2`
// processes plus `stageward score merge`, end to end (process start and model load included), with
// the merged sarm_progress.parquet checked byte for byte against the single run's.
//
//   npm run bench:score
//   npm run bench:score -- --steps 300 --repeats 2
//
// Target: >= 20x real time at 30 fps with 3 views (>= 600 time steps/s).
// Last output line: {"h264_fps", "av1_fps", "server_fps", "realtime_factor", ..., "shards_1_wall_s", "shards_2_wall_s", "shards_2_speedup", ...}

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxProgressModel, type ProgressModel } from '../models/package.ts';
import { StagewardClient, type RewardReply } from '../server/client.ts';
import { startServer } from '../server/run.ts';
import { loadConfig } from '../server/config.ts';
import { REPO_ROOT } from '../core/paths.ts';
import { ffmpeg, H264Encoder, videoDecoder } from '../datasets/ffmpeg.ts';
import { SimEnv } from '../sim/env.ts';
import { recordEpisode } from '../sim/record.ts';
import { createRenderer } from '../sim/render/index.ts';
import { alignViews } from '../offline/score/align.ts';
import { DEFAULT_BATCH_FRAMES, DEFAULT_ENCODE_BATCH_IMAGES, type ScoreTiming } from '../offline/score/batch-scorer.ts';
import { scoreVideos } from '../offline/score/run.ts';
import { decodeTimed } from '../offline/score/timed-decode.ts';
import { median } from '../core/stats.ts';
import { loadProgressModel, type InferenceThread } from '../models/load.ts';
import { round1, round3 } from '../core/format.ts';
import { LeRobotDatasetWriter } from '../datasets/writer.ts';
import { SARM_PROGRESS_FILE } from '../offline/score/progress-parquet.ts';
import { SHARD_PARTS_DIR } from '../offline/score/shards.ts';

export interface ScoreBenchOptions {
  model?: string;
  /** Time steps of the benchmark episode (at 30 fps). */
  steps: number;
  repeats: number;
  batchFrames: number;
  encodeBatchImages: number;
  threads: number;
  inferenceThread: InferenceThread;
}

export const SCORE_BENCH_DEFAULTS: ScoreBenchOptions = {
  steps: 600,
  repeats: 3,
  batchFrames: DEFAULT_BATCH_FRAMES,
  encodeBatchImages: DEFAULT_ENCODE_BATCH_IMAGES,
  threads: 1,
  inferenceThread: 'worker',
};

const FPS = 30;
const TARGET_FPS = 600;
const MAX_IN_FLIGHT = 8;

/** Record expert episodes at 30 Hz until `steps` frames, written as one H.264 mp4 per view. */
async function makeEpisode(dir: string, steps: number, views: readonly string[]): Promise<Record<string, string>> {
  const env = await SimEnv.create({ task: 'pick_place', controlHz: FPS, renderer: createRenderer(), views: [...views] });
  const files = Object.fromEntries(views.map((v) => [v, join(dir, `${v}.mp4`)]));
  const encoders = await Promise.all(
    views.map((v) => H264Encoder.open(files[v]!, { width: 96, height: 96, fps: FPS, gopFrames: 30, crf: 18 })),
  );
  let written = 0;
  try {
    for (let seed = 0; written < steps; seed++) {
      const ep = recordEpisode(env, 7000 + seed, 'expert', 20);
      const n = Math.min(ep.state.length, steps - written);
      for (let t = 0; t < n; t++) await Promise.all(views.map((v, i) => encoders[i]!.write(ep.frames[v]![t]!.data)));
      written += n;
    }
  } finally {
    await Promise.all(encoders.map((e) => e.close()));
    env.close();
  }
  return files;
}

/** Record expert episodes at 30 Hz as a LeRobot dataset until `steps` frames (at least two episodes, so two shards have work). */
async function makeDataset(root: string, steps: number, views: readonly string[]): Promise<{ episodes: number; frames: number }> {
  const env = await SimEnv.create({ task: 'pick_place', controlHz: FPS, renderer: createRenderer(), views: [...views] });
  let frames = 0;
  let episodes = 0;
  try {
    const writer = await LeRobotDatasetWriter.create(root, env.datasetSpec());
    for (let seed = 0; frames < steps || episodes < 2; seed++, episodes++) {
      const ep = recordEpisode(env, 7000 + seed, 'expert', 20);
      await writer.addEpisode(ep);
      frames += ep.state.length;
    }
    await writer.finish();
  } finally {
    env.close();
  }
  return { episodes, frames };
}

const BIN = join(REPO_ROOT, 'bin', 'stageward.js');

/** Run `stageward ARGS` as a child process; rejects with its stderr when it fails. */
function stageward(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`stageward ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr.trim()}`)),
    );
  });
}

interface ShardedRuns {
  single: number[];
  sharded: number[];
  merge: number[];
  identical: boolean;
}

/** One process over the whole dataset against two concurrent shards and a merge; wall seconds of each, end to end. */
async function shardedVsSingle(modelDir: string, root: string, tmp: string, o: ScoreBenchOptions): Promise<ShardedRuns> {
  const common = [
    '--model',
    modelDir,
    '--dataset',
    root,
    '--no-plots',
    '--no-progress',
    '--threads',
    String(o.threads),
    '--inference-thread',
    o.inferenceThread,
    '--batch-frames',
    String(o.batchFrames),
    '--encode-batch',
    String(o.encodeBatchImages),
  ];
  const progressFile = join(root, SARM_PROGRESS_FILE);
  const fresh = async () => {
    await rm(progressFile, { force: true });
    await rm(join(root, SHARD_PARTS_DIR), { recursive: true, force: true });
  };
  const runs: ShardedRuns = { single: [], sharded: [], merge: [], identical: true };
  for (let rep = 0; rep < o.repeats; rep++) {
    await fresh();
    let t0 = performance.now();
    await stageward(['score', ...common, '--out', join(tmp, `single-${rep}`)]);
    runs.single.push((performance.now() - t0) / 1000);
    const single = await readFile(progressFile);
    await fresh();
    t0 = performance.now();
    const out = join(tmp, `sharded-${rep}`);
    await Promise.all([0, 1].map((i) => stageward(['score', ...common, '--out', out, '--shard', `${i}/2`])));
    const t1 = performance.now();
    await stageward(['score', 'merge', '--dataset', root, '--out', out, '--no-progress']);
    runs.merge.push((performance.now() - t1) / 1000);
    runs.sharded.push((performance.now() - t0) / 1000);
    if (!(await readFile(progressFile)).equals(single)) runs.identical = false;
  }
  return runs;
}

async function toAv1(files: Record<string, string>, dir: string): Promise<Record<string, string>> {
  const bin = await ffmpeg();
  const out: Record<string, string> = {};
  await Promise.all(
    Object.entries(files).map(([view, file]) => {
      out[view] = join(dir, `${view}-av1.mp4`);
      return new Promise<void>((resolve, reject) => {
        const child = spawn(
          bin.path,
          [
            '-hide_banner',
            '-loglevel',
            'error',
            '-i',
            file,
            '-c:v',
            'libaom-av1',
            '-strict',
            'experimental',
            '-cpu-used',
            '8',
            '-crf',
            '20',
            '-b:v',
            '0',
            '-g',
            '30',
            '-pix_fmt',
            'yuv420p',
            '-y',
            out[view]!,
          ],
          { stdio: 'inherit' },
        );
        child.on('error', reject);
        child.on('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`AV1 encoding of ${file} failed (this ffmpeg needs libaom-av1)`)),
        );
      });
    }),
  );
  return out;
}

/** Decode + align alone: time steps per second. */
async function decodeOnly(files: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  let n = 0;
  const streams = Object.fromEntries(Object.entries(files).map(([v, f]) => [v, decodeTimed(f, { width: 96, height: 96 })]));
  for await (const _ of alignViews(streams, FPS)) n++;
  return n / ((performance.now() - t0) / 1000);
}

interface OfflineRun {
  fps: number;
  frames: number;
  progress: number[];
  timing: ScoreTiming;
  wallMs: number;
  /** CPU time per time step: this process (all its threads), and its finished children (ffmpeg). */
  nodeCpuMs: number;
  ffmpegCpuMs: number;
}

/** CPU ms used so far by this process and by its reaped children (Linux /proc; 0 elsewhere). */
function cpuNow(): { node: number; children: number } {
  const u = process.cpuUsage();
  let children = 0;
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    children = ((Number(fields[13]) + Number(fields[14])) * 1000) / 100; // cutime + cstime, in USER_HZ (100)
  } catch {
    // not Linux
  }
  return { node: (u.user + u.system) / 1000, children };
}

async function offline(model: ProgressModel, files: Record<string, string>, out: string, o: ScoreBenchOptions): Promise<OfflineRun> {
  const c0 = cpuNow();
  const t0 = performance.now();
  const run = await scoreVideos(
    model,
    { views: files, fps: FPS },
    { out, plots: false, batchFrames: o.batchFrames, encodeBatchImages: o.encodeBatchImages },
  );
  const wallMs = performance.now() - t0;
  const c1 = cpuNow();
  const r = run.reports[0]!;
  if (r.status !== 'scored') throw new Error(`scoring failed: ${r.code}: ${r.message}`);
  const doc = JSON.parse(await readFile(join(out, r.files!.json), 'utf8')) as { frames: { progress: number }[] };
  return {
    fps: r.frames / (wallMs / 1000),
    frames: r.frames,
    progress: doc.frames.map((f) => f.progress),
    timing: r.timing!,
    wallMs,
    nodeCpuMs: (c1.node - c0.node) / r.frames,
    ffmpegCpuMs: (c1.children - c0.children) / r.frames,
  };
}

/** The same frames through a server in this process, over a WebSocket. */
async function serverPath(modelDir: string, task: string, files: Record<string, string>): Promise<{ fps: number; progress: number[] }> {
  const config = loadConfig({ overrides: { host: '127.0.0.1', port: 0, model: modelDir } });
  const { server } = await startServer(config, () => {});
  try {
    const client = await StagewardClient.connect(server.url);
    try {
      await client.hello({ task, gamma: 0.99, shaping: 'pbrs' });
      await client.reset();
      const t0 = performance.now();
      const pending: Promise<RewardReply>[] = [];
      const progress: number[] = [];
      const streams = Object.fromEntries(Object.entries(files).map(([v, f]) => [v, decodeTimed(f, { width: 96, height: 96 })]));
      for await (const step of alignViews(streams, FPS)) {
        pending.push(client.step(step.frames));
        if (pending.length >= MAX_IN_FLIGHT) progress.push((await pending.shift()!).progress);
      }
      for (const p of pending) progress.push((await p).progress);
      const fps = progress.length / ((performance.now() - t0) / 1000);
      await client.end();
      return { fps, progress };
    } finally {
      await client.close();
    }
  } finally {
    await server.shutdown();
  }
}

/** Where one run's wall time went; the stages overlap (frames are read while a batch computes), so the shares may sum past 100%. */
const share = (r: OfflineRun) => {
  const pct = (x: number) => `${Math.round((100 * x) / r.wallMs)}%`;
  const t = r.timing;
  return (
    `of the wall time: waiting for decoded frames ${pct(t.wait_ms)}, encoder ${pct(t.encode_ms)}, heads ${pct(t.heads_ms)}, engine ${pct(t.engine_ms)}, preprocess ${pct(t.preprocess_ms)}; ` +
    `CPU per step: ${r.nodeCpuMs.toFixed(2)} ms in node (all threads), ${r.ffmpegCpuMs.toFixed(2)} ms in ffmpeg`
  );
};

export async function benchScore(opts: Partial<ScoreBenchOptions> = {}): Promise<void> {
  const o: ScoreBenchOptions = { ...SCORE_BENCH_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) };
  const modelDir = o.model ?? join(REPO_ROOT, 'models', 'zoo', 'pick_place');
  const busy = loadavg()[0]!;
  if (busy > 0.5)
    console.log(
      `note: load average ${busy.toFixed(2)} on ${cpus().length} cores before starting; other work on this machine skews every figure below`,
    );
  const tmp = await mkdtemp(join(tmpdir(), 'stageward-bench-score-'));
  try {
    const probe = await OnnxProgressModel.load(modelDir, { warmup: false });
    const card = probe.card;
    await probe.close();
    if (card.image.width !== 96 || card.image.height !== 96 || card.views.length !== 3)
      console.log(`note: model ${card.name} takes ${card.views.length} views at ${card.image.width}x${card.image.height}`);
    console.log(`recording a ${o.steps}-step episode at ${FPS} Hz (views ${card.views.join('/')}, 96x96) and transcoding it to AV1...`);
    let t0 = performance.now();
    const h264 = await makeEpisode(tmp, o.steps, card.views);
    const recordS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const av1 = await toAv1(h264, tmp);
    console.log(`  recorded in ${recordS.toFixed(1)} s, AV1 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const load = () => loadProgressModel(modelDir, o.inferenceThread, { intraOpThreads: o.threads });
    const model = await load();
    const runs: Record<'h264' | 'av1', OfflineRun[]> = { h264: [], av1: [] };
    const decode: Record<'h264' | 'av1', number[]> = { h264: [], av1: [] };
    const server: number[] = [];
    let mismatch = 0;
    try {
      await offline(model, h264, join(tmp, 'warm'), o); // warm-up: page cache, JIT
      for (let rep = 0; rep < o.repeats; rep++) {
        for (const codec of ['h264', 'av1'] as const) {
          const files = codec === 'h264' ? h264 : av1;
          decode[codec].push(await decodeOnly(files));
          runs[codec].push(await offline(model, files, join(tmp, `${codec}-${rep}`), o));
        }
        const s = await serverPath(modelDir, card.tasks[0]!, h264);
        server.push(s.fps);
        const ref = runs.h264.at(-1)!.progress;
        if (s.progress.length !== ref.length) mismatch += Math.abs(s.progress.length - ref.length);
        for (let t = 0; t < Math.min(ref.length, s.progress.length); t++) if (s.progress[t] !== ref[t]) mismatch++;
      }
    } finally {
      await model.close();
    }
    console.log(
      `recording the frames as a LeRobot dataset and scoring it in 1 process, then in 2 shards + merge (${o.repeats} repeats)...`,
    );
    const root = join(tmp, 'dataset');
    const data = await makeDataset(root, o.steps, card.views);
    const shards = await shardedVsSingle(modelDir, root, tmp, o);
    const av1With = await videoDecoder(Object.values(av1)[0]!);
    const av1Decoder = `${av1With.inputArgs.includes('libdav1d') ? 'libdav1d' : 'default'} (${av1With.binary.source} ffmpeg ${av1With.binary.version})`;
    const med = (codec: 'h264' | 'av1') => median(runs[codec].map((r) => r.fps));
    const pick = (codec: 'h264' | 'av1') => runs[codec].slice().sort((a, b) => a.fps - b.fps)[Math.floor(runs[codec].length / 2)]!;
    const figures = {
      h264_fps: round1(med('h264')),
      av1_fps: round1(med('av1')),
      server_fps: round1(median(server)),
      realtime_factor: round1(Math.min(med('h264'), med('av1')) / FPS),
      target_fps: TARGET_FPS,
      node_cpu_ms_per_step_h264: Math.round(pick('h264').nodeCpuMs * 1000) / 1000,
      ffmpeg_cpu_ms_per_step_h264: Math.round(pick('h264').ffmpegCpuMs * 1000) / 1000,
      ffmpeg_cpu_ms_per_step_av1: Math.round(pick('av1').ffmpegCpuMs * 1000) / 1000,
      load_average_1m: Math.round(busy * 100) / 100,
      decode_only_h264_fps: round1(median(decode.h264)),
      decode_only_av1_fps: round1(median(decode.av1)),
      server_progress_mismatches: mismatch,
      av1_decoder: av1Decoder,
      shards_1_wall_s: round3(median(shards.single)),
      shards_2_wall_s: round3(median(shards.sharded)),
      shards_2_speedup: round3(median(shards.single) / median(shards.sharded)),
      shards_2_merge_wall_s: round3(median(shards.merge)),
      shards_identical: shards.identical,
      shards_dataset_episodes: data.episodes,
      shards_dataset_frames: data.frames,
      steps: runs.h264[0]!.frames,
      views: card.views.length,
      image: `${card.image.width}x${card.image.height}`,
      model: card.name,
      batch_frames: o.batchFrames,
      encode_batch_images: o.encodeBatchImages,
      inference_thread: o.inferenceThread,
      intra_op_threads: o.threads,
      repeats: o.repeats,
      cores: cpus().length,
    };
    for (const codec of ['h264', 'av1'] as const) {
      const r = pick(codec);
      console.log(
        `${codec.toUpperCase()}${codec === 'av1' ? ` (decoder ${av1Decoder})` : ''}: ${figures[`${codec}_fps`]} steps/s end to end (decode alone ${figures[`decode_only_${codec}_fps`]} steps/s); median run, ${share(r)}`,
      );
    }
    console.log(
      `server path (in-process server, WebSocket, raw frames, ${MAX_IN_FLIGHT} in flight): ${figures.server_fps} steps/s; progress identical to offline scoring: ${mismatch === 0 ? 'yes' : `NO (${mismatch} frames differ)`}`,
    );
    console.log(
      `real-time factor at ${FPS} fps: ${figures.realtime_factor}x (target >= ${TARGET_FPS / FPS}x, i.e. >= ${TARGET_FPS} steps/s)`,
    );
    console.log(
      `dataset of ${data.episodes} episodes (${data.frames} frames): 1 process ${figures.shards_1_wall_s} s, 2 concurrent shards + merge ${figures.shards_2_wall_s} s (merge ${figures.shards_2_merge_wall_s} s): ${figures.shards_2_speedup}x on ${cpus().length} cores, process start and model load included; merged sarm_progress.parquet identical to the single run's: ${shards.identical ? 'yes' : 'NO'}`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
