// Per-episode evaluation plot: progress over time (label, SARM, GRM) above stage over time (label,
// SARM argmax), drawn as SVG by a pure function and rasterised to PNG with sharp (librsvg). Written
// atomically (temporary sibling + rename), so a reader never sees half a PNG.
//
//   await writeEpisodePlot('eval-x/plots/episode-0003.png', { title, stageNames, sarm, stage, ... });

import sharp from 'sharp';
import { writeFileAtomic } from '../../core/files.ts';
import { esc, f1, niceTicks, PLOT_FONT, plotArea, type PlotArea } from '../../core/plot.ts';

export interface EpisodePlot {
  title: string;
  /** A second line under the title, e.g. the episode's metrics. */
  subtitle?: string;
  /** The task's stage names, index order. */
  stageNames: readonly string[];
  /** Predicted SARM progress per frame. */
  sarm: ArrayLike<number>;
  /** Predicted stage index per frame. */
  stage: ArrayLike<number>;
  /** GRM fused progress per frame, or null. */
  grm: ArrayLike<number> | null;
  /** Label progress per frame, or null without annotations. */
  trueProgress: ArrayLike<number> | null;
  /** Label stage index per frame, or null without annotations. */
  trueStage: ArrayLike<number> | null;
}

export interface PlotSize {
  width: number;
  height: number;
}

export const DEFAULT_PLOT_SIZE: PlotSize = { width: 960, height: 640 };

const COLORS = { truth: '#222222', sarm: '#1f77b4', grm: '#ff7f0e', grid: '#e3e3e3', axis: '#555555' };

/** An episode panel: x is the frame index over [0, frames - 1]. */
function panel(left: number, top: number, width: number, height: number, frames: number, yMin: number, yMax: number): PlotArea {
  return plotArea(left, top, width, height, 0, Math.max(frames - 1, 1), yMin, yMax);
}

function line(p: PlotArea, values: ArrayLike<number>, color: string, opts: { dash?: string; step?: boolean; width?: number } = {}): string {
  if (values.length === 0) return '';
  let d = `M${f1(p.x(0))},${f1(p.y(values[0]!))}`;
  for (let t = 1; t < values.length; t++) {
    if (opts.step) d += ` H${f1(p.x(t))} V${f1(p.y(values[t]!))}`;
    else d += ` L${f1(p.x(t))},${f1(p.y(values[t]!))}`;
  }
  const dash = opts.dash ? ` stroke-dasharray="${opts.dash}"` : '';
  return `<path d="${d}" fill="none" stroke="${color}" stroke-width="${opts.width ?? 2}"${dash} stroke-linejoin="round"/>`;
}

function xAxis(p: PlotArea, frames: number, label: string | null): string {
  const parts: string[] = [];
  for (const t of niceTicks(Math.max(frames - 1, 1))) {
    const x = f1(p.x(t));
    parts.push(`<line x1="${x}" y1="${p.top}" x2="${x}" y2="${p.top + p.height}" stroke="${COLORS.grid}"/>`);
    parts.push(`<text x="${x}" y="${p.top + p.height + 16}" font-size="11" text-anchor="middle" fill="${COLORS.axis}">${t}</text>`);
  }
  if (label)
    parts.push(
      `<text x="${f1(p.left + p.width / 2)}" y="${p.top + p.height + 34}" font-size="12" text-anchor="middle" fill="${COLORS.axis}">${esc(label)}</text>`,
    );
  return parts.join('');
}

function yAxis(p: PlotArea, ticks: { value: number; label: string }[], title: string): string {
  const parts = ticks.map(({ value, label }) => {
    const y = f1(p.y(value));
    return (
      `<line x1="${p.left}" y1="${y}" x2="${p.left + p.width}" y2="${y}" stroke="${COLORS.grid}"/>` +
      `<text x="${p.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle" fill="${COLORS.axis}">${esc(label)}</text>`
    );
  });
  const cy = f1(p.top + p.height / 2);
  parts.push(
    `<text x="16" y="${cy}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${cy})" fill="${COLORS.axis}">${esc(title)}</text>`,
  );
  parts.push(`<rect x="${p.left}" y="${p.top}" width="${p.width}" height="${p.height}" fill="none" stroke="${COLORS.axis}"/>`);
  return parts.join('');
}

