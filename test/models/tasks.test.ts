// Which task a prompt names (models/tasks.ts) and the card's `instructions` it reads; the same rule
// in `score` and `eval` (episode task strings, --task).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ECHO_MAX_CHARS } from '../../core/errors.ts';
import type { EpisodeInfo, LeRobotDataset } from '../../datasets/reader.ts';
import { parseCard, type ModelCard } from '../../models/card.ts';
import { checkPromptMap, matchTask, resolveTask } from '../../models/tasks.ts';
import { resolveTask as evalTask } from '../../offline/eval/evaluate.ts';
import { episodeTask, videoTask } from '../../offline/score/sources.ts';
import { expectCode, FIXTURE_MODEL_DIR } from '../helpers.ts';

const raw = JSON.parse(readFileSync(join(FIXTURE_MODEL_DIR, 'model.json'), 'utf8')) as Record<string, any>;
const withInstructions = (instructions: unknown) => parseCard({ ...raw, instructions });
const card = withInstructions({
  pick_place: ['put the red cube in the blue bowl', 'cube in bowl'],
  stack_three: ['stack the red cube on the green cube, then the yellow cube on the red cube'],
});
const oneTask: ModelCard = {
  ...card,
  tasks: ['pick_place'],
  stages: [card.stages[0]!],
  instructions: { pick_place: card.instructions.pick_place! },
};

describe('resolveTask', () => {
  it('matches a task id, then an instruction or alias (case, spacing and a final period aside), then the prompt map', () => {
    expect(resolveTask(card, 'stack_three')).toEqual({ task: 'stack_three', by: 'id' });
    expect(resolveTask(card, '  Put the red cube  in the BLUE bowl. ')).toEqual({ task: 'pick_place', by: 'instruction' });
    expect(resolveTask(card, 'cube in bowl!')).toEqual({ task: 'pick_place', by: 'instruction' });
    const promptMap = { 'Pick up the red block and drop it into the bowl': 'pick_place', 'build a tower': 'stack_three' };
    expect(resolveTask(card, 'build a tower.', { promptMap })).toEqual({ task: 'stack_three', by: 'prompt_map' });
    // The card's instruction wins over a map entry for the same text.
    expect(resolveTask(card, 'cube in bowl', { promptMap: { 'cube in bowl': 'stack_three' } }).task).toBe('pick_place');
  });

  it('falls back to the configured task, then to a one-task model, and says so', () => {
    expect(resolveTask(card, 'wipe the table', { fallback: 'stack_three' })).toEqual({ task: 'stack_three', by: 'default' });
    expect(resolveTask(card, undefined, { fallback: 'pick_place' })).toEqual({ task: 'pick_place', by: 'default' });
    expect(resolveTask(oneTask, 'put the banana in the basket')).toEqual({ task: 'pick_place', by: 'only' });
    expect(matchTask(oneTask, 'put the banana in the basket', { onlyTask: false })).toBeUndefined();
  });

  it('refuses an unmatched prompt without a fallback, listing the instructions, with the prompt cut short', async () => {
    let message = '';
    try {
      resolveTask(card, 'x'.repeat(5000), {}, 'prompt');
    } catch (err) {
      message = (err as Error).message;
    }
    await expectCode(async () => resolveTask(card, 'x'.repeat(5000), {}, 'prompt'), 'SW_ERR_TASK_UNKNOWN', 'prompt "xxx');
    expect(message).toContain('"put the red cube in the blue bowl"');
    expect(message).toContain('"stack the red cube on the green cube, then the yellow cube on the red cube"');
    expect(message).toContain('ids: pick_place, stack_three');
    expect(message.length).toBeLessThan(ECHO_MAX_CHARS + 600);
    await expectCode(async () => resolveTask(card, undefined), 'SW_ERR_TASK_UNKNOWN', 'no task given');
  });

  it('checks a prompt map against the model at start-up', () => {
    expect(checkPromptMap({ 'build a tower': 'stack_three' }, card.tasks)).toBeUndefined();
    expect(checkPromptMap({ 'build a tower': 'stack_nine' }, card.tasks)).toContain('"stack_nine", which is not one of');
    expect(checkPromptMap({ ' . ': 'pick_place' }, card.tasks)).toContain('empty prompt');
  });
});

describe("the card's instructions", () => {
  it('are optional, and a card without them still resolves ids', () => {
    const bare = parseCard(Object.fromEntries(Object.entries(raw).filter(([k]) => k !== 'instructions')));
    expect(bare.instructions).toEqual({});
    expect(resolveTask(bare, 'pick_place').by).toBe('id');
  });

  it('refuse a task the card lacks, an empty list, and one text naming two tasks', async () => {
    await expectCode(async () => withInstructions({ stack_nine: ['x'] }), 'SW_ERR_MODEL_CARD', '`instructions.stack_nine` names a task');
    await expectCode(async () => withInstructions({ pick_place: [] }), 'SW_ERR_MODEL_CARD', '`instructions.pick_place`');
    await expectCode(
      async () => withInstructions({ pick_place: ['Do it'], stack_three: ['do it.'] }),
      'SW_ERR_MODEL_CARD',
      'one text must name one task',
    );
    await expectCode(async () => withInstructions({ pick_place: ['stack_three'] }), 'SW_ERR_MODEL_CARD', 'one text must name one task');
  });
});

const episode = (tasks: string[], meta: Record<string, unknown> | null = null): EpisodeInfo => ({
  index: 3,
  length: 10,
  tasks,
  datasetFrom: 0,
  datasetTo: 10,
  dataPath: 'data/chunk-000/file-000.parquet',
  videos: {},
  subtasks: null,
  success: null,
  meta,
});

describe('score and eval follow the same rule', () => {
  it('score: an episode whose task is an instruction, --task as an instruction, and a one-task model on any task text', async () => {
    expect(episodeTask(card, episode(['Put the red cube in the blue bowl.']))).toBe('pick_place');
    expect(episodeTask(card, episode(['wipe the table']), 'cube in bowl')).toBe('pick_place');
    expect(episodeTask(oneTask, episode(['wipe the table']))).toBe('pick_place');
    expect(videoTask(card, 'stack the red cube on the green cube, then the yellow cube on the red cube')).toBe('stack_three');
    await expectCode(
      async () => episodeTask(card, episode(['wipe the table'])),
      'SW_ERR_TASK_UNKNOWN',
      '"put the red cube in the blue bowl"',
    );
    // --task must name a task: it never falls back to the only one.
    await expectCode(async () => episodeTask(oneTask, episode([]), 'wipe the table'), 'SW_ERR_TASK_UNKNOWN', '--task');
  });

  it('eval: an episode whose task is an instruction, and --task as an instruction', () => {
    const ds = { root: '/data/x', stageNames: ['nothing'] } as unknown as LeRobotDataset;
    expect(evalTask(card, ds, episode(['cube in bowl']))).toBe('pick_place');
    expect(evalTask(card, ds, episode(['wipe the table']), 'Cube in bowl.')).toBe('pick_place');
  });
});
