// Scoring video files: views at different resolutions and frame rates are aligned by timestamp
// (each view gives its latest frame with pts <= t), H.264 and AV1 both decode with their times, the
// scores equal stepping the engine with the aligned frames, and `stageward score --view ...` reports
// a missing view or an unreadable file with its code and a non-zero exit.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RewardEngine } from '../../../models/engine.ts';
import { OnnxProgressModel } from '../../../models/package.ts';
import type { FrameSet } from '../../../models/preprocess.ts';
import type { RawImage } from '../../../core/image.ts';
import { main } from '../../../cli/main.ts';
import { ffmpeg, H264Encoder } from '../../../datasets/ffmpeg.ts';
import { alignViews } from '../../../offline/score/align.ts';
import { scoreFrames } from '../../../offline/score/batch-scorer.ts';
import { scoreVideos } from '../../../offline/score/run.ts';
import { decodeTimed, parseShowinfo, type TimedFrame } from '../../../offline/score/timed-decode.ts';
import { expectCode, FIXTURE_MODEL_DIR, fixtureCopy, transcodeToAv1 } from '../../helpers.ts';

/** A flat frame whose red channel names its index (two families so the views cannot be confused). */
function flat(width: number, height: number, red: number, green: number): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    out[p * 3] = red;
    out[p * 3 + 1] = green;
    out[p * 3 + 2] = 60;
  }
  return out;
}
const redA = (i: number) => 10 + 11 * i; // view A, i < 21
const redB = (i: number) => 230 - 19 * i; // view B, i < 11
const meanRed = (img: RawImage) => {
  let s = 0;
  for (let p = 0; p < img.width * img.height; p++) s += img.data[p * 3]!;
  return s / (img.width * img.height);
};

async function encode(path: string, width: number, height: number, fps: number, frames: Uint8Array[]): Promise<void> {
  const enc = await H264Encoder.open(path, { width, height, fps, crf: 12 });
  for (const f of frames) await enc.write(f);
  await enc.close();
}

