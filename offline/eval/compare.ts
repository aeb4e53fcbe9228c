// Is a candidate reward model as good as a baseline on the same held-out sets? Compares the figures of
// two `stageward eval` metrics.json files metric by metric, each in the direction that is better for
// it, and names every figure that got worse by more than a tolerance (the bar a cheaper encoder, a
// quantised graph or a distilled student has to clear before it replaces a bundled model).
//
//   const rows = compareEvalMetrics(baselineDoc, candidateDoc);
//   const worse = rows.filter((r) => r.worse > 0.01);

/** How a figure of `stageward eval` improves: up, down (more negative is better too), or toward 0. */
export type Direction = 'higher' | 'lower' | 'toward-zero';

/**
 * The quality figures of an eval metrics.json and the direction each improves in. Counts (episodes,
 * frames, outcomes), the labels' own VOC and the mean uncertainty describe the data or the model's
 * confidence rather than its accuracy and are not compared.
 */
export const EVAL_FIGURES: Readonly<Record<string, Direction>> = {
  voc_plus: 'higher',
  voc_plus_monotone: 'higher',
  voc_minus: 'lower', // the VOC of reversed videos: -1 is best
  voc_minus_monotone: 'lower',
  stage_accuracy: 'higher',
  progress_mae: 'lower',
  auroc: 'higher',
  grm_voc_plus: 'higher',
  grm_voc_minus: 'lower',
  grm_progress_mae: 'lower',
  grm_auroc: 'higher',
  progress_pearson: 'higher',
  delta_pearson_1s: 'higher',
  stall_drift_per_s: 'toward-zero',
  false_high_rate: 'lower',
  uncertainty_auroc: 'higher',
  large_error_share: 'lower',
};

export interface FigureComparison {
  figure: string;
  direction: Direction;
  baseline: number | null;
  candidate: number | null;
  /** How much worse the candidate is, in the figure's own units (negative: better); null when either is missing. */
  worse: number | null;
}

function figureOf(doc: Record<string, unknown>, key: string): number | null {
  const v = doc[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Every EVAL_FIGURES key that either document has, in that table's order. */
export function compareEvalMetrics(baseline: Record<string, unknown>, candidate: Record<string, unknown>): FigureComparison[] {
  const rows: FigureComparison[] = [];
  for (const [figure, direction] of Object.entries(EVAL_FIGURES)) {
    if (!(figure in baseline) && !(figure in candidate)) continue;
    const b = figureOf(baseline, figure);
    const c = figureOf(candidate, figure);
    let worse: number | null = null;
    if (b !== null && c !== null) worse = direction === 'higher' ? b - c : direction === 'lower' ? c - b : Math.abs(c) - Math.abs(b);
    rows.push({ figure, direction, baseline: b, candidate: c, worse });
  }
  return rows;
}
