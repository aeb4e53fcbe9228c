// The connection's reply bookkeeping against a scripted socket, where what the client has not read
// can be set exactly: a client that leaves too many reply bytes unread is cut off, and a connection
// closed by an error answers every message still waiting, in order, with that error; a connection's
// burst of messages does not hold back another connection's message.

import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import { describe, expect, it } from 'vitest';
import { StagewardError } from '../../core/errors.ts';
import { Connection, type Protocol } from '../../server/connection.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import { testConfig, waitFor } from './helpers.ts';

/** A socket whose sends are flushed only when `flush()` is called; `bufferedAmount` is what is unflushed. */
class ScriptedSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  isPaused = false;
  bufferedAmount = 0;
  sent: { data: string; cb?: () => void }[] = [];
  closedWith: { code: number; reason: string } | undefined;

  send(data: Buffer | string, _opts: unknown, cb?: () => void): void {
    const text = typeof data === 'string' ? data : data.toString('latin1');
    this.sent.push({ data: text, cb });
    this.bufferedAmount += text.length;
  }
  flush(): void {
    for (const s of this.sent.splice(0)) s.cb?.();
    this.bufferedAmount = 0;
  }
  pause(): void {
    this.isPaused = true;
  }
  resume(): void {
    this.isPaused = false;
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }
  terminate(): void {
    this.emit('close');
  }
  receive(text: string): void {
    this.emit('message', Buffer.from(text), false);
  }
}

/** Replies to every message with `size` bytes after `delayMs`, or fails it when the message says so. */
function protocol(size: number, delayMs = 0): Protocol {
  return {
    endpoint: 'native',
    awaitingHello: false,
    greeting: () => undefined,
    handle: async (m) => {
      await new Promise((r) => setTimeout(r, delayMs));
      if ((m as { fail?: boolean }).fail) throw new StagewardError('SW_ERR_INFERENCE', 'fake inference failure');
      return { type: 'reward', pad: 'p'.repeat(size) };
    },
    errorFrame: (err, seq) => ({ data: JSON.stringify({ type: 'error', seq, code: err.code }), kind: 'text' }),
    dispose: () => {},
  };
}

function connection(ws: ScriptedSocket, p: Protocol, limits: Record<string, number>) {
  const config = testConfig(Object.fromEntries(Object.entries(limits).map(([k, v]) => [`limits.${k}`, v])));
  const metrics = new ServerMetrics({
    model: { name: 'm', version: '1' },
    replica: 'r1',
    sessions: () => [],
    inFlight: () => 0,
    queueDepth: () => ({}),
  });
  return { conn: new Connection(ws as unknown as WebSocket, p, { limits: config.limits, metrics, log: () => {} }), metrics };
}

describe('Connection', () => {
  it('closes a client that leaves more than maxQueuedReplyBytes unread (SW_ERR_SLOW_READER, 4429), and not before', async () => {
    const ws = new ScriptedSocket();
    const { metrics } = connection(ws, protocol(20_000), {
      maxQueuedReplyBytes: 65_536,
      maxInFlightSteps: 64,
      maxQueuedMessages: 64,
    });
    for (let i = 0; i < 3; i++) ws.receive(JSON.stringify({ seq: i }));
    await waitFor(() => ws.sent.length === 3);
    expect(ws.closedWith).toBeUndefined(); // 60 kB unread: under the limit
    ws.flush(); // the client reads
    for (let i = 3; i < 10; i++) ws.receive(JSON.stringify({ seq: i }));
    await waitFor(() => ws.closedWith !== undefined);
    expect(ws.closedWith!.code).toBe(4429);
    expect(ws.closedWith!.reason).toMatch(/^SW_ERR_SLOW_READER/);
    expect(ws.sent.length).toBe(4); // 4 x 20 kB > 64 KiB: no reply after the one that crossed it
    expect(metrics.errors.get({ code: 'SW_ERR_SLOW_READER' })).toBe(1);
  });

  it('answers every waiting message with the error that closes the connection, in order', async () => {
    const ws = new ScriptedSocket();
    connection(ws, protocol(10, 20), {});
    ws.receive(JSON.stringify({ seq: 0 }));
    ws.receive(JSON.stringify({ seq: 1, fail: true }));
    ws.receive(JSON.stringify({ seq: 2 }));
    ws.receive(JSON.stringify({ seq: 3 }));
    await waitFor(() => ws.closedWith !== undefined);
    const replies = ws.sent.map((s) => JSON.parse(s.data) as { type: string; code?: string });
    expect(replies.map((r) => r.type)).toEqual(['reward', 'error', 'error', 'error']);
    expect(replies.slice(1).map((r) => r.code)).toEqual(['SW_ERR_INFERENCE', 'SW_ERR_INFERENCE', 'SW_ERR_INFERENCE']);
    expect(ws.closedWith!.code).toBe(1011);
    await new Promise((r) => setTimeout(r, 100)); // the steps that were waiting never answer twice
    expect(ws.sent.length).toBe(4);
  });

  it("answers another connection's message while one connection's burst of 300 is still being worked through", async () => {
    const sends: string[] = [];
    const immediate: Protocol = { ...protocol(0), handle: async () => ({ type: 'reward' }) };
    const flood = new ScriptedSocket();
    const polite = new ScriptedSocket();
    for (const [ws, name] of [
      [flood, 'flood'],
      [polite, 'polite'],
    ] as const) {
      const send = ws.send.bind(ws);
      ws.send = (data, opts, cb) => {
        sends.push(name);
        send(data, opts, cb);
      };
    }
    connection(flood, immediate, { maxInFlightSteps: 1024, maxQueuedMessages: 1024 });
    connection(polite, immediate, {});
    for (let i = 0; i < 300; i++) flood.receive(JSON.stringify({ seq: i }));
    polite.receive(JSON.stringify({ seq: 0 }));
    await waitFor(() => sends.length === 301);
    // Taken in the first turn, beside the flood's first messages: not behind all 300 of them.
    expect(sends.indexOf('polite')).toBeLessThan(40);
    expect(sends.filter((s) => s === 'flood').length).toBe(300);
  });
});
