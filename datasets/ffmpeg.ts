// ffmpeg as a child process: find a working binary, encode raw RGB frames to H.264 mp4 (streamed to
// stdin, backpressure respected), decode any codec ffmpeg reads (H.264, HEVC, VP9, AV1) to raw RGB
// frames at a requested size (streamed from stdout, one frame in memory at a time), decode a time
// range [from, to) of a file that concatenates many episodes, and read a video's metadata (ffprobe
// when it sits beside ffmpeg, else a parse of `ffmpeg -i`'s stderr: @ffmpeg-installer ships no ffprobe).
//
// Binary resolution order: ffmpeg-static (optional dependency), @ffmpeg-installer/ffmpeg, `ffmpeg` on
// PATH, then $FFMPEG_PATH. Each candidate must exist, be executable and answer `-version`. AV1 files
// are decoded by the first candidate, in the same order, that has dav1d (`libdav1d`, the fast AV1
// decoder; Debian's ffmpeg has it, the bundled builds decode AV1 with the slower libaom) when there
// is one, else by the first working ffmpeg; STAGEWARD_DAV1D=0 turns that choice off.
// Failures carry ffmpeg's last stderr lines (code SW_ERR_FFMPEG); no binary: SW_ERR_FFMPEG_NOT_FOUND.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { access, constants, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { RawImage } from '../core/image.ts';
import { StagewardError } from '../core/errors.ts';

export type FfmpegSource = 'ffmpeg-static' | '@ffmpeg-installer/ffmpeg' | 'PATH' | 'FFMPEG_PATH';
export const FFMPEG_SOURCES: readonly FfmpegSource[] = ['ffmpeg-static', '@ffmpeg-installer/ffmpeg', 'PATH', 'FFMPEG_PATH'];

export interface FfmpegBinary {
  path: string;
  source: FfmpegSource;
  /** The version word of `ffmpeg -version` ("4.4.2", "20181210-g0e8eb07980", ...). */
  version: string;
  /** An ffprobe beside the ffmpeg binary, or null. */
  ffprobe: string | null;
}

export interface LocateOptions {
  /** Environment to read PATH and FFMPEG_PATH from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Sources to pass over (tests use this to reach the later ones). */
  skip?: readonly FfmpegSource[];
}

const STDERR_TAIL_LINES = 12;
const VERSION_TIMEOUT_MS = 10_000;
const require = createRequire(import.meta.url);
let located: Promise<FfmpegBinary> | undefined;

/** The process-wide ffmpeg (located once, from process.env). */
export function ffmpeg(): Promise<FfmpegBinary> {
  located ??= locateFfmpeg().catch((err: unknown) => {
    located = undefined; // let a later call retry (e.g. after PATH changes)
    throw err;
  });
  return located;
}

/** Find a working ffmpeg in the fixed order ffmpeg-static, @ffmpeg-installer, PATH, FFMPEG_PATH. */
export async function locateFfmpeg(options: LocateOptions = {}): Promise<FfmpegBinary> {
  const tried: string[] = [];
  for await (const found of candidates(options)) {
    if (typeof found !== 'string') return found;
    tried.push(found);
  }
  throw new StagewardError(
    'SW_ERR_FFMPEG_NOT_FOUND',
    `no working ffmpeg; tried in order: ${tried.join('; ')}. Install ffmpeg-static or @ffmpeg-installer/ffmpeg, put ffmpeg on PATH, or set FFMPEG_PATH.`,
  );
}

/** Each source in order: a working ffmpeg, or why it is not one. */
async function* candidates(options: LocateOptions): AsyncGenerator<FfmpegBinary | string> {
  const env = options.env ?? process.env;
  for (const source of FFMPEG_SOURCES) {
    if (options.skip?.includes(source)) {
      yield `${source}: skipped`;
      continue;
    }
    const path = await candidatePath(source, env);
    if (path === null) {
      yield `${source}: ${source === 'FFMPEG_PATH' ? 'not set' : source === 'PATH' ? 'no ffmpeg on PATH' : 'not installed'}`;
      continue;
    }
    const version = await answersVersion(path);
    if (typeof version !== 'string') {
      yield `${source} (${path}): ${version.reason}`;
      continue;
    }
    yield {
      path,
      source,
      version,
      ffprobe: await executable(join(dirname(path), process.platform === 'win32' ? 'ffprobe.exe' : 'ffprobe')),
    };
  }
}

