// What a recorded episode and a dataset are, as the LeRobot dataset writer and reader see them: the
// contract between whatever produces episodes (the simulator's recorder, a robot) and datasets/.

import type { RawImage } from '../core/image.ts';

/** One annotated subtask of a recorded episode, in frames (inclusive start, inclusive end). */
export interface SubtaskSpan {
  name: string;
  start: number;
  end: number;
}

/** One recorded episode, as the dataset writer receives it (one episode in memory at a time). */
export interface RecordedEpisode {
  /** The task's natural-language string (LeRobot `tasks.parquet`), e.g. "put the red cube in the bowl". */
  task: string;
  /** Per view (card/camera name without the `observation.images.` prefix), T frames. */
  frames: Record<string, RawImage[]>;
  /** observation.state per frame: proprio + object state, float32 of a fixed length. */
  state: Float32Array[];
  /** action per frame (the action taken after observing the frame), float32 of a fixed length. */
  action: Float32Array[];
  /** Sparse env reward per frame. */
  reward: number[];
  /** Per frame: the annotator's true stage index and geometric progress in [0, 1]. */
  trueStage: number[];
  trueProgress: number[];
  /** The annotator's subtask spans (sparse annotations, SARM style). */
  subtasks: SubtaskSpan[];
  success: boolean;
  /** Free-form facts about how the episode was made (preset, flaws injected, seed). */
  meta: Record<string, unknown>;
}

/** What a dataset is about, fixed for all its episodes. */
export interface DatasetSpec {
  /** LeRobot `robot_type`, e.g. "stageward_mocap_gripper". */
  robotType: string;
  fps: number;
  views: string[];
  image: { height: number; width: number };
  stateNames: string[];
  actionNames: string[];
  /** Ordered stage names of the task (all episodes of one dataset share one task family). */
  stageNames: string[];
}
