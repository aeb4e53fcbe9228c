import { rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RewardEngine, type EpisodeOptions, type StepResult } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { FrameSet } from '../../models/preprocess.ts';
import { sarmProgress, smoothProgress } from '../../models/progress.ts';
import { potential, telescopedShaping, type ShapingConfig } from '../../models/shaping.ts';
import { demoEpisode } from '../../bench/demo-episode.ts';
import { ensemblePackage } from '../ensemble-package.ts';
import { expectCode, fixtureCopy, FIXTURE_MODEL_DIR } from '../helpers.ts';

let model: OnnxProgressModel;
let engine: RewardEngine;
beforeAll(async () => {
  model = await OnnxProgressModel.load(FIXTURE_MODEL_DIR);
  engine = new RewardEngine(model);
});
afterAll(() => model.close());

const VIEWS = ['front', 'side', 'wrist'];
/** A generated episode's frames at a size other than the model's, so resizing is exercised. */
function frames(steps: number, seed = 1): FrameSet[] {
  return [...demoEpisode(VIEWS, steps, 48, 80, seed)].map((f) => f.views);
}
const base: EpisodeOptions = { task: 'pick_place', gamma: 0.9, shaping: 'pbrs' };

async function runEpisode(opts: EpisodeOptions, fs: FrameSet[], end: 'terminated' | 'truncated' | 'none' = 'none'): Promise<StepResult[]> {
  const ep = await engine.start(opts);
  const out: StepResult[] = [];
  for (let t = 0; t < fs.length; t++) {
    const last = t === fs.length - 1;
    out.push(
      await ep.step({
        frames: fs[t]!,
        reward: t % 4 === 0 ? 0.1 : 0,
        terminated: last && end === 'terminated',
        truncated: last && end === 'truncated',
      }),
    );
  }
  return out;
}

