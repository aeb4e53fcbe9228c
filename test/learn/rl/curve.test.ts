// The learning-curve files: the CSV has one fixed header and leaves the fields a row lacks empty (the
// start has no training episodes, most iterations no evaluation); the plot's return axis covers negative
// returns; the SVG names the run.

import { describe, expect, it } from 'vitest';
import { CURVE_COLUMNS, curveCsv, curveSvg, rangeTicks, type CurveRow } from '../../../learn/rl/curve.ts';

const train = {
  successRate: 0.25,
  meanReturn: -0.125,
  meanEnvReturn: 0.25,
  meanLength: 120.5,
  meanFinalTrueProgress: 0.5,
  hoverShare: 0.125,
};
const evalPoint = {
  episodes: 10,
  successes: 3,
  successRate: 0.3,
  ci95: [0.1077, 0.6032] as [number, number],
  meanLength: 130,
  hoverShare: 0.1,
  meanFinalTrueProgress: 0.61,
};
const ROWS: CurveRow[] = [
  { rollouts: 0, iteration: 0, train: null, eval: evalPoint, wallS: 1.5 },
  { rollouts: 16, iteration: 1, train, eval: null, wallS: 3 },
  { rollouts: 32, iteration: 2, train: { ...train, meanReturn: 0.2 }, eval: evalPoint, wallS: 5 },
];

describe('learning curve', () => {
  it('writes one CSV line per row under the fixed header, empty where a row has no figures', () => {
    const lines = curveCsv(ROWS).trimEnd().split('\n');
    expect(lines[0]).toBe(CURVE_COLUMNS.join(','));
    expect(lines).toHaveLength(4);
    expect(lines[1]).toBe('0,0,,,,,,,0.3,0.1077,0.6032,10,130,0.1,0.61,1.5');
    expect(lines[2]).toBe('16,1,0.25,-0.125,0.25,120.5,0.5,0.125,,,,,,,,3');
  });

  it('draws both panels with a return axis that covers negative returns', () => {
    const { ticks, lo, hi } = rangeTicks(-0.125, 0.2);
    expect(lo).toBeLessThanOrEqual(-0.125);
    expect(hi).toBeGreaterThanOrEqual(0.2);
    expect(ticks).toContain(0);
    const svg = curveSvg(ROWS, { title: 'pick_place: ARS with reward pbrs, seed 1', rolloutsMax: 48 });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('ARS with reward pbrs');
    expect(svg).toContain('success rate');
    expect(svg).toContain('rollouts (training episodes)');
  });
});
