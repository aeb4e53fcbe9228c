// Finding a Python interpreter that has torch and numpy, for the trainer, the exporter and the
// PyTorch side of benchmarks. Serving never needs Python.
//
// Order: $STAGEWARD_PYTHON, then `python3` on PATH, then /usr/bin/python3 (Debian's, where
// `apt-get install python3-torch python3-numpy` puts torch), then `python`.

import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TRAINER_DIR = join(dirname(fileURLToPath(import.meta.url)), 'train');

const INSTALL_HINT =
  'install torch for a Python 3 (on Debian/Ubuntu: `sudo apt-get install -y python3-torch python3-numpy python3-pytest`, ' +
  'or `pip install torch numpy pytest`), or point STAGEWARD_PYTHON at an interpreter that has it';

let found: string | undefined;

/** The interpreter to use; throws with install instructions when none has torch. */
export function findPython(): string {
  if (found !== undefined) return found;
  const override = process.env.STAGEWARD_PYTHON;
  const candidates = override ? [override] : ['python3', '/usr/bin/python3', 'python'];
  const tried: string[] = [];
  for (const cmd of candidates) {
    const r = spawnSync(cmd, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 120_000 });
    if (r.status === 0) return (found = cmd);
    tried.push(cmd);
  }
  const which = override
    ? `STAGEWARD_PYTHON=${override} cannot import torch and numpy`
    : `none of ${tried.join(', ')} can import torch and numpy`;
  throw new Error(`${which}; ${INSTALL_HINT}`);
}

/**
 * Export a package of the bundled configuration (models/train/configs/default.json) with seeded
 * random weights into `outDir`: what benchmarks time when no model is named.
 */
export function exportRandomPackage(outDir: string): void {
  console.log('exporting a random-weight package of the bundled configuration (models/train/configs/default.json)...');
  if (
    runTrainer(['-m', 'stageward_train.export', '--config', 'configs/default.json', '--random-seed', '0', '--out', outDir]).status !== 0
  ) {
    throw new Error('exporting the random-weight package failed');
  }
}

/** Run a module of the trainer package (models/train/stageward_train) with inherited stdio. */
export function runTrainer(args: string[], options: { capture?: boolean } = {}): { status: number; stdout: string } {
  const python = findPython();
  const r = spawnSync(python, args, {
    cwd: TRAINER_DIR,
    stdio: options.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
    encoding: 'utf8',
    env: { ...process.env, PYTHONUNBUFFERED: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status ?? 1, stdout: r.stdout ?? '' };
}
