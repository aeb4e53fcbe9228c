// `stageward train --dataset`: from LeRobot datasets to what the PyTorch trainer reads. Opens the
// datasets, plans the model (plan.ts), exports one training bundle per (dataset, task) into a cache
// keyed by the dataset's contents and the export's settings (an unchanged dataset is not exported
// again), and writes the trainer's model config and the card's provenance (the datasets, their
// hashes, the exact command) into the run's work folder. The CLI then runs the trainer on them.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { StagewardError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { BUNDLE_FORMAT, exportBundle } from '../../datasets/bundle.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { videoKey } from '../../datasets/format.ts';
import { planTraining, type BaseConfig, type PlanOptions, type TrainingPlan } from './plan.ts';

export interface DatasetTrainingOptions extends PlanOptions {
  datasets: string[];
  /** The config whose image, feature size, window and architecture the model takes (a trainer config or a model card). */
  baseConfigPath: string;
  /** The trainer's work folder; the config and provenance files are written here. */
  workDir: string;
  /** Where bundles are cached (default: $XDG_CACHE_HOME/stageward/bundles, else ~/.cache/stageward/bundles). */
  cacheDir?: string;
  /** The command as the user typed it, for the card. */
  command: string;
  /** Told about each bundle as it is exported or found in the cache. */
  onBundle?: (event: BundleEvent) => void;
}

export type BundleEvent =
  | { kind: 'cached'; dir: string; task: string; dataset: string }
  | { kind: 'export-start'; dir: string; task: string; dataset: string; frames: number }
  | { kind: 'export-progress'; done: number; total: number }
  | { kind: 'export-done'; dir: string };

export interface PreparedTraining {
  plan: TrainingPlan;
  /** Bundle folders, one per plan bundle, and the config task each trains. */
  bundles: string[];
  tasks: string[];
  configPath: string;
  provenancePath: string;
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'stageward', 'bundles');
}

/** Open, plan, export (or reuse) the bundles and write the trainer's inputs. */
export async function prepareDatasetTraining(o: DatasetTrainingOptions): Promise<PreparedTraining> {
  const roots = o.datasets.map((d) => resolve(d));
  const dup = roots.find((r, i) => roots.indexOf(r) !== i);
  if (dup !== undefined) throw new StagewardError('SW_ERR_DATASET_SPEC', `--dataset ${dup} is given twice`);
  const datasets = await Promise.all(roots.map((r) => LeRobotDataset.open(r)));
  const base = await readBaseConfig(o.baseConfigPath);
  const plan = planTraining(datasets, base, o);
  const hashes = await Promise.all(roots.map((r) => datasetHash(r)));
  const cache = resolve(o.cacheDir ?? defaultCacheDir());
  await mkdir(cache, { recursive: true });

  const bundles: string[] = [];
  for (const b of plan.bundles) {
    const settings = {
      format: BUNDLE_FORMAT,
      dataset: hashes[b.dataset],
      episodes: b.episodes,
      cameras: plan.views.map((v) => v.camera),
      views: plan.views.map((v) => v.name),
      stages: b.stages,
      image: base.image,
    };
    const key = createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16);
    const dir = join(cache, `${b.task.slice(0, 32)}-${key}`);
    const dataset = roots[b.dataset]!;
    if (await isBundle(dir)) {
      o.onBundle?.({ kind: 'cached', dir, task: b.task, dataset });
    } else {
      const ds = datasets[b.dataset]!;
      const frames = b.episodes.reduce((n, i) => n + ds.episode(i).length, 0);
      o.onBundle?.({ kind: 'export-start', dir, task: b.task, dataset, frames });
      await exportBundle(dataset, dir, {
        height: base.image.height,
        width: base.image.width,
        resize: base.image.resize as 'stretch',
        episodes: b.episodes,
        views: plan.views.map((v) => v.camera),
        viewNames: plan.views.map((v) => v.name),
        stages: b.stages,
        overwrite: true,
        onProgress: (done, total) => o.onBundle?.({ kind: 'export-progress', done, total }),
      });
      o.onBundle?.({ kind: 'export-done', dir });
    }
    bundles.push(dir);
  }

  await mkdir(o.workDir, { recursive: true });
  const configPath = join(o.workDir, 'dataset-config.json');
  const provenancePath = join(o.workDir, 'dataset-provenance.json');
  await writeFileAtomic(configPath, JSON.stringify(plan.config, null, 2) + '\n');
  const provenance = {
    command: o.command,
    datasets: roots.map((path, d) => ({
      path,
      sha256: hashes[d]!,
      codebase_version: datasets[d]!.info.codebase_version,
      robot_type: datasets[d]!.info.robot_type,
      episodes: datasets[d]!.episodes.length,
      fps: datasets[d]!.fps,
      tasks: plan.bundles
        .filter((b) => b.dataset === d)
        .map((b) => ({ task: b.task, instruction: b.instruction, episodes: b.episodes.length, priors_from: b.priorsFrom })),
    })),
    views: plan.views.map((v) => ({ name: v.name, camera: videoKey(v.camera) })),
  };
  await writeFileAtomic(provenancePath, JSON.stringify(provenance, null, 2) + '\n');
  return { plan, bundles, tasks: plan.bundles.map((b) => b.task), configPath, provenancePath };
}

async function readBaseConfig(path: string): Promise<BaseConfig> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new StagewardError('SW_ERR_CONFIG', `cannot read the base config ${path}: ${(err as Error).message}`);
  }
  const c = doc as Partial<BaseConfig> | null;
  for (const key of ['name', 'version', 'image', 'feature_dim', 'window', 'fps', 'progress', 'grm'] as const)
    if (c === null || typeof c !== 'object' || c[key] === undefined)
      throw new StagewardError('SW_ERR_CONFIG', `the base config ${path} has no "${key}"`);
  return c as BaseConfig;
}

/** The folder of a recursive readdir entry (`parentPath` from Node 20.12, `path` before it). */
function parentOf(e: { parentPath?: string; path?: string }): string {
  return e.parentPath ?? e.path ?? '';
}

async function isBundle(dir: string): Promise<boolean> {
  try {
    const header = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as { format?: unknown };
    return header.format === BUNDLE_FORMAT;
  } catch {
    return false;
  }
}

/** The folders of a LeRobot dataset; files beside them (sarm_progress.parquet, RA-BC weights) are outputs, not the dataset. */
const HASHED_FOLDERS = ['meta', 'data', 'videos', 'images'];

/**
 * A dataset's content hash, over its LeRobot folders (meta, data, videos, images; so scoring it, which
 * writes sarm_progress.parquet beside them, does not change it): the bytes of every file under meta/ and data/ (the tables, annotations
 * and statistics), and the path and size of every other file (videos and images, too large to read
 * for a cache key), in sorted path order.
 */
export async function datasetHash(root: string): Promise<string> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) =>
      relative(root, join(parentOf(e), e.name))
        .split(sep)
        .join('/'),
    )
    .filter((p) => HASHED_FOLDERS.some((f) => p.startsWith(`${f}/`)) && !p.split('/').some((part) => part.startsWith('.')))
    .sort();
  const h = createHash('sha256');
  for (const p of files) {
    const full = join(root, p);
    if (p.startsWith('meta/') || p.startsWith('data/')) {
      h.update(`${p}\0content\0`);
      for await (const chunk of createReadStream(full)) h.update(chunk as Buffer);
    } else {
      h.update(`${p}\0size\0${(await stat(full)).size}\0`);
    }
  }
  return h.digest('hex');
}
