// The reward engine over one scripted-expert episode in the MuJoCo simulator, in process (what
// `stageward demo` runs): three cameras sent as JPEG frames through a RewardEngine episode, step by step,
// with the simulator's true stage beside the model's.
//
//   const summary = await runEngineDemo({ preset: 'mixed', seed: 3 }, { onStep: (r, info) => console.log(r.progress, info.stageName) });

import { defaultModelDir } from '../../core/paths.ts';
import type { ModelCard } from '../../models/card.ts';
import { RewardEngine, type EpisodeSummary, type ProgressSource, type StepResult } from '../../models/engine.ts';
import { OnnxProgressModel } from '../../models/package.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import type { ShapingMode } from '../../models/shaping.ts';
import { SimEnv, type StepInfo } from '../env.ts';
import type { ExpertPreset } from '../expert.ts';
import { createRenderer } from '../render/index.ts';
import type { TaskId } from '../tasks/task.ts';
import { expertEpisode } from './robot.ts';

export const DEMO_DEFAULTS = {
  task: 'pick_place' as TaskId,
  preset: 'expert' as ExpertPreset,
  seed: 0,
  /** Camera resolution in pixels (the engine resizes to the model). */
  size: 128,
  shaping: 'pbrs' as ShapingMode,
  gamma: 0.99,
  progress: 'sarm' as ProgressSource,
  providers: ['cpu'] as ExecutionProvider[],
};

export interface EngineDemoOptions {
  /** Model package folder; default the bundled model, else the test fixture (core/paths.ts defaultModelDir). */
  model?: string;
  task?: string;
  preset?: ExpertPreset;
  seed?: number;
  size?: number;
  shaping?: ShapingMode;
  gamma?: number;
  progress?: ProgressSource;
  providers?: ExecutionProvider[];
}

export interface EngineDemoHooks {
  /** The model is loaded: its card, folder, whether it is a trained model (not the random-weight fixture), its providers. */
  onModel?: (m: { card: ModelCard; dir: string; trained: boolean; providers: Record<string, ExecutionProvider> }) => void;
  /** The engine episode and the simulator are ready. */
  onEpisodeStart?: (e: {
    task: string;
    instruction: string;
    preset: ExpertPreset;
    seed: number;
    views: readonly string[];
    size: number;
    shaping: ShapingMode;
    gamma: number;
  }) => void;
  /** Each engine step, with the simulator's info of the state it scored. */
  onStep?: (r: StepResult, info: StepInfo) => void;
}

/** Run the demo episode; resolves to the engine's summary of it. */
export async function runEngineDemo(options: EngineDemoOptions = {}, hooks: EngineDemoHooks = {}): Promise<EpisodeSummary> {
  const o = { ...DEMO_DEFAULTS, ...definedOnly(options) };
  const picked = options.model ? { dir: options.model, trained: true } : defaultModelDir();
  const model = await OnnxProgressModel.load(picked.dir, { providers: o.providers });
  try {
    hooks.onModel?.({ card: model.card, dir: picked.dir, trained: picked.trained, providers: model.providers });
    const engine = new RewardEngine(model);
    const episode = await engine.start({ task: o.task, gamma: o.gamma, shaping: o.shaping, progress: o.progress });
    const env = await SimEnv.create({ task: o.task, image: { width: o.size, height: o.size }, renderer: createRenderer() });
    try {
      const { task, preset, seed, size, shaping, gamma } = o;
      hooks.onEpisodeStart?.({ task, instruction: env.task.instruction, preset, seed, views: model.card.views, size, shaping, gamma });
      await expertEpisode(env, o.preset, o.seed, async (frames, transition, info) => {
        const r = await episode.step({ frames, ...transition });
        hooks.onStep?.(r, info);
        return r.done;
      });
    } finally {
      env.close();
    }
    return await episode.end();
  } finally {
    await model.close();
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
