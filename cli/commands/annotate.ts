// `stageward annotate`: SARM subtask annotations for a LeRobot v3.0 or v2.1 dataset from a small
// keyframe file written by hand while watching the episodes (datasets/annotate.ts, format:
// datasets/keyframes.ts). Writes LeRobot's `sparse_subtask_*` cells on each episode row and
// meta/temporal_proportions_sparse.json, atomically; prints one summary line.
//
//   stageward annotate --dataset my-data --from keyframes.csv
//   stageward annotate --dataset my-data --from keyframes.json --partial
//   stageward annotate --dataset my-data --from keyframes-v2.csv --overwrite

import { Command } from 'commander';
import { annotateDataset, type AnnotateSummary } from '../../datasets/annotate.ts';

interface AnnotateFlags {
  dataset: string;
  from: string;
  partial?: boolean;
  overwrite?: boolean;
  stages?: string[];
}

export function annotateCommand(): Command {
  return new Command('annotate')
    .description(
      'write SARM subtask annotations (LeRobot sparse_subtask_* columns and stage priors) into a LeRobot v3.0 or v2.1 dataset ' +
        'from a keyframe file (.csv or .json) that gives, per episode, the frame where each stage starts',
    )
    .requiredOption('--dataset <dir>', 'LeRobot v3.0 or v2.1 dataset folder (its episode metadata is rewritten in place, atomically)')
    .requiredOption('--from <file>', 'keyframe file: .csv (episode,stage,start) or .json ({"episodes": {...}}), format below')
    .option('--partial', 'leave the episodes the file does not mention unannotated (default: refuse, listing them)')
    .option('--overwrite', 'replace the annotations and meta/temporal_proportions_sparse.json the dataset already has')
    .option(
      '--stages <list>',
      "the task's stages in order, comma-separated (default: the file's, in order of first appearance)",
      (v: string) => v.split(',').map((s) => s.trim()),
    )
    .addHelpText(
      'after',
      [
        '',
        'Keyframe file: one entry per stage boundary, the frame where the stage starts. A stage runs until the',
        "frame before the next one starts; the last one to the episode's last frame. The first start of every",
        'episode is 0, starts increase, and stay below the episode length. start_s (seconds, frame =',
        'round(seconds * fps)) may replace start. The stages, in order of first appearance (episodes by index),',
        "are SARM's stage order: let the lowest-numbered episode go through them in the task's order, or give",
        '--stages a,b,c.',
        '',
        '  CSV (a header, then one row per boundary; blank lines and lines starting with # are skipped):',
        '    episode,stage,start',
        '    0,reach,0',
        '    0,grasp,31',
        '    1,reach,0',
        '    1,grasp,25',
        '',
        '  JSON:',
        '    {"episodes": {"0": [{"stage": "reach", "start": 0}, {"stage": "grasp", "start": 31}],',
        '                  "1": [{"stage": "reach", "start_s": 0}, {"stage": "grasp", "start_s": 2.5}]}}',
        '',
        'Every episode of the dataset must be in the file unless --partial. Existing annotations need --overwrite.',
        '',
        'Examples:',
        '  stageward annotate --dataset my-data --from keyframes.csv',
        '  stageward annotate --dataset my-data --from keyframes.json --partial',
        '  stageward annotate --dataset my-data --from keyframes-v2.csv --overwrite',
        '',
        'Dense annotations (dense_subtask_*, temporal_proportions_dense.json) are left as they are.',
        'Format and rules: datasets/DATASETS.md, "Annotating a dataset by hand".',
      ].join('\n'),
    )
    .action(async (f: AnnotateFlags) => {
      const summary = await annotateDataset(f.dataset, f.from, {
        partial: f.partial ?? false,
        overwrite: f.overwrite ?? false,
        ...(f.stages ? { stages: f.stages } : {}),
      });
      if (summary.denseKept)
        console.warn('stageward annotate: the dataset has dense annotations (dense_subtask_*); they were left as they were');
      console.log(summaryLine(f.dataset, summary));
    });
}

/** `annotated 3 of 3 episodes of my-data (v3.0): reach 0.412, grasp 0.257, lift 0.331` */
function summaryLine(dataset: string, s: AnnotateSummary): string {
  const left = s.episodes - s.annotated.length;
  const stages = s.stages.map((st) => `${st.name} ${st.prior.toFixed(3)}`).join(', ');
  return `annotated ${s.annotated.length} of ${s.episodes} episodes of ${dataset} (${s.codebaseVersion}${left > 0 ? `, ${left} left unannotated` : ''}): ${stages}`;
}