// ---------------------------------------------------------------------------------------------- AV1

let dav1dLocated: Promise<FfmpegBinary | null> | undefined;

/** The process-wide dav1d-capable ffmpeg (located once, from process.env), or null. */
export function dav1dFfmpeg(): Promise<FfmpegBinary | null> {
  dav1dLocated ??= locateDav1d();
  return dav1dLocated;
}

/** The first ffmpeg, in resolution order, whose decoders include libdav1d; null when none has it or STAGEWARD_DAV1D=0. */
export async function locateDav1d(options: LocateOptions = {}): Promise<FfmpegBinary | null> {
  if ((options.env ?? process.env).STAGEWARD_DAV1D === '0') return null;
  for await (const found of candidates(options)) {
    if (typeof found === 'string') continue;
    const { stdout, exit } = await collect(found.path, ['-hide_banner', '-decoders']);
    if (exit.code === 0 && /^\s*V\S*\s+libdav1d\b/m.test(stdout)) return found;
  }
  return null;
}

/** An ffmpeg to decode one file with, and the input options that pick its decoder. */
export interface VideoDecoder {
  binary: FfmpegBinary;
  /** Put before `-i` (`-c:v libdav1d` for AV1 through dav1d; empty otherwise). */
  inputArgs: string[];
}

const CODEC_CACHE_MAX = 1024;
const codecs = new Map<string, Promise<string>>();

/**
 * How to decode `path`: with `given`, that ffmpeg and its default decoder; else an AV1 file through
 * the dav1d-capable ffmpeg when there is one (the file is probed once per path, size and
 * modification time), anything else through the process-wide ffmpeg. `dav1d` replaces the
 * process-wide dav1d lookup (tests).
 */
export async function videoDecoder(
  path: string,
  given?: FfmpegBinary,
  dav1d: () => Promise<FfmpegBinary | null> = dav1dFfmpeg,
): Promise<VideoDecoder> {
  if (given !== undefined) return { binary: given, inputArgs: [] };
  const withDav1d = await dav1d();
  if (withDav1d === null) return { binary: await ffmpeg(), inputArgs: [] };
  const codec = await codecOf(path, withDav1d);
  return codec === 'av1' ? { binary: withDav1d, inputArgs: ['-c:v', 'libdav1d'] } : { binary: await ffmpeg(), inputArgs: [] };
}

async function codecOf(path: string, bin: FfmpegBinary): Promise<string> {
  let key = path;
  try {
    const s = await stat(path);
    key = `${path}\0${s.size}\0${s.mtimeMs}`;
  } catch {
    return 'unknown'; // the decode that follows reports the missing file in its own words
  }
  let codec = codecs.get(key);
  if (codec === undefined) {
    if (codecs.size >= CODEC_CACHE_MAX) codecs.clear();
    codec = probeVideo(path, bin).then(
      (info) => info.codec,
      () => 'unknown',
    );
    codecs.set(key, codec);
  }
  return codec;
}

async function candidatePath(source: FfmpegSource, env: NodeJS.ProcessEnv): Promise<string | null> {
  switch (source) {
    case 'ffmpeg-static':
      return executable(requirePath('ffmpeg-static', (m) => (typeof m === 'string' ? m : (m as { default?: unknown }).default)));
    case '@ffmpeg-installer/ffmpeg':
      return executable(requirePath('@ffmpeg-installer/ffmpeg', (m) => (m as { path?: unknown }).path));
    case 'PATH': {
      const name = process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg';
      for (const dir of (env.PATH ?? '').split(delimiter).filter((d) => d.length > 0)) {
        const found = await executable(join(dir, name));
        if (found !== null) return found;
      }
      return null;
    }
    case 'FFMPEG_PATH':
      return env.FFMPEG_PATH ? env.FFMPEG_PATH : null;
  }
}

