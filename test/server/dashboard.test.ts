// The live dashboard's API as a script or the page uses it (server/LIVE.md): the feed on /v1/live
// (snapshot, ticks with every new point, episode boundaries, thumbnails at a bounded rate),
// GET /v1/sessions, the API-key rule, the viewer cap, bad viewer messages, and the switch that
// turns it all off. The page itself is tested in a real browser (npm run test:browser).
import { Packr } from 'msgpackr';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { StagewardClient } from '../../server/client.ts';
import type { StagewardServer } from '../../server/server.ts';
import { FakeProgressModel, jpegFrames, KEY, Peer, startTestServer, waitFor } from './helpers.ts';

const toClose: StagewardServer[] = [];
afterEach(async () => {
  await Promise.all(toClose.splice(0).map((s) => s.shutdown()));
});

async function server(overrides: Record<string, unknown> = {}): Promise<StagewardServer> {
  const s = await startTestServer({ 'dashboard.tickMs': 50, ...overrides }, new FakeProgressModel());
  toClose.push(s);
  return s;
}

const httpOf = (s: StagewardServer) => s.url.replace(/^ws/, 'http');

/** A feed viewer: every message it got, by arrival. */
class Viewer {
  readonly got: Record<string, any>[] = [];
  private constructor(readonly peer: Peer) {}

  static async open(s: StagewardServer, headers: Record<string, string> = {}): Promise<Viewer> {
    const v = new Viewer(await Peer.open(`${s.url}/v1/live`, headers));
    void (async () => {
      for (;;) v.got.push((await v.peer.next(60_000).catch(() => ({ data: { type: 'gone' } }))).data as Record<string, any>);
    })();
    return v;
  }

  subscribe(m: Record<string, unknown>): void {
    this.peer.sendRaw(JSON.stringify({ type: 'subscribe', ...m }));
  }

  of(type: string): Record<string, any>[] {
    return this.got.filter((m) => m.type === type);
  }

  async first(type: string): Promise<Record<string, any>> {
    await waitFor(() => this.of(type).length > 0, 5000);
    return this.of(type)[0]!;
  }

  /** Points of the watched session by episode ordinal, from the snapshot and every tick since. */
  points(): Map<number, number[][]> {
    const out = new Map<number, number[][]>();
    const snap = this.of('snapshot').at(-1);
    const from = this.got.lastIndexOf(snap!);
    for (const m of this.got.slice(from)) {
      if (m.watch === null || m.watch === undefined || (m.type !== 'snapshot' && m.type !== 'tick')) continue;
      for (const e of m.watch.episodes) out.set(e.ordinal, [...(out.get(e.ordinal) ?? []), ...e.points]);
    }
    return out;
  }
}

async function robot(s: StagewardServer, opts: { apiKey?: string } = {}): Promise<{ client: StagewardClient; session: string }> {
  const client = await StagewardClient.connect(s.url, opts);
  const ready = await client.hello({ task: 'pick_place', gamma: 0.99 });
  return { client, session: ready.session };
}

