// `stageward model metrics`: write measured figures into a package's card (model.json `metrics`),
// e.g. the engine-path evaluations of models/zoo/rebuild.sh.
//
//   stageward model metrics --model models/zoo/pick_place --set engine_eval=eval/pick_place/metrics.json

import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { StagewardError } from '../../core/errors.ts';
import { setCardMetrics, summariseEvalMetrics } from '../../models/card-metrics.ts';

const KEY = /^[a-z][a-z0-9_]{0,63}$/;

function setOption(value: string, previous: [string, string][] | undefined): [string, string][] {
  const eq = value.indexOf('=');
  const key = eq > 0 ? value.slice(0, eq) : '';
  if (!KEY.test(key)) throw new InvalidArgumentError('expected KEY=FILE with KEY in [a-z][a-z0-9_]* (at most 64 characters)');
  return [...(previous ?? []), [key, value.slice(eq + 1)]];
}

export function modelCommand(): Command {
  const model = new Command('model').description('model packages: edit what the card records');
  model
    .command('metrics')
    .description("store the aggregate figures of `stageward eval` metrics.json files in the card's metrics")
    .requiredOption('--model <dir>', 'model package folder')
    .requiredOption('--set <key=file>', 'card metrics key and the metrics.json whose aggregate it gets (repeat)', setOption)
    .action(async (f: { model: string; set: [string, string][] }) => {
      const entries: Record<string, unknown> = {};
      for (const [key, file] of f.set) {
        let doc: unknown;
        try {
          doc = JSON.parse(await readFile(file, 'utf8'));
        } catch (err) {
          throw new StagewardError('SW_ERR_BAD_VALUE', `cannot read ${file} as JSON: ${(err as Error).message}`);
        }
        entries[key] = summariseEvalMetrics(doc, file);
      }
      await setCardMetrics(f.model, entries);
      console.log(`wrote ${Object.keys(entries).join(', ')} into ${f.model}/model.json metrics`);
    });
  return model;
}
