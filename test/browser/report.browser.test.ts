// An offline report opened from disk in a real browser (`npm run test:browser`): `stageward score`'s
// report.html of two simulated episodes, scored by the bundled model, opened as file:// with every
// other request refused. Its charts draw with the inlined uPlot, its key-frame thumbnails decode,
// its per-episode table links to each episode, and nothing is fetched. Writes
// runs/browser/score-report.png.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultModelDir } from '../../core/paths.ts';
import { LeRobotDatasetWriter } from '../../datasets/writer.ts';
import { scoreWithPackage } from '../../offline/score/from-package.ts';
import { SimEnv } from '../../sim/env.ts';
import { recordEpisode } from '../../sim/record.ts';
import { createRenderer } from '../../sim/render/index.ts';
import { collectErrors, launchChromium, screenshotPath } from './chromium.ts';

describe("stageward score's report.html, opened from disk", () => {
  let browser: Browser | undefined;
  let dir: string | undefined;
  let report: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stageward-report-'));
    const env = await SimEnv.create({ task: 'pick_place', image: { width: 96, height: 96 }, renderer: createRenderer() });
    const writer = await LeRobotDatasetWriter.create(join(dir, 'pp'), env.datasetSpec());
    await writer.addEpisode(recordEpisode(env, 1, 'expert', 20));
    await writer.addEpisode(recordEpisode(env, 2, 'failed', 20));
    await writer.finish();
    env.close();
    const run = await scoreWithPackage({
      model: defaultModelDir().dir,
      dataset: join(dir, 'pp'),
      out: join(dir, 'score'),
      inferenceThread: 'main',
      parquet: false,
      plots: false,
    });
    report = run.html!;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('draws every chart, shows decodable key frames, links each episode, and fetches nothing', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 1600 } });
    const requests: string[] = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:') || url.startsWith('data:')) return route.continue();
      requests.push(url);
      return route.abort();
    });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(pathToFileURL(report).href);
    expect(await page.locator('body').getAttribute('data-report')).toBe('score');
    expect(await page.locator('#episodes tbody tr').count()).toBe(2);
    const charts = await page.locator('.sw-chart').count();
    expect(charts).toBeGreaterThan(0);
    await expect.poll(() => page.locator('.sw-chart canvas').count()).toBeGreaterThanOrEqual(charts);
    const thumbs = page.locator('img.sw-thumb');
    expect(await thumbs.count()).toBeGreaterThan(0);
    const widths = await thumbs.evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
    expect(widths.every((w) => w > 0)).toBe(true);
    // The table's first cell links to that episode's section.
    const link = page.locator('#episodes tbody tr').nth(1).locator('a').first();
    const target = (await link.getAttribute('href'))!;
    await link.click();
    await expect.poll(() => page.evaluate(() => location.hash)).toBe(target);
    expect(await page.locator(target).isVisible()).toBe(true);
    const path = await screenshotPath('score-report');
    await page.goto(pathToFileURL(report).href);
    await page.screenshot({ path, fullPage: true });
    console.log(`screenshot: ${path}`);
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
