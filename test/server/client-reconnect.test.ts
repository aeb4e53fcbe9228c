// The TypeScript client's reconnect (server/client.ts, "Reconnect"), against real in-process servers
// with the fake model: a replica that drains (1001) and another one started on its port, a socket
// dropped by a TCP forwarder (1006), close() during the backoff, attempts that all fail, and the
// closes that must not reconnect (a refused key, an idle timeout, reconnect off).

import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isStagewardError } from '../../core/errors.ts';
import { StagewardClient, type ReadyReply } from '../../server/client.ts';
import type { StagewardServer } from '../../server/server.ts';
import { expectCode, rejection } from '../helpers.ts';
import { FakeProgressModel, jpegFrames, KEY, startTestServer, waitFor } from './helpers.ts';

/** Fast, deterministic waits: 20, 40, 80, 100, 100, ... ms. */
const QUICK = { attempts: 30, backoffMs: 20, maxBackoffMs: 100, jitter: 0 };
const HELLO = { task: 'pick_place', gamma: 0.99 };

let servers: StagewardServer[] = [];
let clients: StagewardClient[] = [];
let forwarders: Forwarder[] = [];

async function serve(overrides: Record<string, unknown> = {}, model = new FakeProgressModel()): Promise<StagewardServer> {
  const s = await startTestServer(overrides, model);
  servers.push(s);
  return s;
}

async function open(url: string, opts: Parameters<typeof StagewardClient.connect>[1] = {}): Promise<StagewardClient> {
  const c = await StagewardClient.connect(url, opts);
  clients.push(c);
  return c;
}

afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.shutdown()));
  await Promise.all(forwarders.map((f) => f.close()));
  servers = [];
  clients = [];
  forwarders = [];
});

