// A server benchmarks start as a child process (`stageward serve`, the Python baseline): spawned in
// the repository root, ready once a line of its stdout names its URL, stopped with SIGTERM (SIGKILL
// after 15 s). Used by bench/server.ts and bench/scale.ts.

import { spawn, type ChildProcess } from 'node:child_process';
import { REPO_ROOT } from '../core/paths.ts';

const START_TIMEOUT_MS = 120_000;

export interface Started {
  child: ChildProcess;
  url: string;
  /** Resolves with the exit code (null after a signal) once the child exits. */
  exit: Promise<number | null>;
}

/** Spawn a server and wait for the stdout line that gives its URL (bounded by START_TIMEOUT_MS). */
export function startChild(name: string, cmd: string, args: string[], urlOf: (line: string) => string | undefined): Promise<Started> {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    let buffered = '';
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name}: ${why}${stderr ? `\n${stderr}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no URL on its output within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const url = urlOf(line);
        if (url !== undefined && !done) {
          done = true;
          clearTimeout(timer);
          child.stdout!.resume(); // keep draining its output
          resolve({ child, url, exit });
        }
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before listening`));
    child.once('error', (err) => fail(err.message));
  });
}

/** SIGTERM, then SIGKILL after 15 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
