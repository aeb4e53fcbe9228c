// Writes the fuzz seeds (test/fuzz/corpus/<target>/) and dictionaries (test/fuzz/dict/<target>.dict),
// deterministically: valid messages and sessions that reach the deep states (hello -> reset -> 3-view
// steps -> end, openpi observations with numpy images and scalars), and near-valid ones beside them.
// Each target's folder is emptied first, so the output is exactly what this script makes.
//
//   npx tsx test/fuzz/make-corpus.ts
//
// Images are fixed bytes (an 8 x 8 JPEG, a 4 x 4 PNG, tiny uint8 arrays), not re-encoded, so the seeds
// do not change with the image library.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROGRESS_SOURCES } from '../../models/engine.ts';
import { SHAPING_MODES } from '../../models/shaping.ts';
import { encodeMsgpack } from '../../server/msgpack.ts';
import { DTYPES, ndarrayMap, type Dtype } from '../../server/ndarray.ts';
import { fixtureCard } from './fake-model.ts';
import { CONFIG, joinFrames, type WireFrame } from './harness.ts';

const FUZZ_DIR = import.meta.dirname;

/** An 8 x 8 solid-colour baseline JPEG (quality 50), 268 bytes. */
const JPEG = Buffer.from(
  'ffd8ffdb004300100b0c0e0c0a100e0d0e1211101318281a181616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763' +
    'ffdb0043011112121815182f1a1a2f634238426363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363' +
    'ffc00011080008000803012200021101031101ffc4001500010100000000000000000000000000000005ffc40014100100000000000000000000000000000000ffc4001401010000' +
    '0000000000000000000000000004ffc40014110100000000000000000000000000000000ffda000c03010002110311003f00940045bfffd9',
  'hex',
);
/** A 4 x 4 RGB PNG, 95 bytes. */
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000004000000040802000000269309290000000970485973000003e8000003e801b57b526b0000001049444154089963b0a9d0802306' +
    'e2380067030dc1a260b8d80000000049454e44ae426082',
  'hex',
);

const card = fixtureCard();
const VIEWS = card.views; // front, side, wrist
const TASK = card.tasks[0]!;
const OPENPI_KEYS = Object.keys(CONFIG.openpi.views); // observation/image, ... -> the views

const b = (s: string) => Buffer.from(s);
/** A uint8 HWC image array [h, w, c] as openpi sends it (binary keys). */
const npImage = (h: number, w: number, c = 3, seed = 0) =>
  ndarrayMap(
    '|u1',
    [h, w, c],
    Uint8Array.from({ length: h * w * c }, (_, i) => (i * 37 + seed * 11) % 256),
  );
const npScalar = (dtype: Dtype, data: unknown) =>
  new Map<Buffer, unknown>([
    [b('__npgeneric__'), true],
    [b('data'), data],
    [b('dtype'), dtype],
  ]);
const views = <T>(f: (view: string, i: number) => T): Record<string, T> => Object.fromEntries(VIEWS.map((v, i) => [v, f(v, i)]));

const bin = (m: unknown): WireFrame => ({ kind: 'binary', data: encodeMsgpack(m) });
const text = (m: unknown): WireFrame => ({ kind: 'text', data: b(JSON.stringify(m)) });
const jsonArray = (dtype: Dtype, shape: number[], data: Uint8Array) => ({
  __ndarray__: true,
  data: Buffer.from(data).toString('base64'),
  dtype,
  shape,
});

const HELLO = { type: 'hello', protocol: 1, task: TASK, views: [...VIEWS], gamma: 0.99, shaping: 'pbrs' };
const jpegStep = (seq: number, extra: Record<string, unknown> = {}) => ({ type: 'step', seq, frames: views(() => JPEG), ...extra });
const arrayStep = (seq: number, extra: Record<string, unknown> = {}) => ({
  type: 'step',
  seq,
  frames: views((_, i) => npImage(2, 2, 3, seq + i)),
  ...extra,
});

// -- seeds per target ------------------------------------------------------------------------

