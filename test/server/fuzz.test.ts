// Fuzzing the WebSocket endpoints with malformed messages (seeded, bounded): every message gets its
// error code in order, the session survives what server/PROTOCOL.md says it survives, and memory stays flat.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../core/errors.ts';
import { mulberry32 } from '../../core/random.ts';
import { encodeMsgpack } from '../../server/msgpack.ts';
import type { StagewardServer } from '../../server/server.ts';
import { FakeProgressModel, HELLO, jpeg, jpegFrames, Peer, startTestServer, waitFor } from './helpers.ts';

setFlagsFromString('--expose_gc');
const gc = runInNewContext('gc') as () => void;

let server: StagewardServer;
let frames: Record<string, Buffer>;
beforeAll(async () => {
  server = await startTestServer({ 'limits.maxPayloadBytes': 256 * 1024, 'limits.maxImagePixels': 256 * 256 }, new FakeProgressModel());
  frames = await jpegFrames();
});
afterAll(() => server.shutdown());

const rand = mulberry32(20240607);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
const b = (s: string) => Buffer.from(s);
const ext = new Packr({ useRecords: true, moreTypes: true });

function nd(dtype: unknown, shape: unknown, data: Uint8Array): Map<Buffer, unknown> {
  return new Map<Buffer, unknown>([
    [b('__ndarray__'), true],
    [b('data'), data],
    [b('dtype'), dtype],
    [b('shape'), shape],
  ]);
}

interface Case {
  data: Buffer | string;
  expect: ErrorCode[];
  /** Tag for the failure message. */
  kind: string;
}

type Gen = (seq: number) => Case;

/** Generators of malformed step-phase messages (the session has had hello and reset). */
function generators(valid: Buffer): Gen[] {
  const step = (seq: number, extra: Record<string, unknown>) => ({ type: 'step', seq, frames, ...extra });
  const bin = (kind: string, expect: ErrorCode[], msg: unknown): Case => ({ kind, expect, data: encodeMsgpack(msg) });
  return [
    () => ({ kind: 'random bytes', expect: ['SW_ERR_PROTOCOL', 'SW_ERR_LIMIT'], data: randomBytes(1 + int(300)) }),
    () => ({ kind: 'truncated', expect: ['SW_ERR_PROTOCOL'], data: valid.subarray(0, int(valid.length - 1)) }),
    () => ({ kind: 'trailing', expect: ['SW_ERR_PROTOCOL'], data: Buffer.concat([valid, randomBytes(1 + int(8))]) }),
    () => ({ kind: 'bit flip', expect: ['SW_ERR_PROTOCOL', 'SW_ERR_LIMIT'], data: flipHeader(valid) }),
    () => ({
      kind: 'ext type',
      expect: ['SW_ERR_PROTOCOL'],
      data: ext.pack({ type: 'step', frames: { front: new Float32Array(4) }, when: new Date() }),
    }),
    () => ({
      kind: 'huge length',
      expect: ['SW_ERR_PROTOCOL'],
      data: Buffer.from([pick([0xdd, 0xdf, 0xc6, 0xdb]), 0xff, 0xff, 0xff, 0xf0, 1, 2, 3]),
    }),
    () => ({
      kind: 'json garbage',
      expect: ['SW_ERR_PROTOCOL', 'SW_ERR_LIMIT'],
      data: pick(['{', '[1,', 'null', '"step"', '{"type":5}', '[['.repeat(40), '{"type":"step","frames":{"front":"%%%"}}']),
    }),
    () => bin('not a map', ['SW_ERR_PROTOCOL'], pick([1, 'step', [1, 2], null, true, 2.5])),
    (seq) => bin('wrong type field', ['SW_ERR_PROTOCOL'], { type: pick([5, 'sstep', null, ['step']]), seq }),
    (seq) => bin('unknown field', ['SW_ERR_PROTOCOL'], step(seq, { [`x${int(100)}`]: 1 })),
    (seq) => bin('bad seq', ['SW_ERR_PROTOCOL'], step(seq, { seq: pick(['1', -1, 1.5, [1]]) })),
    (seq) => bin('bad frames', ['SW_ERR_VIEW_MISSING', 'SW_ERR_PROTOCOL'], step(seq, { frames: pick([5, 'x', [], null, true]) })),
    (seq) =>
      bin('bad image value', ['SW_ERR_IMAGE_DECODE'], step(seq, { frames: { ...frames, front: pick([5, true, [1, 2], { a: 1 }]) } })),
    (seq) => bin('missing view', ['SW_ERR_VIEW_MISSING'], step(seq, { frames: { front: frames.front } })),
    (seq) => bin('unknown view', ['SW_ERR_VIEW_UNKNOWN'], step(seq, { frames: { ...frames, [`cam${int(9)}`]: frames.front } })),
    (seq) =>
      bin(
        'too many views',
        ['SW_ERR_LIMIT'],
        step(seq, { frames: Object.fromEntries([...Array(9).keys()].map((i) => [`v${i}`, frames.front])) }),
      ),
    (seq) => bin('non-finite reward', ['SW_ERR_BAD_VALUE'], step(seq, { reward: pick([NaN, Infinity, -Infinity, 'one', [1]]) })),
    (seq) => bin('bad flag', ['SW_ERR_BAD_VALUE'], step(seq, { [pick(['terminated', 'truncated'])]: pick([1, 'yes', 0.5, [true]]) })),
    (seq) =>
      bin(
        'bad dtype',
        ['SW_ERR_NDARRAY'],
        step(seq, { frames: { ...frames, side: nd(pick(['>u1', '|O', '<c8', 'uint8', 7, null]), [4, 4, 3], new Uint8Array(48)) } }),
      ),
    (seq) =>
      bin(
        'bad shape',
        ['SW_ERR_NDARRAY'],
        step(seq, {
          frames: {
            ...frames,
            side: nd(
              '|u1',
              pick([[-4, 4, 3], [2 ** 31, 2 ** 31, 3], [4.5, 4, 3], 'x', [4, 4, 3, 1, 1, 1, 1, 1, 1], [4, 4, 3]]),
              new Uint8Array(int(47)),
            ),
          },
        }),
      ),
    (seq) =>
      bin(
        'bad image layout',
        ['SW_ERR_NDARRAY', 'SW_ERR_IMAGE_SIZE'],
        step(seq, {
          frames: {
            ...frames,
            side: pick([
              nd('|u1', [5, 6, 7], new Uint8Array(210)),
              nd('<i4', [2, 2, 3], new Uint8Array(48)),
              nd('<f4', [1, 1, 3], new Uint8Array(new Float32Array([0, 2, 0]).buffer)),
              nd('|u1', [48], new Uint8Array(48)),
              nd('|u1', [0, 4, 3], new Uint8Array(0)),
            ]),
          },
        }),
      ),
    (seq) =>
      bin(
        'image over maxImagePixels',
        ['SW_ERR_IMAGE_SIZE'],
        step(seq, { frames: { ...frames, side: nd('|u1', [300, 300], new Uint8Array(90_000)) } }),
      ),
    (seq) => bin('JPEG bomb header', ['SW_ERR_IMAGE_SIZE'], step(seq, { frames: { ...frames, front: jpegBomb(frames.front!) } })),
    (seq) =>
      bin(
        'bad numpy map',
        ['SW_ERR_NDARRAY'],
        step(seq, {
          reward: new Map<Buffer, unknown>([
            [b('__npgeneric__'), true],
            [b('data'), pick(['x', null])],
            [b('dtype'), '<f8'],
          ]),
        }),
      ),
    (seq) =>
      bin(
        'corrupt JPEG',
        ['SW_ERR_IMAGE_DECODE', 'SW_ERR_IMAGE_SIZE'],
        step(seq, { frames: { ...frames, wrist: corruptJpeg(frames.wrist!) } }),
      ),
    (seq) => bin('not an image', ['SW_ERR_IMAGE_DECODE'], step(seq, { frames: { ...frames, wrist: randomBytes(1 + int(64)) } })),
    () => bin('hello again', ['SW_ERR_PROTOCOL'], HELLO),
  ];
}

