import { afterEach, describe, expect, it } from 'vitest';
import { StagewardClient } from '../../server/client.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode } from '../helpers.ts';
import { activeTimers, FakeProgressModel, HELLO, jpegFrames, KEY, Peer, startTestServer, waitFor } from './helpers.ts';

let servers: StagewardServer[] = [];
async function serve(overrides: Record<string, unknown> = {}, model?: FakeProgressModel): Promise<StagewardServer> {
  const s = await startTestServer(overrides, model ?? new FakeProgressModel());
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.shutdown()));
  servers = [];
});

describe('authentication', () => {
  it('takes the key from the Authorization header or the hello field; a wrong key closes with 4401', async () => {
    const server = await serve({ apiKeys: [KEY] });
    const native = `${server.url}/v1/stream`;
    const frames = await jpegFrames();

    const byHeader = await StagewardClient.connect(server.url, { apiKey: KEY });
    await byHeader.hello({ task: 'pick_place', gamma: 0.99 });
    await byHeader.reset();
    expect((await byHeader.step(frames)).type).toBe('reward');
    await byHeader.close();

    const byHello = await StagewardClient.connect(server.url, { apiKey: KEY, apiKeyIn: 'hello' });
    expect((await byHello.hello({ task: 'pick_place', gamma: 0.99 })).type).toBe('ready');
    await byHello.close();

    const wrongHello = await Peer.open(native);
    expect(await wrongHello.request({ ...HELLO, api_key: 'wrong-key-0123456789' })).toMatchObject({ type: 'error', code: 'SW_ERR_AUTH' });
    expect(await wrongHello.closed).toMatchObject({ code: 4401, reason: expect.stringContaining('SW_ERR_AUTH') });

    const missing = await Peer.open(native);
    expect(await missing.request(HELLO)).toMatchObject({ code: 'SW_ERR_AUTH' });
    expect((await missing.closed).code).toBe(4401);

    const wrongHeader = await Peer.open(native, { authorization: 'Api-Key wrong-key-0123456789' });
    expect(await wrongHeader.reply()).toMatchObject({ type: 'error', code: 'SW_ERR_AUTH' });
    expect((await wrongHeader.closed).code).toBe(4401);

    const client = await StagewardClient.connect(server.url, { apiKey: 'wrong-key-0123456789', apiKeyIn: 'hello' });
    await expectCode(client.hello({ task: 'pick_place', gamma: 0.99 }), 'SW_ERR_AUTH');

    // openpi-client sends the header only: without it the connection is refused.
    const openpiNoKey = await Peer.open(`${server.url}/openpi`);
    const refusal = await openpiNoKey.next();
    expect(refusal.binary).toBe(false);
    expect(refusal.data).toMatchObject({ code: 'SW_ERR_AUTH' });
    expect((await openpiNoKey.closed).code).toBe(4401);
    const openpi = await Peer.open(`${server.url}/openpi`, { authorization: `Api-Key ${KEY}` });
    expect((await openpi.reply()).server).toBe('stageward');
    await openpi.close();

    const http = server.url.replace('ws', 'http');
    expect((await fetch(`${http}/metrics`)).status).toBe(401);
    expect((await fetch(`${http}/v1/models`, { headers: { authorization: `Api-Key ${KEY}` } })).status).toBe(200);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);
    expect(server.metrics.errors.get({ code: 'SW_ERR_AUTH' })).toBeGreaterThanOrEqual(5);
  });
});

describe('resources', () => {
  it('a client that disconnects mid-episode frees its session, its in-flight steps and its timers', async () => {
    const baseline = activeTimers();
    const fake = new FakeProgressModel();
    fake.delayMs = 20;
    const server = await serve({}, fake);
    const frames = await jpegFrames();
    const peers = await Promise.all([0, 1, 2].map(() => Peer.open(`${server.url}/v1/stream`)));
    for (const p of peers) {
      await p.request(HELLO);
      await p.request({ type: 'reset' });
      for (let seq = 0; seq < 5; seq++) p.send({ type: 'step', seq, frames });
    }
    await waitFor(() => server.stats().inFlight >= 10);
    expect(server.stats().sessions).toBe(3);
    for (const p of peers) p.ws.terminate();
    await waitFor(() => server.stats().sessions === 0);
    await waitFor(() => server.stats().inFlight === 0 && Object.values(server.model.queueDepth).every((d) => d === 0));
    await waitFor(() => Object.values(server.model.running).every((d) => d === 0));
    await waitFor(() => activeTimers() <= baseline, 3000);
    expect(server.metrics.render()).toContain('stageward_sessions{endpoint="native"} 0');
  });

  it('refuses connections past maxSessions with 1013, and accepts again when one leaves', async () => {
    const server = await serve({ 'limits.maxSessions': 2 });
    const a = await Peer.open(`${server.url}/v1/stream`);
    const b = await Peer.open(`${server.url}/openpi`);
    await b.next(); // metadata
    const c = await Peer.open(`${server.url}/v1/stream`);
    expect(await c.reply()).toMatchObject({ type: 'error', code: 'SW_ERR_TOO_MANY_SESSIONS' });
    expect((await c.closed).code).toBe(1013);
    await a.close();
    await waitFor(() => server.stats().sessions === 1);
    const d = await Peer.open(`${server.url}/v1/stream`);
    expect(await d.request(HELLO)).toMatchObject({ type: 'ready' });
    await Promise.all([b.close(), d.close()]);
  });

  it('closes a connection that sends no hello within helloTimeoutMs, or nothing within idleTimeoutMs (1001)', async () => {
    const server = await serve({ 'limits.helloTimeoutMs': 150, 'limits.idleTimeoutMs': 300 });
    const silent = await Peer.open(`${server.url}/v1/stream`);
    const t0 = Date.now();
    expect(await silent.reply()).toMatchObject({ code: 'SW_ERR_IDLE_TIMEOUT', message: expect.stringContaining('hello') });
    expect((await silent.closed).code).toBe(1001);
    expect(Date.now() - t0).toBeLessThan(1000);
    const idle = await Peer.open(`${server.url}/v1/stream`);
    await idle.request(HELLO);
    await new Promise((r) => setTimeout(r, 200)); // past the hello timeout, within idle: still open
    await idle.request({ type: 'reset' });
    expect(await idle.reply()).toMatchObject({ code: 'SW_ERR_IDLE_TIMEOUT', message: expect.stringContaining('idleTimeoutMs') });
    expect((await idle.closed).code).toBe(1001);
  });

  it('closes with 1009 on a message over maxPayloadBytes, before buffering it, and keeps serving others', async () => {
    const server = await serve({ 'limits.maxPayloadBytes': 64 * 1024 });
    const big = await Peer.open(`${server.url}/v1/stream`);
    big.sendRaw(Buffer.alloc(100 * 1024));
    expect((await big.closed).code).toBe(1009);
    const ok = await Peer.open(`${server.url}/v1/stream`);
    expect(await ok.request(HELLO)).toMatchObject({ type: 'ready' });
    await ok.close();
    expect(server.metrics.errors.get({ code: 'SW_ERR_MESSAGE_TOO_LARGE' })).toBe(1);
  });
});

