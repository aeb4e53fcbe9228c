// RA-BC reports: the filtered-sample list (kept and dropped frames per episode as index ranges,
// per-episode mean weight, episodes filtered out entirely), the one-line summary, and the
// two-panel histogram (weights above, progress deltas below with the formula's thresholds) as SVG,
// rasterised to PNG bytes with sharp. Everything here but `histogramPng` is pure; files.ts writes.

import sharp from 'sharp';
import { PLOT_FONT, esc, f1, niceTicks, plotArea, tickStep } from '../../core/plot.ts';
import type { RabcResult, RabcStats } from './weights.ts';
import { indexRanges } from './weights.ts';
import { fixed, percent } from '../../core/format.ts';

/** Where an episode's frames sit in the dataset. */
export interface EpisodeSpan {
  /** episode_index */
  index: number;
  /** Global frame index (the data parquet's `index`) of the episode's frame 0. */
  datasetFrom: number;
}

export interface EpisodeFilter {
  episode_index: number;
  frames: number;
  /** Frames without progress (weight 1). */
  missing: number;
  mean_weight: number | null;
  /** Frames with weight > 0 and with weight 0, as inclusive [first, last] global `index` ranges. */
  kept: [number, number][];
  dropped: [number, number][];
}

export interface FilteredList {
  format: 1;
  about: string;
  progress_file: string;
  column: string;
  chunk: number;
  kappa: number;
  kept_samples: number;
  dropped_samples: number;
  /** Episodes whose every frame has weight 0. */
  filtered_episodes: number[];
  episodes: EpisodeFilter[];
}

/** The kept/dropped list written beside the dataset. `episodes[i]` is the episode of `result.weights[i]`. */
export function filteredList(
  result: RabcResult,
  episodes: readonly EpisodeSpan[],
  source: { progressFile: string; column: string },
): FilteredList {
  let kept = 0;
  let dropped = 0;
  const rows = episodes.map((ep, i): EpisodeFilter => {
    const w = result.weights[i]!;
    const d = result.deltas[i]!;
    let sum = 0;
    let missing = 0;
    let zero = 0;
    for (let t = 0; t < w.length; t++) {
      sum += w[t]!;
      if (Number.isNaN(d[t]!)) missing++;
      if (w[t] === 0) zero++;
    }
    kept += w.length - zero;
    dropped += zero;
    return {
      episode_index: ep.index,
      frames: w.length,
      missing,
      mean_weight: w.length > 0 ? sum / w.length : null,
      kept: indexRanges(w.length, (t) => w[t]! > 0, ep.datasetFrom),
      dropped: indexRanges(w.length, (t) => w[t] === 0, ep.datasetFrom),
    };
  });
  return {
    format: 1,
    about:
      'RA-BC sample filter: kept = weight > 0, dropped = weight 0; ranges are inclusive [first, last] pairs of the global frame index (the data parquet column `index`); weights per frame are in rabc_weights.parquet',
    progress_file: source.progressFile,
    column: source.column,
    chunk: result.stats.chunk,
    kappa: result.stats.kappa,
    kept_samples: kept,
    dropped_samples: dropped,
    filtered_episodes: rows.filter((r) => r.frames > 0 && r.kept.length === 0).map((r) => r.episode_index),
    episodes: rows,
  };
}

/** Human-readable summary lines (the command prints them before the JSON line). */
export function summaryLines(stats: RabcStats, filteredEpisodes: readonly number[], episodes: number): string[] {
  const lines = [
    `  ${stats.samples} samples in ${episodes} episodes (${stats.missing} without progress, weight 1), chunk ${stats.chunk} frames, kappa ${stats.kappa}`,
    `  delta mean ${fixed(stats.delta_mean, 4)}  std ${fixed(stats.delta_std, 4)}  -> mu ${fixed(stats.mu, 4)}  sigma ${fixed(stats.sigma, 4)}`,
    `  branches: ${stats.negative} negative (weight 0), ${stats.band} in [0, kappa] (soft), ${stats.above_kappa} above kappa (weight 1)`,
    `  mean weight ${fixed(stats.mean_weight)} | dropped ${percent(stats.share_zero)} | down-weighted ${percent(stats.share_downweighted)} | filtered ${percent(stats.share_filtered)}`,
    `  episodes filtered out entirely: ${filteredEpisodes.length === 0 ? 'none' : filteredEpisodes.join(', ')}`,
  ];
  if (stats.mean_weight !== null && (stats.mean_weight < 0.3 || stats.mean_weight > 0.8)) {
    lines.push(
      `  note: mean weight ${fixed(stats.mean_weight)} is outside 0.3-0.8, the range LeRobot calls healthy; check the chunk length and the progress scores`,
    );
  }
  return lines;
}

