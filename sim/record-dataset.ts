// Recording a LeRobot v3.0 dataset (what `stageward sim record` runs): scripted-expert
// demonstrations, or rollouts of a state policy with exploration noise and perturbations
// (rollout.ts); the simulator with the renderer on (record.ts) feeding the dataset writer
// (datasets/writer.ts), which writes the dataset atomically at `out` on finish and removes it on
// abort. The stage priors written are the task's own (the ones annotation.true_progress is composed
// with), so the span labels and the simulator's truth agree on what each stage is worth. The task's
// annotator knows only stages: the writer stores its stage spans and priors as SARM's sparse
// annotations and, unchanged, as the dense ones too (datasets/writer.ts), so the dense head of SARM's
// `dense_only` / `dual` modes learns the same stages, not a finer split.
//
//   const rec = await DatasetRecording.create({ task: 'pick_place', out: 'pp-demo', episodes: 20, preset: 'mixed', seed: 1 });
//   const { succeeded } = await rec.run();
//   const rollout = { noise: 0.3, perturb: 'mixed' };
//   const roll = await DatasetRecording.create({ task: 'pick_place', out: 'pp-roll', policy: { policy, name: 'weak', rollout } });

import { StagewardError } from '../core/errors.ts';
import { LeRobotDatasetWriter } from '../datasets/writer.ts';
import type { DatasetSpec } from '../datasets/types.ts';
import { SimEnv, type SimEnvOptions } from './env.ts';
import type { ExpertPreset } from './expert.ts';
import { recordEpisodes, SEEDS_PER_RUN, type EpisodeSource } from './record.ts';
import { createRenderer } from './render/index.ts';
import type { RandomizationOptions } from './scenes/appearance.ts';

export const RECORD_DEFAULTS = {
  episodes: 20,
  preset: 'expert' as ExpertPreset,
  /** Run seed: episode i uses simulator seed seed * SEEDS_PER_RUN + i. */
  seed: 0,
  /** Square camera resolution. */
  size: 96,
  /** Control rate and dataset fps. */
  hz: 10,
  /** End an episode after the expert idles this many control steps. */
  maxIdle: 20,
};

/** The domain-randomisation knobs by name, and the scene option each turns on. */
const KNOB_OPTIONS = { lights: 'lights', colors: 'colors', camera: 'cameraJitter', distractors: 'distractors' } as const satisfies Record<
  string,
  keyof RandomizationOptions
>;
export type RandomizationKnob = keyof typeof KNOB_OPTIONS;
export const RANDOMIZATION_KNOBS = Object.keys(KNOB_OPTIONS) as RandomizationKnob[];

export function isRandomizationKnob(name: string): name is RandomizationKnob {
  return Object.hasOwn(KNOB_OPTIONS, name);
}

/** The scene's randomisation options with the named knobs on, in the order named. */
export function randomizationOf(knobs: readonly RandomizationKnob[]): RandomizationOptions {
  const out: RandomizationOptions = {};
  for (const k of knobs) out[KNOB_OPTIONS[k]] = true;
  return out;
}

export interface RecordDatasetOptions {
  task: string;
  /** Dataset folder to create. */
  out: string;
  /** Default RECORD_DEFAULTS.episodes. */
  episodes?: number;
  preset?: ExpertPreset;
  seed?: number;
  /** Camera resolution; an odd size is rounded up (H.264 yuv420p needs even sides). */
  size?: number;
  hz?: number;
  randomize?: RandomizationOptions;
  /** Replace an existing dataset at `out`. */
  overwrite?: boolean;
  maxIdle?: number;
  /**
   * Cameras to record and the names they get in the dataset (default: every simulator camera under
   * its own name), e.g. [{ name: 'top', view: 'front' }, { name: 'wrist', view: 'wrist' }] for a
   * dataset shaped like a real robot's `observation.images.top` / `observation.images.wrist`.
   */
  cameras?: { name: string; view: string }[];
  /** Roll out this state policy instead of the scripted expert (`preset` and `maxIdle` then do not apply). */
  policy?: Omit<Extract<EpisodeSource, { kind: 'policy' }>, 'kind'>;
}

export interface RecordedDatasetSummary {
  episodes: number;
  /** Episodes in which the task succeeded. */
  succeeded: number;
  frames: number;
}

