// `stageward bench <what>`: benchmark scripts (never part of `npm test`). Each prints a human summary
// and ends with one line holding a JSON object of its figures.

import { Command } from 'commander';
import { choiceOption, intOption, providersOption } from '../server/options.ts';
import { benchEngine } from './engine.ts';
import { benchGpu } from './gpu.ts';
import { benchSim } from './sim.ts';

export function benchCommand(): Command {
  const bench = new Command('bench').description('benchmarks; the last output line is a JSON object of the figures');
  bench
    .command('engine')
    .description('per-step latency of the engine (3 views at the model resolution) against the same network in PyTorch eager')
    .option('--steps <n>', 'timed steps per side (>= 1000 for the report)', intOption(10, 1_000_000), 1200)
    .option('--episode-length <n>', 'steps per episode before a new one starts', intOption(2, 100_000), 200)
    .option('--progress <head>', 'heads to run per step: sarm, grm or both', choiceOption(['sarm', 'grm', 'both'] as const), 'both')
    .option('--provider <list>', 'execution providers for the engine', providersOption, ['cpu'])
    .option('--threads <n>', 'intra-op threads for ONNX Runtime (0: one per core) and torch (0: its default)', intOption(0, 256), 1)
    .option('--model <dir>', 'model package to time (default: a random-weight package of the bundled configuration, exported now)')
    .action(benchEngine);
  bench
    .command('gpu')
    .description('load the fixture on GPU execution providers, check outputs against CPU and torch, time a step and a batched encode')
    .option('--providers <list>', 'providers to check, comma-separated', providersOption, ['webgpu', 'cuda'])
    .option('--model <dir>', 'package to time (default: the test fixture)')
    .option('--steps <n>', 'timed engine steps per provider', intOption(10, 1_000_000), 500)
    .action(benchGpu);
  bench
    .command('sim')
    .description('simulator physics steps/s, renders/s per 96x96 view, control steps/s with 3 views, episodes/min recorded (medians of repeats)')
    .option('--task <id>', 'pick_place or stack_three', 'pick_place')
    .option('--episodes <n>', 'expert episodes per measurement', intOption(1, 1000), 5)
    .option('--repeats <n>', 'repeats; medians are reported', intOption(1, 100), 3)
    .action(benchSim);
  return bench;
}
