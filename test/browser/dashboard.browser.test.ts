// The live dashboard (server/LIVE.md) in a real browser (`npm run test:browser`; needs chromium:
// apt-get install -y chromium, or CHROMIUM_PATH). Each server is a child process of `stageward start
// --port 0`: the reward server with the bundled model and the embedded simulator streaming episodes
// to it, as `npm start` runs it. Writes runs/browser/dashboard.png.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChild, stopChild, type Started } from '../../bench/child-server.ts';
import { REPO_ROOT } from '../../core/paths.ts';
import { StagewardClient } from '../../server/client.ts';
import { jpegFrames } from '../server/helpers.ts';
import { collectErrors, launchChromium, screenshotPath } from './chromium.ts';

const BIN = join(REPO_ROOT, 'bin', 'stageward.js');
const VIEWS = ['front', 'side', 'wrist'];
const API_KEY = 'browser-test-key-0123456789';
/** Generous: a loaded 2-core machine runs the simulator, the model and chromium at once. */
const POLL = { timeout: 20_000, interval: 100 };

/** `stageward start --port 0 ...`, ready once it prints its dashboard URL (http://127.0.0.1:PORT/). */
function startServer(name: string, extra: string[] = []): Promise<Started> {
  return startChild(
    name,
    process.execPath,
    [BIN, 'start', '--port', '0', ...extra],
    (line) => /dashboard\s+(http:\/\/\S+\/)/.exec(line)?.[1],
  );
}

/** The open native session of the simulated robot, from the session API. */
async function robotSession(url: string, headers: Record<string, string> = {}): Promise<{ id: string; task: string }> {
  let found: { id: string; task: string } | undefined;
  await expect
    .poll(async () => {
      const body = (await (await fetch(`${url}v1/sessions`, { headers })).json()) as {
        sessions: { id: string; protocol: string; state: string; task: string | null }[];
      };
      const s = body.sessions.find((x) => x.protocol === 'native' && x.state === 'open' && x.task !== null);
      if (s !== undefined) found = { id: s.id, task: s.task! };
      return found !== undefined;
    }, POLL)
    .toBe(true);
  return found!;
}

const text = async (page: Page, selector: string) => ((await page.locator(selector).textContent()) ?? '').trim();

/** The page lists the robot's session: protocol native, task pick_place. */
async function expectRobotRow(page: Page, id: string): Promise<void> {
  const row = page.locator(`#sessions tbody tr[data-session="${id}"]`);
  await expect.poll(async () => (await row.locator('td').allTextContents()).slice(0, 3), POLL).toEqual([id, 'native', 'pick_place']);
}