let dir: string;
let fileA: string; // 64x48 at 20 fps, 21 frames (0 .. 1.0 s)
let fileB: string; // 32x32 at 10 fps, 11 frames (0 .. 1.0 s)
let fileB_av1: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stageward-score-videos-'));
  fileA = join(dir, 'a.mp4');
  fileB = join(dir, 'b.mp4');
  fileB_av1 = join(dir, 'b-av1.mkv');
  await encode(
    fileA,
    64,
    48,
    20,
    Array.from({ length: 21 }, (_, i) => flat(64, 48, redA(i), 100)),
  );
  await encode(
    fileB,
    32,
    32,
    10,
    Array.from({ length: 11 }, (_, i) => flat(32, 32, redB(i), 200)),
  );
  const bin = await ffmpeg();
  transcodeToAv1(bin.path, fileB, fileB_av1, { crf: 10 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('timestamps', () => {
  it("reads the time base and each frame's pts from showinfo lines", () => {
    expect(parseShowinfo('[Parsed_showinfo_0 @ 0x1] config in time_base: 1/15360, frame_rate: 15/1')).toEqual({ timeBase: [1, 15360] });
    expect(parseShowinfo('[Parsed_showinfo_0 @ 0x1] n:   3 pts:   3072 pts_time:0.2 pos: 48 fmt:yuv420p')).toEqual({ n: 3, pts: 3072 });
    expect(parseShowinfo('[Parsed_showinfo_0 @ 0x1] n:   0 pts:NOPTS pts_time:NOPTS')).toEqual({ n: 0, pts: null });
    expect(parseShowinfo('Stream #0:0 -> #0:0 (h264 (native) -> rawvideo (native))')).toBeNull();
  });

  it("decodes H.264 and AV1 at the requested size with each frame's presentation time", async () => {
    for (const file of [fileB, fileB_av1]) {
      const frames: TimedFrame[] = [];
      for await (const f of decodeTimed(file, { width: 16, height: 16 })) frames.push(f);
      expect(frames.map((f) => Math.round(f.ptsSeconds * 1000))).toEqual(Array.from({ length: 11 }, (_, i) => i * 100));
      expect(frames.every((f) => f.image.width === 16 && f.image.height === 16)).toBe(true);
      frames.forEach((f, i) => expect(Math.abs(meanRed(f.image) - redB(i))).toBeLessThan(4));
    }
  });

  it('fails with SW_ERR_FFMPEG on a missing or unreadable file', async () => {
    const junk = join(dir, 'junk.mp4');
    await writeFile(junk, Buffer.alloc(4096, 7));
    for (const file of [junk, join(dir, 'missing.mp4')]) {
      await expect(
        (async () => {
          for await (const _ of decodeTimed(file, { width: 16, height: 16 })) {
            /* drain */
          }
        })(),
      ).rejects.toMatchObject({ code: 'SW_ERR_FFMPEG' });
    }
  });
});

describe('aligning views by timestamp', () => {
  async function* synthetic(times: number[], tag: number): AsyncGenerator<TimedFrame> {
    for (const [i, t] of times.entries())
      yield { ptsSeconds: t, image: { data: Uint8Array.of(tag, i, 0), width: 1, height: 1, channels: 3 } };
  }

  it('gives each view its latest frame with pts <= t, from the latest first frame to the earliest last one', async () => {
    const front = Array.from({ length: 90 }, (_, i) => i / 30); // 30 fps, 0 .. 2.967 s
    const wrist = Array.from({ length: 20 }, (_, i) => 0.04 + i / 7.5); // 7.5 fps from 0.04 s, to 2.573 s
    const steps = [];
    for await (const s of alignViews({ front: synthetic(front, 1), wrist: synthetic(wrist, 2) }, 10)) steps.push(s);
    expect(steps[0]!.timeSeconds).toBeCloseTo(0.04, 12);
    expect(steps.at(-1)!.timeSeconds).toBeLessThanOrEqual(wrist.at(-1)! + 1e-9);
    expect(steps.length).toBe(Math.floor((wrist.at(-1)! - 0.04) * 10 + 1e-9) + 1);
    for (const s of steps) {
      for (const [view, times] of [
        ['front', front],
        ['wrist', wrist],
      ] as const) {
        const latest = times.filter((p) => p <= s.timeSeconds + 1e-9).at(-1)!;
        expect(s.pts[view]).toBe(latest);
        expect(s.frames[view]!.data[1]).toBe(times.indexOf(latest));
      }
    }
  });

  it('aligns real videos of different sizes and frame rates (20 fps 64x48 H.264 with 10 fps 32x32 AV1)', async () => {
    const size = { width: 32, height: 32 };
    const steps = [];
    for await (const s of alignViews({ a: decodeTimed(fileA, size), b: decodeTimed(fileB_av1, size) }, 10)) steps.push(s);
    expect(steps.length).toBe(11);
    steps.forEach((s, k) => {
      expect(Math.abs(meanRed(s.frames.a!) - redA(2 * k))).toBeLessThan(4); // frame 2k of the 20 fps view
      expect(Math.abs(meanRed(s.frames.b!) - redB(k))).toBeLessThan(4); // frame k of the 10 fps view
    });
    // At 20 fps the 10 fps view repeats its frame and the 20 fps view advances every step.
    const fast = [];
    for await (const s of alignViews({ a: decodeTimed(fileA, size), b: decodeTimed(fileB, size) }, 20)) fast.push(s);
    expect(fast.length).toBe(21);
    expect(fast.map((s) => Math.round(s.pts.b! * 10))).toEqual(Array.from({ length: 21 }, (_, k) => Math.floor(k / 2)));
  });
});

describe('scoring videos', () => {
  let model: OnnxProgressModel;
  beforeAll(async () => {
    model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
  });
  afterAll(async () => {
    await model.close();
  });

  it('gives the values of stepping the engine with the aligned frames, bit for bit', async () => {
    const card = model.card;
    const size = { width: card.image.width, height: card.image.height };
    const files = { front: fileA, side: fileB_av1, wrist: fileB };
    const aligned = async function* (): AsyncGenerator<FrameSet> {
      for await (const s of alignViews(Object.fromEntries(Object.entries(files).map(([v, f]) => [v, decodeTimed(f, size)])), 20))
        yield s.frames;
    };
    const episode = await new RewardEngine(model).start({ task: 'stack_three', gamma: 0.9, shaping: 'pbrs', progress: 'both' });
    const ref = [];
    for await (const f of aligned()) ref.push(await episode.step({ frames: f }));
    const s = await scoreFrames(model, aligned(), { task: 'stack_three', gamma: 0.9, progress: 'both', batchFrames: 4 });
    expect(s.frames).toBe(21);
    expect(s.progress).toEqual(ref.map((r) => r.progress));
    expect(s.sparse).toEqual(ref.map((r) => r.heads.sarm));
    expect(s.dense).toEqual(ref.map((r) => r.heads.grm));
    expect(s.stage).toEqual(ref.map((r) => r.stage.index));
    expect(s.tau).toEqual(ref.map((r) => r.tau));
    expect(s.reward).toEqual(ref.map((r) => r.shaped));
  });

  it('refuses --dense up front for a model without a GRM head', async () => {
    const dir2 = await fixtureCopy((card) => {
      card.grm = { present: false, goal: 'none' };
      delete card.graphs.grm;
    });
    const sarmOnly = await OnnxProgressModel.load(dir2);
    try {
      await expectCode(
        scoreVideos(sarmOnly, { views: { front: fileA, side: fileB, wrist: fileB } }, { out: join(dir, 'no-grm'), dense: true }),
        'SW_ERR_BAD_OPTION',
        'needs a GRM head',
      );
    } finally {
      await sarmOnly.close();
    }
  });

  it('stageward score --view writes per-frame CSV/JSON, a plot and a summary; a missing view or an unreadable file exits non-zero with its code', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const out = join(dir, 'out');
      const views = ['--view', `front=${fileA}`, '--view', `side=${fileB_av1}`, '--view', `wrist=${fileB}`];
      const common = [
        'score',
        '--model',
        FIXTURE_MODEL_DIR,
        '--task',
        'pick_place',
        '--fps',
        '20',
        '--inference-thread',
        'main',
        '--no-progress',
      ];
      expect(await main([...common, ...views, '--out', out])).toBe(0);
      const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8'));
      expect(summary.totals).toMatchObject({ episodes: 1, scored: 1, failed: 0, frames: 21 });
      const csv = (await readFile(join(out, 'episodes', 'episode-0000.csv'), 'utf8')).trim().split('\n');
      expect(csv[0]).toBe('frame_index,time_s,stage,stage_name,tau,progress,progress_sparse,uncertainty,env_reward,reward,scored');
      expect(csv.length).toBe(22);
      // the fixture has no ensemble: an empty uncertainty cell in the CSV, null in the JSON
      expect(csv[1]!.split(',')[7]).toBe('');
      const json = JSON.parse(await readFile(join(out, 'episodes', 'episode-0000.json'), 'utf8'));
      expect(json.frames[0]).toHaveProperty('uncertainty', null);
      expect(csv[2]!.split(',')[1]).toBe('0.05');
      const png = await readFile(join(out, 'plots', 'episode-0000.png'));
      expect(png.subarray(1, 4).toString()).toBe('PNG');

      // --smoothing: the progress column is the causal EMA of the raw SARM column (no uncertainty in the fixture)
      const smoothedOut = join(dir, 'out-smooth');
      expect(await main([...common, ...views, '--smoothing', 'ema:0.3', '--no-plots', '--out', smoothedOut])).toBe(0);
      const smoothed = JSON.parse(await readFile(join(smoothedOut, 'summary.json'), 'utf8'));
      expect(smoothed.options.smoothing).toEqual({ kind: 'ema', alpha: 0.3, u0: 0.05 });
      expect(summary.options.smoothing).toEqual({ kind: 'none' });
      const doc = JSON.parse(await readFile(join(smoothedOut, 'episodes', 'episode-0000.json'), 'utf8'));
      let prev: number | undefined;
      for (const f of doc.frames as { progress: number; progress_sparse: number }[]) {
        expect(f.progress).toBeCloseTo(prev === undefined ? f.progress_sparse : prev + 0.3 * (f.progress_sparse - prev), 12);
        prev = f.progress;
      }

      expect(await main([...common, '--view', `front=${fileA}`, '--view', `side=${fileB}`, '--out', join(dir, 'out2')])).toBe(2);
      expect(err.mock.calls.flat().join('\n')).toContain('SW_ERR_VIEW_MISSING');
      const junk = join(dir, 'junk2.mp4');
      await writeFile(junk, Buffer.alloc(2048, 3));
      expect(await main([...common, ...views.slice(0, 4), '--view', `wrist=${junk}`, '--out', join(dir, 'out3')])).toBe(2);
      expect(err.mock.calls.flat().join('\n')).toContain('SW_ERR_FFMPEG');
      const failed = JSON.parse(await readFile(join(dir, 'out3', 'summary.json'), 'utf8'));
      expect(failed.episodes[0]).toMatchObject({ status: 'failed', code: 'SW_ERR_FFMPEG' });
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  });
});
