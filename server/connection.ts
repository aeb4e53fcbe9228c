// One WebSocket connection, whatever its protocol: queues each message as it arrives, decodes it
// and runs the protocol's handler on it in its turn (server/turns.ts: connections take turns, a
// bounded number of messages each, so one client's burst cannot hold the main thread), one at a time
// in arrival order, and sends exactly one reply per message, in order (a reply or an error; nothing
// is dropped while the client can still read).
//
// Backpressure: a message counts as in flight from its arrival until its reply is flushed to the
// socket (ws's send callback). At `maxInFlightSteps` the socket is paused (no more reads, so TCP stops
// acknowledging and the client's sends block); it resumes as replies drain. Messages that were
// already buffered still arrive; past `maxQueuedMessages` each is answered SW_ERR_BUSY at once. A
// client that leaves more than `maxQueuedReplyBytes` of replies unread is cut off (SW_ERR_SLOW_READER).
// Deadlines: a native connection must complete its hello within `helloTimeoutMs` of opening, however
// much else it sends; after that, no message and no flushed reply for `idleTimeoutMs` closes it
// (SW_ERR_IDLE_TIMEOUT). Errors with a close code end the connection after their error reply; messages
// still waiting then are answered with the same error, so none goes unanswered. Anything that is not
// a StagewardError is logged and answered SW_ERR_INTERNAL.

import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import { StagewardError, type ErrorCode } from '../core/errors.ts';
import { decodeFrame, encodeFrame, type FrameKind } from './codec.ts';
import type { ServerLimits } from './config.ts';
import { seqOf } from './messages.ts';
import type { ServerMetrics } from './metrics.ts';
import type { Decoded } from './msgpack.ts';
import { messageTurns, type TurnTaker } from './turns.ts';

export type Endpoint = 'native' | 'openpi';

export interface MessageContext {
  /** performance.now() when the message arrived. */
  receivedAt: number;
  /** performance.now() when its handler started (after earlier messages were answered). */
  startedAt: number;
  kind: FrameKind;
}

/** What a protocol (native or openpi) plugs into a connection. */
export interface Protocol {
  readonly endpoint: Endpoint;
  /** Sent once the connection is open (openpi's metadata map). */
  greeting(): { data: Buffer | string; kind: FrameKind } | undefined;
  /** True while the connection must still introduce itself (hello timeout applies). */
  readonly awaitingHello: boolean;
  /** Handle one decoded message; resolve to the reply, or throw a StagewardError. */
  handle(message: Decoded, ctx: MessageContext): Promise<object>;
  /** The frame that carries an error reply to a message of `kind`. */
  errorFrame(err: StagewardError, seq: number | undefined, kind: FrameKind): { data: Buffer | string; kind: FrameKind };
  /** The connection is gone: drop the session's state. */
  dispose(): void;
}

export interface ConnectionContext {
  limits: ServerLimits;
  metrics: ServerMetrics;
  log: (line: string) => void;
  /** Every error reply or error close of this connection, by code (the dashboard's per-session counts). */
  onError?: (code: ErrorCode) => void;
  /**
   * The connection's TCP socket: replies sent in one tick are corked into one write (a burst of small
   * replies is then one system call, not one per reply).
   */
  transport?: { cork(): void; uncork(): void };
}

