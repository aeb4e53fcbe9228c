// The shared label vectors (test/fixtures/label-vectors.json) through the TypeScript label rule:
// the same file checks the Python trainer's labels (models/train/tests/test_label_vectors.py), so
// the bundle exporter and the trainer can never disagree on a stage, tau, progress or hop target.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hopBetween } from '../../models/progress.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { AFTER_LAST_TAU, frameLabels } from '../../datasets/labels.ts';
import type { SubtaskSpan } from '../../datasets/types.ts';

interface LabelCase {
  name: string;
  length: number;
  stages: string[];
  priors: number[];
  spans: SubtaskSpan[];
  expected: { stage: number[]; tau: number[]; progress_sarm: number[]; progress_step: number[] };
}

interface LabelVectors {
  after_last_tau: number;
  tolerance: number;
  cases: LabelCase[];
  hops: { before: number; after: number; hop: number }[];
}

const vectors = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'label-vectors.json'), 'utf8')) as LabelVectors;

const within = (actual: ArrayLike<number>, expected: number[], what: string) => {
  expect(actual.length, what).toBe(expected.length);
  expected.forEach((v, i) =>
    expect(Math.abs(actual[i]! - v), `${what}[${i}]: got ${actual[i]}, want ${v}`).toBeLessThanOrEqual(vectors.tolerance),
  );
};

describe('shared label vectors (datasets/labels.ts)', () => {
  it('cover the edge cases the rule has', () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(8);
    expect(vectors.after_last_tau).toBe(AFTER_LAST_TAU);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const labels = frameLabels(c.spans, c.length, c.stages, c.priors, c.name);
    expect(Array.from(labels.stage)).toEqual(c.expected.stage);
    within(labels.tau, c.expected.tau, 'tau');
    within(labels.progressSarm, c.expected.progress_sarm, 'progress_sarm');
    within(labels.progressStep, c.expected.progress_step, 'progress_step');
  });

  it('hop targets follow Robo-Dopamine (0 where the denominator is 0)', () => {
    for (const h of vectors.hops)
      expect(Math.abs(hopBetween(h.before, h.after) - h.hop), `${h.before} -> ${h.after}`).toBeLessThanOrEqual(vectors.tolerance);
  });
});