function msgpackSeeds(): Record<string, Buffer> {
  const raw = (hex: string) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');
  return {
    hello: encodeMsgpack(HELLO),
    'reset-episode': encodeMsgpack({ type: 'reset', episode: 'ep-1' }),
    'step-jpeg': encodeMsgpack(jpegStep(0)),
    'step-ndarray': encodeMsgpack(arrayStep(1, { reward: 0.5, terminated: false })),
    'step-png-gray': encodeMsgpack({ type: 'step', seq: 2, frames: { front: PNG, side: npImage(3, 2, 1), wrist: npImage(2, 2, 4) } }),
    'openpi-observation': encodeMsgpack({
      [OPENPI_KEYS[0]!]: npImage(2, 2),
      'observation/state': ndarrayMap('<f4', [2], new Uint8Array(8)),
      prompt: TASK,
      reward: npScalar('<f8', 1.5),
      terminated: npScalar('|b1', false),
    }),
    // every dtype, as a 1-element array
    'ndarray-dtypes': encodeMsgpack(
      Object.fromEntries(Object.entries(DTYPES).map(([d, size]) => [d, ndarrayMap(d as Dtype, [1], new Uint8Array(size).fill(1))])),
    ),
    // scalars of every width: nil, bools, ints 8-64, floats 32/64, str8, bin8, negative fixint
    scalars: raw(`9e c0 c2 c3 cc ff cd ffff ce ffffffff cf 001fffffffffffff d0 80 d1 8000 d2 80000000 d3 ffe0000000000001
      ca 3f800000 cb 7ff8000000000000 d9 03 616263 c4 02 0102 e0 7f`),
    'nested-depth': Buffer.concat([Buffer.alloc(CONFIG.limits.maxNestingDepth - 1, 0x91), Buffer.from([0x80])]),
    'proto-key': raw('82 a9 5f5f70726f746f5f5f 81 a4 74797065 a4 73746570 c4 04 74797065 a5 68656c6c6f'),
    // near-valid
    'ndarray-short-data': encodeMsgpack({ img: ndarrayMap('|u1', [2, 2, 3], new Uint8Array(11)) }),
    'ndarray-big-endian': encodeMsgpack({
      img: new Map<Buffer, unknown>([
        [b('__ndarray__'), true],
        [b('data'), new Uint8Array(2)],
        [b('dtype'), '>i2'],
        [b('shape'), [1]],
      ]),
    }),
    'ext-type': raw('82 a4 74797065 a4 73746570 a1 78 d6 ff 00000001'),
    'huge-count': raw('dd ffffffff 01 02 03'),
    'truncated-step': encodeMsgpack(jpegStep(3)).subarray(0, 200),
  };
}

function jsonSeeds(): Record<string, Buffer> {
  const j = (v: unknown) => b(JSON.stringify(v));
  const px = Uint8Array.from({ length: 12 }, (_, i) => i * 20);
  return {
    hello: j(HELLO),
    'step-base64-jpeg': j({ type: 'step', seq: 0, frames: views(() => JPEG.toString('base64')) }),
    'step-ndarray': j({ type: 'step', seq: 1, frames: views(() => jsonArray('|u1', [2, 2, 3], px)), reward: 0.25 }),
    'openpi-observation': j({
      [OPENPI_KEYS[0]!]: jsonArray('|u1', [2, 2, 3], px),
      prompt: TASK,
      reward: { __npgeneric__: true, data: 1.5, dtype: '<f8' },
      truncated: { __npgeneric__: true, data: true, dtype: '|b1' },
    }),
    'strings-escapes': b('{"a":"x\\"y\\\\","b":"\\u00e9\\ud83d\\ude00","c":[1,-2.5e3,true,false,null,{}],"__proto__":{"type":"end"}}'),
    'nested-depth': b(`${'['.repeat(CONFIG.limits.maxNestingDepth - 1)}{}${']'.repeat(CONFIG.limits.maxNestingDepth - 1)}`),
    // near-valid
    'bad-base64': j({ type: 'step', frames: { front: 'not base64!' } }),
    'ndarray-wrong-shape': j({ x: jsonArray('<f4', [3], new Uint8Array(8)) }),
    'trailing-comma': b('{"type":"hello","protocol":1,}'),
    'unterminated-string': b('{"type":"step","frames":{"front":"AAAA'),
  };
}

