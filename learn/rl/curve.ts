// Learning curves of an RL run (`stageward rl`): the rows as CSV, and a two-panel plot (success rate
// against rollouts above, the learner's return against rollouts below) as SVG, rasterised to PNG with
// sharp. Everything here but `curvePng` and `writeCurveFiles` is pure.
//
// A row is one point on the rollout axis: a training iteration (the perturbed policies' episodes of
// that iteration), an evaluation of the deterministic current policy on held-out seeds, or both.
// Row 0 (rollouts 0) is the start policy's evaluation and has no training figures.
//
//   await writeCurveFiles('runs/rl-pbrs-1', rows, { title: 'pick_place, reward pbrs, seed 1' });

import { join } from 'node:path';
import sharp from 'sharp';
import { PLOT_FONT, esc, f1, niceTicks, plotArea, tickStep, type PlotArea } from '../../core/plot.ts';
import { writeFileAtomic } from '../../core/files.ts';

/** Figures of one ARS iteration's training episodes (perturbed policies, so noisier than evaluation). */
export interface TrainPoint {
  successRate: number;
  /** Mean discounted return of the learner's reward (the reward mode's). */
  meanReturn: number;
  /** Mean undiscounted simulator reward (1 per success). */
  meanEnvReturn: number;
  /** Mean episode length in control steps. */
  meanLength: number;
  meanFinalTrueProgress: number;
  /** Share of episodes ended by the time limit, unfinished, with true progress >= the hover threshold. */
  hoverShare: number;
}

/** The deterministic policy on the held-out evaluation seeds (not counted in the rollout budget). */
export interface EvalPoint {
  episodes: number;
  successes: number;
  successRate: number;
  /** Wilson 95% interval of the success rate. */
  ci95: [number, number];
  meanLength: number;
  hoverShare: number;
  meanFinalTrueProgress: number;
}

export interface CurveRow {
  /** Training episodes run so far. */
  rollouts: number;
  /** ARS iterations done so far (0: the start policy). */
  iteration: number;
  train: TrainPoint | null;
  eval: EvalPoint | null;
  /** Seconds since the run began. */
  wallS: number;
}

export const CURVE_COLUMNS = [
  'rollouts',
  'iteration',
  'train_success',
  'mean_return',
  'mean_env_return',
  'mean_length',
  'mean_final_true_progress',
  'hover_share',
  'eval_success',
  'eval_ci95_low',
  'eval_ci95_high',
  'eval_episodes',
  'eval_mean_length',
  'eval_hover_share',
  'eval_mean_final_true_progress',
  'wall_s',
] as const;

/** A number for the CSV: at most 6 decimals, no trailing zeros; '' for an absent value. */
function num(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  return String(Math.round(x * 1e6) / 1e6);
}