/** One bit flipped in the map header or the `type` entry (83 a4 "type" a4 "step"). */
function flipHeader(valid: Buffer): Buffer {
  const out = Buffer.from(valid);
  const i = int(10);
  out[i] = out[i]! ^ (1 << int(8));
  return out;
}

/** A valid JPEG whose frame header (SOF0) declares 60000 x 60000 pixels. */
function jpegBomb(img: Buffer): Buffer {
  const out = Buffer.from(img);
  for (let i = 2; i < out.length - 8; i++) {
    if (out[i] === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2)) {
      out.writeUInt16BE(60000, i + 5);
      out.writeUInt16BE(60000, i + 7);
      return out;
    }
  }
  throw new Error('no SOF marker');
}

function corruptJpeg(img: Buffer): Buffer {
  const out = Buffer.from(img);
  if (rand() < 0.5) return out.subarray(0, 3 + int(out.length / 2)); // truncated
  for (let k = 0; k < 20; k++) out[3 + int(out.length - 3)] = int(256);
  out[2] = 0xff;
  return out;
}

async function sessionPeer(): Promise<Peer> {
  const peer = await Peer.open(`${server.url}/v1/stream`);
  expect((await peer.request(HELLO)).type).toBe('ready');
  expect((await peer.request({ type: 'reset' })).type).toBe('episode');
  return peer;
}

