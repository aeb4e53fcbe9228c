// A deterministic state-based policy: action = clip(W^T phi(state), -1, 1), phi the phase-gated
// features of learn/policy/features.ts, W [GATED_FEATURE_DIM x 4] (ee dx, dy, dz, gripper). Behaviour
// cloning fits W by weighted least squares (learn/policy/bc.ts); the RL learner perturbs it
// (learn/rl/power.ts). Saved as JSON (written atomically) with its provenance.

import { readFile } from 'node:fs/promises';
import { StagewardError } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/files.ts';
import { getTask } from '../../sim/tasks/index.ts';
import type { SimTask, TaskId } from '../../sim/tasks/task.ts';
import { GATED_FEATURE_DIM, gatedFeatures } from './features.ts';

export const ACTION_DIM = 4;
export const POLICY_FORMAT = 'stageward-policy/1';

export interface PolicyFile {
  format: typeof POLICY_FORMAT;
  kind: 'gated-linear';
  task: TaskId;
  featureDim: number;
  actionDim: number;
  /** Row-major [featureDim x actionDim]. */
  weights: number[];
  provenance: Record<string, unknown>;
}

export class GatedLinearPolicy {
  readonly task: SimTask;
  /** Row-major [GATED_FEATURE_DIM x ACTION_DIM]; never mutated after construction. */
  private readonly w: Float64Array;
  private readonly phi = new Float64Array(GATED_FEATURE_DIM);

  constructor(task: SimTask | TaskId, weights: ArrayLike<number>) {
    this.task = typeof task === 'string' ? getTask(task) : task;
    if (weights.length !== GATED_FEATURE_DIM * ACTION_DIM) {
      throw new StagewardError(
        'SW_ERR_BAD_VALUE',
        `a ${this.task.id} policy has ${GATED_FEATURE_DIM * ACTION_DIM} weights, got ${weights.length}`,
      );
    }
    this.w = Float64Array.from(weights);
    if (this.w.some((x) => !Number.isFinite(x))) throw new StagewardError('SW_ERR_BAD_VALUE', 'policy weights must be finite numbers');
  }

  static zeros(task: SimTask | TaskId): GatedLinearPolicy {
    return new GatedLinearPolicy(task, new Float64Array(GATED_FEATURE_DIM * ACTION_DIM));
  }

  /** The action for observation.state, each component clipped to [-1, 1]. */
  act(state: ArrayLike<number>): Float32Array {
    const f = gatedFeatures(this.task, state, this.phi);
    const out = new Float32Array(ACTION_DIM);
    for (let k = 0; k < ACTION_DIM; k++) {
      let s = 0;
      for (let i = 0; i < f.length; i++) s += f[i]! * this.w[i * ACTION_DIM + k]!;
      out[k] = Math.min(1, Math.max(-1, s));
    }
    return out;
  }

  /** A copy of the weights (the RL learner's parameter vector). */
  params(): Float64Array {
    return Float64Array.from(this.w);
  }

  withParams(params: ArrayLike<number>): GatedLinearPolicy {
    return new GatedLinearPolicy(this.task, params);
  }

  toFile(provenance: Record<string, unknown> = {}): PolicyFile {
    return {
      format: POLICY_FORMAT,
      kind: 'gated-linear',
      task: this.task.id,
      featureDim: GATED_FEATURE_DIM,
      actionDim: ACTION_DIM,
      weights: Array.from(this.w),
      provenance,
    };
  }

  async save(path: string, provenance: Record<string, unknown> = {}): Promise<void> {
    await writeFileAtomic(path, `${JSON.stringify(this.toFile(provenance))}\n`);
  }

  static fromFile(doc: unknown, source = 'policy'): GatedLinearPolicy {
    const d = doc as Partial<PolicyFile> | null;
    if (!d || typeof d !== 'object' || d.format !== POLICY_FORMAT || d.kind !== 'gated-linear') {
      throw new StagewardError('SW_ERR_POLICY', `${source} is not a ${POLICY_FORMAT} gated-linear policy file`);
    }
    if (d.featureDim !== GATED_FEATURE_DIM || d.actionDim !== ACTION_DIM || !Array.isArray(d.weights)) {
      throw new StagewardError(
        'SW_ERR_POLICY',
        `${source} was made for ${d.featureDim} features x ${d.actionDim} actions; this build uses ${GATED_FEATURE_DIM} x ${ACTION_DIM}`,
      );
    }
    return new GatedLinearPolicy(d.task as TaskId, d.weights);
  }

  static async load(path: string): Promise<{ policy: GatedLinearPolicy; provenance: Record<string, unknown> }> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new StagewardError('SW_ERR_POLICY', `cannot read the policy file ${path}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new StagewardError('SW_ERR_POLICY', `${path} is not valid JSON`);
    }
    return { policy: GatedLinearPolicy.fromFile(doc, path), provenance: ((doc as PolicyFile).provenance ?? {}) as Record<string, unknown> };
  }
}