function requirePath(pkg: string, pick: (mod: unknown) => unknown): string | null {
  try {
    const p = pick(require(pkg));
    return typeof p === 'string' && p.length > 0 ? p : null;
  } catch {
    return null; // not installed, or no binary for this platform
  }
}

async function executable(path: string | null): Promise<string | null> {
  if (path === null) return null;
  try {
    await access(path, constants.X_OK);
    return path;
  } catch {
    return null;
  }
}

function answersVersion(path: string): Promise<string | { reason: string }> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(path, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: VERSION_TIMEOUT_MS });
    } catch (err) {
      resolve({ reason: (err as Error).message });
      return;
    }
    child.stdout.on('data', (c: Buffer) => (out += c.toString('latin1')));
    child.on('error', (err) => resolve({ reason: err.message }));
    child.on('close', (code) => {
      const m = /^ffmpeg version (\S+)/.exec(out);
      resolve(code === 0 && m ? m[1]! : { reason: code === 0 ? 'does not answer like ffmpeg' : `-version exited with ${code}` });
    });
  });
}

/** Keeps the last lines a child wrote to stderr, for error messages. */
class StderrTail {
  private lines: string[] = [];
  private partial = '';

  push(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString('utf8')).split(/\r?\n|\r/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) if (line.trim().length > 0) this.lines.push(line.trim());
    if (this.lines.length > STDERR_TAIL_LINES) this.lines.splice(0, this.lines.length - STDERR_TAIL_LINES);
  }

  text(): string {
    const all = this.partial.trim().length > 0 ? [...this.lines, this.partial.trim()] : this.lines;
    return all.length > 0 ? all.join(' | ') : '(no stderr output)';
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export function exitOf(child: {
  once(event: 'close', cb: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'error', cb: (err: Error) => void): unknown;
}): Promise<Exit> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

export function describeExit(exit: Exit): string {
  if (exit.error) return `could not run (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

/**
 * Cut a raw byte stream (ffmpeg's rawvideo output) into whole frames of `frameBytes`, each in a buffer
 * of its own. `rest.bytes` is left at the size of an unfinished last frame (0 when the stream ended on
 * a frame boundary).
 */
export async function* wholeFrames(stream: AsyncIterable<Buffer>, frameBytes: number, rest: { bytes: number }): AsyncGenerator<Uint8Array> {
  let frame = Buffer.allocUnsafe(frameBytes);
  let filled = 0;
  rest.bytes = 0;
  for await (const chunk of stream) {
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(frameBytes - filled, chunk.length - at);
      chunk.copy(frame, filled, at, at + n);
      filled += n;
      at += n;
      rest.bytes = filled;
      if (filled < frameBytes) continue;
      const out = new Uint8Array(frame.buffer, frame.byteOffset, frameBytes);
      frame = Buffer.allocUnsafe(frameBytes);
      filled = 0;
      rest.bytes = 0;
      yield out;
    }
  }
}

// ---------------------------------------------------------------------------------------------- encode

export type X264Preset = 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium' | 'slow';

export interface EncoderOptions {
  width: number;
  height: number;
  fps: number;
  /** x264 constant rate factor: 0 lossless, 18 visually lossless, 23 x264's default. */
  crf?: number;
  /** Keyframe interval in frames; small keeps random access cheap (LeRobot uses 2). */
  gopFrames?: number;
  preset?: X264Preset;
  binary?: FfmpegBinary;
}

export const DEFAULT_ENCODER = { crf: 18, gopFrames: 2, preset: 'veryfast' as X264Preset };

/** One H.264 (yuv420p, +faststart) mp4 being written from raw rgb24 frames piped to ffmpeg's stdin. */
export class H264Encoder {
  private framesWritten = 0;
  private closed = false;
  private readonly frameBytes: number;

  private constructor(
    readonly outPath: string,
    private readonly child: ChildProcessByStdio<Writable, null, Readable>,
    private readonly exit: Promise<Exit>,
    private readonly tail: StderrTail,
    readonly options: Required<Omit<EncoderOptions, 'binary'>>,
  ) {
    this.frameBytes = options.width * options.height * 3;
  }

  static async open(outPath: string, options: EncoderOptions): Promise<H264Encoder> {
    const { width, height, fps } = options;
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 2 || height < 2 || width % 2 !== 0 || height % 2 !== 0) {
      throw new StagewardError('SW_ERR_DATASET_SPEC', `H.264 yuv420p needs an even width and height of at least 2, got ${width}x${height}`);
    }
    if (!(fps > 0) || !Number.isFinite(fps)) throw new StagewardError('SW_ERR_DATASET_SPEC', `fps must be a positive number, got ${fps}`);
    const opts = {
      width,
      height,
      fps,
      crf: options.crf ?? DEFAULT_ENCODER.crf,
      gopFrames: options.gopFrames ?? DEFAULT_ENCODER.gopFrames,
      preset: options.preset ?? DEFAULT_ENCODER.preset,
    };
    const bin = options.binary ?? (await ffmpeg());
    const args = [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-s',
      `${width}x${height}`,
      '-r',
      String(fps),
      '-i',
      'pipe:0',
      '-an',
      '-c:v',
      'libx264',
      '-preset',
      opts.preset,
      '-crf',
      String(opts.crf),
      '-g',
      String(opts.gopFrames),
      '-bf',
      '0',
      '-pix_fmt',
      'yuv420p',
      '-movflags',
      '+faststart',
      '-f',
      'mp4',
      '-y',
      outPath,
    ];
    const child = spawn(bin.path, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    const tail = new StderrTail();
    child.stderr.on('data', (c: Buffer) => tail.push(c));
    child.stdin.on('error', () => {}); // EPIPE when ffmpeg dies: reported through the exit status
    return new H264Encoder(outPath, child, exitOf(child), tail, opts);
  }

  get frames(): number {
    return this.framesWritten;
  }

  /** Append one frame (rgb24, width*height*3 bytes); resolves once ffmpeg can take more. */
  async write(rgb: Uint8Array): Promise<void> {
    if (this.closed) throw new StagewardError('SW_ERR_DATASET_STATE', `encoder for ${this.outPath} is closed`);
    if (rgb.length !== this.frameBytes) {
      throw new StagewardError(
        'SW_ERR_DATASET_EPISODE',
        `frame has ${rgb.length} bytes, expected ${this.frameBytes} (${this.options.width}x${this.options.height} rgb24)`,
      );
    }
    this.framesWritten++;
    if (this.child.stdin.write(rgb)) return;
    const failed = this.exit.then((exit) => {
      throw this.failure(exit);
    });
    await Promise.race([new Promise<void>((resolve) => this.child.stdin.once('drain', resolve)), failed]);
  }

  /** Flush and wait for ffmpeg to finish the file; throws with its stderr if it failed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.child.stdin.end();
    const exit = await this.exit;
    if (exit.code !== 0) throw this.failure(exit);
  }

  /** Stop at once; the output file is left incomplete (callers delete it). */
  async abort(): Promise<void> {
    this.closed = true;
    this.child.stdin.destroy();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exit;
  }

  private failure(exit: Exit): StagewardError {
    return new StagewardError(
      'SW_ERR_FFMPEG',
      `ffmpeg ${describeExit(exit)} while encoding ${this.outPath} after ${this.framesWritten} frames: ${this.tail.text()}`,
      { cause: exit.error },
    );
  }
}

// ---------------------------------------------------------------------------------------------- decode

export type FitMode = 'stretch' | 'pad' | 'crop';

export interface DecodeOptions {
  /** Output size; the video's own size when absent (then the file is probed first). */
  width?: number;
  height?: number;
  /** How a size of another aspect ratio is reached (as sharp's fill/contain/cover, centred, black). */
  resize?: FitMode;
  /** Decode only the frames with timestamps in [fromSeconds, toSeconds). `fps` is then required. */
  fromSeconds?: number;
  toSeconds?: number;
  fps?: number;
  /** This ffmpeg with its default decoder (else videoDecoder's choice: dav1d for AV1 where there is one). */
  binary?: FfmpegBinary;
}

/**
 * Stream a video's frames as RGB uint8 [height, width, 3]. One frame is held at a time; reading
 * pauses ffmpeg (pipe backpressure). Leaving the loop early stops ffmpeg.
 */
export async function* decodeVideo(path: string, options: DecodeOptions = {}): AsyncGenerator<RawImage> {
  const { binary: bin, inputArgs } = await videoDecoder(path, options.binary);
  let { width, height } = options;
  if (width === undefined || height === undefined) {
    const info = await probeVideo(path, bin);
    width ??= info.width;
    height ??= info.height;
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new StagewardError('SW_ERR_DATASET_SPEC', `decode size must be positive integers, got ${width}x${height}`);
  }
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  const ranged = options.fromSeconds !== undefined || options.toSeconds !== undefined;
  let frameLimit: number | undefined;
  if (ranged) {
    const fps = options.fps;
    if (fps === undefined || !(fps > 0)) throw new StagewardError('SW_ERR_DATASET_SPEC', 'decoding a time range needs the video fps');
    const from = options.fromSeconds ?? 0;
    // Seek half a frame early so float rounding of `from` never drops its first frame; ffmpeg's
    // accurate seek then discards the frames before it.
    const seek = from - 0.5 / fps;
    if (seek > 0) args.push('-ss', seek.toFixed(6));
    if (options.toSeconds !== undefined) frameLimit = Math.max(0, Math.round((options.toSeconds - from) * fps));
  }
  args.push(...inputArgs, '-i', path, '-an', '-sn');
  const filter = scaleFilter(width, height, options.resize ?? 'stretch');
  if (filter !== undefined && (options.width !== undefined || options.height !== undefined)) args.push('-vf', filter);
  if (frameLimit !== undefined) args.push('-frames:v', String(frameLimit));
  args.push(...passthroughSync(bin), '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
  if (frameLimit === 0) return;

  const child = spawn(bin.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new StderrTail();
  child.stderr.on('data', (c: Buffer) => tail.push(c));
  const exit = exitOf(child);
  const frameBytes = width * height * 3;
  const rest = { bytes: 0 };
  let count = 0;
  try {
    for await (const data of wholeFrames(child.stdout as AsyncIterable<Buffer>, frameBytes, rest)) {
      count++;
      yield { data, height, width, channels: 3 } satisfies RawImage;
    }
    const done = await exit;
    if (done.code !== 0) {
      throw new StagewardError(
        'SW_ERR_FFMPEG',
        `ffmpeg ${describeExit(done)} while decoding ${path} after ${count} frames: ${tail.text()}`,
        { cause: done.error },
      );
    }
    if (rest.bytes !== 0)
      throw new StagewardError('SW_ERR_FFMPEG', `ffmpeg ended mid-frame while decoding ${path} (${rest.bytes} of ${frameBytes} bytes)`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exit;
    }
  }
}

function scaleFilter(width: number, height: number, fit: FitMode): string | undefined {
  const size = `${width}:${height}`;
  switch (fit) {
    case 'stretch':
      return `scale=${size}:flags=area`;
    case 'pad':
      return `scale=${size}:force_original_aspect_ratio=decrease:flags=area,pad=${size}:(ow-iw)/2:(oh-ih)/2:black`;
    case 'crop':
      return `scale=${size}:force_original_aspect_ratio=increase:flags=area,crop=${size}`;
  }
}

/** Output every decoded frame once, never duplicated or dropped to fit a frame rate. */
function passthroughSync(bin: FfmpegBinary): string[] {
  const major = /^(\d+)\./.exec(bin.version)?.[1];
  return major !== undefined && Number(major) >= 5 ? ['-fps_mode', 'passthrough'] : ['-vsync', '0'];
}

// ---------------------------------------------------------------------------------------------- probe

export interface VideoInfo {
  codec: string;
  width: number;
  height: number;
  pixFmt: string;
  fps: number;
  durationSeconds: number;
  /** Frame count when the container says it, else duration x fps rounded. */
  frames: number;
}

/** A video's first video stream: codec, size, pixel format, fps, duration. */
export async function probeVideo(path: string, binary?: FfmpegBinary): Promise<VideoInfo> {
  const bin = binary ?? (await ffmpeg());
  if (bin.ffprobe !== null) {
    const args = [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=codec_name,width,height,pix_fmt,avg_frame_rate,r_frame_rate,nb_frames:format=duration',
      '-of',
      'json',
      path,
    ];
    const { stdout, stderr, exit } = await collect(bin.ffprobe, args);
    if (exit.code !== 0) throw new StagewardError('SW_ERR_FFMPEG', `ffprobe ${describeExit(exit)} on ${path}: ${stderr}`);
    return parseFfprobeJson(stdout, path);
  }
  const { stderr } = await collect(bin.path, ['-hide_banner', '-nostdin', '-i', path]);
  return parseFfmpegInfo(stderr, path); // `ffmpeg -i` alone always exits 1 ("At least one output file")
}

async function collect(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; exit: Exit }> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exit = await exitOf(child);
  return { stdout, stderr, exit };
}

/** Parse the stream and duration lines `ffmpeg -i <file>` prints to stderr. Pure. */
export function parseFfmpegInfo(stderr: string, label = 'video'): VideoInfo {
  const lines = stderr.split(/\r?\n/);
  const streamLine = lines.find((l) => /Stream #\d+:\d+.*: Video: /.test(l));
  if (streamLine === undefined) {
    const last = lines
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .slice(-3)
      .join(' | ');
    throw new StagewardError('SW_ERR_FFMPEG', `no video stream found in ${label}: ${last || '(no output)'}`);
  }
  // Drop parenthesised details first: "yuv420p(tv, bt709, progressive)" holds commas of its own.
  let flat = streamLine;
  for (let prev = ''; prev !== flat;) {
    prev = flat;
    flat = flat.replace(/\([^()]*\)/g, '');
  }
  flat = flat.replace(/\[[^\]]*\]/g, '');
  const parts = flat.split(',').map((p) => p.trim());
  const codec = /Video: (\S+)/.exec(parts[0] ?? '')?.[1] ?? 'unknown';
  const size = parts.map((p) => /^(\d+)x(\d+)/.exec(p)).find((m) => m !== null);
  const fpsText =
    parts.map((p) => /^([\d.]+)(k?) fps$/.exec(p)).find((m) => m !== null) ??
    parts.map((p) => /^([\d.]+)(k?) tbr$/.exec(p)).find((m) => m !== null);
  const dur = /Duration: (\d+):(\d+):([\d.]+)/.exec(stderr);
  if (!size) throw new StagewardError('SW_ERR_FFMPEG', `cannot read the frame size of ${label} from: ${streamLine.trim()}`);
  const fps = fpsText ? Number(fpsText[1]) * (fpsText[2] === 'k' ? 1000 : 1) : 0;
  const durationSeconds = dur ? Number(dur[1]) * 3600 + Number(dur[2]) * 60 + Number(dur[3]) : 0;
  return {
    codec,
    width: Number(size[1]),
    height: Number(size[2]),
    pixFmt: parts[1] && !/^\d+x\d+/.test(parts[1]) ? parts[1] : 'unknown',
    fps,
    durationSeconds,
    frames: Math.round(durationSeconds * fps),
  };
}

function parseFfprobeJson(text: string, label: string): VideoInfo {
  let doc: { streams?: Record<string, unknown>[]; format?: { duration?: string } };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    throw new StagewardError('SW_ERR_FFMPEG', `ffprobe printed no JSON for ${label}`);
  }
  const s = doc.streams?.[0];
  if (!s) throw new StagewardError('SW_ERR_FFMPEG', `no video stream found in ${label}`);
  const rate = (r: unknown): number => {
    const [n, d] = String(r ?? '0/1')
      .split('/')
      .map(Number);
    return d ? n! / d : (n ?? 0);
  };
  const fps = rate(s.avg_frame_rate) || rate(s.r_frame_rate);
  const durationSeconds = Number(doc.format?.duration ?? 0);
  const nb = Number(s.nb_frames);
  return {
    codec: String(s.codec_name ?? 'unknown'),
    width: Number(s.width),
    height: Number(s.height),
    pixFmt: String(s.pix_fmt ?? 'unknown'),
    fps,
    durationSeconds,
    frames: Number.isInteger(nb) && nb > 0 ? nb : Math.round(durationSeconds * fps),
  };
}
