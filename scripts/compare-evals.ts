// Is a candidate model as good as the baseline on the same held-out sets? Compares pairs of
// `stageward eval` metrics.json files figure by figure (offline/eval/compare.ts: each in the direction
// that is better for it) and fails when any figure is worse by more than --tolerance: the check a
// cheaper encoder (a distilled student, a quantised graph) must pass before it becomes a bundled default.
//
//   npx tsx scripts/compare-evals.ts --set demos=eval/teacher/metrics.json,eval/student/metrics.json \
//     --set rand=eval/teacher-rand/metrics.json,eval/student-rand/metrics.json [--tolerance 0.01]
//
// Prints one table per set; the last line is one JSON object: per set and figure how much worse the
// candidate is (`worse`, negative: better), the worst figure, and `failed` (figures past the tolerance).
// Exits 1 when something is past the tolerance, 2 on bad arguments or unreadable files.

import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { numberOption } from '../cli/options.ts';
import { fixed } from '../core/format.ts';
import { summariseEvalMetrics } from '../models/card-metrics.ts';
import { compareEvalMetrics, type FigureComparison } from '../offline/eval/compare.ts';

interface Pair {
  name: string;
  baseline: string;
  candidate: string;
}

function pairOption(value: string, previous: Pair[] | undefined): Pair[] {
  const m = /^([\w.-]+)=([^,]+),([^,]+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected NAME=BASELINE_METRICS,CANDIDATE_METRICS');
  return [...(previous ?? []), { name: m[1]!, baseline: m[2]!, candidate: m[3]! }];
}

/** The aggregate figures of a metrics.json (models/card-metrics.ts refuses what is not an object of them). */
async function readMetrics(path: string): Promise<Record<string, unknown>> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`);
  }
  return summariseEvalMetrics(doc, path);
}

function table(name: string, rows: FigureComparison[], tolerance: number): string {
  const lines = [`${name}:`, `  ${'figure'.padEnd(20)} ${'baseline'.padStart(9)} ${'candidate'.padStart(9)} ${'worse by'.padStart(9)}`];
  for (const r of rows) {
    const flag = r.worse !== null && r.worse > tolerance ? '  <- past the tolerance' : '';
    lines.push(
      `  ${r.figure.padEnd(20)} ${fixed(r.baseline, 4).padStart(9)} ${fixed(r.candidate, 4).padStart(9)} ${fixed(r.worse, 4).padStart(9)}${flag}`,
    );
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('compare-evals')
    .description('compare a candidate model with a baseline on the same held-out sets, figure by figure')
    .requiredOption('--set <name=base,cand>', 'a held-out set: the two metrics.json files (repeat)', pairOption)
    .option('--tolerance <x>', 'largest allowed worsening of any figure, in its own units', numberOption(0, 1), 0.01)
    .exitOverride();
  let flags: { set: Pair[]; tolerance: number };
  try {
    flags = program.parse(argv, { from: 'user' }).opts();
  } catch {
    return 2;
  }
  const sets: Record<string, Record<string, number | null>> = {};
  const failed: string[] = [];
  let worst: { set: string; figure: string; worse: number } | null = null;
  for (const pair of flags.set) {
    let rows: FigureComparison[];
    try {
      rows = compareEvalMetrics(await readMetrics(pair.baseline), await readMetrics(pair.candidate));
    } catch (err) {
      console.error(`compare-evals: ${(err as Error).message}`);
      return 2;
    }
    console.log(table(pair.name, rows, flags.tolerance));
    sets[pair.name] = Object.fromEntries(rows.map((r) => [r.figure, r.worse === null ? null : Number(r.worse.toFixed(5))]));
    for (const r of rows) {
      if (r.worse === null) continue;
      if (r.worse > flags.tolerance) failed.push(`${pair.name}.${r.figure}`);
      if (worst === null || r.worse > worst.worse) worst = { set: pair.name, figure: r.figure, worse: Number(r.worse.toFixed(5)) };
    }
  }
  console.log(
    failed.length ? `past the tolerance of ${flags.tolerance}: ${failed.join(', ')}` : `no figure worse by more than ${flags.tolerance}`,
  );
  console.log(JSON.stringify({ tolerance: flags.tolerance, worst, failed, sets }));
  return failed.length ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
