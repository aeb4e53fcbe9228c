// Number formatting shared by the tables and summaries the commands print: one way to write a share as
// a percentage, a value that may be missing, and a figure rounded for a JSON line.

/** A share in [0, 1] as a percentage with one decimal ("62.0%"); '-' when missing or not finite. */
export function percent(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : `${(100 * x).toFixed(1)}%`;
}

/** A value with `digits` decimals; '-' when missing. */
export function fixed(v: number | null, digits = 3): string {
  return v === null ? '-' : v.toFixed(digits);
}

/** Rounded to one decimal, as figures in summaries are. */
export const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Rounded to three decimals. */
export const round3 = (x: number): number => Math.round(x * 1000) / 1000;
