// How well the learned potential tracks the simulator's true progress on the episodes the RL learner
// itself runs (`npm run rl:fidelity -- --policy runs/.../policy.json`): for each policy (the weak start,
// then each --policy file), 16 exploring episodes through the bridge with the learner's exploration
// noise (white and correlated), and the Pearson correlation between the model's and the true change of
// Phi over 1 s (10 steps, what the learner's short-horizon return sees) and over one step.
//
//   npm run rl:fidelity
//   npm run rl:fidelity -- --policy runs/rl-x/pick_place-pbrs-true-seed5/policy.json --episodes 32
//
// Last stdout line: {"rows": [{"policy", "noise_correlation", "success", "delta_pearson_1s", "delta_pearson_1step"}, ...]}

import { Command } from 'commander';
import { intOption } from '../cli/options.ts';
import { round3 } from '../core/format.ts';
import { SeededRandom } from '../core/random.ts';
import { GatedLinearPolicy } from '../learn/policy/linear-policy.ts';
import { RL_DEFAULTS, correlatedNoise } from '../learn/rl/power.ts';
import { weakStartPolicy } from '../learn/rl/start.ts';
import { pearson } from '../offline/eval/metrics.ts';
import { DEFAULT_GAMMA, SimBridge, type EpisodeResult, type Policy } from '../sim/bridge/index.ts';
import { TASK_IDS } from '../sim/tasks/index.ts';
import type { TaskId } from '../sim/tasks/task.ts';

/** Simulator seeds of the episodes: away from training (3e9 + ...), evaluation (4e9 + ...) and recording seeds. */
const SEED_BASE = 3_900_000_000;
const HORIZON = 10;

function exploring(policy: GatedLinearPolicy, seeds: number[], rho: number, std: number): Policy[] {
  return seeds.map((seed) => {
    const next = correlatedNoise(new SeededRandom(seed), rho, std);
    return (state) => {
      const { eps } = next();
      return Float32Array.from(policy.act(state), (m, k) => m + eps[k]!);
    };
  });
}

/** Model vs true change of Phi over `h` steps, pooled over the episodes. */
function deltas(results: EpisodeResult[], h: number): { model: number[]; truth: number[] } {
  const model: number[] = [];
  const truth: number[] = [];
  for (const r of results) {
    if (r.steps.length === 0) continue;
    const m = [r.phi0, ...r.steps.map((s) => s.progress)];
    // the true progress of s_0 is not recorded; the first transition's is the closest
    const t = [r.steps[0]!.trueProgress, ...r.steps.map((s) => s.trueProgress)];
    for (let i = 1; i + h < m.length; i++) {
      model.push(m[i + h]! - m[i]!);
      truth.push(t[i + h]! - t[i]!);
    }
  }
  return { model, truth };
}

async function main(): Promise<void> {
  const program = new Command('rl-reward-fidelity')
    .description("the learned potential against the simulator's true progress on the RL learner's own exploring episodes")
    .option('--task <id>', `simulator task: ${TASK_IDS.join(', ')}`, 'pick_place')
    .option('--policy <file...>', 'policy files to measure beside the weak start (stageward rl writes policy.json)')
    .option('--episodes <n>', 'exploring episodes per policy and noise setting', intOption(1, 10_000), 16)
    .option('--envs <n>', 'parallel environments', intOption(1, 64), 8)
    .exitOverride();
  program.parse(process.argv.slice(2), { from: 'user' });
  const f = program.opts<{ task: TaskId; policy?: string[]; episodes: number; envs: number }>();
  const policies: [string, GatedLinearPolicy][] = [['weak start', await weakStartPolicy(f.task, 0)]];
  for (const file of f.policy ?? []) policies.push([file, (await GatedLinearPolicy.load(file)).policy]);
  const bridge = await SimBridge.create({ task: f.task, reward: 'pbrs', gamma: DEFAULT_GAMMA, envs: f.envs, transport: 'inprocess' });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const [name, policy] of policies) {
      for (const rho of [0, RL_DEFAULTS.noiseCorrelation]) {
        const seeds = Array.from({ length: f.episodes }, (_, i) => SEED_BASE + i);
        const results = await bridge.runEpisodes(seeds, exploring(policy, seeds, rho, RL_DEFAULTS.noiseStd));
        const long = deltas(results, HORIZON);
        const one = deltas(results, 1);
        const row = {
          policy: name,
          noise_correlation: rho,
          success: results.filter((r) => r.success).length / results.length,
          delta_pearson_1s: round3(pearson(long.model, long.truth)),
          delta_pearson_1step: round3(pearson(one.model, one.truth)),
        };
        rows.push(row);
        console.log(
          `${name}, noise ${RL_DEFAULTS.noiseStd} correlation ${rho}: success ${(100 * row.success).toFixed(0)}%, Pearson of 1-s change ${row.delta_pearson_1s}, of 1-step change ${row.delta_pearson_1step}`,
        );
      }
    }
  } finally {
    await bridge.close();
  }
  console.log(JSON.stringify({ rows }));
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  if (e && e.code === 'commander.helpDisplayed') process.exit(0);
  if (e && typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(2);
  console.error(`rl-reward-fidelity: ${e?.message ?? String(err)}`);
  process.exit(1);
});