// ------------------------------------------------------------------------------------ histogram

export interface Histogram {
  /** Bin edges, bins + 1 of them. */
  edges: number[];
  counts: number[];
}

/** Counts of the finite values in `bins` equal bins over [lo, hi]; the last bin includes hi. */
export function histogram(values: Iterable<number>, lo: number, hi: number, bins: number): Histogram {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (const v of values) {
    if (!Number.isFinite(v) || v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]!++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), counts };
}

function* finite(arrays: readonly Float64Array[]): Generator<number> {
  for (const a of arrays) for (const v of a) if (Number.isFinite(v)) yield v;
}

/** Round tick values (1, 2 or 5 times a power of 10 apart) inside [lo, hi], about `target` of them. */
export function rangeTicks(lo: number, hi: number, target = 8): number[] {
  if (!(hi > lo)) return [lo];
  const step = tickStep(hi - lo, target);
  const pow = 10 ** Math.floor(Math.log10(step));
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(Math.round((k * step) / pow) * pow);
  return out;
}

const COLORS = { negative: '#d62728', band: '#ff9f1c', full: '#2ca02c', weight: '#1f77b4', grid: '#e3e3e3', axis: '#555555' };

interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

interface Marker {
  at: number;
  label: string;
  color: string;
  dash?: string;
}

/** One histogram panel: bars, axes, title, vertical markers. */
function panelSvg(box: Box, h: Histogram, title: string, color: (center: number) => string, markers: Marker[], xLabel: string): string {
  const lo = h.edges[0]!;
  const hi = h.edges.at(-1)!;
  const maxCount = Math.max(1, ...h.counts);
  let ticks = niceTicks(maxCount, 5);
  if (ticks.at(-1)! < maxCount) ticks = [...ticks, ticks.at(-1)! + (ticks[1] ?? 1) - ticks[0]!];
  const yTop = ticks.at(-1)!;
  const { x, y } = plotArea(box.left, box.top, box.width, box.height, lo, hi, 0, yTop);
  const parts: string[] = [`<text x="${box.left}" y="${box.top - 12}" font-size="14" font-weight="bold" fill="#111">${esc(title)}</text>`];
  for (const c of ticks) {
    parts.push(`<line x1="${box.left}" y1="${f1(y(c))}" x2="${box.left + box.width}" y2="${f1(y(c))}" stroke="${COLORS.grid}"/>`);
    parts.push(
      `<text x="${box.left - 6}" y="${f1(y(c))}" font-size="11" text-anchor="end" dominant-baseline="middle" fill="${COLORS.axis}">${c}</text>`,
    );
  }
  h.counts.forEach((c, i) => {
    if (c === 0) return;
    const x0 = x(h.edges[i]!);
    const x1 = x(h.edges[i + 1]!);
    const center = (h.edges[i]! + h.edges[i + 1]!) / 2;
    parts.push(
      `<rect x="${f1(x0 + 0.5)}" y="${f1(y(c))}" width="${f1(Math.max(x1 - x0 - 1, 0.5))}" height="${f1(box.top + box.height - y(c))}" fill="${color(center)}"/>`,
    );
  });
  for (const v of rangeTicks(lo, hi)) {
    parts.push(
      `<line x1="${f1(x(v))}" y1="${box.top + box.height}" x2="${f1(x(v))}" y2="${box.top + box.height + 4}" stroke="${COLORS.axis}"/>`,
    );
    parts.push(
      `<text x="${f1(x(v))}" y="${box.top + box.height + 16}" font-size="11" text-anchor="middle" fill="${COLORS.axis}">${Number(v.toPrecision(6))}</text>`,
    );
  }
  parts.push(
    `<text x="${f1(box.left + box.width / 2)}" y="${box.top + box.height + 34}" font-size="12" text-anchor="middle" fill="${COLORS.axis}">${esc(xLabel)}</text>`,
  );
  const cy = f1(box.top + box.height / 2);
  parts.push(
    `<text x="${box.left - 48}" y="${cy}" font-size="12" text-anchor="middle" transform="rotate(-90 ${box.left - 48} ${cy})" fill="${COLORS.axis}">samples</text>`,
  );
  markers.forEach((m, i) => {
    if (!(m.at >= lo && m.at <= hi)) return;
    const mx = f1(x(m.at));
    const dash = m.dash ? ` stroke-dasharray="${m.dash}"` : '';
    parts.push(`<line x1="${mx}" y1="${box.top}" x2="${mx}" y2="${box.top + box.height}" stroke="${m.color}" stroke-width="1.5"${dash}/>`);
    const right = x(m.at) > box.left + box.width * 0.7; // label on the line's left near the right edge
    parts.push(
      `<text x="${f1(x(m.at) + (right ? -4 : 4))}" y="${box.top + 14 + 14 * i}" font-size="11" text-anchor="${right ? 'end' : 'start'}" fill="${m.color}">${esc(m.label)}</text>`,
    );
  });
  parts.push(`<rect x="${box.left}" y="${box.top}" width="${box.width}" height="${box.height}" fill="none" stroke="${COLORS.axis}"/>`);
  return parts.join('\n');
}

