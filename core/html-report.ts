// The self-contained HTML report that `stageward score`, `eval` and `rl` write beside their PNGs
// (report.html): a pure builder from a `ReportDoc` to one page that opens from disk with no network.
// uPlot's script and style (core/ui-assets.ts) are inlined, the chart data sits in one
// `<script type="application/json">` element, thumbnails are data: URIs, and the CSP allows nothing
// else. Every string of the document is HTML-escaped (titles, task names and cells come from datasets).
// Sizes stay bounded: each chart keeps at most `maxPoints` points (evenly downsampled) and
// `maxMarkers` markers, and the page at most `maxThumbnails` thumbnails (it says how many it left out).
//
//   const html = renderHtmlReport({ kind: 'score', title: 'pick_place on pp-demo', subtitle: [], summary: [['episodes', 3]],
//     charts: [{ id: 'final', title: 'final progress', xLabel: 'episode', x: [0, 1, 2], series: [{ name: 'progress', values: [0.9, 0.4, 1] }] }],
//     tables: [], sections: [] });
//
// Stable hooks for browser tests: `<body data-report="score|eval|rl">`, `<main id="report">`, each chart
// `<div class="sw-chart" data-chart="ID">` (uPlot draws a canvas inside), tables by their `id`
// (`episodes` for the per-episode table), sections by their `id`, thumbnails `<img class="sw-thumb">`.

import { esc } from './plot.ts';
import { uplotAssets } from './ui-assets.ts';

export type ReportKind = 'score' | 'eval' | 'rl';
/** A table or summary value: numbers are shown with up to 3 decimals, null as a dash. */
export type ReportCell = string | number | boolean | null;

export interface ChartSeries {
  name: string;
  /** One value per x; null or a non-finite number is a gap. */
  values: ArrayLike<number | null>;
  /** A CSS colour; default from the palette. */
  color?: string;
  dash?: boolean;
  /** Draw points only, no line (for sparse series such as evaluations). */
  points?: boolean;
}

/** A vertical line at `x` with a short label (a stage change, an episode boundary). */
export interface ChartMarker {
  x: number;
  label: string;
}

export interface ReportChart {
  /** Letters, digits, `-` and `_`; unique in the report. */
  id: string;
  title: string;
  xLabel: string;
  yLabel?: string;
  /** The x of each point, increasing; default 0, 1, 2, ... */
  x?: ArrayLike<number>;
  series: ChartSeries[];
  /** Fixed y range; default fitted to the data. */
  yRange?: [number, number];
  markers?: ChartMarker[];
}

export interface TableRow {
  cells: ReportCell[];
  /** The id of a section this row's first cell links to. */
  link?: string;
}

export interface ReportTable {
  /** The element id (`episodes` for the per-episode table). */
  id: string;
  title: string;
  columns: string[];
  rows: TableRow[];
}

export interface Thumbnail {
  caption: string;
  jpeg: Uint8Array;
}

export interface ReportGallery {
  title: string;
  thumbs: Thumbnail[];
  /** Thumbnails the caller did not capture (said in the page). */
  omitted?: number;
}

/** A part of the page with its own charts and thumbnails (one episode). */
export interface ReportSection {
  id: string;
  title: string;
  lines?: string[];
  charts: ReportChart[];
  gallery?: ReportGallery;
}

export interface ReportDoc {
  kind: ReportKind;
  title: string;
  /** Provenance lines under the title. */
  subtitle: string[];
  summary: [string, ReportCell][];
  /** Run-level charts, above the tables. */
  charts: ReportChart[];
  tables: ReportTable[];
  sections: ReportSection[];
  /** Remarks shown after the summary. */
  notes?: string[];
}

export interface ReportLimits {
  /** Points per chart; more are downsampled evenly (first and last kept). Default 5000. */
  maxPoints: number;
  /** Markers per chart; the first ones are kept. Default 200. */
  maxMarkers: number;
  /** Thumbnails per report; the first ones are kept. Default 64. */
  maxThumbnails: number;
}

export const REPORT_LIMITS: ReportLimits = { maxPoints: 5000, maxMarkers: 200, maxThumbnails: 64 };

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const ID = /^[A-Za-z0-9_-]+$/;

