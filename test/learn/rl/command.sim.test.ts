// `stageward rl` end to end with pbrs-true (no model, nothing rendered) on a tiny budget: it runs whole
// learner iterations within --rollouts, evaluates the start and every iteration on held-out seeds, writes
// curve.csv / curve.png / summary.json / policy.json / report.html (self-contained, no thumbnails), and its
// last stdout line is the run's JSON; bad options fail with stable codes before anything is created.

import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { GatedLinearPolicy } from '../../../learn/policy/linear-policy.ts';
import { CURVE_COLUMNS } from '../../../learn/rl/curve.ts';
import { RL_DEFAULTS } from '../../../learn/rl/power.ts';
import { runCli } from '../../helpers.ts';
import { expectSelfContained, tableRows, thumbnails } from '../../html-report-checks.ts';

const cli = runCli;

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stageward-rl-'));
});
afterEach(() => vi.restoreAllMocks());

const TINY = [
  '--task',
  'pick_place',
  '--episodes-per-iteration',
  '8',
  '--max-steps',
  '40',
  '--eval-episodes',
  '4',
  '--eval-every',
  '1',
  '--envs',
  '2',
  '--no-progress',
];

describe('stageward rl', () => {
  it('trains with pbrs-true on a tiny budget and writes the curve, summary and policy; the last line is the run JSON', async () => {
    const out = join(dir, 'true');
    const r = await cli(['rl', '--reward', 'pbrs-true', '--rollouts', '20', '--seed', '3', '--out', out, ...TINY]);
    expect(r.code, r.stderr).toBe(0);

    const last = JSON.parse(r.stdout.at(-1)!) as Record<string, unknown>;
    expect(Object.keys(last).slice(0, 8)).toEqual([
      'reward',
      'rollouts',
      'seed',
      'start_success',
      'final_success',
      'final_ci95',
      'hover_share',
      'wall_s',
    ]);
    // 20 rollouts hold two whole iterations of 2 x 4 episodes
    expect(last).toMatchObject({ reward: 'pbrs-true', rollouts: 16, seed: 3 });
    expect(last.final_ci95).toHaveLength(2);

    const csv = (await readFile(join(out, 'curve.csv'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(','));
    expect(csv[0]).toEqual([...CURVE_COLUMNS]);
    const col = (name: (typeof CURVE_COLUMNS)[number]) => CURVE_COLUMNS.indexOf(name);
    expect(csv.slice(1).map((row) => Number(row[col('rollouts')]))).toEqual([0, 8, 16]);
    const [start, , end] = csv.slice(1);
    expect(start![col('train_success')]).toBe(''); // the start has no training episodes
    expect(Number(start![col('eval_episodes')])).toBe(4);
    expect(Number(start![col('eval_success')])).toBe(last.start_success);
    expect(Number(end![col('eval_success')])).toBe(last.final_success);
    expect(Number(end![col('mean_length')])).toBeLessThanOrEqual(40);

    const png = await sharp(await readFile(join(out, 'curve.png'))).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(400);

    const summary = JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')) as Record<string, any>;
    expect(summary).toMatchObject({
      reward: 'pbrs-true',
      rollouts: 16,
      iterations: 2,
      final_success: last.final_success,
      hover_share: last.hover_share,
    });
    expect(summary.options).toMatchObject({
      rollouts_budget: 20,
      episodes_per_iteration: 8,
      max_steps: 40,
      eval_episodes: 4,
      eval_seeds: [4_000_000_000, 4_000_000_003],
      time_limit_only: false,
      noise_correlation: RL_DEFAULTS.noiseCorrelation,
      temperature: RL_DEFAULTS.temperature,
    });
    expect(summary.eval_curve.map((p: { rollouts: number }) => p.rollouts)).toEqual([0, 8, 16]);
    expect(summary.env_steps).toBeGreaterThan(0);

    // report.html: self-contained, the curve's charts, one table row per curve row, and no thumbnails
    expect(r.stdout.join('\n')).toContain(join(out, 'report.html'));
    const html = await readFile(join(out, 'report.html'), 'utf8');
    expectSelfContained(html);
    expect(html).toContain('<body data-report="rl">');
    expect(html).toContain('data-chart="success"');
    expect(tableRows(html, 'iterations')).toBe(3);
    expect(thumbnails(html)).toBe(0);
    expect(html).toContain('rl reports have no thumbnails');
    expect(html).toContain('final eval success');

    const { policy, provenance } = await GatedLinearPolicy.load(join(out, 'policy.json'));
    expect(policy.task.id).toBe('pick_place');
    expect(provenance).toMatchObject({ trainer: 'stageward rl', reward: 'pbrs-true', rollouts: 16, seed: 3 });
  }, 60_000);

  it('refuses bad options with stable codes before creating anything', async () => {
    const out = join(dir, 'never');
    const unknown = await cli(['rl', '--reward', 'dense', '--out', out, '--no-progress']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('SW_ERR_BAD_OPTION');
    expect(unknown.stderr).toContain('unknown reward mode');

    const short = await cli(['rl', '--reward', 'pbrs', '--rollouts', '10', '--out', out, '--no-progress']);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('SW_ERR_POLICY');
    expect(short.stderr).toContain('less than one iteration');

    const url = await cli([
      'rl',
      '--reward',
      'pbrs',
      '--transport',
      'inprocess',
      '--url',
      'ws://127.0.0.1:1',
      '--out',
      out,
      '--no-progress',
    ]);
    expect(url.code).toBe(2);
    expect(url.stderr).toContain('SW_ERR_BAD_OPTION');
    expect(await exists(out)).toBe(false);

    const other = join(dir, 'stack.json');
    await GatedLinearPolicy.zeros('stack_three').save(other);
    const wrongTask = await cli(['rl', '--reward', 'sparse', '--start', other, '--out', out, '--no-progress']);
    expect(wrongTask.code).toBe(2);
    expect(wrongTask.stderr).toContain('SW_ERR_POLICY');
    expect(wrongTask.stderr).toContain('stack_three');
  });
});
