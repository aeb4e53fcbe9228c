// The one place that chooses where a model's graphs run: on a worker thread (WorkerProgressModel: the
// caller's event loop stays free while ONNX Runtime computes) or on the calling thread
// (OnnxProgressModel: no message hop, for batch jobs that have nothing else to do meanwhile).

import type { LoadOptions, ProgressModel } from './package.ts';
import { OnnxProgressModel } from './package.ts';
import { WorkerProgressModel } from './worker-model.ts';

export const INFERENCE_THREADS = ['worker', 'main'] as const;
export type InferenceThread = (typeof INFERENCE_THREADS)[number];

/** Load the package at `dir` with its graphs on the `thread` chosen. */
export function loadProgressModel(dir: string, thread: InferenceThread, options: LoadOptions = {}): Promise<ProgressModel> {
  return thread === 'worker' ? WorkerProgressModel.load(dir, options) : OnnxProgressModel.load(dir, options);
}
