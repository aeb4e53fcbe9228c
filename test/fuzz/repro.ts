// Replay one fuzz input through a target under tsx (no bundle, no instrumentation: stack traces point
// at the TypeScript sources). `npm run fuzz -- --target NAME --repro FILE` runs this;
// directly: npx tsx test/fuzz/repro.ts NAME FILE. Exit code 1 when the input is a finding.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FuzzFinding, withHangTimer, type Check } from './harness.ts';

const HANG_MS = 10_000;

async function main(): Promise<number> {
  const [target, file] = process.argv.slice(2);
  if (target === undefined || file === undefined) {
    console.error('usage: npx tsx test/fuzz/repro.ts TARGET FILE');
    return 2;
  }
  const mod = (await import(pathToFileURL(join(import.meta.dirname, 'targets', `${target}.ts`)).href)) as { check?: Check };
  if (typeof mod.check !== 'function') {
    console.error(`test/fuzz/targets/${target}.ts exports no \`check\``);
    return 2;
  }
  const data = readFileSync(file);
  try {
    const r = mod.check(data);
    if (r !== undefined) await withHangTimer(r, HANG_MS);
  } catch (err) {
    const finding = err instanceof FuzzFinding ? err : new FuzzFinding('exception', 'check', err);
    const cause = finding.cause;
    console.log(`FINDING (${finding.kind}) ${finding.message}`);
    if (cause instanceof Error) console.log(cause.stack);
    return 1;
  }
  console.log(`no finding: ${target} handled ${file} (${data.length} bytes) as expected`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
