// The browser-side assets stageward's pages share: uPlot (the charting library, MIT, bundled as an
// npm dependency; never fetched from a CDN), read once from the installed package. The live
// dashboard (server/dashboard/) serves them as files; offline HTML reports (core/html-report.ts)
// inline them so that a report opens from disk with no network.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { StagewardError } from './errors.ts';

export interface UplotAssets {
  /** uPlot's minified IIFE build: defines the global `uPlot`. */
  js: string;
  css: string;
  version: string;
}

let cached: UplotAssets | undefined;

/** uPlot's script and style sheet from node_modules (SW_ERR_CONFIG when the package is missing). */
export function uplotAssets(): UplotAssets {
  if (cached !== undefined) return cached;
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve('uplot/package.json'));
  } catch {
    throw new StagewardError('SW_ERR_CONFIG', 'the uplot package is not installed (run npm install)');
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  cached = {
    js: readFileSync(join(root, 'dist', 'uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(join(root, 'dist', 'uPlot.min.css'), 'utf8'),
    version: pkg.version,
  };
  return cached;
}
