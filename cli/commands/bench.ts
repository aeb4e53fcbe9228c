// `stageward bench <what>`: benchmark scripts (never part of `npm test`). Each prints a human summary
// and ends with one line holding a JSON object of its figures.

import { Command } from 'commander';
import { choiceOption, intOption, providersOption } from '../options.ts';
import { ENGINE_BENCH_DEFAULTS, benchEngine } from '../../bench/engine.ts';
import { GPU_BENCH_DEFAULTS, benchGpu } from '../../bench/gpu.ts';
import { SCORE_BENCH_DEFAULTS, benchScore } from '../../bench/score.ts';
import { RL_BENCH_DEFAULTS, benchRl } from '../../bench/rl.ts';
import { SCALE_BENCH_DEFAULTS, benchScale } from '../../bench/scale.ts';
import { SERVER_BENCH_DEFAULTS, SERVER_BENCH_QUICK, benchServer } from '../../bench/server.ts';
import { SIM_BENCH_DEFAULTS, benchSim } from '../../bench/sim.ts';
import { INFERENCE_THREADS } from '../../models/load.ts';
import { PROGRESS_SOURCES } from '../../models/engine.ts';

export function benchCommand(): Command {
  const bench = new Command('bench').description('benchmarks; the last output line is a JSON object of the figures');
  const ed = ENGINE_BENCH_DEFAULTS;
  bench
    .command('engine')
    .description('per-step latency of the engine (3 views at the model resolution) against the same network in PyTorch eager')
    .option('--steps <n>', 'timed steps per side (>= 1000 for the report)', intOption(10, 1_000_000), ed.steps)
    .option('--episode-length <n>', 'steps per episode before a new one starts', intOption(2, 100_000), ed.episodeLength)
    .option('--progress <head>', 'heads to run per step: sarm, grm or both', choiceOption(PROGRESS_SOURCES), ed.progress)
    .option('--provider <list>', 'execution providers for the engine', providersOption, ed.provider)
    .option(
      '--threads <n>',
      'intra-op threads for ONNX Runtime (0: one per core) and torch (0: its default)',
      intOption(0, 256),
      ed.threads,
    )
    .option('--model <dir>', 'model package to time (default: a random-weight package of the bundled configuration, exported now)')
    .action(benchEngine);
  bench
    .command('gpu')
    .description('load the fixture on GPU execution providers, check outputs against CPU and torch, time a step and a batched encode')
    .option('--providers <list>', 'providers to check, comma-separated', providersOption, GPU_BENCH_DEFAULTS.providers)
    .option('--model <dir>', 'package to time (default: the test fixture)')
    .option('--steps <n>', 'timed engine steps per provider', intOption(10, 1_000_000), GPU_BENCH_DEFAULTS.steps)
    .action(benchGpu);
  const simd = SIM_BENCH_DEFAULTS;
  bench
    .command('sim')
    .description(
      'simulator physics steps/s, renders/s per 96x96 view, control steps/s with 3 views, episodes/min recorded (medians of repeats)',
    )
    .option('--task <id>', 'pick_place or stack_three', simd.task)
    .option('--episodes <n>', 'expert episodes per measurement', intOption(1, 1000), simd.episodes)
    .option('--repeats <n>', 'repeats; medians are reported', intOption(1, 100), simd.repeats)
    .action(benchSim);
  const d = SERVER_BENCH_DEFAULTS;
  bench
    .command('server')
    .description(
      'one robot end to end (p50/p99), the same with the dashboard open and closed in alternating rounds (p50 ratio), 32 robots at 30 Hz from a separate process (throughput, lost replies, RSS), and an openpi-style PyTorch baseline under the same load',
    )
    .option('--quick', 'short phases (seconds), same output')
    .option(
      '--model <dir>',
      'model package to serve (default: models/zoo/pick_place, the one `npm start` serves; the baseline runs the same network)',
    )
    // --steps and --duration-s have no commander default, so that --quick's shorter ones apply
    .option(
      '--steps <n>',
      `single-robot timed steps (default: ${d.steps}; ${SERVER_BENCH_QUICK.steps} with --quick)`,
      intOption(10, 1_000_000),
    )
    .option('--robots <n>', 'concurrent robots', intOption(1, 1024), d.robots)
    .option('--hz <n>', 'steps per second per robot', intOption(1, 1000), d.hz)
    .option(
      '--duration-s <n>',
      `seconds of multi-robot load (default: ${d.durationS}; ${SERVER_BENCH_QUICK.durationS} with --quick)`,
      intOption(1, 3600),
    )
    .option('--payload <kind>', 'frames as jpeg bytes or raw uint8 arrays', choiceOption(['jpeg', 'raw'] as const), d.payload)
    .option('--max-in-flight <n>', 'steps a robot keeps outstanding', intOption(1, 1024), d.maxInFlight)
    .option('--baseline-threads <n>', 'torch threads of the baseline (0: its default)', intOption(0, 256), d.baselineThreads)
    .option(
      '--dashboard-viewers <n>',
      'dashboard viewers on /v1/live in the open rounds of the dashboard phase (0: skip it; the server takes dashboard.maxViewers, 8 by default)',
      intOption(0, 64),
      d.dashboardViewers,
    )
    .action((o) => benchServer({ ...o, quick: o.quick ?? false }));
  const sd = SCORE_BENCH_DEFAULTS;
  bench
    .command('score')
    .description(
      'offline scoring time steps/s of a 3-view 96x96 episode at 30 Hz from H.264 and AV1 end to end, through an in-process server over WebSocket, and one process against two --shard processes plus the merge (medians of repeats)',
    )
    .option('--model <dir>', 'model package (default models/zoo/pick_place)')
    .option('--steps <n>', 'time steps of the recorded episode', intOption(10, 100_000), sd.steps)
    .option('--repeats <n>', 'repeats; medians are reported', intOption(1, 100), sd.repeats)
    .option('--batch-frames <n>', 'time steps per batch', intOption(1, 4096), sd.batchFrames)
    .option('--encode-batch-images <n>', 'most images per encoder call', intOption(1, 65536), sd.encodeBatchImages)
    .option('--threads <n>', 'ONNX Runtime intra-op threads (0: one per core)', intOption(0, 256), sd.threads)
    .option(
      '--inference-thread <where>',
      'graphs on a worker thread or the main thread',
      choiceOption(INFERENCE_THREADS),
      sd.inferenceThread,
    )
    .action(benchScore);
  const rd = RL_BENCH_DEFAULTS;
  bench
    .command('rl')
    .description(
      'simulator bridge: env steps/s with pbrs rewards from the model (scripted expert), in process and over WebSocket, 1 and 8 environments (medians of repeats)',
    )
    .option('--task <id>', 'simulator task with a bundled model', rd.task)
    .option('--episodes <n>', 'episodes per timed run', intOption(1, 10_000), rd.episodes)
    .option('--repeats <n>', 'timed runs per setup; medians are reported', intOption(1, 100), rd.repeats)
    .option('--max-steps <n>', "episode length limit in control steps (default: the task's)", intOption(1, 100_000))
    .option('--model <dir>', 'model package (default: models/zoo/<task>)')
    .action(benchRl);
  const cd = SCALE_BENCH_DEFAULTS;
  bench
    .command('scale')
    .description(
      'replicas behind a real nginx (deploy/nginx.conf): robots through nginx to 1 replica, then to N with one drained by SIGTERM mid-run; lost and out-of-order replies, sessions per replica, failover reconnects, steps/s (needs nginx: apt-get install -y nginx, or NGINX_PATH)',
    )
    .option('--replicas <n>', 'replicas behind nginx', intOption(1, 16), cd.replicas)
    .option('--robots <n>', 'robots', intOption(1, 1024), cd.robots)
    .option('--hz <n>', 'steps per second per robot (one step in flight each)', intOption(1, 1000), cd.hz)
    .option('--duration-s <n>', 'seconds of each phase', intOption(2, 3600), cd.durationS)
    .option(
      '--drain-at-s <n>',
      'seconds into the multi-replica phase when one replica gets SIGTERM (default: half the duration)',
      intOption(1, 3600),
    )
    .option('--no-drain', 'no SIGTERM')
    .option('--no-single', 'skip the one-replica phase')
    .option('--model <dir>', 'model package the replicas serve (default: the bundled one)')
    .action(
      (o: {
        replicas: number;
        robots: number;
        hz: number;
        durationS: number;
        drainAtS?: number;
        drain: boolean;
        single: boolean;
        model?: string;
      }) => {
        if (o.drainAtS !== undefined && o.drainAtS >= o.durationS) throw new Error('--drain-at-s must be below --duration-s');
        return benchScale({
          replicas: o.replicas,
          robots: o.robots,
          hz: o.hz,
          durationS: o.durationS,
          drainAtS: o.drain ? o.drainAtS : null,
          single: o.single,
          model: o.model,
        });
      },
    );
  return bench;
}
