// What an annotator gets back for each kind of bad annotation (the message names the episode, the
// subtask and what is wrong), and the label rules at their edges: spans that touch, gaps between
// subtasks, frames after the last one, dense truth at its tolerance, and the temporal-proportion
// priors with stages that no episode shows.
import { describe, expect, it } from 'vitest';
import { refusal } from '../helpers.ts';
import {
  AFTER_LAST_TAU,
  frameLabels,
  sarmProgressOf,
  sarmTargets,
  stepProgressOf,
  temporalProportions,
  TRUTH_TOLERANCE,
  truthLabels,
  validateSpans,
} from '../../datasets/labels.ts';

const STAGES = ['reach', 'grasp', 'lift'];

describe('span checks, one message each', () => {
  const check = (spans: { name: string; start: number; end: number }[] | null, length = 10) =>
    refusal(() => validateSpans(spans, length, STAGES, 'ep 7'));

  it('names the episode, the subtask and the problem', () => {
    expect(check([{ name: 'reach', start: 0, end: 3 }], 0)).toMatchObject({
      code: 'SW_ERR_ANNOTATION_INVALID',
      message: 'ep 7: episode length must be a positive integer, got 0',
    });
    expect(check([{ name: 'reach', start: 0, end: 3 }], 2.5).message).toBe('ep 7: episode length must be a positive integer, got 2.5');
    expect(refusal(() => validateSpans([{ name: 'reach', start: 0, end: 1 }], 5, [], 'ep 7')).message).toBe(
      'ep 7: the dataset declares no stage names',
    );
    expect(check(null)).toMatchObject({
      code: 'SW_ERR_ANNOTATION_MISSING',
      message: 'ep 7: no subtask annotations; labels need at least one span over the stages reach, grasp, lift',
    });
    expect(check([]).code).toBe('SW_ERR_ANNOTATION_MISSING');
    expect(check([{ name: 'push', start: 0, end: 3 }]).message).toBe(
      'ep 7: subtask 0 ("push") is not one of the stages reach, grasp, lift',
    );
    expect(check([{ name: 'reach', start: 0.5, end: 3 }]).message).toBe('ep 7: subtask 0 ("reach") has non-integer frames [0.5, 3]');
    expect(check([{ name: 'reach', start: 0, end: 10 }]).message).toBe(
      'ep 7: subtask 0 ("reach") spans [0, 10], outside the episode\'s frames [0, 9]',
    );
    expect(check([{ name: 'reach', start: -1, end: 3 }]).message).toContain('outside the episode');
    expect(check([{ name: 'reach', start: 4, end: 3 }]).message).toBe('ep 7: subtask 0 ("reach") starts after it ends: [4, 3]');
    expect(
      check([
        { name: 'reach', start: 0, end: 5 },
        { name: 'grasp', start: 4, end: 8 },
      ]).message,
    ).toBe('ep 7: subtask 1 ("grasp") starts at frame 4, before the previous subtask ends (5); spans must be in time order');
  });

  it('accepts spans that touch at one frame, the last frame, and a repeated stage', () => {
    expect(() =>
      validateSpans(
        [
          { name: 'reach', start: 0, end: 5 },
          { name: 'grasp', start: 5, end: 9 },
        ],
        10,
        STAGES,
      ),
    ).not.toThrow();
    expect(() => validateSpans([{ name: 'reach', start: 9, end: 9 }], 10, STAGES)).not.toThrow();
    expect(() =>
      validateSpans(
        [
          { name: 'grasp', start: 0, end: 2 },
          { name: 'reach', start: 3, end: 4 },
          { name: 'grasp', start: 5, end: 6 },
        ],
        10,
        STAGES,
      ),
    ).not.toThrow();
  });
});

describe('SARM targets at the edges', () => {
  it('before the first span is stage 0 at tau 0; a gap keeps the previous stage at tau 1; after the last, the last stage just short of 1', () => {
    const { stage, tau } = sarmTargets(
      [
        { name: 'grasp', start: 2, end: 4 },
        { name: 'lift', start: 7, end: 8 },
      ],
      11,
      STAGES,
    );
    expect(Array.from(stage)).toEqual([0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2]);
    expect(Array.from(tau)).toEqual([0, 0, 0, 0.5, 1, 1, 1, 0, 1, AFTER_LAST_TAU, AFTER_LAST_TAU].map(Math.fround));
  });

  it('a one-frame span is at tau 1', () => {
    expect(Array.from(sarmTargets([{ name: 'reach', start: 0, end: 0 }], 1, STAGES).tau)).toEqual([1]);
  });
});