/** The curve as CSV text, a header line and one line per row, in the given order. Pure. */
export function curveCsv(rows: readonly CurveRow[]): string {
  const lines = [CURVE_COLUMNS.join(',')];
  for (const r of rows) {
    const t = r.train;
    const e = r.eval;
    lines.push(
      [
        r.rollouts,
        r.iteration,
        t?.successRate,
        t?.meanReturn,
        t?.meanEnvReturn,
        t?.meanLength,
        t?.meanFinalTrueProgress,
        t?.hoverShare,
        e?.successRate,
        e?.ci95[0],
        e?.ci95[1],
        e?.episodes,
        e?.meanLength,
        e?.hoverShare,
        e?.meanFinalTrueProgress,
        r.wallS,
      ]
        .map(num)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface CurvePlotOptions {
  title: string;
  subtitle?: string;
  /** Right end of the rollout axis (the budget); default the last row's rollouts. */
  rolloutsMax?: number;
  width?: number;
  height?: number;
}

const COLORS = { eval: '#1f77b4', band: '#1f77b4', train: '#ff7f0e', hover: '#7f7f7f', ret: '#2ca02c', grid: '#e3e3e3', axis: '#555555' };
const pct = (x: number) => `${Math.round(100 * x)}%`;

/** About `target` round ticks (1, 2 or 5 times a power of 10) covering [min, max], and the covered range. */
export function rangeTicks(min: number, max: number, target = 5): { ticks: number[]; lo: number; hi: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { ticks: [0, 1], lo: 0, hi: 1 };
  if (max - min < 1e-9) {
    const pad = Math.max(Math.abs(max) * 0.1, 0.01);
    min -= pad;
    max += pad;
  }
  const step = tickStep(max - min, target);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let k = 0; lo + k * step <= hi + step * 1e-9; k++) ticks.push(Number((lo + k * step).toPrecision(12)));
  return { ticks, lo, hi };
}

/** A curve panel: x is rollouts over [0, xMax]. */
function frame(left: number, top: number, width: number, height: number, xMax: number, yLo: number, yHi: number): PlotArea {
  return plotArea(left, top, width, height, 0, xMax, yLo, yHi);
}

function polyline(
  fr: PlotArea,
  pts: readonly [number, number][],
  color: string,
  opts: { dash?: string; width?: number; markers?: boolean } = {},
): string {
  if (pts.length === 0) return '';
  const d = pts.map(([r, v], i) => `${i === 0 ? 'M' : 'L'}${f1(fr.x(r))},${f1(fr.y(v))}`).join(' ');
  const dash = opts.dash ? ` stroke-dasharray="${opts.dash}"` : '';
  const path = `<path d="${d}" fill="none" stroke="${color}" stroke-width="${opts.width ?? 2}"${dash} stroke-linejoin="round"/>`;
  const dots = opts.markers
    ? pts.map(([r, v]) => `<circle cx="${f1(fr.x(r))}" cy="${f1(fr.y(v))}" r="3.5" fill="${color}"/>`).join('')
    : '';
  return path + dots;
}

function axes(fr: PlotArea, xMax: number, yTicks: { value: number; label: string }[], yTitle: string, xTitle: string | null): string {
  const parts: string[] = [];
  for (const t of niceTicks(xMax, 8)) {
    const x = f1(fr.x(t));
    parts.push(`<line x1="${x}" y1="${fr.top}" x2="${x}" y2="${fr.top + fr.height}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${x}" y="${fr.top + fr.height + 16}" font-size="11" text-anchor="middle" fill="${COLORS.axis}">${t}</text>`);
  }
  if (xTitle)
    parts.push(
      `<text x="${f1(fr.left + fr.width / 2)}" y="${fr.top + fr.height + 34}" font-size="12" text-anchor="middle" fill="${COLORS.axis}">${esc(xTitle)}</text>`,
    );
  for (const { value, label } of yTicks) {
    const y = f1(fr.y(value));
    parts.push(`<line x1="${fr.left}" y1="${y}" x2="${fr.left + fr.width}" y2="${y}" stroke="${COLORS.grid}"/>`);
    parts.push(
      `<text x="${fr.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle" fill="${COLORS.axis}">${esc(label)}</text>`,
    );
  }
  const cy = f1(fr.top + fr.height / 2);
  parts.push(
    `<text x="20" y="${cy}" font-size="12" text-anchor="middle" transform="rotate(-90 20 ${cy})" fill="${COLORS.axis}">${esc(yTitle)}</text>`,
  );
  parts.push(`<rect x="${fr.left}" y="${fr.top}" width="${fr.width}" height="${fr.height}" fill="none" stroke="${COLORS.axis}"/>`);
  return parts.join('');
}

function legend(x: number, y: number, entries: { label: string; color: string; dash?: string; band?: boolean }[]): string {
  let cx = x;
  return entries
    .map((e) => {
      const dash = e.dash ? ` stroke-dasharray="${e.dash}"` : '';
      const mark = e.band
        ? `<rect x="${cx}" y="${y - 6}" width="26" height="12" fill="${e.color}" fill-opacity="0.18"/>`
        : `<line x1="${cx}" y1="${y}" x2="${cx + 26}" y2="${y}" stroke="${e.color}" stroke-width="2"${dash}/>`;
      const out = `${mark}<text x="${cx + 32}" y="${y}" font-size="12" dominant-baseline="middle" fill="#222">${esc(e.label)}</text>`;
      cx += 44 + e.label.length * 6.6;
      return out;
    })
    .join('');
}

/** The two-panel learning-curve plot as an SVG document. Pure. */
export function curveSvg(rows: readonly CurveRow[], o: CurvePlotOptions): string {
  const width = o.width ?? 960;
  const height = o.height ?? 680;
  const xMax = Math.max(o.rolloutsMax ?? 0, ...rows.map((r) => r.rollouts), 1);
  const left = 84;
  const right = 24;
  const plotWidth = width - left - right;
  const top = 100;
  const gap = 78;
  const usable = height - top - gap - 48;
  const h1 = Math.round(usable * 0.55);
  const h2 = usable - h1;

  const evals = rows.filter((r) => r.eval !== null);
  const trains = rows.filter((r) => r.train !== null);
  const succ = frame(left, top, plotWidth, h1, xMax, 0, 1);
  const band =
    evals.length > 0
      ? `<path d="${[...evals.map((r, i) => `${i === 0 ? 'M' : 'L'}${f1(succ.x(r.rollouts))},${f1(succ.y(r.eval!.ci95[1]))}`), ...[...evals].reverse().map((r) => `L${f1(succ.x(r.rollouts))},${f1(succ.y(r.eval!.ci95[0]))}`)].join(' ')} Z" fill="${COLORS.band}" fill-opacity="0.18" stroke="none"/>`
      : '';

  const returns = trains.map((r) => r.train!.meanReturn);
  const { ticks, lo, hi } = rangeTicks(Math.min(0, ...returns), Math.max(0, ...returns));
  const ret = frame(left, top + h1 + gap, plotWidth, h2, xMax, lo, hi);
  const zero =
    lo < 0 && hi > 0
      ? `<line x1="${ret.left}" y1="${f1(ret.y(0))}" x2="${ret.left + ret.width}" y2="${f1(ret.y(0))}" stroke="${COLORS.axis}" stroke-dasharray="2 3"/>`
      : '';

  const body = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" font-size="16" font-weight="bold" text-anchor="middle" fill="#111">${esc(o.title)}</text>`,
    o.subtitle ? `<text x="${width / 2}" y="48" font-size="12" text-anchor="middle" fill="#333">${esc(o.subtitle)}</text>` : '',
    legend(left, 78, [
      { label: 'eval success (deterministic policy, held-out seeds)', color: COLORS.eval },
      { label: '95% interval', color: COLORS.band, band: true },
      { label: 'train success', color: COLORS.train, dash: '6 4' },
      { label: 'train hover share', color: COLORS.hover, dash: '2 3' },
    ]),
    axes(
      succ,
      xMax,
      [0, 0.25, 0.5, 0.75, 1].map((v) => ({ value: v, label: pct(v) })),
      'success rate',
      null,
    ),
    band,
    polyline(
      succ,
      trains.map((r) => [r.rollouts, r.train!.hoverShare]),
      COLORS.hover,
      { dash: '2 3', width: 1.5 },
    ),
    polyline(
      succ,
      trains.map((r) => [r.rollouts, r.train!.successRate]),
      COLORS.train,
      { dash: '6 4', width: 1.5 },
    ),
    polyline(
      succ,
      evals.map((r) => [r.rollouts, r.eval!.successRate]),
      COLORS.eval,
      { markers: true },
    ),
    legend(left, top + h1 + gap - 14, [{ label: "train mean return (the learner's reward, discounted)", color: COLORS.ret }]),
    axes(
      ret,
      xMax,
      ticks.map((v) => ({ value: v, label: String(v) })),
      'return',
      'rollouts (training episodes)',
    ),
    zero,
    polyline(
      ret,
      trains.map((r) => [r.rollouts, r.train!.meanReturn]),
      COLORS.ret,
      { markers: trains.length < 40 },
    ),
  ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${PLOT_FONT}">\n${body}\n</svg>\n`;
}

/** Rasterise the plot to PNG bytes. */
export async function curvePng(rows: readonly CurveRow[], o: CurvePlotOptions): Promise<Buffer> {
  return sharp(Buffer.from(curveSvg(rows, o)))
    .png()
    .toBuffer();
}

/** Write `<dir>/curve.csv` and `<dir>/curve.png`, each atomically; creates the folder. */
export async function writeCurveFiles(dir: string, rows: readonly CurveRow[], o: CurvePlotOptions): Promise<void> {
  await writeFileAtomic(join(dir, 'curve.csv'), curveCsv(rows));
  await writeFileAtomic(join(dir, 'curve.png'), await curvePng(rows, o));
}
