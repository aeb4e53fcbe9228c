// SVG primitives shared by every plot (evaluation and scoring episode plots, RA-BC histograms, RL
// curves): the font, text escaping, pixel rounding, round tick steps and the plot area's data maps.

export const PLOT_FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';

/** Text made safe for SVG/XML. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A pixel coordinate with one decimal. */
export const f1 = (x: number) => (Math.round(x * 10) / 10).toString();

/** The round tick step (1, 2 or 5 times a power of 10) that cuts `span` into about `target` parts. */
export function tickStep(span: number, target: number): number {
  const raw = span / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
}

/** A plot rectangle in pixels with its data -> pixel maps (x over [xLo, xHi], y over [yLo, yHi], y up). */
export interface PlotArea {
  left: number;
  top: number;
  width: number;
  height: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

export function plotArea(
  left: number,
  top: number,
  width: number,
  height: number,
  xLo: number,
  xHi: number,
  yLo: number,
  yHi: number,
): PlotArea {
  return {
    left,
    top,
    width,
    height,
    x: (v) => left + ((v - xLo) / (xHi - xLo || 1)) * width,
    y: (v) => top + height - ((v - yLo) / (yHi - yLo || 1)) * height,
  };
}

/** About `target` round tick values (1, 2 or 5 times a power of 10) covering [0, max]. */
export function niceTicks(max: number, target = 8): number[] {
  if (!(max > 0)) return [0];
  const step = tickStep(max, target);
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}
