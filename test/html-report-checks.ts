// Checks the command tests make on a report.html (core/html-report.ts): nothing outside the page is
// referenced, and how many rows a table and how many thumbnails the page holds.

import { expect } from 'vitest';

/** The page loads nothing from outside itself: no URL, no external script, style or image. */
export function expectSelfContained(html: string): void {
  expect(html.startsWith('<!doctype html>')).toBe(true);
  expect(html).not.toMatch(/https?:\/\//i);
  expect(html).not.toMatch(/(src|href)\s*=\s*["']?\/\//i);
  expect(html).not.toMatch(/<script[^>]+src=/i);
  expect(html).not.toMatch(/<link[^>]+href=/i);
  for (const m of html.matchAll(/src="([^"]*)"/g)) expect(m[1]!.startsWith('data:image/jpeg;base64,')).toBe(true);
  expect(html).toContain("default-src 'none'");
}

/** Body rows of the table with this id. */
export function tableRows(html: string, id: string): number {
  const table = new RegExp(`<table class="sw-table" id="${id}">[\\s\\S]*?</table>`).exec(html);
  expect(table, `no table #${id}`).not.toBeNull();
  return (/<tbody>([\s\S]*?)<\/tbody>/.exec(table![0])![1]!.match(/<tr>/g) ?? []).length;
}

/** The thumbnails on the page. */
export function thumbnails(html: string): number {
  return (html.match(/<img class="sw-thumb"/g) ?? []).length;
}

/**
 * What a command's report.html must hold: self-contained, its kind, one table row per episode with
 * `link` ([section id, cell text]) among them, the `chart` of an episode, at least `minThumbnails`.
 */
export function expectReport(
  html: string,
  o: { kind: string; episodes: number; link: [string, string]; chart: string; minThumbnails: number },
): void {
  expectSelfContained(html);
  expect(html).toContain(`<body data-report="${o.kind}">`);
  expect(tableRows(html, 'episodes')).toBe(o.episodes);
  expect(html).toContain(`<a href="#${o.link[0]}">${o.link[1]}</a>`);
  expect(html).toContain(`data-chart="${o.chart}"`);
  expect(thumbnails(html)).toBeGreaterThanOrEqual(o.minThumbnails);
}
