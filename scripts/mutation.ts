// Mutation testing of the pure modules (npm run test:mutation): runs Stryker (stryker.config.mjs: the
// modules, the unit tests behind them, the vitest runner and the TypeScript checker), then reads its
// JSON report and prints the score per module. A surviving mutant listed in test/mutation/
// equivalent.json (file, line, mutator, replacement and why the change cannot alter behaviour)
// counts as equivalent, not as survived; an entry that no longer matches a mutant is an error, so the
// list cannot go stale. Exit code 1 below the 0.90 target.
//
//   npm run test:mutation                       # every module (incremental: unchanged mutants are reused)
//   npm run test:mutation -- --mutate models/shaping.ts
//   npm run test:mutation -- --report-only      # score the last report again
//
// Last line: {"mutation_score", "killed", "survived", "equivalent", "modules": {file: score}}.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../core/paths.ts';

const TARGET = 0.9;
const REPORT = join(REPO_ROOT, 'runs', 'mutation', 'mutation.json');
const EQUIVALENT = join(REPO_ROOT, 'test', 'mutation', 'equivalent.json');

interface Mutant {
  id: string;
  mutatorName: string;
  replacement?: string;
  status: string;
  location: { start: { line: number; column: number } };
}

export interface Equivalent {
  file: string;
  line: number;
  mutator: string;
  replacement: string;
  reason: string;
}

/** Killed, survived (NoCoverage included) and equivalent counts of one file; errors and ignored mutants do not count. */
export function tally(
  mutants: Mutant[],
  equivalents: Equivalent[],
  file: string,
): { killed: number; survived: number; equivalent: number; unmatched: Equivalent[] } {
  const mine = equivalents.filter((e) => e.file === file);
  const matched = new Set<Equivalent>();
  let killed = 0;
  let survived = 0;
  let equivalent = 0;
  for (const m of mutants) {
    if (m.status === 'Killed' || m.status === 'Timeout') killed++;
    else if (m.status === 'Survived' || m.status === 'NoCoverage') {
      const e = mine.find(
        (x) => x.line === m.location.start.line && x.mutator === m.mutatorName && x.replacement === (m.replacement ?? ''),
      );
      if (e !== undefined) {
        equivalent++;
        matched.add(e);
      } else survived++;
    }
  }
  return { killed, survived, equivalent, unmatched: mine.filter((e) => !matched.has(e)) };
}

function main(): void {
  const { values } = parseArgs({ options: { mutate: { type: 'string', multiple: true }, 'report-only': { type: 'boolean' } } });
  if (!values['report-only']) {
    const args = ['stryker', 'run', ...(values.mutate?.length ? ['--mutate', values.mutate.join(',')] : [])];
    const run = spawnSync('npx', args, { cwd: REPO_ROOT, stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`stryker failed (exit ${run.status}); its output is above`);
  }
  const report = JSON.parse(readFileSync(REPORT, 'utf8')) as { files: Record<string, { mutants: Mutant[] }> };
  const equivalents = JSON.parse(readFileSync(EQUIVALENT, 'utf8')) as Equivalent[];
  const modules: Record<string, number> = {};
  let killed = 0;
  let survived = 0;
  let equivalent = 0;
  const stale: Equivalent[] = [];
  console.log('module                          killed survived equivalent  score');
  for (const [file, { mutants }] of Object.entries(report.files).sort(([a], [b]) => a.localeCompare(b))) {
    const t = tally(mutants, equivalents, file);
    const score = t.killed / Math.max(1, t.killed + t.survived);
    modules[file] = Math.round(score * 1000) / 1000;
    killed += t.killed;
    survived += t.survived;
    equivalent += t.equivalent;
    stale.push(...t.unmatched);
    console.log(
      `${file.padEnd(32)}${String(t.killed).padStart(6)} ${String(t.survived).padStart(8)} ${String(t.equivalent).padStart(10)}  ${score.toFixed(3)}`,
    );
  }
  for (const e of stale) console.log(`stale equivalent entry (no surviving mutant matches it): ${JSON.stringify(e)}`);
  const mutationScore = Math.round((killed / Math.max(1, killed + survived)) * 1000) / 1000;
  console.log(`mutation score ${mutationScore} (target ${TARGET}); surviving mutants: runs/mutation/mutation.html`);
  console.log(JSON.stringify({ mutation_score: mutationScore, killed, survived, equivalent, modules }));
  if (mutationScore < TARGET || stale.length > 0) process.exitCode = 1;
}

try {
  main();
} catch (err) {
  console.error(`stageward: ${(err as Error).message}`);
  process.exitCode = 1;
}
