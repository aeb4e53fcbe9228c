// What the fuzz targets share (test/fuzz/targets/*.ts, run by scripts/fuzz.ts under Jazzer.js):
//
//   - the server's limits, from loadConfig() (configs/default.json), handed on whole;
//   - what counts as a finding: any exception that is not a StagewardError, or a StagewardError with
//     code SW_ERR_INTERNAL, escaping the code under test; or a hang (an async call that does not settle
//     within FUZZ_HANG_MS). Other StagewardErrors are the server's refusals, the expected outcome;
//   - the entry point Jazzer.js calls (`fuzzEntry`): with FUZZ_FINDINGS_DIR set (the runner sets it) an
//     exception finding is written there (input + report), once per distinct signature, and fuzzing goes
//     on; a hang, or any finding without FUZZ_FINDINGS_DIR, is thrown, so Jazzer.js stops on it and
//     libFuzzer writes the input (-artifact_prefix);
//   - the protocol targets' input format: a fuzz input is a sequence of WebSocket messages, each a
//     3-byte header (flags: bit 0 set = a text frame, else binary; then the payload length, uint16 BE) and
//     its payload, and `drive` feeds them to a session the way server/connection.ts does: decodeFrame,
//     handle() in order (awaited), the reply encoded in the request's format, a refusal turned into the
//     protocol's error frame, and the session closed after an error whose close code says so.

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { StagewardError } from '../../core/errors.ts';
import { BatchingProgressModel } from '../../models/batching.ts';
import { RewardEngine } from '../../models/engine.ts';
import { decodeFrame, encodeFrame, type FrameKind } from '../../server/codec.ts';
import { loadConfig, type ServerConfig, type ServerLimits } from '../../server/config.ts';
import type { MessageContext, Protocol } from '../../server/connection.ts';
import { seqOf } from '../../server/messages.ts';
import { ServerMetrics } from '../../server/metrics.ts';
import type { SessionContext } from '../../server/session.ts';
import { FuzzProgressModel } from './fake-model.ts';

/** The server's configuration as `npm start` would load it with no file, env or flags. */
export const CONFIG: ServerConfig = loadConfig();
/** The wire limits, passed whole wherever the server passes them (new fields follow automatically). */
export const LIMITS: ServerLimits = CONFIG.limits;

/** Most messages one protocol input is cut into (the rest of the input is ignored). */
export const MAX_FRAMES = 16;

/** An input that broke the rules: what it hit, where, and the error (or hang) behind it. */
export class FuzzFinding extends Error {
  readonly kind: 'exception' | 'internal' | 'hang';
  readonly where: string;

  constructor(kind: FuzzFinding['kind'], where: string, cause: unknown) {
    const what =
      kind === 'hang'
        ? `did not settle within ${String(cause)} ms`
        : cause instanceof Error
          ? `${cause.name}${cause instanceof StagewardError ? ` ${cause.code}` : ''}: ${cause.message}`
          : `threw a non-Error value: ${safeString(cause)}`;
    super(`${where} ${what}`, { cause });
    this.name = 'FuzzFinding';
    this.kind = kind;
    this.where = where;
  }
}

/** True for what must never escape the server's code: anything but a StagewardError, and SW_ERR_INTERNAL. */
export function isFinding(err: unknown): boolean {
  return !(err instanceof StagewardError) || err.code === 'SW_ERR_INTERNAL';
}

function asFinding(where: string, err: unknown): FuzzFinding {
  if (err instanceof FuzzFinding) return err;
  return new FuzzFinding(err instanceof StagewardError ? 'internal' : 'exception', where, err);
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: StagewardError };

/** Run `fn`: its value, or the refusal it threw; a finding is thrown as a FuzzFinding. */
export function attempt<T>(where: string, fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (isFinding(err)) throw asFinding(where, err);
    return { ok: false, error: err as StagewardError };
  }
}

/** `attempt` for an async call. */
export async function attemptAsync<T>(where: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (isFinding(err)) throw asFinding(where, err);
    return { ok: false, error: err as StagewardError };
  }
}

/** A target's check of one input: returns (or resolves) when the code under test behaved. */
export type Check = (data: Buffer) => void | Promise<void>;

/** Longest an async check may take before it counts as a hang (ms). */
const HANG_MS = positiveEnv('FUZZ_HANG_MS', 3000);
const MAX_RECORDED = 50;
const seen = new Set<string>();

/**
 * The function a target exports as `fuzz` for Jazzer.js. Synchronous checks stay synchronous (no
 * promise per execution); async ones race a hang timer.
 */
export function fuzzEntry(target: string, check: Check): (data: Buffer) => void | Promise<void> {
  let execs = 0;
  let reported = performance.now();
  return (data: Buffer) => {
    // The runner's own count of executions: libFuzzer's final stats can be cut short when the process exits.
    if (++execs % 256 === 0 && performance.now() - reported > 1000) {
      reported = performance.now();
      process.stderr.write(`FUZZ-EXECS ${execs}\n`);
    }
    let result: void | Promise<void>;
    try {
      result = check(data);
    } catch (err) {
      return found(target, data, asFinding('check', err));
    }
    if (result === undefined) return;
    return withHangTimer(result, HANG_MS).then(
      () => undefined,
      (err: unknown) => found(target, data, asFinding('check', err)),
    );
  };
}

/** `p`, or a FuzzFinding of kind hang when it has not settled within `ms`. */
export function withHangTimer<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFinding('hang', 'the check', ms)), ms);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