/** A TCP forwarder in front of a server: `cut()` drops every connection without a close frame (1006). */
class Forwarder {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  accepted = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static start(targetPort: number): Promise<Forwarder> {
    const server = createServer();
    const f = new Forwarder(server);
    server.on('connection', (down) => {
      f.accepted++;
      const up = tcpConnect(targetPort, '127.0.0.1');
      for (const [a, b] of [
        [down, up],
        [up, down],
      ] as const) {
        f.#sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          f.#sockets.delete(a);
          b.destroy();
        });
        a.pipe(b);
      }
    });
    forwarders.push(f);
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(f)));
  }

  get url(): string {
    const a = this.#server.address();
    return `ws://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
  }

  cut(): void {
    for (const s of this.#sockets) s.destroy();
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

describe('client reconnect', () => {
  it('after a SW_ERR_SHUTTING_DOWN reply nothing more goes to the draining replica: the episode is lost and new calls wait for the next one', async () => {
    const fakeA = new FakeProgressModel();
    const a = await serve({ 'limits.shutdownGraceMs': 3000, 'limits.drainQuietMs': 200 }, fakeA);
    const port = a.address.port;
    const client = await open(a.url, { reconnect: QUICK });
    await client.hello(HELLO);
    await client.reset();
    const frames = await jpegFrames();
    await client.step(frames);
    fakeA.delayMs = 30;
    const inFlight = client.step(frames, { reward: 0 });
    await waitFor(() => a.stats().inFlight === 1);
    const drained = a.shutdown();
    // Sent during the drain: the replica answers it SW_ERR_SHUTTING_DOWN and keeps the socket open for drainQuietMs.
    const refused = client.step(frames, { reward: 0 });
    expect((await inFlight).step).toBe(1);
    await expectCode(refused, 'SW_ERR_SHUTTING_DOWN');
    await expectCode(client.step(frames, { reward: 0 }), 'SW_ERR_EPISODE_LOST');
    const reset = client.reset(); // waits for the next replica
    await drained;
    expect(a.metrics.errors.get({ code: 'SW_ERR_SHUTTING_DOWN' })).toBe(1); // only the refused step reached A
    const fakeB = new FakeProgressModel();
    await serve({ port }, fakeB);
    expect((await reset).type).toBe('episode');
    expect((await client.step(frames)).step).toBe(0);
    expect(client.reconnects).toBe(1);
  });

  it('a replica drains mid-episode: the pending step rejects, the client reconnects to the replica on its port, the episode is lost until reset()', async () => {
    const fakeA = new FakeProgressModel();
    const a = await serve({ 'limits.shutdownGraceMs': 20 }, fakeA);
    const port = a.address.port;
    const readies: ReadyReply[] = [];
    const next: { b?: StagewardServer } = {}; // B, once it listens
    let sessionsOnB = -1;
    const disconnects: string[] = [];
    const client = await open(a.url, {
      reconnect: QUICK,
      onDisconnect: (err) => disconnects.push(`${err.code} reconnecting=${client.reconnecting} pending=${client.pending}`),
      onReconnect: (ready) => {
        readies.push(ready);
        sessionsOnB = next.b?.stats().sessions ?? -1;
      },
    });
    const first = await client.hello(HELLO);
    expect(client.ready).toBe(first);
    const episodeA = await client.reset();
    const frames = await jpegFrames();
    expect((await client.step(frames)).step).toBe(0);

    fakeA.delayMs = 300; // the next step is still in the model when the grace ends
    const pending = client.step(frames, { reward: 0 });
    await waitFor(() => a.stats().inFlight === 1);
    const drained = a.shutdown();
    const lost = await rejection(pending);
    expect(isStagewardError(lost, 'SW_ERR_SHUTTING_DOWN')).toBe(true); // the drain's code
    await waitFor(() => client.reconnecting); // after the close frame (1001)
    await drained;
    // The hook saw the close once, as the reconnect began and after the pending step was rejected.
    expect(disconnects).toEqual(['SW_ERR_SHUTTING_DOWN reconnecting=true pending=0']);

    const fakeB = new FakeProgressModel();
    next.b = await serve({ port }, fakeB);
    await waitFor(() => readies.length === 1, 4000);
    expect(client.reconnecting).toBe(false);
    expect(client.reconnects).toBe(1);
    expect(sessionsOnB).toBe(1); // the ready came from B
    expect(readies[0]).toMatchObject({ type: 'ready', model: first.model });
    expect(client.ready).toBe(readies[0]);

    // The old episode's state is gone: step and end refuse until reset, and nothing reaches B.
    await expectCode(client.step(frames, { reward: 0 }), 'SW_ERR_EPISODE_LOST', 'reset()');
    await expectCode(client.end(), 'SW_ERR_EPISODE_LOST');
    expect(fakeB.calls).toHaveLength(0);

    const episodeB = await client.reset();
    expect(episodeB.type).toBe('episode');
    const r0 = await client.step(frames);
    expect(r0).toMatchObject({ type: 'reward', step: 0, episode: episodeB.episode, shaped: 0 });
    expect((await client.step(frames, { reward: 0 })).step).toBe(1);
    expect((await client.end()).steps).toBe(2);
    expect(episodeA.type).toBe('episode');
  });

  it('a dropped socket (1006): pipelined steps reject with SW_ERR_CONNECTION_CLOSED; calls made while reconnecting wait and go out in order', async () => {
    const fake = new FakeProgressModel();
    const server = await serve({}, fake);
    const fwd = await Forwarder.start(server.address.port);
    const client = await open(fwd.url, { reconnect: { attempts: 3, backoffMs: 100, jitter: 0 } });
    await client.hello(HELLO);
    await client.reset();
    const frames = await jpegFrames();
    fake.delayMs = 200;
    const steps = [0, 1, 2].map(() => client.step(frames));
    await waitFor(() => server.stats().inFlight >= 1);
    fwd.cut();
    for (const s of steps) await expectCode(s, 'SW_ERR_CONNECTION_CLOSED', '1006');
    expect(client.reconnecting).toBe(true);
    await waitFor(() => server.stats().sessions === 0);

    fake.delayMs = 0;
    const calls = [client.reset(), client.step(frames), client.step(frames, { reward: 0 })] as const;
    expect(client.pending).toBe(0); // waiting, not sent
    const [episode, r0, r1] = await Promise.all(calls);
    expect(episode.type).toBe('episode');
    expect([r0.step, r1.step]).toEqual([0, 1]);
    expect(r1.seq).toBe(r0.seq + 1);
    expect(client.reconnects).toBe(1);
    expect(fwd.accepted).toBe(2);
  });

  it('close() during the backoff stops the reconnect: waiting calls reject and no socket is opened', async () => {
    const server = await serve();
    const fwd = await Forwarder.start(server.address.port);
    let reconnected = 0;
    const client = await open(fwd.url, { reconnect: { attempts: 5, backoffMs: 10_000, jitter: 0 }, onReconnect: () => reconnected++ });
    await client.hello(HELLO);
    fwd.cut();
    await waitFor(() => client.reconnecting);
    const waiting = client.reset();
    const t0 = Date.now();
    await client.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    await expectCode(waiting, 'SW_ERR_CONNECTION_CLOSED', 'closed');
    await expectCode(client.reset(), 'SW_ERR_CONNECTION_CLOSED');
    expect(client.reconnecting).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(fwd.accepted).toBe(1);
    expect(reconnected).toBe(0);
  });

  it('when every attempt fails, calls that waited reject with the last connection error', async () => {
    const server = await serve();
    const client = await open(server.url, { reconnect: { attempts: 3, backoffMs: 10, jitter: 0 } });
    await client.hello(HELLO);
    await server.shutdown(); // the port stays closed: every attempt is refused
    await waitFor(() => client.reconnecting);
    const t0 = Date.now();
    await expectCode(client.reset(), 'SW_ERR_CONNECT', 'could not open');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(client.reconnecting).toBe(false);
    expect(client.reconnects).toBe(0);
    await expectCode(client.step(await jpegFrames()), 'SW_ERR_CONNECT');
  });

  it('a refused key does not reconnect: neither a first hello refused (4401) nor a re-sent hello the next replica refuses', async () => {
    const guarded = await serve({ apiKeys: [KEY] });
    const wrong = await open(guarded.url, { apiKey: 'wrong-key-0123456789', apiKeyIn: 'hello', reconnect: QUICK });
    await expectCode(wrong.hello(HELLO), 'SW_ERR_AUTH');
    await waitFor(() => !wrong.reconnecting && wrong.pending === 0);
    await expectCode(wrong.reset(), 'SW_ERR_AUTH');

    // Open replica A, then B on its port wants a key the client does not have: one try, then final.
    const a = await serve({ 'limits.shutdownGraceMs': 20 });
    const port = a.address.port;
    const client = await open(a.url, { reconnect: QUICK });
    await client.hello(HELLO);
    await a.shutdown();
    const b = await serve({ port, apiKeys: [KEY] });
    const waited = client.reset();
    await expectCode(waited, 'SW_ERR_AUTH');
    expect(client.reconnecting).toBe(false);
    await new Promise((r) => setTimeout(r, 150)); // longer than the next backoffs: no further try
    expect(b.metrics.errors.get({ code: 'SW_ERR_AUTH' })).toBe(1);
    await expectCode(client.step(await jpegFrames()), 'SW_ERR_AUTH');
  });

  it('an idle timeout is final (a reconnect would idle out again), and reconnect is off by default', async () => {
    const idle = await serve({ 'limits.idleTimeoutMs': 100 });
    const client = await open(idle.url, { reconnect: QUICK });
    await client.hello(HELLO);
    await waitFor(() => idle.stats().sessions === 0, 3000);
    await expectCode(client.reset(), 'SW_ERR_IDLE_TIMEOUT');
    expect(client.reconnecting).toBe(false);

    const server = await serve();
    const fwd = await Forwarder.start(server.address.port);
    const plain = await open(fwd.url);
    await plain.hello(HELLO);
    await plain.reset();
    fwd.cut();
    await waitFor(() => server.stats().sessions === 0);
    await expectCode(plain.step(await jpegFrames()), 'SW_ERR_CONNECTION_CLOSED', '1006');
    expect(plain.reconnecting).toBe(false);
    expect(fwd.accepted).toBe(1);
  });

  it('refuses reconnect settings out of range', () => {
    expect(() => StagewardClient.connect('ws://127.0.0.1:1', { reconnect: { attempts: -1 } })).toThrow(RangeError);
    expect(() => StagewardClient.connect('ws://127.0.0.1:1', { reconnect: { jitter: 2 } })).toThrow(RangeError);
  });
});
