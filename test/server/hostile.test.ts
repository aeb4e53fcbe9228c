// What a hostile or broken client can send, end to end through a real server: decode bombs are
// refused within the budget, deadlines hold whatever a client sends, error replies stay short, the
// numbers in replies stay finite, every field is checked, and the drain is visible and answers
// every message exactly once.

import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { ERROR_MESSAGE_MAX_CHARS } from '../../core/errors.ts';
import { ndarrayMap } from '../../server/ndarray.ts';
import type { StagewardServer } from '../../server/server.ts';
import { FakeProgressModel, HELLO, jpegFrames, Peer, startTestServer, waitFor } from './helpers.ts';

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function session(server: StagewardServer, hello: Record<string, unknown> = HELLO): Promise<Peer> {
  const peer = await Peer.open(`${server.url}/v1/stream`);
  expect(await peer.request(hello)).toMatchObject({ type: 'ready' });
  return peer;
}

/** A raw TCP connection to the server; resolves `closed` when the server cuts it. */
function rawSocket(server: StagewardServer): Promise<{ socket: Socket; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect(server.address.port, server.address.host);
    socket.on('error', () => {});
    const closed = new Promise<number>((r) => socket.on('close', () => r(Date.now() - t0)));
    socket.once('connect', () => resolve({ socket, closed }));
    socket.once('error', reject);
  });
}

function get(server: StagewardServer, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.address.host, port: server.address.port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the decode budget on the wire', () => {
  it('answers a flat MessagePack bomb before hello with SW_ERR_LIMIT and keeps the session usable', async () => {
    const server = await serve();
    const peer = await Peer.open(`${server.url}/v1/stream`);
    const n = 4_000_000;
    const bomb = Buffer.alloc(5 + n, 0x80);
    bomb[0] = 0xdd;
    bomb.writeUInt32BE(n, 1);
    peer.sendRaw(bomb);
    expect(await peer.reply()).toMatchObject({
      type: 'error',
      code: 'SW_ERR_LIMIT',
      message: expect.stringContaining('maxMessageElements'),
    });
    expect(await peer.request(HELLO)).toMatchObject({ type: 'ready' });
    // Each message's main-thread decode time is measured: the bomb and the hello.
    const metrics = await (await fetch(`${server.url.replace(/^ws/, 'http')}/metrics`)).text();
    expect(metrics).toMatch(/^stageward_message_decode_seconds_count\{kind="binary"\} 2$/m);
    expect(Number(/^stageward_message_decode_max_seconds (\S+)$/m.exec(metrics)![1])).toBeGreaterThan(0);
    await peer.close();
  });

  it('refuses messages over maxStringBytes and text messages over maxTextPayloadBytes, and keeps the session', async () => {
    const server = await serve({ 'limits.maxTextPayloadBytes': 4096 });
    const peer = await Peer.open(`${server.url}/v1/stream`);
    peer.send({ ...HELLO, task: 'x'.repeat((1 << 20) + 1) });
    expect(await peer.reply()).toMatchObject({ code: 'SW_ERR_LIMIT', message: expect.stringContaining('maxStringBytes') });
    peer.sendRaw(JSON.stringify({ ...HELLO, pad: 'y'.repeat(5000) }));
    expect(await peer.reply()).toMatchObject({ code: 'SW_ERR_LIMIT', message: expect.stringContaining('maxTextPayloadBytes') });
    peer.sendRaw(JSON.stringify(HELLO));
    expect(await peer.reply()).toMatchObject({ type: 'ready' });
    await peer.close();
  });

  it('refuses a bomb in a step `state`, and checks `state` like every other field', async () => {
    const server = await serve();
    const peer = await session(server);
    await peer.request({ type: 'reset' });
    const frames = await jpegFrames();
    const many = new Array(20_000).fill({});
    expect(await peer.request({ type: 'step', frames, state: many })).toMatchObject({ code: 'SW_ERR_LIMIT' });
    expect(await peer.request({ type: 'step', frames, state: 'joint' })).toMatchObject({ code: 'SW_ERR_PROTOCOL' });
    expect(await peer.request({ type: 'step', frames, state: [0.1, 'x'] })).toMatchObject({ code: 'SW_ERR_PROTOCOL' });
    const big = ndarrayMap('<f4', [5000], new Uint8Array(20_000));
    expect(await peer.request({ type: 'step', frames, state: big })).toMatchObject({ code: 'SW_ERR_LIMIT' });
    const ok = ndarrayMap('<f4', [7], new Uint8Array(28));
    expect(await peer.request({ type: 'step', frames, state: ok })).toMatchObject({ type: 'reward', step: 0 });
    expect(await peer.request({ type: 'step', frames, state: [0.1, -2, 3e3] })).toMatchObject({ type: 'reward', step: 1 });
    await peer.close();
  });
});