describe('the live feed', () => {
  it('streams every step of the watched session, with episode boundaries and the current and previous episode kept', async () => {
    const s = await server();
    const { client, session } = await robot(s);
    const viewer = await Viewer.open(s);
    viewer.subscribe({ session, thumbnails: false });
    const snap = await viewer.first('snapshot');
    expect(snap.fields).toEqual(['step', 'progress', 'stage', 'shaped', 'sarm', 'grm', 'uncertainty']);
    expect(snap.model).toMatchObject({ name: 'tiny-fixture', views: ['front', 'side', 'wrist'] });
    expect(snap.sessions).toEqual([expect.objectContaining({ id: session, protocol: 'native', state: 'open', step: null })]);
    const replies: number[][] = [];
    for (let e = 0; e < 3; e++) {
      await client.reset(undefined, { episode: `ep-${e}` });
      const progress: number[] = [];
      for (let t = 0; t < 4 + e; t++) progress.push((await client.step(await jpegFrames(t * 20 + e))).progress);
      replies.push(progress);
      // Two boundaries within one tick would drop an episode the viewer had not had in full: the
      // feed sends only what the session keeps (the current and the previous episode).
      await waitFor(() => (viewer.points().get(e)?.length ?? 0) === 4 + e, 5000);
    }
    const points = viewer.points();
    // Every step, in order, with the progress the robot got; 0 -> 1 -> 2 are separate episodes.
    for (const e of [0, 1, 2]) {
      expect(points.get(e)!.map((p) => p[0])).toEqual([...Array(4 + e).keys()]);
      expect(points.get(e)!.map((p) => p[1])).toEqual(replies[e]);
    }
    const tick = viewer.of('tick').at(-1)!;
    expect(tick.watch.kept).toEqual([1, 2]); // the current and the previous episode
    expect(tick.sessions[0]).toMatchObject({ id: session, episode: 'ep-2', episodes: 3, step: 5, task: 'pick_place', errors: {} });
    expect(tick.sessions[0].latency_ms.p50).toBeGreaterThan(0);
    expect(tick.server).toMatchObject({ sessions: 1, viewers: 1 });
    expect(viewer.of('thumbnail')).toEqual([]);
    await client.close();
  });

  it("sends the watched session's camera frames as small JPEGs, at most thumbnailHz a second, and keeps no frames unwatched", async () => {
    const s = await server({ 'dashboard.thumbnailHz': 4, 'dashboard.thumbnailWidth': 32 });
    const { client, session } = await robot(s);
    await client.reset();
    await client.step(await jpegFrames(1));
    expect(s.live!.get(session)!.frames).toBeUndefined();
    const viewer = await Viewer.open(s);
    viewer.subscribe({ session });
    await viewer.first('snapshot');
    const started = performance.now();
    for (let t = 0; performance.now() - started < 1200; t++) await client.step(await jpegFrames(t % 50));
    const elapsed = performance.now() - started;
    await waitFor(() => viewer.of('thumbnail').length > 0);
    const thumbs = viewer.of('thumbnail');
    expect(thumbs.length).toBeLessThanOrEqual(Math.ceil((elapsed / 1000) * 4) + 1);
    expect(Object.keys(thumbs[0]!.views).sort()).toEqual(['front', 'side', 'wrist']);
    const meta = await sharp(Buffer.from(thumbs[0]!.views.front, 'base64')).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 32, height: 32 });
    expect(thumbs[0]).toMatchObject({ session, mime: 'image/jpeg' });
    // The viewer leaves: the session lets go of its frames.
    await viewer.peer.close();
    await waitFor(() => s.live!.get(session)!.frames === undefined);
    await client.close();
  });

  it('refuses viewers past dashboard.maxViewers, and bad viewer messages with a stable code', async () => {
    const s = await server({ 'dashboard.maxViewers': 1 });
    const first = await Viewer.open(s);
    const second = await Viewer.open(s);
    expect(await second.first('error')).toMatchObject({ code: 'SW_ERR_TOO_MANY_SESSIONS' });
    expect((await second.peer.closed).code).toBe(1013);
    first.subscribe({ session: 's999' });
    expect(await first.first('error')).toMatchObject({ code: 'SW_ERR_NO_SESSION' });
    expect((await first.first('snapshot')).watch).toBeNull();
    first.peer.sendRaw(JSON.stringify({ type: 'subscribe', session: null, extra: 'x'.repeat(3000) }));
    await waitFor(() => first.of('error').length === 2);
    expect(first.of('error')[1]).toMatchObject({ code: 'SW_ERR_PROTOCOL', message: 'subscribe has no field "extra"' });
    expect((await first.peer.closed).code).toBe(1008);
    const third = await Viewer.open(s);
    third.peer.sendRaw(new Uint8Array([1, 2, 3]));
    expect(await third.first('error')).toMatchObject({ code: 'SW_ERR_PROTOCOL' });
  });
});

describe('an openpi robot on the dashboard', () => {
  it('shows up as an openpi session with its task, and its raw numpy cameras become thumbnails', async () => {
    const s = await server();
    const python = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
    const image = (seed: number) =>
      new Map<Buffer, unknown>([
        [Buffer.from('__ndarray__'), true],
        [Buffer.from('data'), new Uint8Array(24 * 32 * 3).map((_, i) => (i * 7 + seed) % 256)],
        [Buffer.from('dtype'), '|u1'],
        [Buffer.from('shape'), [24, 32, 3]],
      ]);
    const obs = (seed: number) =>
      python.pack({
        'observation/image': image(seed),
        'observation/side_image': image(seed + 1),
        'observation/wrist_image': image(seed + 2),
        prompt: 'pick_place',
      });
    const robotPeer = await Peer.open(`${s.url}/openpi`);
    await robotPeer.next();
    robotPeer.sendRaw(obs(0));
    await robotPeer.next();
    const [summary] = (await (await fetch(`${httpOf(s)}/v1/sessions`)).json()).sessions;
    expect(summary).toMatchObject({ protocol: 'openpi', task: 'pick_place', step: 0 });
    const viewer = await Viewer.open(s);
    viewer.subscribe({ session: summary.id });
    await viewer.first('snapshot');
    robotPeer.sendRaw(obs(5));
    await robotPeer.next();
    const thumb = await viewer.first('thumbnail');
    expect(thumb).toMatchObject({ session: summary.id, step: 1 });
    expect(await sharp(Buffer.from(thumb.views.wrist, 'base64')).metadata()).toMatchObject({ format: 'jpeg', width: 32, height: 24 });
    await robotPeer.close();
  });
});

