// (RA-)weighted behaviour cloning of the gated-linear state policy from a LeRobot v3.0 dataset, saved
// with its provenance: what `stageward sim train-bc` runs (evaluate-file.ts: what `sim eval-policy` runs).
//
//   const run = await trainBcFromDataset({ dataset: 'pp-demo', weights: 'pp-demo/rabc_weights.parquet', out: 'runs/rabc.json' });

import { resolve } from 'node:path';
import { LeRobotDataset } from '../../datasets/reader.ts';
import type { TaskId } from '../../sim/tasks/task.ts';
import { DEFAULT_RIDGE, fitBehaviourCloning, type BcFit } from './bc.ts';
import { applyWeights, readBcDataset, readSampleWeights, type BcDataset, type WeightedSamples } from './dataset-samples.ts';

export interface TrainBcOptions {
  /** LeRobot v3.0 dataset folder with observation.state and action. */
  dataset: string;
  /** Per-frame weights (a parquet as `stageward rabc` writes), or null for plain behaviour cloning (every frame 1). */
  weights: string | null;
  /** Episode indices to train on; default all. */
  episodes?: number[];
  /** Ridge strength relative to the total weight; default DEFAULT_RIDGE. */
  ridge?: number;
  /** The simulator task; default from the dataset's episodes. */
  task?: TaskId;
  /** Policy file to write (JSON, atomically). */
  out: string;
}

export interface TrainBcHooks {
  /** Before the episodes are read: how many will be. */
  onReadStart?: (episodes: number) => void;
  /** After each episode read. */
  onEpisodeRead?: (done: number) => void;
  /** The episodes are read (or reading failed). */
  onReadEnd?: () => void;
}

export interface TrainBcResult {
  data: BcDataset;
  /** The weights file, absolute, or null for uniform weights. */
  weightsPath: string | null;
  weighted: WeightedSamples;
  fit: BcFit;
  /** Time of the fit alone, ms. */
  fitMs: number;
  /** The policy file written, absolute. */
  out: string;
  /** What the policy file records about its training. */
  provenance: Record<string, unknown>;
}

/** Read the dataset, apply the weights, fit, and save the policy with its provenance. */
export async function trainBcFromDataset(o: TrainBcOptions, hooks: TrainBcHooks = {}): Promise<TrainBcResult> {
  const ridge = o.ridge ?? DEFAULT_RIDGE;
  const ds = await LeRobotDataset.open(o.dataset);
  const selected = o.episodes ?? ds.episodes.map((e) => e.index);
  hooks.onReadStart?.(selected.length);
  let data: BcDataset;
  try {
    data = await readBcDataset(ds, {
      episodes: selected,
      ...(o.task ? { task: o.task } : {}),
      onEpisode: (done) => hooks.onEpisodeRead?.(done),
    });
  } finally {
    hooks.onReadEnd?.();
  }
  const weightsPath = o.weights === null ? null : resolve(o.weights);
  const weighted = applyWeights(data, weightsPath === null ? new Map() : await readSampleWeights(weightsPath), weightsPath ?? 'uniform');
  const t0 = performance.now();
  const fit = fitBehaviourCloning(data.task, weighted.samples, { ridge });
  const fitMs = performance.now() - t0;
  const seeds = data.episodes.map((e) => e.seed).filter((s): s is number => s !== null);
  const out = resolve(o.out);
  const provenance = {
    trainer: 'stageward sim train-bc',
    dataset: data.root,
    episodes: data.episodes.map((e) => e.index),
    weights: weightsPath ?? 'uniform',
    ridge,
    samples: fit.samples,
    used_samples: fit.used,
    weight_sum: fit.weightSum,
    mean_weight: weighted.meanWeight,
    share_weight_below_1: weighted.shareBelowOne,
    share_weight_0: weighted.shareZero,
    frames_without_weight: weightsPath === null ? 0 : weighted.missing,
    residual_rms: fit.residualRms,
    dataset_seed_range: seeds.length > 0 ? [Math.min(...seeds), Math.max(...seeds)] : null,
    created_at: new Date().toISOString(),
  };
  await fit.policy.save(out, provenance);
  return { data, weightsPath, weighted, fit, fitMs, out, provenance };
}