describe('fuzzing the native endpoint', () => {
  it('answers thousands of malformed messages with their codes, in order, and the session keeps working', async () => {
    const peer = await sessionPeer();
    try {
      await fuzzSession(peer);
    } finally {
      await peer.close();
    }
  });

  async function fuzzSession(peer: Peer): Promise<void> {
    const valid = encodeMsgpack({ type: 'step', seq: 0, frames });
    const gens = generators(valid);
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    let goodSteps = 0;
    const rounds = 60;
    const perRound = 50; // under maxQueuedMessages (64): nothing is refused as busy
    const seen = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      const sent: Case[] = [];
      for (let i = 0; i < perRound; i++) {
        const c = pick(gens)(round * perRound + i);
        sent.push(c);
        peer.sendRaw(c.data);
      }
      peer.send({ type: 'step', seq: 999_999, frames });
      for (const c of sent) {
        const r = await peer.reply();
        if (r?.type !== 'error' || !c.expect.includes(r.code)) {
          throw new Error(`${c.kind}: expected one of ${c.expect.join(', ')}, got ${JSON.stringify(r).slice(0, 300)}`);
        }
        expect(JSON.stringify(r)).not.toMatch(/\n\s+at /); // never a stack trace
        seen.set(c.kind, (seen.get(c.kind) ?? 0) + 1);
      }
      const ok = await peer.reply();
      expect(ok).toMatchObject({ type: 'reward', seq: 999_999, step: goodSteps });
      goodSteps++;
    }
    expect([...seen.values()].reduce((a, n) => a + n, 0)).toBe(rounds * perRound);
    expect(seen.size).toBe(gens.length); // every category was exercised
    gc();
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    expect(grownMb).toBeLessThan(32);
    expect(server.stats().sessions).toBe(1);
  }

  it('answers messages before hello and before reset, and closes only on oversize payloads', async () => {
    const fresh = await Peer.open(`${server.url}/v1/stream`);
    for (let i = 0; i < 200; i++) {
      const r = await fresh.request(pick([{ type: 'step', seq: i, frames }, { type: 'reset' }, { type: 'end' }]));
      expect(r).toMatchObject({ type: 'error', code: 'SW_ERR_NO_SESSION' });
    }
    expect(await fresh.request({ ...HELLO, gamma: NaN })).toMatchObject({ code: 'SW_ERR_BAD_OPTION' });
    expect(await fresh.request(HELLO)).toMatchObject({ type: 'ready' });
    for (let i = 0; i < 100; i++) {
      expect(await fresh.request(pick([{ type: 'step', seq: i, frames }, { type: 'end' }]))).toMatchObject({ code: 'SW_ERR_NO_EPISODE' });
    }
    await fresh.close();

    for (let i = 0; i < 5; i++) {
      const big = await Peer.open(`${server.url}/v1/stream`);
      big.sendRaw(i % 2 ? 'x'.repeat(300 * 1024) : encodeMsgpack({ type: 'step', frames: { front: Buffer.alloc(300 * 1024) } }));
      expect((await big.closed).code).toBe(1009);
    }
    await waitFor(() => server.stats().sessions === 0);
  });
});

describe('fuzzing the openpi endpoint', () => {
  it('answers malformed observations with error text frames and keeps the connection', async () => {
    const peer = await Peer.open(`${server.url}/openpi`);
    await peer.next();
    const img = await jpeg();
    const obs = { 'observation/image': img, 'observation/side_image': img, 'observation/wrist_image': img, prompt: 'pick_place' };
    const cases: [unknown, ErrorCode[]][] = [];
    for (let i = 0; i < 300; i++) {
      const k = int(7);
      if (k === 0) cases.push([randomBytes(1 + int(100)), ['SW_ERR_PROTOCOL', 'SW_ERR_LIMIT']]);
      else if (k === 1) cases.push([{ ...obs, prompt: pick([5, 'juggle', null]) }, ['SW_ERR_TASK_UNKNOWN']]);
      else if (k === 2) cases.push([{ ...obs, 'observation/image': undefined }, ['SW_ERR_VIEW_MISSING']]);
      else if (k === 3) cases.push([{ ...obs, 'observation/wrist_image': nd('|u1', [2 ** 20, 3], new Uint8Array(3)) }, ['SW_ERR_NDARRAY']]);
      else if (k === 4) cases.push([{ ...obs, reset: pick([1, 'yes']) }, ['SW_ERR_PROTOCOL']]);
      else if (k === 5) cases.push([{ ...obs, reward: NaN }, ['SW_ERR_BAD_VALUE']]);
      else cases.push([{ ...obs, 'observation/side_image': corruptJpeg(img) }, ['SW_ERR_IMAGE_DECODE', 'SW_ERR_IMAGE_SIZE']]);
    }
    for (let i = 0; i < cases.length; i += 50) {
      const batch = cases.slice(i, i + 50); // under maxQueuedMessages
      for (const [msg] of batch) peer.sendRaw(msg instanceof Buffer ? msg : encodeMsgpack(msg));
      for (const [, codes] of batch) {
        const r = await peer.next();
        expect(r.binary).toBe(false);
        expect(codes).toContain((r.data as { code: ErrorCode }).code);
      }
    }
    peer.sendRaw(encodeMsgpack(obs));
    expect((await peer.reply()).progress).toBeTypeOf('number');
    await peer.close();
  });
});
