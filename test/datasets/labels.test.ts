// SARM labels from hand-built subtask spans: the per-frame rule (before the first span, inside,
// gaps, after the last, one-frame spans), validation that fails fast, priors, and both progress
// compositions.

import { describe, expect, it } from 'vitest';
import {
  AFTER_LAST_TAU,
  frameLabels,
  sarmProgressOf,
  sarmTargets,
  stepProgressOf,
  temporalProportions,
  truthLabels,
  validateSpans,
  wholeEpisodeSpan,
} from '../../datasets/labels.ts';
import { isStagewardError, type ErrorCode } from '../../core/errors.ts';
import type { SubtaskSpan } from '../../datasets/types.ts';

const STAGES = ['reach', 'grasp', 'lift', 'place'];

function code(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (err) {
    if (isStagewardError(err)) return err.code;
    throw err;
  }
  return undefined;
}

const close = (actual: ArrayLike<number>, expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  expected.forEach((v, i) => expect(actual[i]).toBeCloseTo(v, 5));
};

describe('SARM stage and tau per frame', () => {
  it("inside spans: tau = (t - s) / (e - s), stage = the span name's index", () => {
    const spans: SubtaskSpan[] = [
      { name: 'reach', start: 0, end: 4 },
      { name: 'grasp', start: 5, end: 7 },
    ];
    const { stage, tau } = sarmTargets(spans, 8, STAGES);
    expect(Array.from(stage)).toEqual([0, 0, 0, 0, 0, 1, 1, 1]);
    close(tau, [0, 0.25, 0.5, 0.75, 1, 0, 0.5, 1]);
  });

  it('before the first span: stage 0, tau 0; after the last: stage K-1, tau 0.999', () => {
    const { stage, tau } = sarmTargets([{ name: 'grasp', start: 2, end: 4 }], 7, STAGES);
    expect(Array.from(stage)).toEqual([0, 0, 1, 1, 1, 3, 3]);
    close(tau, [0, 0, 0, 0.5, 1, AFTER_LAST_TAU, AFTER_LAST_TAU]);
  });

  it('a gap between spans keeps the previous stage at tau 1', () => {
    const spans: SubtaskSpan[] = [
      { name: 'reach', start: 0, end: 2 },
      { name: 'lift', start: 6, end: 8 },
    ];
    const { stage, tau } = sarmTargets(spans, 9, STAGES);
    expect(Array.from(stage)).toEqual([0, 0, 0, 0, 0, 0, 2, 2, 2]);
    close(tau, [0, 0.5, 1, 1, 1, 1, 0, 0.5, 1]);
  });

  it('a one-frame span gives tau 1 at its frame; spans sharing a boundary frame give it to the first', () => {
    const spans: SubtaskSpan[] = [
      { name: 'reach', start: 0, end: 3 },
      { name: 'grasp', start: 3, end: 3 },
      { name: 'lift', start: 4, end: 5 },
    ];
    const { stage, tau } = sarmTargets(spans, 6, STAGES);
    expect(Array.from(stage)).toEqual([0, 0, 0, 0, 2, 2]);
    close(tau, [0, 1 / 3, 2 / 3, 1, 0, 1]);
    const single = sarmTargets([{ name: 'grasp', start: 2, end: 2 }], 3, STAGES);
    expect(Array.from(single.stage)).toEqual([0, 0, 1]);
    close(single.tau, [0, 0, 1]);
  });

  it('a whole-episode single stage is linear progress t / (T - 1)', () => {
    const { tau } = sarmTargets(wholeEpisodeSpan('task', 5), 5, ['task']);
    close(tau, [0, 0.25, 0.5, 0.75, 1]);
  });
});

describe('validation fails fast', () => {
  it('missing annotations are an error, never all-zero targets', () => {
    expect(code(() => sarmTargets([], 10, STAGES))).toBe('SW_ERR_ANNOTATION_MISSING');
    expect(code(() => validateSpans(null, 10, STAGES))).toBe('SW_ERR_ANNOTATION_MISSING');
  });

  it('unknown names, spans outside the episode, reversed or overlapping spans are refused', () => {
    const bad: SubtaskSpan[][] = [
      [{ name: 'fly', start: 0, end: 3 }],
      [{ name: 'reach', start: 0, end: 10 }],
      [{ name: 'reach', start: -1, end: 3 }],
      [{ name: 'reach', start: 4, end: 3 }],
      [
        { name: 'reach', start: 0, end: 5 },
        { name: 'grasp', start: 4, end: 8 },
      ],
      [
        { name: 'grasp', start: 5, end: 8 },
        { name: 'reach', start: 0, end: 4 },
      ],
      [{ name: 'reach', start: 0.5, end: 3 }],
    ];
    for (const spans of bad) expect(code(() => validateSpans(spans, 10, STAGES, 'ep'))).toBe('SW_ERR_ANNOTATION_INVALID');
  });

  it('names the episode and the subtask in the message', () => {
    expect(() => validateSpans([{ name: 'fly', start: 0, end: 3 }], 10, STAGES, 'episode 7')).toThrow(/episode 7: subtask 0 \("fly"\)/);
  });

  it('a regression (revisiting an earlier stage later) is valid', () => {
    const spans: SubtaskSpan[] = [
      { name: 'reach', start: 0, end: 2 },
      { name: 'grasp', start: 3, end: 5 },
      { name: 'reach', start: 6, end: 7 },
    ];
    expect(Array.from(sarmTargets(spans, 8, STAGES).stage)).toEqual([0, 0, 0, 1, 1, 1, 0, 0]);
  });
});

