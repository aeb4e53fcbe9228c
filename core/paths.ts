// Where the repository's bundled assets live, independent of the working directory.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ZOO_DIR = join(REPO_ROOT, 'models', 'zoo');
export const FIXTURE_MODEL_DIR = join(REPO_ROOT, 'test', 'fixtures', 'tiny-model');

/**
 * The model `npm start` serves when none is named: the first bundled model in models/zoo, else the
 * test fixture (random weights: its numbers show the pipeline working, not a trained reward).
 */
export function defaultModelDir(): { dir: string; trained: boolean } {
  for (const name of ['pick_place']) {
    const dir = join(ZOO_DIR, name);
    if (existsSync(join(dir, 'model.json'))) return { dir, trained: true };
  }
  return { dir: FIXTURE_MODEL_DIR, trained: false };
}