/** Close reason: the code and as much of the message as fits WebSocket's 123-byte limit. */
export function closeReason(err: StagewardError): string {
  const text = `${err.code}: ${err.message}`;
  let out = text;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

let nextId = 1;

/**
 * A received message waiting for its turn: its payload, to be decoded then, or (past
 * maxQueuedMessages) only its seq, for the SW_ERR_BUSY reply it gets in its turn.
 */
type Inbound =
  | { data: Buffer; kind: FrameKind; receivedAt: number; draining: boolean }
  | { data: null; kind: FrameKind; receivedAt: number; seq: number | undefined };

/** A received message whose reply has not been handed to the socket yet. */
interface Unanswered {
  kind: FrameKind;
  seq: number | undefined;
  /** Its payload is kept for processing (false for a refusal). */
  holds: boolean;
  answered: boolean;
}

export class Connection implements TurnTaker {
  readonly id = nextId++;
  readonly protocol: Protocol;
  readonly #ws: WebSocket;
  readonly #ctx: ConnectionContext;
  /** Messages received and not yet answered (reply flushed), from their arrival. */
  #pending = 0;
  /** Of those, the ones whose payload is kept for processing (the rest are refusals), from their arrival. */
  #held = 0;
  #chain: Promise<void> = Promise.resolve();
  /** Received messages not yet decoded (waiting for a turn), in arrival order. */
  #inbound: Inbound[] = [];
  /** Decoded messages not yet answered, in arrival order. */
  #unanswered: Unanswered[] = [];
  #closed = false;
  #corked = false;
  #closing = false;
  #draining = false;
  /** When the last message arrived or the last reply was flushed (performance.now ms): a peer's next message follows a reply. */
  #lastActivityAt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Armed at opening while the protocol waits for a hello; never reset by messages. */
  #helloTimer: NodeJS.Timeout | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  #onGone: (() => void)[] = [];

  constructor(ws: WebSocket, protocol: Protocol, ctx: ConnectionContext) {
    this.#ws = ws;
    this.protocol = protocol;
    this.#ctx = ctx;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#receive(data, isBinary ? 'binary' : 'text'));
    ws.on('error', (err: Error & { code?: string }) => {
      // ws closes the socket itself (1009 for an oversize message, 1002/1007 for framing errors).
      // 1008 when a message comes in more fragments than ws takes (WS_ERR_TOO_MANY_BUFFERED_PARTS).
      const code: ErrorCode =
        err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
          ? 'SW_ERR_MESSAGE_TOO_LARGE'
          : err.code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS'
            ? 'SW_ERR_LIMIT'
            : 'SW_ERR_PROTOCOL';
      this.#countError(code);
    });
    ws.on('close', () => this.#gone());
    const hello = protocol.greeting();
    if (hello) ws.send(hello.data, { binary: hello.kind === 'binary' });
    if (protocol.awaitingHello) {
      const ms = ctx.limits.helloTimeoutMs;
      this.#helloTimer = setTimeout(() => {
        this.#helloTimer = undefined;
        if (this.protocol.awaitingHello) {
          this.#timeout(new StagewardError('SW_ERR_IDLE_TIMEOUT', `no valid hello within helloTimeoutMs (${ms} ms) of opening`));
        }
      }, ms);
    }
    this.#arm();
  }

  /** Messages received whose payload waits for processing or whose reply is not yet flushed. */
  get inFlight(): number {
    return this.#held;
  }

  get closed(): boolean {
    return this.#closed;
  }

  onGone(fn: () => void): void {
    this.#onGone.push(fn);
  }

  #receive(data: Buffer, kind: FrameKind): void {
    if (this.#closing) return;
    const receivedAt = performance.now();
    this.#lastActivityAt = receivedAt;
    this.#arm();
    this.#pending++;
    if (this.#held < this.#ctx.limits.maxQueuedMessages) {
      this.#held++;
      this.#inbound.push({ data, kind, receivedAt, draining: this.#draining });
    } else {
      // Refused without keeping its payload: only its place in the reply order is held.
      this.#inbound.push({ data: null, kind, receivedAt, seq: seqOf(this.#decode(data, kind).decoded) });
    }
    this.#pauseIfFull();
    if (this.#inbound.length === 1) messageTurns.request(this);
  }

  /** This connection's turn: decode the oldest waiting message and queue its handler. */
  takeTurn(): boolean {
    const next = this.#inbound.shift();
    if (next !== undefined && !this.#closing) this.#admit(next);
    return this.#inbound.length > 0 && !this.#closing;
  }

  /** Every message still waiting for a turn, admitted now (before a close answers them all, or a drain). */
  #admitAll(): void {
    messageTurns.cancel(this);
    for (let next = this.#inbound.shift(); next !== undefined; next = this.#inbound.shift()) this.#admit(next);
  }

  #pauseIfFull(): void {
    if (this.#pending >= this.#ctx.limits.maxInFlightSteps && !this.#ws.isPaused) this.#ws.pause();
  }

  #decode(data: Buffer, kind: FrameKind): { decoded: Decoded; failure?: unknown } {
    const start = performance.now();
    try {
      return { decoded: decodeFrame(data, kind, this.#ctx.limits) };
    } catch (failure) {
      return { decoded: null, failure };
    } finally {
      this.#ctx.metrics.observeDecode((performance.now() - start) / 1000, kind);
    }
  }

  #admit(next: Inbound): void {
    const { kind, receivedAt } = next;
    if (next.data === null) {
      const limit = this.#ctx.limits.maxQueuedMessages;
      this.#enqueue(kind, receivedAt, next.seq, false, () => {
        throw new StagewardError(
          'SW_ERR_BUSY',
          `more than maxQueuedMessages (${limit}) messages wait for replies; wait for replies before sending more`,
        );
      });
      return;
    }
    const { decoded, failure } = this.#decode(next.data, kind);
    const draining = next.draining;
    this.#enqueue(kind, receivedAt, seqOf(decoded), true, (ctx) => {
      if (draining) throw new StagewardError('SW_ERR_SHUTTING_DOWN', 'the server is shutting down and takes no new messages');
      if (failure !== undefined) throw failure;
      return this.protocol.handle(decoded, ctx);
    });
  }

  #enqueue(
    kind: FrameKind,
    receivedAt: number,
    seq: number | undefined,
    holds: boolean,
    run: (ctx: MessageContext) => Promise<object>,
  ): void {
    const entry: Unanswered = { kind, seq, holds, answered: false };
    this.#unanswered.push(entry);
    this.#chain = this.#chain.then(async () => {
      if (entry.answered || this.#closing) return;
      const ctx: MessageContext = { receivedAt, startedAt: performance.now(), kind };
      try {
        const reply = await run(ctx);
        if (entry.answered || this.#closing) return;
        this.#answer(entry, encodeFrame(reply, kind), kind);
      } catch (err) {
        if (entry.answered || this.#closing) return;
        this.#fail(err, entry);
      }
    });
  }

  #countError(code: ErrorCode): void {
    this.#ctx.metrics.errors.inc({ code });
    this.#ctx.onError?.(code);
  }

  /** Reply with an error; close the connection when the error says so. */
  #fail(err: unknown, entry: Unanswered): void {
    let e: StagewardError;
    if (err instanceof StagewardError) e = err;
    else {
      this.#ctx.log(
        `stageward: internal error on connection ${this.id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
      );
      e = new StagewardError('SW_ERR_INTERNAL', 'internal server error (logged on the server)');
    }
    this.#countError(e.code);
    const frame = this.protocol.errorFrame(e, entry.seq, entry.kind);
    this.#answer(entry, frame.data, frame.kind);
    if (e.closeCode !== null) this.#closeWith(e);
  }

  /** Hand a message's one reply to the socket. */
  #answer(entry: Unanswered, data: Buffer | string, kind: FrameKind): void {
    entry.answered = true;
    const at = this.#unanswered.indexOf(entry);
    if (at >= 0) this.#unanswered.splice(at, 1);
    this.#lastActivityAt = performance.now();
    this.#cork();
    this.#ws.send(data, { binary: kind === 'binary' }, () => {
      this.#lastActivityAt = performance.now();
      this.#settle(entry.holds);
      this.#arm();
    });
    if (this.#ws.bufferedAmount > this.#ctx.limits.maxQueuedReplyBytes && !this.#closing) {
      const limit = this.#ctx.limits.maxQueuedReplyBytes;
      const err = new StagewardError('SW_ERR_SLOW_READER', `more than maxQueuedReplyBytes (${limit}) of replies are unread`);
      this.#countError(err.code);
      // The client is not reading: no more replies for it, only the close.
      this.close(err.closeCode!, closeReason(err));
    }
  }

  /** Hold this tick's writes until its end: the replies of a turn leave in one write. */
  #cork(): void {
    const transport = this.#ctx.transport;
    if (this.#corked || transport === undefined) return;
    this.#corked = true;
    transport.cork();
    process.nextTick(() => {
      this.#corked = false;
      transport.uncork();
    });
  }

  /** One message answered (or abandoned): release its slot, read again when below the limit. */
  #settle(holds: boolean): void {
    this.#pending--;
    if (holds) this.#held--;
    if (this.#pending < this.#ctx.limits.maxInFlightSteps && this.#ws.isPaused && !this.#closing) this.#ws.resume();
  }

  /**
   * Close because of `err`: every message still waiting gets `err` as its reply (in order, so none
   * goes unanswered), then the close frame with err's code.
   */
  #closeWith(err: StagewardError): void {
    if (this.#closing) return;
    this.#admitAll();
    for (const entry of [...this.#unanswered]) {
      const frame = this.protocol.errorFrame(err, entry.seq, entry.kind);
      this.#answer(entry, frame.data, frame.kind);
      if (this.#closing) return; // cut off as a slow reader
    }
    this.close(err.closeCode ?? 1011, closeReason(err));
  }

  /** Send an error that answers no message, then close (auth, capacity, idle). */
  reject(err: StagewardError, kind: FrameKind): void {
    this.#countError(err.code);
    const frame = this.protocol.errorFrame(err, undefined, kind);
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(frame.data, { binary: frame.kind === 'binary' });
    this.close(err.closeCode ?? 1011, closeReason(err));
  }

  /** The idle deadline, restarted by each message and each flushed reply; the hello deadline runs until hello. */
  #arm(): void {
    if (this.#closing) return;
    if (this.protocol.awaitingHello) return;
    if (this.#helloTimer !== undefined) {
      clearTimeout(this.#helloTimer);
      this.#helloTimer = undefined;
    }
    const ms = this.#ctx.limits.idleTimeoutMs;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timeout(new StagewardError('SW_ERR_IDLE_TIMEOUT', `no message for idleTimeoutMs (${ms} ms)`));
    }, ms);
  }

  /** A deadline passed: answer what waits with `err` (or send it alone), then close. */
  #timeout(err: StagewardError): void {
    this.#admitAll();
    if (this.#unanswered.length === 0) this.reject(err, 'binary');
    else {
      this.#countError(err.code);
      this.#closeWith(err);
    }
  }

  close(code: number, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#helloTimer);
    this.#timer = undefined;
    this.#helloTimer = undefined;
    if (this.#ws.isPaused) this.#ws.resume(); // read the peer's close frame
    this.#ws.close(code, reason);
    // A peer that never answers the close handshake is cut off.
    this.#killTimer = setTimeout(() => this.#ws.terminate(), 2000);
  }

  /**
   * Shutdown: answer every message received so far within `graceMs`; messages that arrive during the
   * drain, and those still unanswered when the grace ends, get SW_ERR_SHUTTING_DOWN. Then wait until
   * the connection has been quiet (no message in, no reply out) for `quietMs`, within the grace,
   * answering what still comes, so a request sent on the last reply is answered rather than cut by
   * the close; then close with 1001. Resolves once the socket is closed.
   */
  async drain(graceMs: number, quietMs = 0): Promise<void> {
    this.#draining = true;
    this.#admitAll();
    if (!this.#closed) {
      const deadline = performance.now() + graceMs;
      const left = () => deadline - performance.now();
      await this.#answeredWithin(left());
      for (;;) {
        const quietFor = performance.now() - this.#lastActivityAt;
        if (this.#closed || quietFor >= quietMs || left() <= 0) break;
        await sleep(Math.min(quietMs - quietFor, left()));
        this.#admitAll();
        await this.#answeredWithin(left());
      }
      // Let the last replies reach the socket before the close frame.
      await new Promise<void>((r) => setImmediate(r));
      this.#closeWith(new StagewardError('SW_ERR_SHUTTING_DOWN', 'the server is shutting down; this message was not processed in time'));
    }
    if (!this.#closed) await new Promise<void>((r) => this.#onGone.push(r));
  }

  /** Until every message received so far is answered, or `ms` pass. */
  async #answeredWithin(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#chain, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
    clearTimeout(timer);
  }

  #gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#killTimer);
    this.#timer = undefined;
    this.#helloTimer = undefined;
    this.#killTimer = undefined;
    messageTurns.cancel(this);
    this.#inbound = [];
    this.protocol.dispose();
    for (const fn of this.#onGone) fn();
    this.#onGone = [];
  }
}