function nativeSessionSeeds(): Record<string, Buffer> {
  const s = (...frames: WireFrame[]) => joinFrames(frames);
  return {
    'full-episode-jpeg': s(
      bin(HELLO),
      bin({ type: 'reset' }),
      bin(jpegStep(0)),
      bin(jpegStep(1, { reward: 1, t: 1 })),
      bin({ type: 'end', success: true }),
    ),
    'full-episode-ndarray-grm': s(
      bin({ ...HELLO, progress: 'both', composition: 'expected', scale: 2, fps: 10, model: card.name }),
      bin({ type: 'reset', episode: 7, goal: views((_, i) => npImage(2, 2, 3, 9 + i)) }),
      bin(arrayStep(0)),
      bin(arrayStep(1, { reward: 0.5 })),
      bin(arrayStep(2, { terminated: true })),
      bin(arrayStep(3)), // after the episode terminated
      bin({ type: 'end', terminated: true }),
    ),
    'text-episode': s(
      text(HELLO),
      text({ type: 'reset', episode: 'e' }),
      text({ type: 'step', seq: 0, frames: views(() => JPEG.toString('base64')) }),
      text({ type: 'step', seq: 1, frames: views(() => jsonArray('|u1', [2, 2, 3], new Uint8Array(12).fill(7))), truncated: true }),
      text({ type: 'end' }),
    ),
    'two-episodes-delta': s(
      bin({ ...HELLO, shaping: 'delta', gamma: 1 }),
      bin({ type: 'reset' }),
      bin(jpegStep(0)),
      bin({ type: 'reset' }),
      bin({ type: 'step', frames: { front: PNG, side: npImage(3, 2, 1), wrist: npImage(2, 2, 4) } }),
      bin({ type: 'end' }),
    ),
    // past the feature cache's retention (the window keeps 7 frames), so old frames are evicted
    'long-episode': s(
      bin(HELLO),
      bin({ type: 'reset' }),
      ...Array.from({ length: 12 }, (_, t) => bin({ type: 'step', seq: t, frames: views((_, i) => npImage(1, 1, 3, t + i)) })),
      bin({ type: 'end' }),
    ),
    // out of order and refused
    'step-before-hello': s(bin(jpegStep(0)), bin(HELLO), bin({ type: 'step', frames: views(() => JPEG) })),
    'second-hello-no-reset': s(bin(HELLO), bin(HELLO), bin(jpegStep(0)), bin({ type: 'end' }), bin({ type: 'reset', episode: -1 })),
    'bad-options': s(bin({ ...HELLO, gamma: 2, shaping: 'nope' }), bin({ ...HELLO, views: ['front'] }), bin({ type: 'reset' })),
    'bad-step-fields': s(
      bin(HELLO),
      bin({ type: 'reset' }),
      bin(jpegStep(0, { reward: 'x' })),
      bin({ type: 'step', seq: 1, frames: { ...views(() => JPEG), top: JPEG } }),
      bin({ type: 'step', seq: 2, frames: views(() => JPEG.subarray(0, 100)) }),
    ),
  };
}

function openpiSessionSeeds(): Record<string, Buffer> {
  const s = (...frames: WireFrame[]) => joinFrames(frames);
  const obs = (i: number, extra: Record<string, unknown> = {}) => ({
    ...Object.fromEntries(OPENPI_KEYS.map((k, v) => [k, npImage(2, 2, 3, i + v)])),
    'observation/state': ndarrayMap('<f4', [2], new Uint8Array(8)),
    prompt: TASK,
    ...extra,
  });
  return {
    'episode-ndarray': s(
      bin(obs(0)),
      bin(obs(1, { reward: npScalar('<f8', 0.5) })),
      bin(obs(2, { terminated: npScalar('|b1', true) })),
      bin(obs(3)), // auto-reset after terminated
      bin(obs(4, { reset: true })),
    ),
    'episodes-by-id-and-prompt': s(
      bin(obs(0, { episode: 1, gamma: 0.9, shaping: 'progress', progress: 'grm' })),
      bin(obs(1, { episode: 1 })),
      bin(obs(2, { episode: 'two' })),
      bin(obs(3, { episode: 'two', prompt: card.tasks[1] })),
      bin(obs(4, { truncated: true })),
    ),
    'long-episode': s(
      ...Array.from({ length: 14 }, (_, t) =>
        bin({ ...Object.fromEntries(OPENPI_KEYS.map((k, v) => [k, npImage(1, 1, 3, t + v)])), prompt: TASK, reward: t }),
      ),
    ),
    'jpeg-and-text': s(
      bin({ ...Object.fromEntries(OPENPI_KEYS.map((k) => [k, JPEG])), prompt: TASK }),
      text({ ...Object.fromEntries(OPENPI_KEYS.map((k) => [k, JPEG.toString('base64')])), prompt: TASK, reward: 1 }),
      text({ ...Object.fromEntries(OPENPI_KEYS.map((k) => [k, jsonArray('|u1', [2, 2, 3], new Uint8Array(12))])), prompt: TASK }),
    ),
    // refused
    refusals: s(
      bin(obs(0, { prompt: undefined })),
      bin(obs(1, { prompt: 'unknown_task' })),
      bin(obs(2, { reset: 1, episode: 1.5 })),
      bin({ [OPENPI_KEYS[0]!]: npImage(2, 2), prompt: TASK }),
      bin(obs(3, { gamma: -1 })),
      bin(obs(4, { reward: 'x' })),
      bin([1, 2, 3]),
    ),
  };
}