describe('the live dashboard in chromium', () => {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  describe('a server without API keys, the simulated robot streaming', () => {
    let server: Started | undefined;
    let context: BrowserContext;
    let page: Page;
    let errors: string[];
    let session: { id: string; task: string };
    beforeAll(async () => {
      server = await startServer('stageward start');
      context = await browser!.newContext({ viewport: { width: 1280, height: 1400 } });
      page = await context.newPage();
      errors = collectErrors(page);
      await page.goto(server.url);
    });
    afterAll(async () => {
      await context?.close();
      if (server !== undefined) await stopChild(server.child);
    });

    it("shows the robot's session live: protocol native, task pick_place", async () => {
      session = await robotSession(server!.url);
      expect(session.task).toBe('pick_place');
      await expect.poll(() => page.locator('#status').getAttribute('data-state'), POLL).toBe('live');
      expect(await text(page, '#status')).toBe('live');
      expect(await page.locator('#dashboard').isVisible()).toBe(true);
      expect(await page.locator('#auth').isVisible()).toBe(false);
      await expectRobotRow(page, session.id);
      // Followed without a click: the newest open session is watched.
      await expect.poll(() => text(page, '#watch-title'), POLL).toBe(`${session.id} · native · pick_place`);
    });

    it('updates the watched step and progress while steps flow, and charts progress with uPlot', async () => {
      await expect.poll(() => text(page, '#watch-step'), POLL).toMatch(/^\d+$/);
      const step = await text(page, '#watch-step');
      const progress = await text(page, '#watch-progress');
      await expect.poll(() => text(page, '#watch-step'), POLL).not.toBe(step);
      await expect.poll(() => text(page, '#watch-progress'), POLL).not.toBe(progress);
      expect(await text(page, '#watch-progress')).toMatch(/^-?\d+\.\d{3}$/);
      await expect.poll(() => page.locator('#chart-progress .uplot canvas').count(), POLL).toBeGreaterThan(0);
      const box = await page.locator('#chart-progress canvas').first().boundingBox();
      expect(box?.width).toBeGreaterThan(100);
      expect(box?.height).toBeGreaterThan(50);
    });

    it("shows the three cameras' thumbnails, and they change", async () => {
      const img = (view: string) => page.locator(`#thumbs img[data-view="${view}"]`);
      const seen = async () =>
        Promise.all(VIEWS.map(async (v) => ({ src: await img(v).getAttribute('src'), step: await img(v).getAttribute('data-step') })));
      await expect.poll(() => page.locator('#thumbs img[data-view]').count(), POLL).toBe(VIEWS.length);
      const first = await seen();
      for (const t of first) {
        expect(t.src).toMatch(/^data:image\/jpeg;base64,[A-Za-z0-9+/]+=*$/);
        expect(t.step).toMatch(/^\d+$/);
      }
      await expect
        .poll(async () => {
          const now = await seen();
          return now.every((t, i) => t.step !== first[i]!.step && t.src !== first[i]!.src);
        }, POLL)
        .toBe(true);
      // The images decode: the browser gives them their size.
      for (const v of VIEWS)
        expect(await img(v).evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    });

    it('watches the session clicked, every time, with clicks held as long as a person holds them', async () => {
      // A second robot: this test's own client, stepping while the rows are clicked.
      const other = await StagewardClient.connect(server!.url.replace(/^http/, 'ws').replace(/\/$/, ''));
      const { session: otherId } = await other.hello({ task: 'pick_place', gamma: 0.99 });
      await other.reset();
      let stepping = true;
      const steps = (async () => {
        for (let t = 0; stepping; t++) await other.step(await jpegFrames(t % 50));
      })();
      try {
        for (const id of [otherId, session.id, otherId, session.id, otherId, session.id]) {
          await page.locator(`#sessions tbody tr[data-session="${id}"]`).click({ delay: 150 });
          await expect.poll(() => text(page, '#watch-title'), POLL).toMatch(new RegExp(`^${id} · native`));
        }
      } finally {
        stepping = false;
        await steps;
        await other.close();
      }
    });

    it('writes a screenshot of the live dashboard', async () => {
      await expect.poll(() => page.locator('#thumbs img[data-view]').count(), POLL).toBe(VIEWS.length);
      const path = await screenshotPath('dashboard');
      await page.screenshot({ path, fullPage: true });
      console.log(`screenshot: ${path}`);
    });

    it('logged no console errors and threw no page errors (CSP violations are console errors)', () => {
      expect(errors).toEqual([]);
    });
  });

  describe('a server with an API key', () => {
    let server: Started | undefined;
    let dir: string | undefined;
    let context: BrowserContext;
    let page: Page;
    let errors: string[];
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'stageward-browser-'));
      const config = join(dir, 'keys.json');
      await writeFile(config, JSON.stringify({ apiKeys: [API_KEY] }));
      server = await startServer('stageward start (API key)', ['--config', config]);
      context = await browser!.newContext();
      page = await context.newPage();
      errors = collectErrors(page);
      await page.goto(server.url);
    });
    afterAll(async () => {
      await context?.close();
      if (server !== undefined) await stopChild(server.child);
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('asks for the key and shows no data', async () => {
      await page.locator('#auth').waitFor({ state: 'visible', timeout: POLL.timeout });
      expect(await page.locator('#dashboard').isVisible()).toBe(false);
      expect(await page.locator('#status').getAttribute('data-state')).toBe('refused');
      expect(await text(page, '#auth-error')).toBe('');
    });

    it('answers GET /v1/sessions without the header with 401 SW_ERR_AUTH', async () => {
      const res = await fetch(`${server!.url}v1/sessions`);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ code: 'SW_ERR_AUTH' });
      const wrong = await fetch(`${server!.url}v1/sessions`, { headers: { authorization: 'Api-Key not-the-key-0123456789' } });
      expect(wrong.status).toBe(401);
    });

    it('keeps refusing a wrong key', async () => {
      await page.locator('#api-key').fill('not-the-key-0123456789');
      await page.locator('#connect').click();
      await expect.poll(() => text(page, '#auth-error'), POLL).toMatch(/^SW_ERR_AUTH/);
      expect(await page.locator('#auth').isVisible()).toBe(true);
      expect(await page.locator('#dashboard').isVisible()).toBe(false);
      expect(await page.locator('#sessions tbody tr').count()).toBe(0);
    });

    it('shows the live session with the right key, and keeps the key for the tab', async () => {
      const session = await robotSession(server!.url, { authorization: `Api-Key ${API_KEY}` });
      await page.locator('#api-key').fill(API_KEY);
      await page.locator('#connect').click();
      await expect.poll(() => page.locator('#status').getAttribute('data-state'), POLL).toBe('live');
      expect(await page.locator('#auth').isVisible()).toBe(false);
      expect(await page.locator('#dashboard').isVisible()).toBe(true);
      await expectRobotRow(page, session.id);
      await expect.poll(() => page.locator('#thumbs img[data-view]').count(), POLL).toBe(VIEWS.length);
      // sessionStorage: a reload connects with the key, without asking again.
      await page.reload();
      await expect.poll(() => page.locator('#status').getAttribute('data-state'), POLL).toBe('live');
      expect(await page.locator('#auth').isVisible()).toBe(false);
      await expectRobotRow(page, session.id);
    });

    it('logged no console errors and threw no page errors', () => {
      expect(errors).toEqual([]);
    });
  });
});
