// Adding measured figures to a package's model card (model.json `metrics`), e.g. the engine-path
// evaluation of `stageward eval`, so the card carries the numbers it was judged by. The card is
// re-validated with the change and written atomically; nothing else in the package is touched.
//
//   await setCardMetrics('models/zoo/pick_place', { engine_eval: summariseEvalMetrics(doc) });

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StagewardError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { parseCard } from './card.ts';

/** Keys of a `stageward eval` metrics.json that are per-episode detail or run context, not figures. */
const EVAL_DETAIL_KEYS = new Set(['per_dataset', 'per_episode', 'provenance']);

/**
 * The figures of a `stageward eval` metrics.json for a card: its aggregate numbers (and nulls) with
 * the command line that produced them; the per-episode rows and the provenance stay in the file.
 */
export function summariseEvalMetrics(doc: unknown, source = 'metrics.json'): Record<string, unknown> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new StagewardError('SW_ERR_BAD_VALUE', `${source} is not a JSON object of metrics`);
  const d = doc as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const command = (d.provenance as { command?: unknown } | undefined)?.command;
  if (Array.isArray(command)) out.command = command.join(' ');
  for (const [k, v] of Object.entries(d)) {
    if (EVAL_DETAIL_KEYS.has(k)) continue;
    if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** Set `metrics[key] = value` for each entry of the card in `dir` (replacing what those keys held). */
export async function setCardMetrics(dir: string, entries: Record<string, unknown>): Promise<void> {
  const path = join(dir, 'model.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new StagewardError('SW_ERR_MODEL_CARD', `cannot read ${path}: ${(err as Error).message}`);
  }
  const metrics = { ...((raw.metrics as Record<string, unknown> | undefined) ?? {}), ...entries };
  const next = { ...raw, metrics };
  parseCard(next); // refuse to write a card the loader would refuse
  await writeFileAtomic(path, `${JSON.stringify(next, null, 2)}\n`);
}