// -- dictionaries ----------------------------------------------------------------------------

/** Words the decoders and sessions compare against or look up (map keys, enum values, dtypes). */
function words(): string[] {
  const fields = ['type', 'protocol', 'model', 'task', 'views', 'gamma', 'shaping', 'progress', 'fps', 'scale', 'composition', 'api_key'];
  const more = ['episode', 'goal', 'seq', 't', 'frames', 'reward', 'terminated', 'truncated', 'state', 'success', 'prompt', 'reset'];
  const values = ['hello', 'reset', 'step', 'end', 'argmax', 'expected', ...SHAPING_MODES, ...PROGRESS_SOURCES, ...card.tasks, ...VIEWS];
  const numpy = ['__ndarray__', '__npgeneric__', 'data', 'dtype', 'shape', ...Object.keys(DTYPES), '>f4', '__proto__'];
  return [...new Set([...fields, ...more, ...values, ...numpy, ...OPENPI_KEYS, card.name, `${card.name}@${card.version}`])];
}

/** A word as MessagePack writes it: str, and bin (openpi's numpy keys are bin). */
function msgpackForms(w: string): Buffer[] {
  const bytes = b(w);
  const str = bytes.length < 32 ? Buffer.from([0xa0 | bytes.length]) : Buffer.from([0xd9, bytes.length]);
  return [Buffer.concat([str, bytes]), Buffer.concat([Buffer.from([0xc4, bytes.length]), bytes])];
}

function dictLine(token: Buffer): string {
  let out = '"';
  for (const c of token)
    out += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return `${out}"`;
}

function dictionary(forms: (w: string) => Buffer[]): string {
  const lines = words().flatMap((w) => forms(w).map(dictLine));
  return `# Generated by test/fuzz/make-corpus.ts: field names and values the server looks up.\n${[...new Set(lines)].join('\n')}\n`;
}

// -- output ----------------------------------------------------------------------------------

const json = (w: string) => [b(JSON.stringify(w))];
const TARGETS: Record<string, { seeds: () => Record<string, Buffer>; dict: (w: string) => Buffer[] }> = {
  msgpack: { seeds: msgpackSeeds, dict: msgpackForms },
  json: { seeds: jsonSeeds, dict: json },
  'native-session': { seeds: nativeSessionSeeds, dict: (w) => [...msgpackForms(w), ...json(w)] },
  'openpi-session': { seeds: openpiSessionSeeds, dict: (w) => [...msgpackForms(w), ...json(w)] },
};

const MAX_SEED_BYTES = 4096;
let total = 0;
mkdirSync(join(FUZZ_DIR, 'dict'), { recursive: true });
for (const [target, t] of Object.entries(TARGETS)) {
  const dir = join(FUZZ_DIR, 'corpus', target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const seeds = Object.entries(t.seeds());
  seeds.forEach(([name, data], i) => {
    if (data.length > MAX_SEED_BYTES) throw new Error(`seed ${target}/${name} is ${data.length} bytes, over ${MAX_SEED_BYTES}`);
    writeFileSync(join(dir, `${String(i + 1).padStart(2, '0')}-${name}`), data);
    total += data.length;
  });
  writeFileSync(join(FUZZ_DIR, 'dict', `${target}.dict`), dictionary(t.dict));
  console.log(`${target}: ${readdirSync(dir).length} seeds, ${seeds.reduce((s, [, d]) => s + d.length, 0)} bytes`);
}
console.log(`corpus: ${total} bytes in all`);