describe('priors', () => {
  it('are the mean of per-episode duration shares, renormalised to sum to 1', () => {
    const priors = temporalProportions(
      [
        {
          spans: [
            { name: 'a', start: 0, end: 1 },
            { name: 'b', start: 2, end: 9 },
          ],
          length: 10,
        }, // 0.2, 0.8
        {
          spans: [
            { name: 'a', start: 0, end: 5 },
            { name: 'b', start: 6, end: 9 },
          ],
          length: 10,
        }, // 0.6, 0.4
      ],
      ['a', 'b'],
    );
    close(priors, [0.4, 0.6]);
    expect(priors.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
  });

  it('give every stage a floor, so a stage no episode shows is never worth 0', () => {
    const priors = temporalProportions([{ spans: [{ name: 'reach', start: 0, end: 9 }], length: 10 }], STAGES, 0.01);
    expect(priors.every((p) => p > 0)).toBe(true);
    expect(priors.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 12);
    expect(priors[0]).toBeGreaterThan(0.9);
  });

  it('refuse episodes without annotations', () => {
    expect(code(() => temporalProportions([{ spans: [], length: 10 }], STAGES))).toBe('SW_ERR_ANNOTATION_MISSING');
    expect(code(() => temporalProportions([], STAGES))).toBe('SW_ERR_ANNOTATION_MISSING');
  });
});

describe('progress', () => {
  const spans: SubtaskSpan[] = [
    { name: 'reach', start: 0, end: 2 },
    { name: 'grasp', start: 3, end: 4 },
    { name: 'lift', start: 5, end: 7 },
    { name: 'place', start: 8, end: 9 },
  ];
  const priors = [0.1, 0.2, 0.3, 0.4];

  it('SARM: Phi = P_k + a_k * tau, rising from 0 to 1 on a clean episode', () => {
    const labels = frameLabels(spans, 10, STAGES, priors);
    close(labels.progressSarm, [0, 0.05, 0.1, 0.1, 0.3, 0.3, 0.45, 0.6, 0.6, 1]);
    for (let t = 1; t < 10; t++) expect(labels.progressSarm[t]!).toBeGreaterThanOrEqual(labels.progressSarm[t - 1]!);
  });

  it('step-wise: each stage is worth 1/N whatever its duration', () => {
    const labels = frameLabels(spans, 10, STAGES, priors);
    close(labels.progressStep, [0, 0.125, 0.25, 0.25, 0.5, 0.5, 0.625, 0.75, 0.75, 1]);
    close(stepProgressOf({ stage: Int32Array.from([1]), tau: Float32Array.from([0.5]) }, 2), [0.75]);
  });

  it('refuses priors that do not match the stages or do not sum to 1', () => {
    expect(code(() => frameLabels(spans, 10, STAGES, [0.5, 0.5]))).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(code(() => sarmProgressOf({ stage: Int32Array.from([0]), tau: Float32Array.from([0]) }, [0.5, 0.2]))).toBe(
      'SW_ERR_ANNOTATION_INVALID',
    );
  });
});

describe('labels from the simulator truth', () => {
  const names = ['a', 'b', 'c'];
  const priors = [0.5, 0.3, 0.2];

  it('recovers stage and tau from true stage and progress, flat where the truth is flat', () => {
    const stage = [0, 0, 0, 1, 1, 2, 2];
    const progress = [0, 0.25, 0.25, 0.5, 0.65, 0.9, 1];
    const l = truthLabels(stage, progress, names, priors);
    expect(Array.from(l.stage)).toEqual(stage);
    expect(Array.from(l.tau)).toEqual([0, 0.5, 0.5, 0, 0.5, 0.5, 1].map(Math.fround));
    Array.from(l.progressSarm).forEach((p, t) => expect(p).toBeCloseTo(progress[t]!, 6));
    expect(l.progressStep[4]).toBeCloseTo((1 + 0.5) / 3, 6);
  });

  it('refuses truth composed with other priors, an unknown stage, and mismatched lengths', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'no error';
    };
    expect(code(() => truthLabels([0], [0.7], names, priors))).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(code(() => truthLabels([3], [0.9], names, priors))).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(code(() => truthLabels([0, 0], [0.1], names, priors))).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(code(() => truthLabels([0], [Number.NaN], names, priors))).toBe('SW_ERR_ANNOTATION_INVALID');
  });
});
