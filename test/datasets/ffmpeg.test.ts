// ffmpeg glue: binary resolution order, H.264 encode -> decode round trip, time-range and resized
// decoding, metadata without ffprobe, failures that carry ffmpeg's own words, and AV1 sent to a
// dav1d-capable ffmpeg when there is one.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeVideo,
  ffmpeg,
  H264Encoder,
  locateDav1d,
  locateFfmpeg,
  parseFfmpegInfo,
  probeVideo,
  videoDecoder,
  type FfmpegBinary,
} from '../../datasets/ffmpeg.ts';
import { isStagewardError } from '../../core/errors.ts';
import { rejection, transcodeToAv1 } from '../helpers.ts';

const W = 32;
const H = 32;
const FPS = 10;

/** A frame whose colours identify its index: misaligned decoding shows as a large error. */
function frame(t: number): Uint8Array {
  const out = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const p = (y * W + x) * 3;
      const left = x < W / 2;
      out[p] = left ? 30 + ((t * 23) % 190) : 200;
      out[p + 1] = y < H / 2 ? 40 : 30 + ((t * 41) % 190);
      out[p + 2] = left ? 120 : 220 - ((t * 13) % 180);
    }
  }
  return out;
}

function mae(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

let bin: FfmpegBinary;
let dir: string;
let video: string;
const N = 30;

beforeAll(async () => {
  bin = await ffmpeg();
  dir = await mkdtemp(join(tmpdir(), 'stageward-ffmpeg-'));
  video = join(dir, 'clip.mp4');
  const enc = await H264Encoder.open(video, { width: W, height: H, fps: FPS });
  for (let t = 0; t < N; t++) await enc.write(frame(t));
  await enc.close();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('locating ffmpeg', () => {
  it('finds a working binary from one of the four sources', () => {
    expect(['ffmpeg-static', '@ffmpeg-installer/ffmpeg', 'PATH', 'FFMPEG_PATH']).toContain(bin.source);
    expect(bin.version.length).toBeGreaterThan(0);
  });

  it('tries a bogus FFMPEG_PATH last: an installed binary wins over it', async () => {
    const found = await locateFfmpeg({ env: { FFMPEG_PATH: '/nonexistent/ffmpeg', PATH: '' } });
    expect(found.source).not.toBe('FFMPEG_PATH');
    expect(found.path).not.toBe('/nonexistent/ffmpeg');
  });

  it('uses PATH before FFMPEG_PATH, and FFMPEG_PATH only when nothing else works', async () => {
    const pathDir = join(dir, 'bin');
    await mkdir(pathDir);
    await symlink(bin.path, join(pathDir, 'ffmpeg'));
    const viaPath = await locateFfmpeg({
      env: { PATH: pathDir, FFMPEG_PATH: '/nonexistent/ffmpeg' },
      skip: ['ffmpeg-static', '@ffmpeg-installer/ffmpeg'],
    });
    expect(viaPath.source).toBe('PATH');
    const viaEnv = await locateFfmpeg({ env: { PATH: '', FFMPEG_PATH: bin.path }, skip: ['ffmpeg-static', '@ffmpeg-installer/ffmpeg'] });
    expect(viaEnv).toMatchObject({ source: 'FFMPEG_PATH', path: bin.path });
  });

  it('names all four sources when none works, and rejects a binary that is not ffmpeg', async () => {
    const fake = join(dir, 'not-ffmpeg');
    await writeFile(fake, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    const err = await rejection(
      locateFfmpeg({ env: { PATH: '', FFMPEG_PATH: fake }, skip: ['ffmpeg-static', '@ffmpeg-installer/ffmpeg'] }),
    );
    expect(isStagewardError(err, 'SW_ERR_FFMPEG_NOT_FOUND')).toBe(true);
    const message = (err as Error).message;
    for (const source of ['ffmpeg-static', '@ffmpeg-installer/ffmpeg', 'PATH', 'FFMPEG_PATH']) expect(message).toContain(source);
    expect(message).toContain('does not answer like ffmpeg');
  });
});

describe('encoding and decoding', () => {
  it('decodes every frame of an H.264 file close to what was encoded', async () => {
    let t = 0;
    for await (const img of decodeVideo(video)) {
      expect([img.height, img.width, img.channels]).toEqual([H, W, 3]);
      expect(mae(img.data, frame(t))).toBeLessThan(6);
      t++;
    }
    expect(t).toBe(N);
  });

  it('decodes exactly the frames of a time range [from, to)', async () => {
    const got: number[] = [];
    let t = 12;
    for await (const img of decodeVideo(video, { fromSeconds: 1.2, toSeconds: 2.1, fps: FPS })) {
      expect(mae(img.data, frame(t))).toBeLessThan(6);
      got.push(t++);
    }
    expect(got.length).toBe(9);
  });

  it('resizes while decoding, and stops ffmpeg when the reader leaves early', async () => {
    let n = 0;
    for await (const img of decodeVideo(video, { width: 16, height: 8 })) {
      expect([img.height, img.width, img.data.length]).toEqual([8, 16, 16 * 8 * 3]);
      if (++n === 3) break;
    }
    expect(n).toBe(3);
  });

  it('reads codec, size, fps and duration without ffprobe', async () => {
    const info = await probeVideo(video, { ...bin, ffprobe: null });
    expect(info).toMatchObject({ codec: 'h264', width: W, height: H, pixFmt: 'yuv420p', fps: FPS, frames: N });
  });

  it('parses an AV1 stream line whose details hold commas', () => {
    const stderr = [
      "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':",
      '  Duration: 00:00:04.50, start: 0.000000, bitrate: 95 kb/s',
      '    Stream #0:0(und): Video: av1 (libdav1d) (Main) (av01 / 0x31307661), yuv420p(tv, bt709, progressive), 640x480 [SAR 1:1 DAR 4:3], 93 kb/s, 30 fps, 30 tbr, 15360 tbn (default)',
    ].join('\n');
    expect(parseFfmpegInfo(stderr)).toEqual({
      codec: 'av1',
      width: 640,
      height: 480,
      pixFmt: 'yuv420p',
      fps: 30,
      durationSeconds: 4.5,
      frames: 135,
    });
  });
});

describe('failures', () => {
  it("an encoder that cannot write its file fails with ffmpeg's last stderr lines", async () => {
    const enc = await H264Encoder.open(join(dir, 'no', 'such', 'dir', 'x.mp4'), { width: W, height: H, fps: FPS });
    const err = await rejection(
      (async () => {
        for (let t = 0; t < 5; t++) await enc.write(frame(t));
        await enc.close();
      })(),
    );
    expect(isStagewardError(err, 'SW_ERR_FFMPEG')).toBe(true);
    expect((err as Error).message).toMatch(/No such file or directory/);
  });

  it('refuses odd frame sizes and frames of the wrong length', async () => {
    expect(
      isStagewardError(await rejection(H264Encoder.open(join(dir, 'odd.mp4'), { width: 31, height: 32, fps: FPS })), 'SW_ERR_DATASET_SPEC'),
    ).toBe(true);
    const enc = await H264Encoder.open(join(dir, 'short.mp4'), { width: W, height: H, fps: FPS });
    expect(isStagewardError(await rejection(enc.write(new Uint8Array(10))), 'SW_ERR_DATASET_EPISODE')).toBe(true);
    await enc.abort();
  });

  it("decoding a file that is not a video fails with ffmpeg's message", async () => {
    const junk = join(dir, 'junk.mp4');
    await writeFile(junk, 'not a video at all');
    const err = await rejection(
      (async () => {
        for await (const _ of decodeVideo(junk, { width: W, height: H })) void _;
      })(),
    );
    expect(isStagewardError(err, 'SW_ERR_FFMPEG')).toBe(true);
    expect((err as Error).message).toMatch(/junk\.mp4/);
  });
});

describe('AV1 through dav1d', () => {
  /** An ffmpeg that says it has libdav1d (or not) and hands everything else to the real one. */
  async function fakeFfmpeg(name: string, hasDav1d: boolean): Promise<string> {
    const path = join(dir, name);
    const decoders = hasDav1d
      ? ' V....D libdav1d             dav1d AV1 decoder by VideoLAN (codec av1)'
      : ' V....D libaom-av1           libaom AV1 (codec av1)';
    await writeFile(
      path,
      `#!/bin/sh\ncase "$*" in\n  *-decoders*) echo ' V..... = Video'; echo '${decoders}' ;;\n  *) exec '${bin.path}' "$@" ;;\nesac\n`,
      { mode: 0o755 },
    );
    return path;
  }

  it('picks the first ffmpeg in resolution order that has libdav1d, and none when STAGEWARD_DAV1D=0 or none has it', async () => {
    const withDav1d = await fakeFfmpeg('ffmpeg-dav1d', true);
    const without = await fakeFfmpeg('ffmpeg-aom', false);
    const skip = ['ffmpeg-static', '@ffmpeg-installer/ffmpeg'] as const;
    const pathDir = await mkdtemp(join(dir, 'path-'));
    await symlink(without, join(pathDir, 'ffmpeg'));
    // PATH's ffmpeg lacks dav1d, FFMPEG_PATH's has it: the later source is chosen.
    const found = await locateDav1d({ env: { PATH: pathDir, FFMPEG_PATH: withDav1d }, skip });
    expect(found?.path).toBe(withDav1d);
    expect(found?.source).toBe('FFMPEG_PATH');
    expect(await locateDav1d({ env: { PATH: pathDir, FFMPEG_PATH: without }, skip })).toBeNull();
    expect(await locateDav1d({ env: { PATH: pathDir, FFMPEG_PATH: withDav1d, STAGEWARD_DAV1D: '0' }, skip })).toBeNull();
  });

  it('sends an AV1 file to the dav1d ffmpeg with -c:v libdav1d, and an H.264 file to the default ffmpeg', async () => {
    const fake = await locateDav1d({
      env: { PATH: '', FFMPEG_PATH: await fakeFfmpeg('ffmpeg-dav1d-2', true) },
      skip: ['ffmpeg-static', '@ffmpeg-installer/ffmpeg', 'PATH'],
    });
    expect(fake).not.toBeNull();
    const av1 = join(dir, 'clip-av1.mp4');
    transcodeToAv1(bin.path, video, av1, { crf: 40, frames: 3 });
    const forAv1 = await videoDecoder(av1, undefined, async () => fake);
    expect(forAv1.binary.path).toBe(fake!.path);
    expect(forAv1.inputArgs).toEqual(['-c:v', 'libdav1d']);
    const forH264 = await videoDecoder(video, undefined, async () => fake);
    expect(forH264.binary.path).toBe(bin.path);
    expect(forH264.inputArgs).toEqual([]);
    const none = await videoDecoder(av1, undefined, async () => null);
    expect(none).toEqual({ binary: bin, inputArgs: [] });
  });
});