describe('deadlines', () => {
  it('closes a connection without a valid hello at helloTimeoutMs after opening, however often it sends junk', async () => {
    const server = await serve({ 'limits.helloTimeoutMs': 400 });
    const peer = await Peer.open(`${server.url}/v1/stream`);
    const t0 = Date.now();
    const junk = setInterval(() => peer.ws.readyState === peer.ws.OPEN && peer.send({ type: 'step', frames: {} }), 50);
    const bad = setInterval(() => peer.ws.readyState === peer.ws.OPEN && peer.send({ ...HELLO, task: 'nope' }), 70);
    try {
      const closed = await peer.closed;
      expect(closed.code).toBe(1001);
      expect(closed.reason).toContain('SW_ERR_IDLE_TIMEOUT');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
      expect(Date.now() - t0).toBeLessThan(1500);
    } finally {
      clearInterval(junk);
      clearInterval(bad);
    }
  });

  it('cuts TCP connections that never finish their upgrade at upgradeTimeoutMs, and caps them at maxPendingSockets', async () => {
    const server = await serve({ 'limits.upgradeTimeoutMs': 300, 'limits.maxPendingSockets': 3 });
    const silent = await rawSocket(server);
    const partial = await rawSocket(server);
    partial.socket.write('GET /v1/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    const third = await rawSocket(server); // a keep-alive HTTP client: answered, then cut at the deadline
    third.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const answered = new Promise<string>((r) => third.socket.once('data', (d) => r(d.toString('latin1'))));
    const fourth = await rawSocket(server);
    // The fourth is over the cap: cut at once.
    expect(await fourth.closed).toBeLessThan(250);
    for (const s of [silent, partial, third]) {
      const ms = await s.closed;
      expect(ms).toBeGreaterThanOrEqual(250);
      expect(ms).toBeLessThan(2000);
    }
    expect(await answered).toMatch(/^HTTP\/1.1 200/);
    // WebSocket sessions do not count against the cap, and HTTP requests still get through.
    const peers = await Promise.all([0, 1, 2, 3].map(() => session(server)));
    expect(await get(server, '/healthz')).toBe(200);
    await Promise.all(peers.map((p) => p.close()));
  });
});

describe('bounded replies', () => {
  it('cuts the client strings an error quotes: a 512 KiB task, model, view or unknown field gives a short reply', async () => {
    const server = await serve();
    const huge = 'x'.repeat(1 << 19); // within maxStringBytes (1 MiB), so it reaches the checks
    const peer = await Peer.open(`${server.url}/v1/stream`);
    for (const hello of [
      { ...HELLO, task: huge },
      { ...HELLO, model: huge },
      { ...HELLO, views: ['front', 'side', huge] },
      { ...HELLO, [huge]: 1 },
      { type: huge },
    ]) {
      const reply = await peer.request(hello);
      expect(reply.type).toBe('error');
      expect(reply.message.length).toBeLessThanOrEqual(ERROR_MESSAGE_MAX_CHARS);
      expect(reply.message).toContain('(524288 characters)');
    }
    await peer.close();
  });

  it('keeps openpi error replies short for a 512 KiB prompt', async () => {
    const server = await serve();
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    const frames = await jpegFrames();
    const obs = { 'observation/image': frames.front, 'observation/side_image': frames.side, 'observation/wrist_image': frames.wrist };
    peer.send({ ...obs, prompt: '"'.repeat(1 << 19) }); // JSON escaping doubles each character
    const raw = await peer.next();
    expect(raw.binary).toBe(false);
    const reply = raw.data as Record<string, string>;
    expect(reply.code).toBe('SW_ERR_TASK_UNKNOWN');
    expect(JSON.stringify(reply).length).toBeLessThan(2 * ERROR_MESSAGE_MAX_CHARS);
    await peer.close();
  });
});

describe('numbers that are not numbers', () => {
  it('refuses rewards and scales whose sums could overflow, so every reply number is finite', async () => {
    const server = await serve();
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/v1/stream`);
    expect(await peer.request({ ...HELLO, scale: 1e308 })).toMatchObject({ code: 'SW_ERR_BAD_OPTION' });
    expect(await peer.request({ ...HELLO, scale: 2 })).toMatchObject({ type: 'ready' });
    await peer.request({ type: 'reset' });
    expect(await peer.request({ type: 'step', frames, reward: 1e308 })).toMatchObject({ code: 'SW_ERR_BAD_VALUE' });
    // JSON, where an Infinity would go out as null: the largest rewards accepted keep every figure finite.
    for (let i = 0; i < 5; i++) peer.sendRaw(JSON.stringify({ type: 'step', frames: b64(frames), reward: 1e12 }));
    for (let i = 0; i < 5; i++) expect((await peer.reply()).type).toBe('reward');
    peer.sendRaw(JSON.stringify({ type: 'end' }));
    const summary = await peer.reply();
    expect(summary).toMatchObject({ type: 'summary', steps: 5, env_return: 5e12 });
    expect(Number.isFinite(summary.shaped_return)).toBe(true);
    await peer.close();
  });
});

function b64(frames: Record<string, Buffer>): Record<string, string> {
  return Object.fromEntries(Object.entries(frames).map(([k, v]) => [k, v.toString('base64')]));
}

describe('unchecked inputs are checked', () => {
  it('refuses duplicate views in hello, goal frames the session does not use, and a `t` that does not increase', async () => {
    const server = await serve();
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/v1/stream`);
    expect(await peer.request({ ...HELLO, views: ['front', 'front', 'side'] })).toMatchObject({ code: 'SW_ERR_BAD_OPTION' });
    expect(await peer.request(HELLO)).toMatchObject({ type: 'ready' });
    expect(await peer.request({ type: 'reset', goal: frames })).toMatchObject({
      code: 'SW_ERR_BAD_OPTION',
      message: expect.stringContaining('goal'),
    });
    await peer.request({ type: 'reset' });
    expect(await peer.request({ type: 'step', t: 3, frames })).toMatchObject({ type: 'reward', step: 0 });
    expect(await peer.request({ type: 'step', t: 3, frames })).toMatchObject({
      code: 'SW_ERR_PROTOCOL',
      message: expect.stringContaining('`t`'),
    });
    expect(await peer.request({ type: 'step', t: 7, frames })).toMatchObject({ type: 'reward', step: 1 });
    await peer.request({ type: 'reset' }); // a new episode starts `t` again
    expect(await peer.request({ type: 'step', t: 0, frames })).toMatchObject({ type: 'reward', step: 0 });
    await peer.close();
  });

  it('names no server-wide counter when a step follows the end of an episode', async () => {
    const server = await serve();
    const frames = await jpegFrames();
    const messages: string[] = [];
    for (const others of [0, 3]) {
      // Other sessions' episodes in between must not change what this client is told.
      for (let i = 0; i < others; i++) {
        const other = await session(server);
        await other.request({ type: 'reset' });
        await other.close();
      }
      const peer = await session(server);
      await peer.request({ type: 'reset' });
      await peer.request({ type: 'step', frames, terminated: true });
      const reply = await peer.request({ type: 'step', frames });
      expect(reply.code).toBe('SW_ERR_EPISODE_ENDED');
      messages.push(reply.message);
      await peer.close();
    }
    expect(messages[0]).toBe(messages[1]);
  });

  it('openpi: refuses negative or over-long episode ids', async () => {
    const server = await serve();
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    const obs = {
      'observation/image': frames.front,
      'observation/side_image': frames.side,
      'observation/wrist_image': frames.wrist,
      prompt: 'pick_place',
    };
    peer.send({ ...obs, episode: -1 });
    expect((await peer.reply()).code).toBe('SW_ERR_PROTOCOL');
    peer.send({ ...obs, episode: 'e'.repeat(300) });
    expect((await peer.reply()).code).toBe('SW_ERR_PROTOCOL');
    peer.send({ ...obs, episode: 'e7' });
    expect(await peer.reply()).toMatchObject({ episode: 'e7', new_episode: true });
    await peer.close();
  });
});

