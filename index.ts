// stageward's programmatic API (the package's entry): load a model package, run episodes, get progress
// and shaped rewards; or talk to a running reward server with the client.

export { parseCard, type ModelCard, type Stage, type ResizeMode } from './models/card.ts';
export {
  RewardEngine,
  Episode,
  type EpisodeOptions,
  type StepInput,
  type StepResult,
  type EpisodeSummary,
  type ProgressSource,
  type SmoothingOption,
} from './models/engine.ts';
export { StagewardError, ERROR_CODES, isStagewardError, type ErrorCode } from './core/errors.ts';
export { OnnxProgressModel, type ProgressModel, type LoadOptions, type SarmOutput } from './models/package.ts';
export { type ImageInput, type FrameSet, type PreprocessLimits, DEFAULT_PREPROCESS_LIMITS } from './models/preprocess.ts';
export { type RawImage } from './core/image.ts';
export {
  sarmProgress,
  fuseGrm,
  applyHop,
  hopBetween,
  smoothProgress,
  smoothingWeight,
  DEFAULT_EMA,
  type Composition,
  type ProgressSmoothing,
} from './models/progress.ts';
export {
  shapedReward,
  potential,
  telescopedShaping,
  type ShapingMode,
  type ShapingConfig,
  type PotentialTransform,
} from './models/shaping.ts';
export { type ExecutionProvider, type RuntimeOptions } from './models/runtime.ts';
export { BatchingProgressModel, type BatchingOptions } from './models/batching.ts';
export {
  StagewardClient,
  type ClientOptions,
  type HelloOptions,
  type ReadyReply,
  type EpisodeReply,
  type RewardReply,
  type SummaryReply,
  type StepOptions,
} from './server/client.ts';
export { WorkerProgressModel } from './models/worker-model.ts';
export { loadProgressModel, INFERENCE_THREADS, type InferenceThread } from './models/load.ts';
