// Comparing two eval results: each figure in its own direction, missing figures reported as such.

import { describe, expect, it } from 'vitest';
import { compareEvalMetrics } from '../../../offline/eval/compare.ts';

describe('compareEvalMetrics', () => {
  it('counts a figure as worse in the direction that is bad for it', () => {
    const rows = compareEvalMetrics(
      { voc_plus: 0.95, voc_minus: -0.94, progress_mae: 0.04, stall_drift_per_s: -0.002, episodes: 50 },
      { voc_plus: 0.93, voc_minus: -0.96, progress_mae: 0.045, stall_drift_per_s: 0.004, episodes: 50 },
    );
    const worse = Object.fromEntries(rows.map((r) => [r.figure, r.worse]));
    expect(worse.voc_plus).toBeCloseTo(0.02, 12); // lower than before: worse
    expect(worse.voc_minus).toBeCloseTo(-0.02, 12); // more negative on reversed videos: better
    expect(worse.progress_mae).toBeCloseTo(0.005, 12); // higher error: worse
    expect(worse.stall_drift_per_s).toBeCloseTo(0.002, 12); // further from zero, whatever the sign
    expect(rows.map((r) => r.figure)).not.toContain('episodes'); // counts are not quality figures
  });

  it('keeps a figure that only one side has, with no difference', () => {
    const rows = compareEvalMetrics({ auroc: null, stage_accuracy: 0.9 }, { auroc: 0.8, stage_accuracy: 0.9 });
    expect(rows).toEqual([
      { figure: 'stage_accuracy', direction: 'higher', baseline: 0.9, candidate: 0.9, worse: 0 },
      { figure: 'auroc', direction: 'higher', baseline: null, candidate: 0.8, worse: null },
    ]);
  });
});