describe('progress from targets', () => {
  const targets = { stage: Int32Array.from([0, 1, 2]), tau: Float32Array.from([0.5, 0, 1]) };

  it('SARM progress is P_k + a_k tau; step progress is (k + tau) / N', () => {
    expect(Array.from(sarmProgressOf(targets, [0.2, 0.3, 0.5]))).toEqual([0.1, 0.2, 1].map(Math.fround));
    expect(Array.from(stepProgressOf(targets, 3))).toEqual([0.5 / 3, 1 / 3, 1].map(Math.fround));
  });

  it('refuses priors that do not make a distribution, a stage without a prior, and a bad stage count', () => {
    for (const priors of [[], [0.5, 0.6, -0.1], [0.2, 0.3, 0.4], [NaN, 0.5, 0.5], [0.2, 0.3, Infinity]])
      expect(refusal(() => sarmProgressOf(targets, priors)).message).toMatch(/^priors must be non-negative and sum to 1, got \[/);
    expect(refusal(() => sarmProgressOf(targets, [0.2, 0.3, 0.4])).message).toBe(
      'priors must be non-negative and sum to 1, got [0.2, 0.3, 0.4]',
    );
    expect(refusal(() => sarmProgressOf(targets, [0.5, 0.5])).message).toBe('stage 2 at frame 2 has no prior (2 stages)');
    expect(refusal(() => sarmProgressOf({ stage: Int32Array.from([-1]), tau: Float32Array.from([0]) }, [1])).message).toBe(
      'stage -1 at frame 0 has no prior (1 stages)',
    );
    expect(refusal(() => stepProgressOf(targets, 0)).message).toBe('stage count must be a positive integer, got 0');
    expect(refusal(() => stepProgressOf(targets, 1.5)).code).toBe('SW_ERR_ANNOTATION_INVALID');
    expect(refusal(() => frameLabels([{ name: 'reach', start: 0, end: 2 }], 3, STAGES, [0.5, 0.5], 'ep 2')).message).toBe(
      'ep 2: 2 priors for 3 stages',
    );
  });
});

describe('dense truth labels', () => {
  const priors = [0.2, 0.3, 0.5];

  it('recover tau from progress, within TRUTH_TOLERANCE of the stage range and no further', () => {
    const l = truthLabels([0, 1, 2], [0.1, 0.35, 0.75], STAGES, priors);
    expect(Array.from(l.tau)).toEqual([0.5, 0.5, 0.5].map(Math.fround));
    expect(() => truthLabels([0], [0.2 + TRUTH_TOLERANCE * 0.9], STAGES, priors)).not.toThrow();
    expect(refusal(() => truthLabels([0], [0.2 + TRUTH_TOLERANCE * 1.5], STAGES, priors, 'ep 3')).message).toMatch(
      /^ep 3: frame 0: true progress 0\.2030 lies outside stage reach \[0\.0000, 0\.2000\]/,
    );
  });

  it('refuses mismatched lengths, stages out of range and non-finite progress', () => {
    expect(refusal(() => truthLabels([0, 1], [0.1], STAGES, priors, 'ep 3')).message).toBe(
      'ep 3: 2 true stages for 1 true progress values',
    );
    expect(refusal(() => truthLabels([0], [0.1], STAGES, [1], 'ep 3')).message).toBe('ep 3: 1 priors for 3 stages');
    for (const [k, p] of [
      [3, 0.9],
      [-1, 0.1],
      [0.5, 0.1],
      [0, NaN],
    ])
      expect(refusal(() => truthLabels([k!], [p!], STAGES, priors, 'ep 3')).message).toMatch(
        /^ep 3: frame 0 has true stage .*; stages are 0\.\.2$/,
      );
  });
});

describe('temporal-proportion priors', () => {
  it('average each stage over the episodes that show it, floor the missing ones, and sum to 1', () => {
    const priors = temporalProportions(
      [
        {
          spans: [
            { name: 'reach', start: 0, end: 3 },
            { name: 'grasp', start: 4, end: 9 },
          ],
          length: 10,
        },
        {
          spans: [
            { name: 'reach', start: 0, end: 1 },
            { name: 'grasp', start: 2, end: 9 },
          ],
          length: 10,
        },
      ],
      STAGES,
      0.01,
    );
    // reach (0.4 + 0.2) / 2 = 0.3, grasp (0.6 + 0.8) / 2 = 0.7, lift never: floored to 0.01, renormalised
    expect(priors[0]).toBeCloseTo(0.3 / 1.01, 12);
    expect(priors[1]).toBeCloseTo(0.7 / 1.01, 12);
    expect(priors[2]).toBeCloseTo(0.01 / 1.01, 12);
  });

  it('refuses an empty stage list, a floor outside (0, 1/K) and no episodes; names the episode of a bad one', () => {
    const ep = { spans: [{ name: 'reach', start: 0, end: 1 }], length: 2 };
    expect(refusal(() => temporalProportions([ep], [])).message).toBe('no stage names');
    for (const floor of [0, -0.1, 1 / 3, NaN])
      expect(refusal(() => temporalProportions([ep], STAGES, floor)).message).toMatch(/^prior floor must be in \(0, 1\/3\), got /);
    expect(refusal(() => temporalProportions([], STAGES))).toMatchObject({
      code: 'SW_ERR_ANNOTATION_MISSING',
      message: 'no annotated episodes to compute stage priors from',
    });
    expect(refusal(() => temporalProportions([ep, { spans: [{ name: 'x', start: 0, end: 1 }], length: 2 }], STAGES)).message).toMatch(
      /^episode 1: subtask 0/,
    );
    expect(refusal(() => temporalProportions([{ ...ep, label: 'demo-9', spans: [] }], STAGES)).message).toMatch(
      /^demo-9: no subtask annotations/,
    );
  });
});

describe('without a label, messages name "episode"', () => {
  it('from each entry point', () => {
    expect(refusal(() => validateSpans(null, 10, STAGES)).message).toBe(
      'episode: no subtask annotations; labels need at least one span over the stages reach, grasp, lift',
    );
    expect(refusal(() => sarmTargets([{ name: 'push', start: 0, end: 3 }], 10, STAGES)).message).toBe(
      'episode: subtask 0 ("push") is not one of the stages reach, grasp, lift',
    );
    expect(refusal(() => frameLabels([{ name: 'reach', start: 0, end: 2 }], 3, STAGES, [0.5, 0.5])).message).toBe(
      'episode: 2 priors for 3 stages',
    );
    expect(refusal(() => frameLabels([{ name: 'push', start: 0, end: 2 }], 3, STAGES, [0.2, 0.3, 0.5])).message).toMatch(
      /^episode: subtask 0 \("push"\)/,
    );
    expect(refusal(() => truthLabels([0], [0.1], STAGES, [1])).message).toBe('episode: 1 priors for 3 stages');
  });
});

describe('priors and truth at their boundaries', () => {
  it('dense truth exactly TRUTH_TOLERANCE below its stage is accepted, and labelled at the stage start', () => {
    // 0 - (-TRUTH_TOLERANCE) is exactly TRUTH_TOLERANCE in floating point: the tolerance is inclusive.
    const l = truthLabels([0], [-TRUTH_TOLERANCE], STAGES, [0.2, 0.3, 0.5]);
    expect(Array.from(l.tau)).toEqual([0]);
    expect(Array.from(l.progressSarm)).toEqual([0]);
  });

  it('a zero prior is a valid (non-negative) prior: its stage adds no progress', () => {
    const targets = { stage: Int32Array.from([0, 1, 1]), tau: Float32Array.from([1, 0, 0.5]) };
    expect(Array.from(sarmProgressOf(targets, [0, 1]))).toEqual([0, 0, 0.5]);
  });

  it('a stage is averaged only over the episodes that show it', () => {
    // reach in both (1.0 and 0.5: mean 0.75), grasp only in the second (0.5), lift in none (floor)
    const priors = temporalProportions(
      [
        { spans: [{ name: 'reach', start: 0, end: 9 }], length: 10 },
        {
          spans: [
            { name: 'reach', start: 0, end: 4 },
            { name: 'grasp', start: 5, end: 9 },
          ],
          length: 10,
        },
      ],
      STAGES,
      0.01,
    );
    // 0.75 : 0.5 renormalised is 0.6 : 0.4; lift floored to 0.01; then renormalised again
    expect(priors[0]).toBeCloseTo(0.6 / 1.01, 12);
    expect(priors[1]).toBeCloseTo(0.4 / 1.01, 12);
    expect(priors[2]).toBeCloseTo(0.01 / 1.01, 12);
  });

  it('each episode counts by its share of frames, whatever its length', () => {
    // reach 2/10 and 3/4 (mean 0.475), grasp 8/10 and 1/4 (mean 0.525)
    const priors = temporalProportions(
      [
        {
          spans: [
            { name: 'reach', start: 0, end: 1 },
            { name: 'grasp', start: 2, end: 9 },
          ],
          length: 10,
        },
        {
          spans: [
            { name: 'reach', start: 0, end: 2 },
            { name: 'grasp', start: 3, end: 3 },
          ],
          length: 4,
        },
      ],
      STAGES,
      0.01,
    );
    expect(priors[0]).toBeCloseTo(0.475 / 1.01, 12);
    expect(priors[1]).toBeCloseTo(0.525 / 1.01, 12);
    expect(priors[2]).toBeCloseTo(0.01 / 1.01, 12);
  });

  it('frames outside every span do not dilute the shares: they sum to 1 before the floor', () => {
    // reach 2/10, grasp 3/10, half the episode unannotated: 0.4 : 0.6, and lift's floor stays 0.01 of that
    const priors = temporalProportions(
      [
        {
          spans: [
            { name: 'reach', start: 0, end: 1 },
            { name: 'grasp', start: 2, end: 4 },
          ],
          length: 10,
        },
      ],
      STAGES,
      0.01,
    );
    expect(priors[0]).toBeCloseTo(0.4 / 1.01, 12);
    expect(priors[1]).toBeCloseTo(0.6 / 1.01, 12);
    expect(priors[2]).toBeCloseTo(0.01 / 1.01, 12);
  });
});