describe('openpi episode boundaries survive a failed observation', () => {
  it('the observation after a failed episode start says new_episode: true and is step 0', async () => {
    const server = await serve();
    const frames = await jpegFrames();
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    const obs = {
      'observation/image': frames.front,
      'observation/side_image': frames.side,
      'observation/wrist_image': frames.wrist,
      prompt: 'pick_place',
    };
    peer.send(obs);
    expect(await peer.reply()).toMatchObject({ step: 0, new_episode: true });
    peer.send(obs);
    expect(await peer.reply()).toMatchObject({ step: 1, new_episode: false });
    // A reset whose frames cannot be decoded, then one whose image is missing.
    peer.send({ ...obs, reset: true, 'observation/image': Buffer.from('not a jpeg') });
    expect((await peer.reply()).code).toBe('SW_ERR_IMAGE_DECODE');
    peer.send(obs);
    expect(await peer.reply()).toMatchObject({ step: 0, new_episode: true });
    peer.send({ ...obs, reset: true, 'observation/image': undefined });
    expect((await peer.reply()).code).toBe('SW_ERR_VIEW_MISSING');
    peer.send(obs);
    expect(await peer.reply()).toMatchObject({ step: 0, new_episode: true });
    peer.send(obs);
    expect(await peer.reply()).toMatchObject({ step: 1, new_episode: false });
    await peer.close();
  });
});

