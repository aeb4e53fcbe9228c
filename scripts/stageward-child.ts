// What the experiment scripts share: the repository root, `stageward` run as a child process with its
// output kept in a log file, and a timestamp for default output folders.

import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'stageward.js');

/** UTC date-time as YYYYMMDD-HHMMSS, for folder names. */
export const stamp = (): string => new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

/**
 * Run `stageward <args>` in the repository root and write its stdout and stderr to `log`. Resolves with
 * stdout; a non-zero exit rejects with the last `tailLines` lines of output and the log's path.
 */
export async function runStageward(args: string[], log: string, tailLines = 15): Promise<string> {
  await mkdir(dirname(log), { recursive: true });
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number>((res, rej) => {
    child.on('error', rej);
    child.on('close', (c) => res(c ?? 1));
  });
  await writeFile(log, `$ stageward ${args.join(' ')}\n${out}${err ? `\n--- stderr ---\n${err}` : ''}`);
  if (code !== 0) {
    const tail = `${out}\n${err}`.trim().split('\n').slice(-tailLines).join('\n');
    throw new Error(`stageward ${args.slice(0, 2).join(' ')} failed with exit status ${code} (log: ${log}):\n${tail}`);
  }
  return out;
}

/**
 * Run `stageward <args>` (output in `log`) and parse its last stdout line, which every verb prints as
 * one JSON object. Anything else is an error naming the log, never an empty result.
 */
export async function stagewardJson(args: string[], log: string): Promise<Record<string, unknown>> {
  const last = (await runStageward(args, log)).trim().split('\n').at(-1) ?? '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(last);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(
      `stageward ${args.slice(0, 2).join(' ')}: the last output line is not a JSON object (log: ${log}): ${last.slice(0, 200)}`,
    );
  }
  return parsed as Record<string, unknown>;
}