/** `max` indices spread evenly over 0..n-1, first and last included (all of them when n <= max). Pure. */
export function evenIndices(n: number, max: number): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  if (max <= 1) return n > 0 ? [0] : [];
  return Array.from({ length: max }, (_, k) => Math.round((k * (n - 1)) / (max - 1)));
}

/** A number as the page stores it: 5 significant digits (integers exact), null when not finite. */
function compact(v: number | null): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  return Number.isInteger(v) ? v : Number(v.toPrecision(5));
}

/** What the inline script reads for one chart (the JSON in the page). */
export interface ChartData {
  title: string;
  xLabel: string;
  yLabel: string;
  x: (number | null)[];
  series: { name: string; values: (number | null)[]; color: string; dash: boolean; points: boolean }[];
  yRange: [number, number] | null;
  markers: ChartMarker[];
  /** Points of the data before downsampling, and markers before the cap. */
  pointCount: number;
  markerCount: number;
}

function chartData(c: ReportChart, limits: ReportLimits): ChartData {
  const n = c.x?.length ?? c.series[0]?.values.length ?? 0;
  for (const s of c.series)
    if (s.values.length !== n) throw new RangeError(`chart ${c.id}: series "${s.name}" has ${s.values.length} values for ${n} x values`);
  const keep = evenIndices(n, limits.maxPoints);
  const markers = c.markers ?? [];
  return {
    title: c.title,
    xLabel: c.xLabel,
    yLabel: c.yLabel ?? '',
    x: keep.map((i) => compact(c.x ? c.x[i]! : i)),
    series: c.series.map((s, k) => ({
      name: s.name,
      values: keep.map((i) => compact(s.values[i]!)),
      color: s.color ?? PALETTE[k % PALETTE.length]!,
      dash: s.dash ?? false,
      points: s.points ?? false,
    })),
    yRange: c.yRange ?? null,
    markers: markers.slice(0, limits.maxMarkers).map((m) => ({ x: compact(m.x) ?? 0, label: m.label })),
    pointCount: n,
    markerCount: markers.length,
  };
}

