// Which of a model's tasks a piece of text names: openpi prompts, the native hello's `task`,
// a dataset episode's task string for `score` and `eval`. Pure: the card, the text and the
// settings in, the task and how it matched out (or SW_ERR_TASK_UNKNOWN listing what would match).
//
// The rule, in order (models/PACKAGE.md, "Tasks and instructions"):
//   1. the text is a task id of the card                           -> by 'id'
//   2. it is the instruction or an alias of a task (card `instructions`) -> by 'instruction'
//   3. it is a key of the configured prompt map                   -> by 'prompt_map'
//   4. a configured default task                                   -> by 'default'
//   5. the card has one task                                       -> by 'only'
// Instructions, aliases and map keys compare normalised: case, surrounding and repeated
// whitespace, and one trailing `.`/`!` are ignored ("Put the red cube in the blue bowl." matches).

import { echo, StagewardError } from '../core/errors.ts';
import { normalizeInstruction, type ModelCard } from './card.ts';

export type TaskMatchKind = 'id' | 'instruction' | 'prompt_map' | 'default' | 'only';

export interface TaskMatch {
  task: string;
  by: TaskMatchKind;
}

export interface TaskRule {
  /** Prompt text -> task id (compared normalised), tried after the card's instructions. */
  promptMap?: Readonly<Record<string, string>>;
  /** The task when nothing else matches (or no text is given); null: none. */
  fallback?: string | null;
  /** A one-task card takes any text (step 5). Default true; false where the text must name a task (`--task`). */
  onlyTask?: boolean;
}

/** Most instructions an error message lists before "...". */
const LISTED_INSTRUCTIONS = 8;

const indexes = new WeakMap<object, Map<string, string>>();

/** Normalised instruction or alias -> its task id; built once per card (prompts are resolved per observation). */
function instructionIndex(card: Pick<ModelCard, 'tasks' | 'instructions'>): Map<string, string> {
  let index = indexes.get(card);
  if (index === undefined) {
    index = new Map<string, string>();
    for (const task of card.tasks) for (const text of card.instructions[task] ?? []) index.set(normalizeInstruction(text), task);
    indexes.set(card, index);
  }
  return index;
}

const promptMaps = new WeakMap<object, Map<string, string>>();

/** A prompt map with normalised keys, built once per map (the first of two keys that normalise alike wins). */
function normalizedPromptMap(map: Readonly<Record<string, string>>): Map<string, string> {
  let out = promptMaps.get(map);
  if (out === undefined) {
    out = new Map<string, string>();
    for (const [prompt, task] of Object.entries(map)) {
      const key = normalizeInstruction(prompt);
      if (!out.has(key)) out.set(key, task);
    }
    promptMaps.set(map, out);
  }
  return out;
}

/** What a message may quote as the known texts: each task's first instruction, else its id. */
export function knownInstructions(card: Pick<ModelCard, 'tasks' | 'instructions'>): string[] {
  return card.tasks.map((t) => card.instructions[t]?.[0] ?? t);
}

/** The task `text` names under `rule`, or undefined. */
export function matchTask(
  card: Pick<ModelCard, 'tasks' | 'instructions'>,
  text: string | undefined,
  rule: TaskRule = {},
): TaskMatch | undefined {
  if (text !== undefined && text !== '') {
    if (card.tasks.includes(text)) return { task: text, by: 'id' };
    const key = normalizeInstruction(text);
    const byInstruction = instructionIndex(card).get(key);
    if (byInstruction !== undefined) return { task: byInstruction, by: 'instruction' };
    const mapped = rule.promptMap === undefined ? undefined : normalizedPromptMap(rule.promptMap).get(key);
    if (mapped !== undefined && card.tasks.includes(mapped)) return { task: mapped, by: 'prompt_map' };
  }
  if (rule.fallback !== undefined && rule.fallback !== null && card.tasks.includes(rule.fallback))
    return { task: rule.fallback, by: 'default' };
  if (card.tasks.length === 1 && rule.onlyTask !== false) return { task: card.tasks[0]!, by: 'only' };
  return undefined;
}

/** The task `text` names under `rule`; SW_ERR_TASK_UNKNOWN (listing the known instructions) when none does. */
export function resolveTask(
  card: Pick<ModelCard, 'tasks' | 'instructions'>,
  text: string | undefined,
  rule: TaskRule = {},
  what = 'task',
): TaskMatch {
  const match = matchTask(card, text, rule);
  if (match !== undefined) return match;
  const known = knownInstructions(card);
  const listed = known
    .slice(0, LISTED_INSTRUCTIONS)
    .map((t) => `"${t}"`)
    .join(', ');
  const more = known.length > LISTED_INSTRUCTIONS ? `, and ${known.length - LISTED_INSTRUCTIONS} more` : '';
  throw new StagewardError(
    'SW_ERR_TASK_UNKNOWN',
    text === undefined || text === ''
      ? `no ${what} given and no default task; the model's tasks are ${listed}${more} (ids: ${card.tasks.slice(0, LISTED_INSTRUCTIONS).join(', ')})`
      : `${what} ${echo(text)} matches none of the model's tasks: ${listed}${more} (ids: ${card.tasks.slice(0, LISTED_INSTRUCTIONS).join(', ')}); send one of them, map it in the prompt map, or configure a default task`,
  );
}

/** Check a prompt map against the card at start-up: every target is a task; keys are non-empty. */
export function checkPromptMap(map: Readonly<Record<string, string>>, tasks: readonly string[]): string | undefined {
  for (const [prompt, task] of Object.entries(map)) {
    if (normalizeInstruction(prompt) === '') return 'has an empty prompt';
    if (!tasks.includes(task))
      return `maps ${JSON.stringify(prompt.slice(0, 64))} to "${task}", which is not one of the model's tasks (${tasks.join(', ')})`;
  }
  return undefined;
}