function found(target: string, data: Buffer, finding: FuzzFinding): void {
  const dir = process.env.FUZZ_FINDINGS_DIR;
  // A hang is thrown even when recording: libFuzzer writes the input and stops. Returning would let
  // the input into the corpus, and every mutation of it would hang again, HANG_MS each.
  if (dir === undefined || dir === '' || finding.kind === 'hang') throw finding;
  const sig = signature(finding);
  if (seen.has(sig) || seen.size >= MAX_RECORDED) return;
  seen.add(sig);
  const sha1 = createHash('sha1').update(data).digest('hex');
  const file = join(dir, `${target}-crash-${sha1}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, data);
  const cause = finding.cause;
  const stack = cause instanceof Error ? (cause.stack ?? String(cause)) : safeString(cause);
  writeFileSync(
    `${file}.txt`,
    [
      `target: ${target}`,
      `finding: ${finding.kind} in ${finding.where}`,
      `signature: ${sig}`,
      `input: ${data.length} bytes, sha1 ${sha1}`,
      `reproduce: npx tsx scripts/fuzz.ts --target ${target} --repro ${file}`,
      '',
      finding.message,
      '',
      stack,
      '',
    ].join('\n'),
  );
  process.stderr.write(
    `FUZZ-FINDING ${JSON.stringify({ target, file, kind: finding.kind, where: finding.where, error: finding.message })}\n`,
  );
}

/** What makes two findings the same bug: their kind, where they surfaced, the error class and the throwing frame. */
function signature(f: FuzzFinding): string {
  const cause = f.cause;
  const where = f.where.replace(/\d+/g, 'N');
  if (!(cause instanceof Error)) return `${f.kind}|${where}|${typeof cause}`;
  const frame = (cause.stack ?? '').split('\n').find((l) => l.trimStart().startsWith('at ')) ?? '';
  const code = cause instanceof StagewardError ? cause.code : '';
  return `${f.kind}|${where}|${cause.name}|${code}|${frame.trim()}`;
}

function safeString(v: unknown): string {
  try {
    return String(v).slice(0, 200);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

function positiveEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

// -- protocol targets ------------------------------------------------------------------------

export interface WireFrame {
  kind: FrameKind;
  data: Buffer;
}

/** Cut a fuzz input into messages (see the header); a short last payload takes what is left. */
export function splitFrames(input: Uint8Array): WireFrame[] {
  const bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const out: WireFrame[] = [];
  let pos = 0;
  while (pos + 3 <= bytes.length && out.length < MAX_FRAMES) {
    const flags = bytes[pos]!;
    const len = bytes.readUInt16BE(pos + 1);
    pos += 3;
    const data = bytes.subarray(pos, Math.min(bytes.length, pos + len));
    pos += data.length;
    out.push({ kind: flags & 1 ? 'text' : 'binary', data });
  }
  return out;
}

/** The inverse of splitFrames (for seeds). */
export function joinFrames(frames: readonly WireFrame[]): Buffer {
  return Buffer.concat(
    frames.flatMap((f) => {
      if (f.data.length > 0xffff) throw new Error(`a seed message of ${f.data.length} bytes does not fit the 16-bit length`);
      const header = Buffer.alloc(3);
      header[0] = f.kind === 'text' ? 1 : 0;
      header.writeUInt16BE(f.data.length, 1);
      return [header, f.data];
    }),
  );
}

/** The engine a session talks to, as the server builds it: batching over the model, the wire's pixel limit. */
export function fuzzEngine(): RewardEngine {
  const model = new BatchingProgressModel(new FuzzProgressModel(), { ...CONFIG.batching });
  return new RewardEngine(model, { limits: { maxImagePixels: LIMITS.maxImagePixels } });
}

function fuzzMetrics(engine: RewardEngine): ServerMetrics {
  return new ServerMetrics({
    model: { name: engine.card.name, version: engine.card.version },
    replica: 'fuzz',
    sessions: () => [],
    inFlight: () => 0,
    queueDepth: () => ({}),
  });
}

/** What a session of either protocol gets from its server, for one fuzz input. */
export function fuzzSession(engine: RewardEngine): SessionContext {
  return { engine, limits: LIMITS, metrics: fuzzMetrics(engine), sessionId: 's1', replica: 'fuzz', promptMap: {}, missingViews: 'refuse' };
}

/** Feed `frames` to `protocol` one at a time, as a connection does (see the header). */
export async function drive(protocol: Protocol, frames: readonly WireFrame[]): Promise<void> {
  attempt('greeting', () => protocol.greeting());
  try {
    for (const [i, frame] of frames.entries()) {
      const receivedAt = performance.now();
      const decoded = attempt(`decodeFrame (message ${i})`, () => decodeFrame(frame.data, frame.kind, LIMITS));
      let refusal: StagewardError | undefined;
      if (decoded.ok) {
        const ctx: MessageContext = { receivedAt, startedAt: performance.now(), kind: frame.kind };
        const reply = await attemptAsync(`handle (message ${i})`, () => protocol.handle(decoded.value, ctx));
        if (reply.ok) attempt(`encodeFrame (reply to message ${i})`, () => encodeFrame(reply.value, frame.kind));
        else refusal = reply.error;
      } else refusal = decoded.error;
      if (refusal !== undefined) {
        const error = refusal;
        const seq = decoded.ok ? seqOf(decoded.value) : undefined;
        attempt(`errorFrame (message ${i})`, () => protocol.errorFrame(error, seq, frame.kind));
        if (error.closeCode !== null) break; // the connection closes
      }
    }
  } finally {
    protocol.dispose();
  }
}