function cell(v: ReportCell): string {
  if (v === null) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Number.isFinite(v) ? v.toFixed(3) : String(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return v;
}

/** The id attribute value, checked: ids come from the builders, never from data. */
function idOf(id: string, seen: Set<string>): string {
  if (!ID.test(id)) throw new RangeError(`report id ${JSON.stringify(id)} must be letters, digits, - and _`);
  if (seen.has(id)) throw new RangeError(`report id ${id} is used twice`);
  seen.add(id);
  return id;
}

function chartHtml(c: ReportChart, d: ChartData, seen: Set<string>): string {
  const notes: string[] = [];
  if (d.pointCount > d.x.length) notes.push(`${d.x.length} of ${d.pointCount} points shown, evenly spaced`);
  if (d.markerCount > d.markers.length) notes.push(`first ${d.markers.length} of ${d.markerCount} markers`);
  const note = notes.length ? ` <span class="sw-muted">(${esc(notes.join('; '))})</span>` : '';
  const id = idOf(c.id, seen);
  return `<figure class="sw-figure"><figcaption>${esc(c.title)}${note}</figcaption><div class="sw-chart" id="chart-${id}" data-chart="${id}"></div></figure>`;
}

function tableHtml(t: ReportTable, seen: Set<string>): string {
  const head = t.columns.map((c) => `<th>${esc(c)}</th>`).join('');
  const rows = t.rows.map((r) => {
    const cells = r.cells.map((v, i) => {
      const text = esc(cell(v));
      const inner = i === 0 && r.link !== undefined ? `<a href="#${esc(r.link)}">${text}</a>` : text;
      return `<td${typeof v === 'number' ? ' class="sw-num"' : ''}>${inner}</td>`;
    });
    return `<tr>${cells.join('')}</tr>`;
  });
  return `<section class="sw-table-section"><h2>${esc(t.title)}</h2><div class="sw-scroll"><table class="sw-table" id="${idOf(t.id, seen)}"><thead><tr>${head}</tr></thead><tbody>${rows.join('\n')}</tbody></table></div></section>`;
}

function galleryHtml(g: ReportGallery, thumbs: Thumbnail[], cut: number): string {
  const imgs = thumbs.map(
    (t) =>
      `<figure class="sw-thumb-figure"><img class="sw-thumb" alt="${esc(t.caption)}" src="data:image/jpeg;base64,${Buffer.from(t.jpeg).toString('base64')}"><figcaption>${esc(t.caption)}</figcaption></figure>`,
  );
  const left = (g.omitted ?? 0) + cut;
  const note = left > 0 ? `<p class="sw-muted">${left} more thumbnail(s) left out.</p>` : '';
  return `<div class="sw-gallery"><h3>${esc(g.title)}</h3><div class="sw-thumbs">${imgs.join('')}</div>${note}</div>`;
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:14px;margin:12px 0 6px}
.sw-sub{margin:2px 0;color:#555;font-size:13px}.sw-muted{color:#777;font-size:12px;font-weight:normal}
.sw-note{background:#fff8e1;border-left:3px solid #f0b400;padding:6px 10px;font-size:13px}
.sw-summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:13px}
.sw-summary dt{color:#555}.sw-summary dd{margin:0;font-variant-numeric:tabular-nums}
.sw-figure{margin:12px 0;background:#fff;border:1px solid #e3e3e3;padding:8px}
.sw-figure figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
.sw-chart{width:100%;min-height:300px}
.sw-scroll{overflow-x:auto}
.sw-table{border-collapse:collapse;font-size:12px;background:#fff}
.sw-table th,.sw-table td{border:1px solid #e3e3e3;padding:3px 7px;text-align:left;white-space:nowrap}
.sw-table th{background:#f0f0f0;position:sticky;top:0}.sw-table .sw-num{text-align:right;font-variant-numeric:tabular-nums}
.sw-episode{border-top:1px solid #ddd;margin-top:24px}
.sw-thumbs{display:flex;flex-wrap:wrap;gap:8px}
.sw-thumb-figure{margin:0;width:128px;font-size:11px;color:#444}
.sw-thumb{width:128px;height:auto;display:block;border:1px solid #ccc;background:#000}
`;

// Draws every .sw-chart from the JSON data with uPlot (the global of its IIFE build), with its legend
// and cursor (drag to zoom, double-click to reset); markers are dashed vertical lines with their
// labels, drawn on uPlot's canvas after each redraw.
const SCRIPT = `
(function () {
  var data = JSON.parse(document.getElementById('sw-data').textContent);
  var charts = [];
  // x ticks at whole numbers when every x is one (frames, episodes, rollouts)
  var WHOLE = [];
  for (var p = 1; p <= 1e9; p *= 10) WHOLE.push(p, 2 * p, 5 * p);
  function markers(c) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height;
      ctx.save();
      ctx.strokeStyle = 'rgba(90,90,90,0.55)';
      ctx.fillStyle = '#444';
      ctx.setLineDash([4, 4]);
      ctx.font = Math.round(10 * devicePixelRatio) + 'px sans-serif';
      c.markers.forEach(function (m) {
        var x = u.valToPos(m.x, 'x', true);
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.stroke();
        ctx.fillText(m.label, x + 3, top + 12 * devicePixelRatio);
      });
      ctx.restore();
    };
  }
  function draw(el) {
    var c = data.charts[el.getAttribute('data-chart')];
    if (!c) return;
    var series = [{ label: c.xLabel }].concat(c.series.map(function (s) {
      return {
        label: s.name,
        stroke: s.color,
        width: 1.5,
        dash: s.dash ? [6, 4] : undefined,
        spanGaps: true,
        points: s.points ? { show: true, size: 6, fill: s.color } : {},
        paths: s.points ? function () { return null; } : undefined
      };
    }));
    var whole = c.x.every(function (v) { return v === null || Math.round(v) === v; });
    var opts = {
      width: Math.max(300, el.clientWidth || 800),
      height: 300,
      series: series,
      scales: { x: { time: false }, y: c.yRange ? { range: c.yRange } : {} },
      axes: [whole ? { label: c.xLabel, incrs: WHOLE } : { label: c.xLabel }, { label: c.yLabel }],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
      hooks: { draw: [markers(c)] }
    };
    var values = [c.x].concat(c.series.map(function (s) { return s.values; }));
    charts.push({ el: el, plot: new uPlot(opts, values, el) });
  }
  Array.prototype.forEach.call(document.querySelectorAll('.sw-chart'), draw);
  var pending;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      charts.forEach(function (c) { c.plot.setSize({ width: Math.max(300, c.el.clientWidth || 800), height: 300 }); });
    }, 150);
  });
})();
`;

/** Text inlined into a <script>/<style> element, with any closing tag of that element made inert. */
function inlineText(text: string, tag: 'script' | 'style'): string {
  return text.replace(new RegExp(`</(${tag})`, 'gi'), '<\\/$1');
}

/** uPlot's IIFE with its banner (a URL to the project) rewritten without a URL: the page references nothing outside itself. */
function uplotScript(js: string, version: string): string {
  return js.replace(/^\/\*![^*]*\*\//, `/*! uPlot v${version}, MIT licence, (c) Leon Sorokin: github.com/leeoniya/uPlot */`);
}

/** The report as one HTML document (see the header for what it holds and its bounds). Pure but for reading uPlot once. */
export function renderHtmlReport(doc: ReportDoc, limits: Partial<ReportLimits> = {}): string {
  const lim = { ...REPORT_LIMITS, ...limits };
  const seen = new Set<string>(['report', 'summary', 'sw-data']);
  const charts: Record<string, ChartData> = Object.create(null);
  const chartsHtml = (list: ReportChart[]) =>
    list
      .map((c) => {
        const d = chartData(c, lim);
        const html = chartHtml(c, d, seen);
        charts[c.id] = d;
        return html;
      })
      .join('\n');

  let thumbsLeft = lim.maxThumbnails;
  let thumbsCut = 0;
  const sections = doc.sections.map((s) => {
    const parts = [`<section class="sw-episode" id="${idOf(s.id, seen)}"><h2>${esc(s.title)}</h2>`];
    for (const line of s.lines ?? []) parts.push(`<p class="sw-sub">${esc(line)}</p>`);
    parts.push(chartsHtml(s.charts));
    if (s.gallery) {
      const kept = s.gallery.thumbs.slice(0, Math.max(0, thumbsLeft));
      const cut = s.gallery.thumbs.length - kept.length;
      thumbsLeft -= kept.length;
      thumbsCut += cut;
      parts.push(galleryHtml(s.gallery, kept, cut));
    }
    parts.push('</section>');
    return parts.join('\n');
  });

  const { js, css, version } = uplotAssets();
  const notes = [...(doc.notes ?? [])];
  if (thumbsCut > 0)
    notes.push(`${thumbsCut} thumbnail(s) left out: a report holds at most ${lim.maxThumbnails}; the first ones are shown.`);
  const body = [
    `<header><h1>${esc(doc.title)}</h1>${doc.subtitle.map((l) => `<p class="sw-sub">${esc(l)}</p>`).join('')}</header>`,
    `<section id="summary"><h2>Summary</h2><dl class="sw-summary">${doc.summary.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(cell(v))}</dd>`).join('')}</dl></section>`,
    notes.map((n) => `<p class="sw-note">${esc(n)}</p>`).join('\n'),
    chartsHtml(doc.charts),
    doc.tables.map((t) => tableHtml(t, seen)).join('\n'),
    sections.join('\n'),
  ];
  const json = JSON.stringify({ kind: doc.kind, charts }).replace(/</g, '\\u003c');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta name="generator" content="stageward (uPlot ${esc(version)})">`,
    `<title>${esc(doc.title)}</title>`,
    `<style>${inlineText(css, 'style')}</style>`,
    `<style>${STYLE}</style>`,
    '</head>',
    `<body data-report="${doc.kind}">`,
    `<main id="report">`,
    ...body.filter((b) => b !== ''),
    '</main>',
    `<script type="application/json" id="sw-data">${json}</script>`,
    `<script>${inlineText(uplotScript(js, version), 'script')}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