describe('the drain', () => {
  it('answers /healthz 503 while connections drain, and gives every queued message exactly one reply when the grace ends', async () => {
    const fake = new FakeProgressModel();
    const server = await serve({ 'limits.shutdownGraceMs': 300 }, fake);
    const frames = await jpegFrames();
    const peer = await session(server);
    await peer.request({ type: 'reset' });
    fake.delayMs = 200; // each step takes 200 ms x 3 graphs: 4 queued steps cannot finish in 300 ms
    for (let seq = 0; seq < 4; seq++) peer.send({ type: 'step', seq, frames });
    await waitFor(() => server.stats().inFlight === 4);
    expect(await get(server, '/healthz')).toBe(200);
    const done = server.shutdown();
    await sleep(20);
    expect(await get(server, '/healthz')).toBe(503);
    const replies = [];
    for (let i = 0; i < 4; i++) replies.push(await peer.reply());
    expect(replies.map((r) => r.seq)).toEqual([0, 1, 2, 3]);
    expect(replies.some((r) => r.code === 'SW_ERR_SHUTTING_DOWN')).toBe(true);
    for (const r of replies) expect(r.type === 'reward' || r.code === 'SW_ERR_SHUTTING_DOWN').toBe(true);
    expect((await peer.closed).code).toBe(1001);
    await done;
    // Nothing more arrived after the close.
    await expect(peer.next(100)).rejects.toThrow();
  });

  it('answers a step that crosses the last reply of the drain (drainQuietMs), instead of closing on it', async () => {
    const fake = new FakeProgressModel();
    const server = await serve({ 'limits.shutdownGraceMs': 3000, 'limits.drainQuietMs': 150 }, fake);
    const frames = await jpegFrames();
    const peer = await session(server);
    await peer.request({ type: 'reset' });
    fake.delayMs = 50;
    peer.send({ type: 'step', seq: 0, frames });
    await waitFor(() => server.stats().inFlight === 1);
    const t0 = performance.now();
    const done = server.shutdown();
    expect(await peer.reply()).toMatchObject({ type: 'reward', seq: 0 });
    peer.send({ type: 'step', seq: 1, frames }); // sent the moment the drain's last reply arrived
    expect(await peer.reply()).toMatchObject({ type: 'error', seq: 1, code: 'SW_ERR_SHUTTING_DOWN' });
    expect((await peer.closed).code).toBe(1001);
    await done;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150); // it waited for the quiet
    expect(performance.now() - t0).toBeLessThan(2500); // and not for the whole grace
  });
});
