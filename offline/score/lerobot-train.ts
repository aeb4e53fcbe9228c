// The `lerobot-train` flags that train a policy with RA-BC weights from a `sarm_progress.parquet`
// stageward wrote (LeRobot's SampleWeightingConfig: type, progress_path, head_mode, kappa). Pure.
//
// head_mode picks the column: `sparse` reads progress_sparse (stageward's SARM head, the causal
// Phi the server gives online); `dense` reads progress_dense, which in stageward is the GRM head's
// fused progress (`stageward score --dense`), NOT a SARM head trained on dense subtask annotations
// as in LeRobot's `dense_only` / `dual` modes. Both are progress in [0, 1] per frame.

import { resolve } from 'node:path';
import { DEFAULT_KAPPA } from '../rabc/weights.ts';

export function lerobotTrainFlags(progressFile: string, head: 'sparse' | 'dense' = 'sparse'): string[] {
  return [
    '--sample_weighting.type=rabc',
    `--sample_weighting.progress_path=${resolve(progressFile)}`,
    `--sample_weighting.head_mode=${head}`,
    `--sample_weighting.kappa=${DEFAULT_KAPPA}`, // LeRobot's default too
  ];
}