describe('backpressure', () => {
  it('bounds the messages in flight per connection and still answers every one, in order', async () => {
    const fake = new FakeProgressModel();
    fake.delayMs = 10;
    const server = await serve({ 'limits.maxInFlightSteps': 2, 'limits.maxQueuedMessages': 4 }, fake);
    const peer = await Peer.open(`${server.url}/v1/stream`);
    await peer.request(HELLO);
    await peer.request({ type: 'reset' });
    const frames = await jpegFrames();
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, server.stats().inFlight)), 1);
    const n = 40;
    for (let seq = 0; seq < n; seq++) peer.send({ type: 'step', seq, frames });
    const replies = [];
    for (let i = 0; i < n; i++) replies.push(await peer.reply());
    clearInterval(watch);
    expect(replies.map((r) => r.seq)).toEqual([...Array(n).keys()]);
    expect(replies.every((r) => r.type === 'reward' || r.code === 'SW_ERR_BUSY')).toBe(true);
    expect(replies.filter((r) => r.type === 'reward').map((r) => r.step)).toEqual([
      ...Array(replies.filter((r) => r.type === 'reward').length).keys(),
    ]);
    expect(most).toBeLessThanOrEqual(4);
    await peer.close();
  });
});

describe('failures', () => {
  it('an inference failure answers SW_ERR_INFERENCE and closes with 1011; an unexpected fault answers SW_ERR_INTERNAL without a stack', async () => {
    const fake = new FakeProgressModel();
    const server = await serve({}, fake);
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/v1/stream`);
    await peer.request(HELLO);
    await peer.request({ type: 'reset' });
    fake.failGraph = 'sarm';
    expect(await peer.request({ type: 'step', seq: 0, frames })).toMatchObject({ seq: 0, code: 'SW_ERR_INFERENCE' });
    expect((await peer.closed).code).toBe(1011);

    fake.failGraph = undefined;
    fake.encode = async () => {
      throw new TypeError('boom at secret/path.ts:12');
    };
    const other = await Peer.open(`${server.url}/v1/stream`);
    await other.request(HELLO);
    await other.request({ type: 'reset' });
    const err = await other.request({ type: 'step', seq: 0, frames });
    expect(err).toMatchObject({ code: 'SW_ERR_INTERNAL' });
    expect(JSON.stringify(err)).not.toMatch(/boom|secret|at /);
    expect((await other.closed).code).toBe(1011);
  });
});

describe('graceful shutdown', () => {
  it('answers the steps in flight, refuses new connections, closes with 1001 and closes the model', async () => {
    const fake = new FakeProgressModel();
    fake.delayMs = 30;
    const server = await serve({}, fake);
    const frames = await jpegFrames();
    const client = await StagewardClient.connect(server.url);
    await client.hello({ task: 'pick_place', gamma: 0.99 });
    await client.reset();
    const watcher = await Peer.open(`${server.url}/openpi`);
    await watcher.next(); // metadata
    const steps = [0, 1, 2, 3, 4].map(() => client.step(frames));
    await waitFor(() => server.stats().inFlight === 5);
    const done = server.shutdown();
    const replies = await Promise.all(steps);
    expect(replies.map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
    await expect(StagewardClient.connect(server.url)).rejects.toThrow();
    await done;
    expect(await watcher.closed).toEqual({ code: 1001, reason: expect.stringContaining('SW_ERR_SHUTTING_DOWN') });
    await expectCode(client.step(frames), 'SW_ERR_SHUTTING_DOWN');
    expect(fake.closed).toBe(true);
    await client.close();
  });
});
