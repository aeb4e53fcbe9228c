// `stageward dataset`: inspect LeRobot v3.0 and v2.1 datasets and export training bundles for the trainer.
//
//   stageward dataset info --dataset pp-demo
//   stageward dataset export --dataset pp-demo --out pp-bundle --size 96
//   stageward dataset export --dataset pp-rollouts --out pp-roll-bundle --labels truth

import { Command } from 'commander';
import { BUNDLE_LABEL_SOURCES, exportBundle, type BundleLabelSource } from '../../datasets/bundle.ts';
import { LeRobotDataset } from '../../datasets/reader.ts';
import { videoKey } from '../../datasets/format.ts';
import { subtasksOrNull } from '../../datasets/episode-info.ts';
import { choiceOption, episodeListOption, intOption } from '../options.ts';

export function datasetCommand(): Command {
  const ds = new Command('dataset').description('LeRobot v3.0 and v2.1 datasets: inspect, export training bundles');
  ds.command('info')
    .description("print a dataset's episodes, tasks, views and annotations")
    .requiredOption('--dataset <dir>', 'dataset folder')
    .action(async (f: { dataset: string }) => {
      const d = await LeRobotDataset.open(f.dataset);
      console.log(
        JSON.stringify(
          {
            codebase_version: d.info.codebase_version,
            robot_type: d.info.robot_type,
            fps: d.fps,
            cameras: d.views.map((v) => ({ key: videoKey(v), storage: d.storage(v) })),
            tasks: d.tasks,
            annotated_episodes: d.episodes.filter((e) => (subtasksOrNull(e)?.length ?? 0) > 0).length,
            stages: d.stageNames,
            priors: d.priors,
            episodes: d.episodes.length,
            frames: d.episodes.reduce((a, e) => a + e.length, 0),
            success: d.episodes.filter((e) => e.success === true).length,
          },
          null,
          2,
        ),
      );
    });
  ds.command('export')
    .description('write a training bundle (.npy frames and SARM labels + bundle.json) for models/train')
    .requiredOption('--dataset <dir>', 'dataset folder')
    .requiredOption('--out <dir>', 'bundle folder to create (written atomically)')
    .option('--size <px>', 'square frame size in the bundle', intOption(8, 1024), 96)
    .option('--episodes <list>', 'episode indices, e.g. 0-9,12', episodeListOption)
    .option(
      '--labels <source>',
      "spans: the SARM rule over the subtask annotations; truth: the simulator's per-frame annotation.true_stage/true_progress",
      choiceOption(BUNDLE_LABEL_SOURCES),
      'spans',
    )
    .option('--overwrite', 'replace an existing bundle')
    .action(
      async (f: { dataset: string; out: string; size: number; episodes?: number[]; overwrite?: boolean; labels: BundleLabelSource }) => {
        const header = await exportBundle(f.dataset, f.out, {
          size: f.size,
          labels: f.labels,
          ...(f.episodes ? { episodes: f.episodes } : {}),
          overwrite: f.overwrite ?? false,
        });
        console.log(
          `wrote ${f.out}: ${header.episodes.length} episodes, ${header.episodes.reduce((a, e) => a + e.length, 0)} frames at ${f.size}x${f.size}, labels from ${f.labels}`,
        );
      },
    );
  return ds;
}