export interface HistogramPlot {
  title: string;
  result: RabcResult;
  /** Bins of each panel (default 20 for weights, 40 for deltas). */
  weightBins?: number;
  deltaBins?: number;
}

/** The two-panel histogram as an SVG document. Pure. */
export function histogramSvg(p: HistogramPlot, size = { width: 960, height: 720 }): string {
  const { stats, weights, deltas } = p.result;
  const { width, height } = size;
  const left = 90;
  const plotWidth = width - left - 30;
  const top = 96;
  const gap = 90;
  const panelHeight = Math.round((height - top - gap - 50) / 2);

  const weightHist = histogram(finite(weights), 0, 1, p.weightBins ?? 20);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of finite(deltas)) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!Number.isFinite(lo)) [lo, hi] = [-0.1, 0.1];
  lo = Math.min(lo, 0);
  hi = Math.max(hi, stats.kappa);
  if (hi - lo < 1e-6) [lo, hi] = [lo - 0.05, hi + 0.05];
  const deltaHist = histogram(finite(deltas), lo, hi, p.deltaBins ?? 40);

  const k = stats.kappa;
  const deltaColor = (c: number) => (c < 0 ? COLORS.negative : c > k ? COLORS.full : COLORS.band);
  const markers: Marker[] = [
    { at: 0, label: 'r = 0', color: '#222222' },
    { at: k, label: `kappa ${k}`, color: COLORS.band, dash: '5 3' },
    { at: stats.mu - 2 * stats.sigma, label: 'mu - 2 sigma (soft weight 0)', color: '#7f7f7f', dash: '2 3' },
    { at: stats.mu + 2 * stats.sigma, label: 'mu + 2 sigma (soft weight 1)', color: '#7f7f7f', dash: '2 3' },
  ];
  const sub =
    `mean weight ${fixed(stats.mean_weight)} | dropped ${percent(stats.share_zero)} | down-weighted ${percent(stats.share_downweighted)} | ` +
    `delta mean ${fixed(stats.delta_mean, 4)} std ${fixed(stats.delta_std, 4)} | ${stats.samples} samples, ${stats.missing} without progress`;
  const body = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="26" font-size="16" font-weight="bold" text-anchor="middle" fill="#111">${esc(p.title)}</text>`,
    `<text x="${width / 2}" y="48" font-size="12" text-anchor="middle" fill="#333">${esc(sub)}</text>`,
    panelSvg(
      { left, top, width: plotWidth, height: panelHeight },
      weightHist,
      'RA-BC weight per sample',
      () => COLORS.weight,
      [],
      'weight',
    ),
    panelSvg(
      { left, top: top + panelHeight + gap, width: plotWidth, height: panelHeight },
      deltaHist,
      `progress delta over the chunk (${stats.chunk} frames): red weight 0, orange soft, green weight 1`,
      deltaColor,
      markers,
      'r = Phi(t + H) - Phi(t)',
    ),
  ].join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${PLOT_FONT}">\n${body}\n</svg>\n`;
}

/** The histogram rasterised to PNG bytes. */
export async function histogramPng(p: HistogramPlot): Promise<Buffer> {
  return sharp(Buffer.from(histogramSvg(p)))
    .png()
    .toBuffer();
}
