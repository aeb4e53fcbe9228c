// The browser the browser tests drive (`npm run test:browser`): Debian's chromium (apt-get install -y
// chromium), or the one CHROMIUM_PATH names, through playwright-core (which downloads no browser of its
// own). Without one, launchChromium fails with the install hint, so the suite FAILS rather than skips.
// Screenshots go to runs/browser/ (ignored by git).

import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../core/paths.ts';

export const SCREENSHOT_DIR = join(REPO_ROOT, 'runs', 'browser');

/** CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH || '/usr/bin/chromium';
}

/** A headless chromium; `--no-sandbox` when running as root (chromium refuses to start there otherwise). */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath))
    throw new Error(
      `no chromium at ${executablePath}: the browser tests need one (Debian: apt-get install -y chromium), ` +
        'or set CHROMIUM_PATH to a Chromium or Chrome binary',
    );
  const root = process.getuid?.() === 0;
  try {
    return await chromium.launch({ executablePath, headless: true, args: root ? ['--no-sandbox'] : [] });
  } catch (err) {
    throw new Error(`chromium at ${executablePath} did not start (Debian: apt-get install -y chromium): ${(err as Error).message}`);
  }
}

/**
 * Everything the page reports as wrong, as it happens: console errors (CSP violations and failed
 * loads show as these) and uncaught exceptions.
 */
export function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url}:${m.location().lineNumber})`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  return errors;
}

/** Where a screenshot named `name` goes (runs/browser/<name>.png); makes the folder. */
export async function screenshotPath(name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return join(SCREENSHOT_DIR, `${name}.png`);
}
