// Shared test helpers: fixture paths, parity arrays, temp copies of the fixture package, and AV1 test videos.

import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { isStagewardError, StagewardError, type ErrorCode } from '../core/errors.ts';
import { readNpy, type NpyArray } from '../datasets/npy.ts';
import { FIXTURE_MODEL_DIR, REPO_ROOT } from '../core/paths.ts';

export { FIXTURE_MODEL_DIR };
export const PARITY_DIR = join(REPO_ROOT, 'test', 'fixtures', 'parity');

export interface ParityManifest {
  task_index: number;
  tolerance: { abs: number };
  /** The recorded episode's arrays by role; `progress` names the trainer's SARM progress per composition rule. */
  episode: { progress: Record<'argmax' | 'expected', string> };
  arrays: Record<string, { file: string }>;
}

export async function parityManifest(): Promise<ParityManifest> {
  return JSON.parse(await readFile(join(PARITY_DIR, 'manifest.json'), 'utf8')) as ParityManifest;
}

export async function parityArray(name: string): Promise<NpyArray> {
  const m = await parityManifest();
  const entry = m.arrays[name];
  if (!entry) throw new Error(`parity array ${name} is not in the manifest`);
  return readNpy(join(PARITY_DIR, entry.file));
}

/** A temp copy of the fixture package with model.json passed through `edit`. */
export async function fixtureCopy(edit: (card: Record<string, any>) => void = () => {}): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'stageward-test-')), 'model');
  await cp(FIXTURE_MODEL_DIR, dir, { recursive: true });
  const card = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as Record<string, any>;
  edit(card);
  await writeFile(join(dir, 'model.json'), JSON.stringify(card));
  return dir;
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode, messagePart?: string): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(isStagewardError(err), `expected a StagewardError ${code}, got ${String(err)}`).toBe(true);
  expect((err as { code: string }).code).toBe(code);
  if (messagePart !== undefined) expect((err as Error).message).toContain(messagePart);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export interface CliRun {
  code: number;
  stdout: string[];
  stderr: string;
}

/**
 * Run the `stageward` CLI in process, capturing what it prints (console.log -> stdout; warn/error -> stderr).
 * The CLI (every command and what it pulls in, mathjs included: about 2 s) is imported on first use, so
 * the many test files that import this module for its small helpers do not pay for it.
 */
export async function runCli(args: string[]): Promise<CliRun> {
  const { main } = await import('../cli/main.ts');
  const stdout: string[] = [];
  const stderr: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void stdout.push(a.join(' ')));
  vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void stderr.push(a.join(' ')));
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void stderr.push(a.join(' ')));
  try {
    const code = await main(args);
    return { code, stdout, stderr: stderr.join('\n') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** The StagewardError `f` throws; fails the test when it returns or throws anything else. */
export function refusal(f: () => unknown): StagewardError {
  try {
    f();
  } catch (err) {
    if (err instanceof StagewardError) return err;
    throw err;
  }
  throw new Error('expected a StagewardError');
}

/** What `p` rejects with; fails the test when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** `stageward train` flags for a run of seconds on a tiny fixture: half a minute's budget, one epoch per phase, a third held out. */
export const TINY_TRAINING_FLAGS: readonly string[] = [
  '--time-budget-min',
  '0.5',
  '--epochs',
  '1',
  '--head-epochs',
  '1',
  '--heldout-frac',
  '0.34',
];

/**
 * Transcode `input` to AV1 at `output` with libaom through the ffmpeg at `ffmpegPath` (the bundled
 * one has it), at its fastest setting; `gop` frames between keyframes, `frames` to stop early.
 */
export function transcodeToAv1(ffmpegPath: string, input: string, output: string, o: { crf: number; gop?: number; frames?: number }): void {
  const r = spawnSync(ffmpegPath, [
    ...['-hide_banner', '-loglevel', 'error', '-i', input],
    ...(o.frames === undefined ? [] : ['-frames:v', String(o.frames)]),
    ...['-c:v', 'libaom-av1', '-strict', 'experimental', '-cpu-used', '8', '-crf', String(o.crf), '-b:v', '0'],
    ...(o.gop === undefined ? [] : ['-g', String(o.gop)]),
    ...['-pix_fmt', 'yuv420p', '-y', output],
  ]);
  if (r.status !== 0) throw new Error(`AV1 transcoding of ${input} failed (${r.status ?? r.signal}): ${r.stderr.toString().trim()}`);
}