export class DatasetRecording {
  /** What the dataset holds: its views, fps, features. */
  readonly spec: DatasetSpec;
  /** The frame side actually recorded (even). */
  readonly size: number;
  readonly #writer: LeRobotDatasetWriter;
  readonly #envOptions: SimEnvOptions;
  readonly #o: Required<Omit<RecordDatasetOptions, 'randomize' | 'overwrite' | 'policy' | 'cameras'>>;
  readonly #source: EpisodeSource;
  /** Dataset camera name -> simulator view, or null: every view under its own name. */
  readonly #cameras: { name: string; view: string }[] | null;

  private constructor(
    writer: LeRobotDatasetWriter,
    spec: DatasetSpec,
    size: number,
    envOptions: SimEnvOptions,
    o: Required<Omit<RecordDatasetOptions, 'randomize' | 'overwrite' | 'policy' | 'cameras'>>,
    source: EpisodeSource,
    cameras: { name: string; view: string }[] | null,
  ) {
    this.#cameras = cameras;
    this.#writer = writer;
    this.spec = spec;
    this.size = size;
    this.#envOptions = envOptions;
    this.#o = o;
    this.#source = source;
  }

  /** Check the options, read the dataset's spec off the simulator, and open the writer. */
  static async create(opts: RecordDatasetOptions): Promise<DatasetRecording> {
    const o = {
      task: opts.task,
      out: opts.out,
      episodes: opts.episodes ?? RECORD_DEFAULTS.episodes,
      preset: opts.preset ?? RECORD_DEFAULTS.preset,
      seed: opts.seed ?? RECORD_DEFAULTS.seed,
      size: opts.size ?? RECORD_DEFAULTS.size,
      hz: opts.hz ?? RECORD_DEFAULTS.hz,
      maxIdle: opts.maxIdle ?? RECORD_DEFAULTS.maxIdle,
    };
    const size = o.size % 2 === 0 ? o.size : o.size + 1; // H.264 yuv420p needs even sides
    const renderer = createRenderer();
    const envOptions: SimEnvOptions = {
      task: o.task,
      controlHz: o.hz,
      image: { width: size, height: size },
      renderer,
      ...(opts.randomize ? { randomization: opts.randomize } : {}),
      ...(opts.cameras ? { views: opts.cameras.map((c) => c.view) } : {}),
    };
    const cameras = opts.cameras ?? null;
    if (cameras && (cameras.length === 0 || new Set(cameras.map((c) => c.name)).size !== cameras.length))
      throw new StagewardError('SW_ERR_DATASET_SPEC', 'cameras must be one or more, with distinct names');
    const probe = await SimEnv.create(envOptions);
    const spec = { ...probe.datasetSpec(), ...(cameras ? { views: cameras.map((c) => c.name) } : {}) };
    const priors = probe.task.stagePriors;
    probe.close();
    const source: EpisodeSource = opts.policy
      ? { kind: 'policy', ...opts.policy }
      : { kind: 'expert', preset: o.preset, maxIdleSteps: o.maxIdle };
    const writer = await LeRobotDatasetWriter.create(o.out, spec, { overwrite: opts.overwrite ?? false, priors });
    return new DatasetRecording(writer, spec, size, envOptions, o, source, cameras);
  }

  /**
   * Record every episode and finish the dataset; `onEpisode` after each with the totals so far. On a
   * failure the partial dataset is removed and the error rethrown.
   */
  async run(onEpisode?: (totals: { frames: number; succeeded: number }) => void): Promise<RecordedDatasetSummary> {
    const o = this.#o;
    let frames = 0;
    let succeeded = 0;
    try {
      await recordEpisodes(this.#envOptions, o.episodes, { seedBase: o.seed * SEEDS_PER_RUN, source: this.#source }, async (ep) => {
        const cameras = this.#cameras;
        await this.#writer.addEpisode(
          cameras ? { ...ep, frames: Object.fromEntries(cameras.map((c) => [c.name, ep.frames[c.view]!])) } : ep,
        );
        frames += ep.state.length;
        succeeded += ep.success ? 1 : 0;
        onEpisode?.({ frames, succeeded });
      });
      await this.#writer.finish();
    } catch (err) {
      await this.#writer.abort();
      throw err;
    }
    return { episodes: o.episodes, succeeded, frames };
  }

  /** Remove the partial dataset (an interrupted recording). */
  abort(): Promise<void> {
    return this.#writer.abort();
  }
}
