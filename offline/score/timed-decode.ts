// Decode a video file to RGB frames at a requested size, each with its presentation time: ffmpeg's
// `showinfo` filter prints every frame's pts (in the stream's time base) on stderr before the frame
// is written to stdout, so the two pipes are paired frame by frame. One frame is held at a time
// (pipe backpressure pauses ffmpeg). Any container and codec this ffmpeg decodes (H.264, HEVC, VP9,
// AV1). Times are seconds on the file's own clock as ffmpeg presents it (its first frame near 0).
//
//   for await (const { ptsSeconds, image } of decodeTimed('front.mp4', { width: 96, height: 96 })) ...
//
// Errors: SW_ERR_FFMPEG (unreadable file, no video stream, ffmpeg failure) naming the file.

import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import type { ResizeMode } from '../../models/card.ts';
import { StagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import { describeExit, exitOf, videoDecoder, wholeFrames, type FfmpegBinary } from '../../datasets/ffmpeg.ts';

export interface TimedFrame {
  /** Presentation time in seconds. */
  ptsSeconds: number;
  image: RawImage;
}

export interface TimedDecodeOptions {
  width: number;
  height: number;
  resize?: ResizeMode;
  /** This ffmpeg with its default decoder (else videoDecoder's choice: dav1d for AV1 where there is one). */
  binary?: FfmpegBinary;
}

const TAIL_LINES = 8;

/** The ffmpeg filter chain: showinfo first (it sees the decoded frame), then the resize. */
export function timedFilter(width: number, height: number, resize: ResizeMode): string {
  const size = `${width}:${height}`;
  const scale =
    resize === 'stretch'
      ? `scale=${size}:flags=area`
      : resize === 'pad'
        ? `scale=${size}:force_original_aspect_ratio=decrease:flags=area,pad=${size}:(ow-iw)/2:(oh-ih)/2:black`
        : `scale=${size}:force_original_aspect_ratio=increase:flags=area,crop=${size}`;
  return `showinfo,${scale}`;
}

/** One `showinfo` line: the time base from its config line, or a frame's pts (null when NOPTS). Pure. */
export function parseShowinfo(line: string): { timeBase: [number, number] } | { n: number; pts: number | null } | null {
  if (!line.includes('Parsed_showinfo')) return null;
  const tb = /config in time_base: (\d+)\/(\d+)/.exec(line);
  if (tb) return { timeBase: [Number(tb[1]), Number(tb[2])] };
  const f = /\bn:\s*(\d+)\s+pts:\s*(\S+)/.exec(line);
  if (!f) return null;
  const pts = /^-?\d+$/.test(f[2]!) ? Number(f[2]) : null;
  return { n: Number(f[1]), pts };
}

export async function* decodeTimed(path: string, o: TimedDecodeOptions): AsyncGenerator<TimedFrame> {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new Error('not a file');
  } catch {
    throw new StagewardError('SW_ERR_FFMPEG', `cannot read video ${path}: no such file`);
  }
  const { binary: bin, inputArgs } = await videoDecoder(path, o.binary);
  const { width, height } = o;
  const major = Number(/^(\d+)\./.exec(bin.version)?.[1] ?? 0);
  const args = [
    '-hide_banner',
    '-nostdin',
    '-nostats',
    '-loglevel',
    'info',
    ...inputArgs,
    '-i',
    path,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    '-vf',
    timedFilter(width, height, o.resize ?? 'stretch'),
    ...(major >= 5 ? ['-fps_mode', 'passthrough'] : ['-vsync', '0']),
    '-f',
    'rawvideo',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  const child = spawn(bin.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const pts: (number | null)[] = [];
  let timeBase: [number, number] | undefined;
  const tail: string[] = [];
  let partial = '';
  let wake: (() => void) | undefined;
  let stderrDone = false;
  child.stderr.on('data', (c: Buffer) => {
    const lines = (partial + c.toString('utf8')).split(/\r?\n/);
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const info = parseShowinfo(line);
      if (info === null) {
        if (line.trim().length > 0 && !line.includes('Parsed_showinfo')) {
          tail.push(line.trim());
          if (tail.length > TAIL_LINES) tail.shift();
        }
      } else if ('timeBase' in info) timeBase ??= info.timeBase;
      else pts.push(info.pts);
    }
    wake?.();
  });
  child.stderr.on('end', () => {
    stderrDone = true;
    wake?.();
  });
  const exit = exitOf(child);
  const failure = (what: string) =>
    new StagewardError('SW_ERR_FFMPEG', `${what} while decoding ${path}: ${tail.join(' | ') || '(no stderr output)'}`);
  const frameBytes = width * height * 3;
  const rest = { bytes: 0 };
  let count = 0;
  let lastPts = -Infinity;
  try {
    for await (const data of wholeFrames(child.stdout as AsyncIterable<Buffer>, frameBytes, rest)) {
      // The frame's showinfo line was written before its bytes; wait for stderr to catch up.
      while (pts.length <= count && !stderrDone) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      if (pts.length <= count) throw failure(`no timestamp for frame ${count}`);
      const raw = pts[count];
      // NOPTS (a raw elementary stream): the next frame time after the last one, at 1/25 s if unknown.
      const seconds =
        raw === null || raw === undefined || timeBase === undefined
          ? count === 0
            ? 0
            : lastPts + 1 / 25
          : (raw * timeBase[0]) / timeBase[1];
      lastPts = seconds;
      count++;
      yield { ptsSeconds: seconds, image: { data, height, width, channels: 3 } };
    }
    const done = await exit;
    if (done.error || done.code !== 0) throw failure(`ffmpeg ${describeExit(done)} after ${count} frames`);
    if (rest.bytes !== 0) throw failure(`ffmpeg ended mid-frame (${rest.bytes} of ${frameBytes} bytes)`);
    if (count === 0) throw failure('no frames decoded');
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  }
}
