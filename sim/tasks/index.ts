// Registry of the simulated tasks, keyed by task id. Add a task by adding one entry here.

import { StagewardError } from '../../core/errors.ts';
import { PickPlaceTask } from './pick-place.ts';
import { StackThreeTask } from './stack-three.ts';
import type { SimTask, TaskId } from './task.ts';

export type { SimTask, TaskId } from './task.ts';

const REGISTRY: Record<TaskId, () => SimTask> = {
  pick_place: () => new PickPlaceTask(),
  stack_three: () => new StackThreeTask(),
};

export const TASK_IDS = Object.keys(REGISTRY) as TaskId[];

export function isTaskId(id: string): id is TaskId {
  return Object.hasOwn(REGISTRY, id);
}

/** The task for an id; SW_ERR_TASK_UNKNOWN for anything else. */
export function getTask(id: string): SimTask {
  if (!isTaskId(id)) throw new StagewardError('SW_ERR_TASK_UNKNOWN', `unknown simulator task "${id}" (known: ${TASK_IDS.join(', ')})`);
  return REGISTRY[id]();
}
