// The dashboard page's files, read once when the server starts: the page (index.html, app.js,
// app.css, beside this file) and uPlot's script and style sheet from the installed package
// (core/ui-assets.ts). Served under /dashboard/ by server/http.ts; nothing is fetched from elsewhere.

import { readFileSync } from 'node:fs';
import { uplotAssets } from '../../core/ui-assets.ts';

export interface DashboardFile {
  type: string;
  body: string;
}

export type DashboardFiles = ReadonlyMap<string, DashboardFile>;

const TYPES = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

export function dashboardFiles(): DashboardFiles {
  const own = (name: string) => readFileSync(new URL(`./${name}`, import.meta.url), 'utf8');
  const uplot = uplotAssets();
  return new Map<string, DashboardFile>([
    ['index.html', { type: TYPES.html, body: own('index.html') }],
    ['app.js', { type: TYPES.js, body: own('app.js') }],
    ['app.css', { type: TYPES.css, body: own('app.css') }],
    ['uplot.js', { type: TYPES.js, body: uplot.js }],
    ['uplot.css', { type: TYPES.css, body: uplot.css }],
  ]);
}