function legend(x: number, y: number, entries: { label: string; color: string; dash?: string }[]): string {
  let cx = x;
  return entries
    .map((e) => {
      const dash = e.dash ? ` stroke-dasharray="${e.dash}"` : '';
      const out =
        `<line x1="${cx}" y1="${y}" x2="${cx + 26}" y2="${y}" stroke="${e.color}" stroke-width="2"${dash}/>` +
        `<text x="${cx + 32}" y="${y}" font-size="12" dominant-baseline="middle" fill="#222">${esc(e.label)}</text>`;
      cx += 44 + e.label.length * 7;
      return out;
    })
    .join('');
}

/** The plot as an SVG document. Pure. */
export function episodePlotSvg(p: EpisodePlot, size: PlotSize = DEFAULT_PLOT_SIZE): string {
  const frames = p.sarm.length;
  const { width, height } = size;
  const left = 120;
  const right = 24;
  const plotWidth = width - left - right;
  const top = 92;
  const gap = 56;
  const usable = height - top - gap - 48;
  const progressHeight = Math.round(usable * 0.58);
  const stageHeight = usable - progressHeight;
  const k = Math.max(p.stageNames.length, 1);
  const prog = panel(left, top, plotWidth, progressHeight, frames, 0, 1);
  const stg = panel(left, top + progressHeight + gap, plotWidth, stageHeight, frames, -0.5, k - 0.5);

  const truthDash = '6 4';
  const entries = [
    ...(p.trueProgress ? [{ label: 'label (annotations)', color: COLORS.truth, dash: truthDash }] : []),
    { label: 'SARM', color: COLORS.sarm },
    ...(p.grm ? [{ label: 'GRM (fused)', color: COLORS.grm }] : []),
  ];
  const body = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" font-size="16" font-weight="bold" text-anchor="middle" fill="#111">${esc(p.title)}</text>`,
    p.subtitle ? `<text x="${width / 2}" y="48" font-size="12" text-anchor="middle" fill="#333">${esc(p.subtitle)}</text>` : '',
    legend(left, 72, entries),
    // progress panel
    xAxis(prog, frames, null),
    yAxis(
      prog,
      [0, 0.25, 0.5, 0.75, 1].map((v) => ({ value: v, label: v.toFixed(2) })),
      'progress',
    ),
    p.trueProgress ? line(prog, p.trueProgress, COLORS.truth, { dash: truthDash }) : '',
    p.grm ? line(prog, p.grm, COLORS.grm) : '',
    line(prog, p.sarm, COLORS.sarm),
    // stage panel
    xAxis(stg, frames, 'frame'),
    yAxis(
      stg,
      p.stageNames.map((name, i) => ({ value: i, label: name })),
      'stage',
    ),
    p.trueStage ? line(stg, p.trueStage, COLORS.truth, { dash: truthDash, step: true }) : '',
    line(stg, p.stage, COLORS.sarm, { step: true }),
  ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${PLOT_FONT}">\n${body}\n</svg>\n`;
}

/** Rasterise the plot to PNG bytes. */
export async function episodePlotPng(p: EpisodePlot, size: PlotSize = DEFAULT_PLOT_SIZE): Promise<Buffer> {
  return sharp(Buffer.from(episodePlotSvg(p, size)))
    .png()
    .toBuffer();
}

/** Write the plot as a PNG at `path`, atomically; creates the folder. */
export async function writeEpisodePlot(path: string, p: EpisodePlot, size: PlotSize = DEFAULT_PLOT_SIZE): Promise<void> {
  await writeFileAtomic(path, await episodePlotPng(p, size));
}
