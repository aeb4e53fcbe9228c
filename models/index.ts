// stageward's programmatic API: load a model package, run episodes, get progress and shaped rewards.

export { parseCard, type ModelCard, type Stage, type ResizeMode } from './card.ts';
export { RewardEngine, Episode, type EpisodeOptions, type StepInput, type StepResult, type EpisodeSummary, type ProgressSource } from './engine.ts';
export { StagewardError, ERROR_CODES, isStagewardError, type ErrorCode } from './errors.ts';
export { OnnxProgressModel, type ProgressModel, type LoadOptions } from './package.ts';
export { type ImageInput, type RawImage, type FrameSet, type PreprocessLimits, DEFAULT_PREPROCESS_LIMITS } from './preprocess.ts';
export { sarmProgress, fuseGrm, applyHop, hopBetween, type Composition } from './progress.ts';
export { shapedReward, potential, telescopedShaping, type ShapingMode, type ShapingConfig, type PotentialTransform } from './shaping.ts';
export { type ExecutionProvider, type RuntimeOptions } from './runtime.ts';
export { BatchingProgressModel, type BatchingOptions } from './batching.ts';
export { StagewardClient, type ClientOptions, type HelloOptions, type ReadyReply, type EpisodeReply, type RewardReply, type SummaryReply, type StepOptions } from '../server/client.ts';
export { WorkerProgressModel } from './worker-model.ts';
