// AV1 through a real dav1d-capable ffmpeg (Debian's): found on its own, chosen for AV1 files by both
// decode paths (datasets and offline scoring), and decoding the same pixels as the bundled ffmpeg's
// libaom (AV1 decoders are bit-exact by the standard), H.264 left to the default ffmpeg.

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeVideo, ffmpeg, H264Encoder, locateDav1d, videoDecoder, type FfmpegBinary } from '../../datasets/ffmpeg.ts';
import { decodeTimed } from '../../offline/score/timed-decode.ts';
import { transcodeToAv1 } from '../helpers.ts';

const W = 64;
const H = 48;
const N = 12;

let dir: string;
let h264: string;
let av1: string;
let base: FfmpegBinary;
let dav1d: FfmpegBinary;

async function frames(it: AsyncIterable<{ data: Uint8Array }>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const f of it) out.push(Uint8Array.from(f.data));
  return out;
}

beforeAll(async () => {
  const found = await locateDav1d();
  if (found === null)
    throw new Error('no ffmpeg with libdav1d among ffmpeg-static, @ffmpeg-installer, PATH, FFMPEG_PATH: apt-get install -y ffmpeg');
  dav1d = found;
  base = await ffmpeg();
  dir = await mkdtemp(join(tmpdir(), 'stageward-dav1d-'));
  h264 = join(dir, 'clip.mp4');
  const enc = await H264Encoder.open(h264, { width: W, height: H, fps: 10 });
  for (let t = 0; t < N; t++) {
    const data = new Uint8Array(W * H * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + t * 23) % 251;
    await enc.write(data);
  }
  await enc.close();
  av1 = join(dir, 'clip-av1.mp4');
  transcodeToAv1(dav1d.path, h264, av1, { crf: 30 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('AV1 through dav1d', () => {
  it('finds an ffmpeg whose decoders include libdav1d, and sends AV1 files to it, H.264 files to the default', async () => {
    expect(spawnSync(dav1d.path, ['-hide_banner', '-decoders']).stdout.toString()).toMatch(/libdav1d/);
    expect(await videoDecoder(av1)).toEqual({ binary: dav1d, inputArgs: ['-c:v', 'libdav1d'] });
    expect(await videoDecoder(h264)).toEqual({ binary: base, inputArgs: [] });
  });

  it('decodes the same pixels as libaom, through the dataset reader path and the scoring path', async () => {
    const size = { width: 32, height: 24 };
    const viaDav1d = await frames(decodeVideo(av1, size));
    const viaTimed = (await frames(
      (async function* () {
        for await (const f of decodeTimed(av1, size)) yield f.image;
      })(),
    )) as Uint8Array[];
    // The reference: the same file through libaom, named explicitly.
    const r = spawnSync(
      dav1d.path,
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-c:v',
        'libaom-av1',
        '-i',
        av1,
        '-vf',
        'scale=32:24:flags=area',
        '-f',
        'rawvideo',
        '-pix_fmt',
        'rgb24',
        'pipe:1',
      ],
      {
        maxBuffer: 1 << 26,
      },
    );
    expect(r.status, r.stderr.toString()).toBe(0);
    const ref = new Uint8Array(r.stdout);
    expect(viaDav1d.length).toBe(N);
    expect(viaTimed.length).toBe(N);
    const frameBytes = 32 * 24 * 3;
    expect(ref.length).toBe(N * frameBytes);
    for (let t = 0; t < N; t++) {
      const want = ref.subarray(t * frameBytes, (t + 1) * frameBytes);
      expect(Buffer.compare(Buffer.from(viaDav1d[t]!), Buffer.from(want))).toBe(0);
      expect(Buffer.compare(Buffer.from(viaTimed[t]!), Buffer.from(want))).toBe(0);
    }
  });
});