describe('episode engine', () => {
  it('scales the shaping term by lambda (`scale`) and leaves the env reward alone', async () => {
    const fs = frames(8);
    const one = await runEpisode({ ...base, scale: 1 }, fs);
    const quarter = await runEpisode({ ...base, scale: 0.25 }, fs);
    let moved = 0;
    for (let t = 1; t < fs.length; t++) {
      const term1 = one[t]!.shaped - one[t]!.reward;
      const termQ = quarter[t]!.shaped - quarter[t]!.reward;
      expect(quarter[t]!.reward).toBe(one[t]!.reward);
      expect(termQ).toBeCloseTo(0.25 * term1, 12);
      if (Math.abs(term1) > 1e-6) moved++;
    }
    expect(moved).toBeGreaterThan(0); // the potential changes over the episode, so the scale is visible
  });

  it('composes SARM progress as the episode asks (`composition`), whatever the card says', async () => {
    const fs = frames(6);
    const priors = model.card.stages[model.card.tasks.indexOf('pick_place')]!.map((s) => s.prior);
    const byComposition = {
      argmax: await runEpisode({ ...base, composition: 'argmax' }, fs),
      expected: await runEpisode({ ...base, composition: 'expected' }, fs),
    };
    let differ = 0;
    for (let t = 0; t < fs.length; t++) {
      for (const c of ['argmax', 'expected'] as const) {
        const r = byComposition[c][t]!;
        expect(r.heads.sarm).toBeCloseTo(sarmProgress(r.stage.probs, r.tau, priors, c), 12);
      }
      if (Math.abs(byComposition.argmax[t]!.heads.sarm - byComposition.expected[t]!.heads.sarm) > 1e-6) differ++;
    }
    expect(differ).toBeGreaterThan(0);
  });

  it('is deterministic: the same inputs give the same outputs', async () => {
    const fs = frames(12);
    const a = await runEpisode({ ...base, progress: 'both' }, fs);
    const b = await runEpisode({ ...base, progress: 'both' }, fs);
    const strip = (r: StepResult[]) => r.map(({ timing: _timing, episode: _episode, ...rest }) => rest);
    expect(strip(a)).toEqual(strip(b));
  });

  it('reports progress in [0, 1], a stage of the task, tau, and the env reward as sent', async () => {
    const rs = await runEpisode({ ...base, progress: 'both' }, frames(6));
    for (const r of rs) {
      expect(r.progress).toBeGreaterThanOrEqual(0);
      expect(r.progress).toBeLessThanOrEqual(1);
      expect(['reach', 'grasp', 'lift', 'carry', 'place']).toContain(r.stage.name);
      expect(r.stage.probs).toHaveLength(5);
      expect(r.heads.grm).toBeDefined();
      expect(r.progress).toBeCloseTo((r.heads.sarm + r.heads.grm!) / 2, 12);
      expect(r.timing.total_ms).toBeGreaterThan(0);
    }
    expect(rs.map((r) => r.reward)).toEqual([0.1, 0, 0, 0, 0.1, 0]);
  });

  it('shaped rewards telescope over a terminated episode: sum gamma^t F_t = -Phi(s_0)', async () => {
    const rs = await runEpisode(base, frames(15), 'terminated');
    let sum = 0;
    for (let t = 1; t < rs.length; t++) sum += base.gamma ** (t - 1) * (rs[t]!.shaped - rs[t]!.reward);
    const phis = rs.map((r) => r.progress);
    expect(sum).toBeCloseTo(
      telescopedShaping(phis, true, { mode: 'pbrs', gamma: base.gamma, scale: 1, transform: { kind: 'identity' } }),
      9,
    );
    expect(sum).toBeCloseTo(-phis[0]!, 9);
  });

  it('truncation keeps the last potential (the learner bootstraps), termination zeroes it', async () => {
    const fs = frames(5);
    const trunc = await runEpisode(base, fs, 'truncated');
    const term = await runEpisode(base, fs, 'terminated');
    const last = trunc.length - 1;
    const phiPrev = trunc[last - 1]!.progress;
    expect(trunc[last]!.shaped).toBeCloseTo(trunc[last]!.reward + base.gamma * trunc[last]!.progress - phiPrev, 12);
    expect(term[last]!.shaped).toBeCloseTo(term[last]!.reward - phiPrev, 12);
  });

  it('step 0 is the initial observation: no shaping term before a transition exists', async () => {
    const [first] = await runEpisode(base, frames(1));
    expect(first!.step).toBe(0);
    expect(first!.shaped).toBe(first!.reward);
  });

  it("a new episode clears state: its steps equal a fresh engine's, whatever ran before", async () => {
    const fs = frames(8, 3);
    const fresh = await runEpisode({ ...base, progress: 'both' }, fs);
    await runEpisode({ ...base, progress: 'both' }, frames(20, 9)); // a different episode in between
    const again = await runEpisode({ ...base, progress: 'both' }, fs);
    expect(again.map((r) => [r.step, r.progress, r.shaped])).toEqual(fresh.map((r) => [r.step, r.progress, r.shaped]));
  });

  it('refuses steps after the episode ended, and after end()', async () => {
    const ep = await engine.start(base);
    const [f0, f1] = frames(2);
    const r = await ep.step({ frames: f0!, terminated: true });
    expect(r.done).toBe(true);
    await expectCode(ep.step({ frames: f1! }), 'SW_ERR_EPISODE_ENDED');
    const ep2 = await engine.start(base);
    const summary = await ep2.end();
    expect(summary.steps).toBe(0);
    await expectCode(ep2.step({ frames: f1! }), 'SW_ERR_EPISODE_ENDED');
  });

  it('a bad step is refused with its code and leaves the episode as it was', async () => {
    const fs = frames(4);
    const clean = await runEpisode(base, fs);
    const ep = await engine.start(base);
    const got: StepResult[] = [];
    got.push(await ep.step({ frames: fs[0]!, reward: 0.1 }));
    await expectCode(ep.step({ frames: { front: fs[1]!.front!, side: fs[1]!.side! } }), 'SW_ERR_VIEW_MISSING');
    await expectCode(ep.step({ frames: { ...fs[1]!, front: new Uint8Array([0xff, 0xd8, 0xff, 0, 1, 2]) } }), 'SW_ERR_IMAGE_DECODE');
    await expectCode(ep.step({ frames: fs[1]!, reward: Number.NaN }), 'SW_ERR_BAD_VALUE');
    await expectCode(ep.step({ frames: fs[1]!, terminated: 'yes' as unknown as boolean }), 'SW_ERR_BAD_VALUE');
    for (let t = 1; t < fs.length; t++) got.push(await ep.step({ frames: fs[t]!, reward: t % 4 === 0 ? 0.1 : 0 }));
    expect(got.map((r) => [r.step, r.progress, r.shaped])).toEqual(clean.map((r) => [r.step, r.progress, r.shaped]));
  });

  it('answers steps in call order even when the caller does not await each one', async () => {
    const fs = frames(10);
    const ep = await engine.start(base);
    const rs = await Promise.all(fs.map((f) => ep.step({ frames: f })));
    expect(rs.map((r) => r.step)).toEqual([...Array(10).keys()]);
  });

  it('keeps a bounded feature cache however long the episode runs', async () => {
    const ep = await engine.start(base);
    const f = frames(1)[0]!;
    for (let t = 0; t < 60; t++) await ep.step({ frames: f });
    // frame 0 + the window's span (stride 2 x 3 past slots) + 1 for GRM's previous frame
    expect(ep.cachedFrames).toBeLessThanOrEqual(8);
  });

  it('lets other event-loop work run between the stages of queued steps', async () => {
    const ep = await engine.start({ ...base, progress: 'both' });
    const fs = frames(20);
    let ticks = 0;
    let running = true;
    const tick = () => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    await Promise.all(fs.map((f) => ep.step({ frames: f })));
    running = false;
    // Each step awaits sharp's decode on libuv's threads; the loop turns meanwhile. (For graphs that
    // hold the loop, WorkerProgressModel moves ONNX Runtime off it: test/models/worker-model.test.ts.)
    expect(ticks).toBeGreaterThan(fs.length);
  });

  it('refuses bad episode options with stable codes', async () => {
    await expectCode(engine.start({ ...base, task: 'fold_shirt' }), 'SW_ERR_TASK_UNKNOWN', 'fold_shirt');
    await expectCode(engine.start({ ...base, gamma: 1.5 }), 'SW_ERR_BAD_OPTION', 'gamma');
    await expectCode(engine.start({ ...base, shaping: 'dense' as 'pbrs' }), 'SW_ERR_BAD_OPTION', 'shaping');
    await expectCode(engine.start({ ...base, progress: 'vlm' as 'sarm' }), 'SW_ERR_BAD_OPTION', 'progress');
    await expectCode(engine.start({ ...base, scale: Number.POSITIVE_INFINITY }), 'SW_ERR_BAD_OPTION', 'scale');
    await expectCode(
      engine.start({ ...base, transform: { kind: 'sigmoid', center: 0.5, temperature: 0 } }),
      'SW_ERR_BAD_OPTION',
      'transform',
    );
    await expectCode(engine.start({ ...base, transform: { kind: 'conservative', k: -1 } }), 'SW_ERR_BAD_OPTION', 'conservative');
    await expectCode(engine.start({ ...base, transform: { kind: 'conservative', k: Number.NaN } }), 'SW_ERR_BAD_OPTION', 'conservative');
    await expectCode(engine.start({ ...base, transform: { kind: 'cubic' } as never }), 'SW_ERR_BAD_OPTION', 'transform.kind');
    await expectCode(engine.start({ ...base, smoothing: { kind: 'median' } as never }), 'SW_ERR_BAD_OPTION', 'smoothing.kind');
    await expectCode(engine.start({ ...base, smoothing: null as never }), 'SW_ERR_BAD_OPTION', 'smoothing.kind');
    await expectCode(engine.start({ ...base, smoothing: { kind: 'ema', alpha: 0 } }), 'SW_ERR_BAD_OPTION', 'alpha');
    await expectCode(engine.start({ ...base, smoothing: { kind: 'ema', alpha: 1.5 } }), 'SW_ERR_BAD_OPTION', 'alpha');
    await expectCode(engine.start({ ...base, smoothing: { kind: 'ema', u0: 0 } }), 'SW_ERR_BAD_OPTION', 'u0');
    await expectCode(engine.start({ ...base, smoothing: { kind: 'ema', u0: Number.POSITIVE_INFINITY } }), 'SW_ERR_BAD_OPTION', 'u0');
    await expect(engine.start({ ...base, transform: { kind: 'conservative', k: 0 }, smoothing: { kind: 'ema' } })).resolves.toBeDefined();
    await expectCode(engine.start({ ...base, progress: 'grm', goal: { top: frames(1)[0]!.front! } }), 'SW_ERR_VIEW_UNKNOWN', 'top');
    await expectCode(engine.start({ ...base, views: ['front', 'side'] }), 'SW_ERR_VIEW_MISSING', 'wrist');
    await expectCode(engine.start({ ...base, views: ['front', 'side', 'wrist', 'top'] }), 'SW_ERR_VIEW_UNKNOWN', 'top');
    await expect(engine.start({ ...base, views: ['wrist', 'front', 'side'] })).resolves.toBeDefined();
  });

  it('goal frames feed the backward-anchored GRM perspective', async () => {
    const fs = frames(6);
    const withoutGoal = await runEpisode({ ...base, progress: 'grm' }, fs);
    const withGoal = await runEpisode({ ...base, progress: 'grm', goal: fs[5]! }, fs);
    expect(withGoal.some((r, i) => Math.abs(r.progress - withoutGoal[i]!.progress) > 1e-6)).toBe(true);
  });

  it('a model without a GRM head serves SARM progress and refuses GRM progress', async () => {
    const dir = await fixtureCopy((c) => {
      c.grm.present = false;
      delete c.graphs.grm;
    });
    await unlink(join(dir, 'grm.onnx'));
    const sarmOnly = await OnnxProgressModel.load(dir);
    const e = new RewardEngine(sarmOnly);
    await expectCode(e.start({ ...base, progress: 'grm' }), 'SW_ERR_BAD_OPTION', 'GRM');
    const ep = await e.start(base);
    const r = await ep.step({ frames: frames(1)[0]! });
    expect(r.hop).toBeUndefined();
    await sarmOnly.close();
    await rm(join(dir, '..'), { recursive: true, force: true });
  });
});

