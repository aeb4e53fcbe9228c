// All-or-nothing output folders and files: a dataset or bundle is built in a hidden sibling folder
// (`.<name>.partial-<pid>-<random>`) and renamed into place only when complete, so an interrupted
// run never leaves something at the target that looks finished. Single files are written beside
// their final name and renamed over it.

import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { StagewardError } from './errors.ts';

/** Whether anything (file or folder) is at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `dir` is absent or an empty folder. */
async function isFreeTarget(dir: string): Promise<boolean> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return false;
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

/** Refuse an existing non-empty target unless `overwrite`. */
export async function checkTarget(dir: string, overwrite: boolean, what: string): Promise<void> {
  if (!overwrite && !(await isFreeTarget(dir))) {
    throw new StagewardError('SW_ERR_DATASET_EXISTS', `${dir} already exists and is not empty; pass overwrite to replace the ${what}`);
  }
}

/** Create the hidden staging sibling of `dir` (on the same file system, so rename is atomic). */
export async function makeStaging(dir: string): Promise<string> {
  const target = resolve(dir);
  await mkdir(dirname(target), { recursive: true });
  const staging = join(dirname(target), `.${basename(target)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  return staging;
}

/** Move a finished staging folder to `dir`, replacing what is there only when `overwrite`. */
export async function commitStaging(staging: string, dir: string, overwrite: boolean, what: string): Promise<void> {
  const target = resolve(dir);
  await checkTarget(target, overwrite, what);
  let old: string | undefined;
  try {
    await stat(target);
    old = join(dirname(target), `.${basename(target)}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
    await rename(target, old);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await rename(staging, target);
  } catch (err) {
    if (old !== undefined) await rename(old, target).catch(() => {}); // put the previous one back
    throw err;
  }
  if (old !== undefined) await rm(old, { recursive: true, force: true });
}

export async function removeStaging(staging: string): Promise<void> {
  await rm(staging, { recursive: true, force: true });
}

/** Write `data` to `path` through a temporary sibling and a rename. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