describe('GET /v1/sessions', () => {
  it("lists each session's state, latency and errors by code, and one session's points", async () => {
    const s = await server();
    const { client, session } = await robot(s);
    await client.reset();
    for (let t = 0; t < 3; t++) await client.step(await jpegFrames(t));
    await expect(client.step({ front: new Uint8Array([1, 2, 3]) })).rejects.toMatchObject({ code: 'SW_ERR_VIEW_MISSING' });
    const list = await (await fetch(`${httpOf(s)}/v1/sessions`)).json();
    expect(list.replica).toBe(s.replica);
    expect(list.sessions).toEqual([
      expect.objectContaining({ id: session, step: 2, episodes: 1, errors: { SW_ERR_VIEW_MISSING: 1 }, model: 'tiny-fixture@0.0.1' }),
    ]);
    expect(Object.keys(list.server)).toEqual(
      expect.arrayContaining(['steps_per_s', 'batches', 'queue_depth', 'event_loop_lag_ms', 'memory_mb', 'viewers']),
    );
    const one = await (await fetch(`${httpOf(s)}/v1/sessions/${session}`)).json();
    expect(one.episodes).toHaveLength(1);
    expect(one.episodes[0].points.map((p: number[]) => p[0])).toEqual([0, 1, 2]);
    const missing = await fetch(`${httpOf(s)}/v1/sessions/s404`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'SW_ERR_NO_SESSION' });
    await client.close();
    await waitFor(() => s.live!.get(session)!.closedAt !== null);
    const after = await (await fetch(`${httpOf(s)}/v1/sessions`)).json();
    expect(after.sessions[0]).toMatchObject({ id: session, state: 'closed', steps_per_s: 0 });
  });
});

describe('with API keys', () => {
  it('gives data only to viewers with the key: 401 on the API, SW_ERR_AUTH on the feed; the page itself holds none', async () => {
    const s = await server({ apiKeys: [KEY] });
    const page = await fetch(`${httpOf(s)}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    expect(await page.text()).toContain('id="api-key"');
    const denied = await fetch(`${httpOf(s)}/v1/sessions`);
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ code: 'SW_ERR_AUTH' });
    expect((await fetch(`${httpOf(s)}/v1/sessions`, { headers: { authorization: `Api-Key ${KEY}` } })).status).toBe(200);

    const { client, session } = await robot(s, { apiKey: KEY });
    for (const sub of [{}, { api_key: 'wrong-key-0123456789abcdef' }]) {
      const v = await Viewer.open(s);
      v.subscribe({ session, ...sub });
      expect(await v.first('error')).toMatchObject({ code: 'SW_ERR_AUTH' });
      expect((await v.peer.closed).code).toBe(4401);
      expect(v.of('snapshot')).toEqual([]);
    }
    const wrongHeader = await Viewer.open(s, { authorization: 'Api-Key wrong-key-0123456789abcdef' });
    expect((await wrongHeader.peer.closed).code).toBe(4401);
    const byMessage = await Viewer.open(s);
    byMessage.subscribe({ session, api_key: KEY });
    expect((await byMessage.first('snapshot')).sessions[0].id).toBe(session);
    const byHeader = await Viewer.open(s, { authorization: `Api-Key ${KEY}` });
    byHeader.subscribe({ session });
    expect((await byHeader.first('snapshot')).sessions[0].id).toBe(session);
    await client.close();
  });
});

describe('dashboard.enabled false', () => {
  it('serves the plain index on /, no session API and no feed, and records nothing', async () => {
    const s = await server({ 'dashboard.enabled': false });
    expect(s.live).toBeUndefined();
    const index = await fetch(`${httpOf(s)}/`);
    expect(index.headers.get('content-type')).toContain('text/plain');
    expect(await index.text()).toContain('/v1/stream');
    expect((await fetch(`${httpOf(s)}/v1/sessions`)).status).toBe(404);
    expect((await fetch(`${httpOf(s)}/dashboard/app.js`)).status).toBe(404);
    await expect(Peer.open(`${s.url}/v1/live`)).rejects.toThrow('HTTP 404');
    const { client } = await robot(s);
    await client.reset();
    expect((await client.step(await jpegFrames(1))).step).toBe(0);
    await client.close();
  });
});