describe('uncertainty, the conservative transform and smoothing', () => {
  let ensemble: OnnxProgressModel;
  let ensembleEngine: RewardEngine;
  let ensembleDir: string;
  beforeAll(async () => {
    ensembleDir = await ensemblePackage();
    ensemble = await OnnxProgressModel.load(ensembleDir, { log: () => {} });
    ensembleEngine = new RewardEngine(ensemble);
  });
  afterAll(async () => {
    await ensemble.close();
    await rm(join(ensembleDir, '..'), { recursive: true, force: true });
  });

  async function run(e: RewardEngine, opts: EpisodeOptions, fs: FrameSet[], end: 'terminated' | 'none' = 'none'): Promise<StepResult[]> {
    const ep = await e.start(opts);
    const out: StepResult[] = [];
    for (let t = 0; t < fs.length; t++) {
      out.push(await ep.step({ frames: fs[t]!, reward: t % 4 === 0 ? 0.1 : 0, terminated: end === 'terminated' && t === fs.length - 1 }));
    }
    return out;
  }

  it('is null for a package without the output, and the SARM graph value of each step with it, whatever the source', async () => {
    const fs = frames(6);
    for (const r of await runEpisode(base, fs)) expect(r.uncertainty).toBeNull();
    const sarm = await run(ensembleEngine, base, fs);
    // the test package's uncertainty is tau * tau in float32, so each step's value is its own window's
    for (const r of sarm) expect(r.uncertainty).toBe(Math.fround(r.tau * r.tau));
    expect(new Set(sarm.map((r) => r.uncertainty)).size).toBeGreaterThan(1);
    const both = await run(ensembleEngine, { ...base, progress: 'both' }, fs);
    expect(both.map((r) => r.uncertainty)).toEqual(sarm.map((r) => r.uncertainty)); // GRM does not change it
  });

  it('conservative transform: each shaped term uses Phi - k * uncertainty of its own steps, and the episode still telescopes', async () => {
    const k = 1.5;
    const cfg: ShapingConfig = { mode: 'pbrs', gamma: base.gamma, scale: 1, transform: { kind: 'conservative', k } };
    const fs = frames(12);
    const plain = await run(ensembleEngine, base, fs, 'terminated');
    const rs = await run(ensembleEngine, { ...base, transform: cfg.transform }, fs, 'terminated');
    const phiPrime = (r: StepResult) => Math.min(1, Math.max(0, r.progress - k * r.uncertainty!));
    let sum = 0;
    let lowered = 0;
    for (let t = 1; t < rs.length; t++) {
      const next = t === rs.length - 1 ? 0 : base.gamma * phiPrime(rs[t]!); // the last step terminates
      expect(rs[t]!.shaped).toBeCloseTo(rs[t]!.reward + next - phiPrime(rs[t - 1]!), 12);
      if (Math.abs(rs[t]!.shaped - plain[t]!.shaped) > 1e-9) lowered++;
      sum += base.gamma ** (t - 1) * (rs[t]!.shaped - rs[t]!.reward);
    }
    expect(lowered).toBeGreaterThan(0); // the transform is visible
    expect(rs.map((r) => r.progress)).toEqual(plain.map((r) => r.progress)); // `progress` stays Phi, before the transform
    const us = rs.map((r) => r.uncertainty!);
    expect(sum).toBeCloseTo(
      telescopedShaping(
        rs.map((r) => r.progress),
        true,
        cfg,
        us,
      ),
      9,
    );
    expect(sum).toBeCloseTo(-potential(rs[0]!.progress, cfg.transform, us[0]!), 9);
  });

  it('the conservative transform is the identity on a package without uncertainty', async () => {
    const fs = frames(6);
    const plain = await runEpisode(base, fs);
    const cons = await runEpisode({ ...base, transform: { kind: 'conservative', k: 3 } }, fs);
    expect(cons.map((r) => r.shaped)).toEqual(plain.map((r) => r.shaped));
  });

  it('smoothing: progress is the confidence-weighted EMA of the raw Phi, heads stay raw, shaping uses it, each episode starts afresh', async () => {
    const fs = frames(10);
    const smoothing = { kind: 'ema', alpha: 0.4, u0: 0.1 } as const;
    const raw = await run(ensembleEngine, base, fs);
    const rs = await run(ensembleEngine, { ...base, smoothing }, fs);
    let prev: number | undefined;
    let differ = 0;
    for (let t = 0; t < rs.length; t++) {
      const r = rs[t]!;
      expect(r.heads.sarm).toBe(raw[t]!.heads.sarm);
      const want = smoothProgress(prev, raw[t]!.progress, r.uncertainty!, smoothing);
      expect(r.progress).toBeCloseTo(want, 12);
      if (t > 0) expect(r.shaped).toBeCloseTo(r.reward + base.gamma * r.progress - rs[t - 1]!.progress, 12);
      if (Math.abs(r.progress - r.heads.sarm) > 1e-9) differ++;
      prev = r.progress;
    }
    expect(rs[0]!.progress).toBe(rs[0]!.heads.sarm); // step 0 starts at Phi(0)
    expect(differ).toBeGreaterThan(0);
    // a second episode on the same engine does not inherit the first one's smoothed value
    const again = await run(ensembleEngine, { ...base, smoothing }, fs);
    expect(again.map((r) => r.progress)).toEqual(rs.map((r) => r.progress));
    // off by default, and the same without uncertainty as a plain EMA
    expect(raw.every((r) => r.progress === r.heads.sarm)).toBe(true);
    const plain = await runEpisode({ ...base, smoothing: { kind: 'ema', alpha: 0.4 } }, fs);
    let p: number | undefined;
    for (const r of plain) {
      expect(r.progress).toBeCloseTo(p === undefined ? r.heads.sarm : p + 0.4 * (r.heads.sarm - p), 12);
      p = r.progress;
    }
  });
});
