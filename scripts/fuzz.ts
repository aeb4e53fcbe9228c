// `npm run fuzz`: coverage-guided fuzzing of the server's decoders and protocol state machines with
// Jazzer.js (libFuzzer in-process). Targets are test/fuzz/targets/<name>.ts (each exports `fuzz`);
// seeds are test/fuzz/corpus/<name>/ (regenerate with `npx tsx test/fuzz/make-corpus.ts`), optional
// dictionaries test/fuzz/dict/<name>.dict. What counts as a finding is test/fuzz/harness.ts's.
//
// How a target runs: Jazzer.js instruments code through require hooks, which do not see TypeScript
// ESM loaded by tsx. So each target is bundled with esbuild into one CommonJS file in a temp folder
// (repository code inlined and instrumented; packages stay external, required from node_modules by
// absolute path and not instrumented; `import.meta.url` replaced by each source file's own URL so
// REPO_ROOT resolves), then run by the Jazzer.js CLI in a child process: the working corpus is an
// empty temp folder listed first (libFuzzer writes new inputs only there), the repository's seeds
// second (read only), crash inputs under --out. Each run is bounded by -max_total_time, a per-input
// -timeout, -rss_limit_mb and a kill timer on the child.
//
// The prebuilt Jazzer.js addon for linux-x64 is linked against glibc 2.38 and GCC 13's libstdc++
// (`__isoc23_strtol`, `std::ios_base_library_init`); on an older system (Debian 12: glibc 2.36) it
// does not load. `loadableAddon` then makes a patched copy in the temp folder (the C23 strtol names
// pointed at the classic ones, the iostream anchor's version made weak) and the child loads that
// one instead (a preload that redirects process.dlopen). node_modules is never modified.
//
// Output: progress lines per target, then the last stdout line is one JSON object:
//   {"fuzz_execs", "fuzz_findings", "seconds", "targets": {name: {execs, findings, cov, ft, ...}}}
// Exit code 0: no findings; 1: a finding (or a target that could not run); 2: a usage error.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { REPO_ROOT } from '../core/paths.ts';

const FUZZ_DIR = join(REPO_ROOT, 'test', 'fuzz');
const TARGETS_DIR = join(FUZZ_DIR, 'targets');
const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
const DICT_DIR = join(FUZZ_DIR, 'dict');
const requireHere = createRequire(join(REPO_ROOT, 'package.json'));

/** libFuzzer's per-input timeout (s): a synchronous hang. Async hangs are caught sooner by the harness (HANG_MS). */
const INPUT_TIMEOUT_S = 10;
const HANG_MS = 3000;
const RSS_LIMIT_MB = 2048;
const DEFAULT_MAX_LEN = 8192;
const DEFAULT_SEED = 20261203;
/** Time a child may take beyond its share: start-up (instrumenting the bundle) and shutdown. */
const GRACE_S = 60;
/**
 * Jazzer.js bug detectors left off: these targets run no shell commands, eval, file paths or network
 * requests from input, and each detector adds start-up time. Prototype pollution stays on (decoders
 * build objects from untrusted keys); it costs about 15% of executions.
 */
const DISABLED_BUG_DETECTORS = '^(command-injection|path-traversal|remote-code-execution|ssrf)$';

const USAGE = `Usage: npm run fuzz -- [--seconds N] [--target NAME ...] [--out DIR] [--seed N]
       npm run fuzz -- --target NAME --repro FILE
       npm run fuzz -- --list

Coverage-guided fuzzing (Jazzer.js) of the server's decoders and protocol state machines.

  --seconds N      total fuzzing time, split evenly between the targets (default 60)
  --target NAME    fuzz only these targets (repeat the flag or list several names); default all
  --out DIR        where crash and hang inputs are written (default: a new temp folder, printed)
  --seed N         libFuzzer's random seed (default ${DEFAULT_SEED}, so a run is repeatable; time limits still vary what it reaches)
  --repro FILE     run one input through --target (under tsx, with full stack traces) and report
  --keep           keep the temp folder (bundles, working corpora) and print where it is
  --list           print the targets and exit
  --help           this text

Targets are test/fuzz/targets/<name>.ts, seeds test/fuzz/corpus/<name>/ (never written to by a run;
regenerate them with \`npx tsx test/fuzz/make-corpus.ts\`). The last stdout line is a JSON summary.
Exit code: 0 no findings, 1 findings (or a target failed to run), 2 usage error.`;

class UsageError extends Error {}

interface Args {
  seconds: number;
  targets: string[];
  out: string | undefined;
  seed: number | undefined;
  repro: string | undefined;
  keep: boolean;
  list: boolean;
  help: boolean;
}

function parseArgs(argv: string[], known: readonly string[]): Args {
  const a: Args = { seconds: 60, targets: [], out: undefined, seed: DEFAULT_SEED, repro: undefined, keep: false, list: false, help: false };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg];
    const take = (): string => (inline !== undefined ? inline : value(i++, flag!));
    switch (flag) {
      case '--help':
      case '-h':
        a.help = true;
        break;
      case '--list':
        a.list = true;
        break;
      case '--keep':
        a.keep = true;
        break;
      case '--seconds': {
        const s = Number(take());
        if (!Number.isFinite(s) || s <= 0) throw new UsageError('--seconds must be a positive number');
        a.seconds = s;
        break;
      }
      case '--seed': {
        const s = Number(take());
        if (!Number.isSafeInteger(s) || s < 1 || s > 2 ** 31 - 1) throw new UsageError('--seed must be an integer in [1, 2^31-1]');
        a.seed = s;
        break;
      }
      case '--out':
        a.out = resolve(take());
        break;
      case '--repro':
        a.repro = resolve(take());
        break;
      case '--target': {
        const names = inline !== undefined ? [inline] : [];
        while (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) names.push(argv[++i]!);
        if (names.length === 0) throw new UsageError('--target needs a name');
        for (const n of names.flatMap((s) => s.split(',')).filter(Boolean)) {
          if (!known.includes(n)) throw new UsageError(`unknown target "${n}" (targets: ${known.join(', ')})`);
          if (!a.targets.includes(n)) a.targets.push(n);
        }
        break;
      }
      default:
        throw new UsageError(`unknown argument "${arg}"`);
    }
  }
  if (a.repro !== undefined && a.targets.length !== 1) throw new UsageError('--repro needs exactly one --target');
  if (a.targets.length === 0) a.targets = [...known];
  return a;
}

function listTargets(): string[] {
  return readdirSync(TARGETS_DIR)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
}

/** A target's own options: a `// fuzz-options:` line in its source (`--sync`, libFuzzer flags such as -max_len=N). */
function targetOptions(name: string): { sync: boolean; libfuzzer: string[] } {
  const text = readFileSync(join(TARGETS_DIR, `${name}.ts`), 'utf8');
  const line = /^\/\/ fuzz-options:(.*)$/m.exec(text)?.[1] ?? '';
  const words = line.split(/\s+/).filter(Boolean);
  const libfuzzer = words.filter((w) => /^-[a-z_]+=/.test(w));
  if (!libfuzzer.some((w) => w.startsWith('-max_len='))) libfuzzer.push(`-max_len=${DEFAULT_MAX_LEN}`);
  return { sync: words.includes('--sync'), libfuzzer };
}

// -- bundling --------------------------------------------------------------------------------

/** Repository TypeScript inlined with its own `import.meta.url`; every package external, by absolute path. */
const bundlePlugin: Plugin = {
  name: 'stageward-fuzz',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (isBuiltin(args.path)) return undefined;
      try {
        return { path: createRequire(args.importer).resolve(args.path), external: true };
      } catch {
        return undefined; // a package without a CommonJS entry: bundled
      }
    });
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
    });
  },
};

async function bundle(targets: readonly string[], outdir: string): Promise<Record<string, string>> {
  await build({
    entryPoints: Object.fromEntries(targets.map((t) => [t, join(TARGETS_DIR, `${t}.ts`)])),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outdir,
    outExtension: { '.js': '.cjs' },
    sourcemap: 'inline',
    plugins: [bundlePlugin],
    logLevel: 'warning',
  });
  return Object.fromEntries(targets.map((t) => [t, join(outdir, `${t}.cjs`)]));
}

// -- the native addon ------------------------------------------------------------------------

/**
 * Make sure the Jazzer.js addon loads here. Returns a preload script (for `node -r`) that redirects
 * the addon to a patched copy when the prebuilt one needs a newer glibc / libstdc++, else undefined.
 */
function loadableAddon(workDir: string): string | undefined {
  const pkg = dirname(requireHere.resolve('@jazzer.js/fuzzer/package.json'));
  const original = join(pkg, 'prebuilds', `fuzzer-${process.platform}-${process.arch}.node`);
  if (!existsSync(original)) throw new Error(`no Jazzer.js prebuilt fuzzer for ${process.platform}-${process.arch} (${original})`);
  let error = tryLoad(original);
  if (error === undefined) return undefined;
  const buf = readFileSync(original);
  const patched = join(workDir, 'jazzer-fuzzer.node');
  const fixed: string[] = [];
  for (let round = 0; round < 8 && error !== undefined; round++) {
    const version = /version `([^']+)' not found/.exec(error)?.[1];
    if (version === undefined || fixed.includes(version)) break;
    patchVersion(buf, version);
    fixed.push(version);
    writeFileSync(patched, buf);
    error = tryLoad(patched);
  }
  if (error !== undefined) throw new Error(`the Jazzer.js native fuzzer does not load on this system: ${error}`);
  console.log(`fuzz: the prebuilt Jazzer.js addon needs ${fixed.join(', ')}; using a patched copy (${patched})`);
  const preload = join(workDir, 'jazzer-addon-preload.cjs');
  writeFileSync(
    preload,
    `'use strict';
// Written by scripts/fuzz.ts: load the patched Jazzer.js addon in place of the prebuilt one.
const from = ${JSON.stringify(original)};
const to = ${JSON.stringify(patched)};
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  return dlopen.call(this, module, filename === from ? to : filename, ...rest);
};
`,
  );
  return preload;
}

function tryLoad(file: string): string | undefined {
  const r = spawnSync(process.execPath, ['-e', `process.dlopen({ exports: {} }, ${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (r.status === 0) return undefined;
  return (r.stderr.split('\n').find((l) => l.startsWith('Error:')) ?? r.stderr.trim().split('\n')[0] ?? 'unknown error').trim();
}

const SHT_DYNSYM = 11;
const SHT_GNU_VERNEED = 0x6ffffffe;
const SHT_GNU_VERSYM = 0x6fffffff;
const VER_FLG_WEAK = 0x2;
/** C23 strtol family (glibc 2.38): the classic functions differ only in also reading a 0b prefix. */
const ISOC23 = new Set(['strtol', 'strtoul', 'strtoll', 'strtoull', 'strtoimax', 'strtoumax']);
/** GCC 13's iostream anchor: referenced by a bare `.globl`, never called or relocated. */
const ANCHORS = new Set(['_ZSt21ios_base_library_initv']);

/**
 * Patch an ELF64 little-endian shared object in place so it no longer needs `version`: either every
 * symbol of that version is a C23 strtol (pointed at the classic name inside its own string, version
 * retargeted to the library's baseline), or every one is a never-called anchor (version made weak).
 * Anything else is refused, with the symbols named.
 */
function patchVersion(buf: Buffer, version: string): void {
  if (buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1)
    throw new Error('the addon is not a 64-bit little-endian ELF file');
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const secs = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return {
      type: buf.readUInt32LE(o + 4),
      off: Number(buf.readBigUInt64LE(o + 0x18)),
      size: Number(buf.readBigUInt64LE(o + 0x20)),
      link: buf.readUInt32LE(o + 0x28),
      info: buf.readUInt32LE(o + 0x2c),
    };
  });
  const find = (type: number) => {
    const s = secs.find((x) => x.type === type);
    if (s === undefined) throw new Error(`the addon has no section of type 0x${type.toString(16)}`);
    return s;
  };
  const dynsym = find(SHT_DYNSYM);
  const dynstr = secs[dynsym.link]!;
  const verneed = find(SHT_GNU_VERNEED);
  const versym = find(SHT_GNU_VERSYM);
  const str = (off: number) => {
    const start = dynstr.off + off;
    return buf.toString('latin1', start, buf.indexOf(0, start));
  };
  interface Aux {
    at: number;
    file: string;
    name: string;
    nameOff: number;
    hash: number;
    other: number;
  }
  const aux: Aux[] = [];
  for (let o = verneed.off, n = 0; n < verneed.info; n++) {
    const cnt = buf.readUInt16LE(o + 2);
    const file = str(buf.readUInt32LE(o + 4));
    for (let a = o + buf.readUInt32LE(o + 8), k = 0; k < cnt; k++) {
      const nameOff = buf.readUInt32LE(a + 8);
      aux.push({ at: a, file, name: str(nameOff), nameOff, hash: buf.readUInt32LE(a), other: buf.readUInt16LE(a + 6) });
      const next = buf.readUInt32LE(a + 12);
      if (next === 0) break;
      a += next;
    }
    const next = buf.readUInt32LE(o + 12);
    if (next === 0) break;
    o += next;
  }
  const entry = aux.find((x) => x.name === version);
  if (entry === undefined) throw new Error(`the addon does not reference version ${version}`);
  const symbols: { at: number; nameOff: number; name: string }[] = [];
  for (let i = 0; i < dynsym.size / 24; i++) {
    if ((buf.readUInt16LE(versym.off + 2 * i) & 0x7fff) !== entry.other) continue;
    const at = dynsym.off + 24 * i;
    const nameOff = buf.readUInt32LE(at);
    symbols.push({ at, nameOff, name: str(nameOff) });
  }
  const refuse = () => {
    throw new Error(`cannot patch the addon's need for ${version} (${entry.file}): ${symbols.map((s) => s.name).join(', ')}`);
  };
  if (symbols.length > 0 && symbols.every((s) => s.name.startsWith('__isoc23_') && ISOC23.has(s.name.slice(9)))) {
    const numbers = (v: string) =>
      v
        .replace(/^[A-Z_]+/, '')
        .split('.')
        .map(Number);
    const older = (x: Aux, y: Aux) => {
      const [p, q] = [numbers(x.name), numbers(y.name)];
      for (let i = 0; i < Math.max(p.length, q.length); i++) if ((p[i] ?? 0) !== (q[i] ?? 0)) return (p[i] ?? 0) - (q[i] ?? 0);
      return 0;
    };
    const baseline = aux.filter((x) => x.file === entry.file && x.name.startsWith('GLIBC_')).sort(older)[0];
    if (baseline === undefined || baseline === entry) refuse();
    for (const s of symbols) buf.writeUInt32LE(s.nameOff + '__isoc23_'.length, s.at);
    buf.writeUInt32LE(baseline!.hash, entry.at);
    buf.writeUInt32LE(baseline!.nameOff, entry.at + 8);
  } else if (symbols.every((s) => ANCHORS.has(s.name))) {
    buf.writeUInt16LE(buf.readUInt16LE(entry.at + 4) | VER_FLG_WEAK, entry.at + 4);
  } else refuse();
}

// -- running a target ------------------------------------------------------------------------

interface Finding {
  target: string;
  file: string;
  kind: string;
  error: string;
}

interface TargetResult {
  execs: number;
  findings: number;
  cov: number;
  ft: number;
  /** cov after the seeds were read (INITED): cov above it is what fuzzing found. */
  cov_seeds: number;
  /** Inputs libFuzzer kept beyond the seeds (in the temp working corpus, not the repository's). */
  corpus_new: number;
  seconds: number;
  exec_per_s: number;
  error?: string;
}

const STATUS = /^#(\d+)\s+(INITED|NEW|REDUCE|pulse|DONE|RELOAD)\s.*?cov: (\d+) ft: (\d+)/;

async function runTarget(
  name: string,
  file: string,
  o: { seconds: number; out: string; work: string; preload: string | undefined; seed: number | undefined },
): Promise<{ result: TargetResult; findings: Finding[] }> {
  const opts = targetOptions(name);
  const corpus = join(o.work, 'corpus', name);
  mkdirSync(corpus, { recursive: true });
  const seeds = join(CORPUS_DIR, name);
  const seedDirs = existsSync(seeds) && readdirSync(seeds).length > 0 ? [seeds] : [];
  const dict = join(DICT_DIR, `${name}.dict`);
  const libfuzzer = [
    `-max_total_time=${o.seconds}`,
    `-rss_limit_mb=${RSS_LIMIT_MB}`,
    `-artifact_prefix=${join(o.out, `${name}-`)}`,
    '-print_final_stats=1',
    ...(existsSync(dict) ? [`-dict=${dict}`] : []),
    ...(o.seed !== undefined ? [`-seed=${o.seed}`] : []),
    ...opts.libfuzzer,
  ];
  const cli = requireHere.resolve('@jazzer.js/core/dist/cli.js');
  const args = [
    ...(o.preload !== undefined ? ['-r', o.preload] : []),
    cli,
    file,
    corpus,
    ...seedDirs,
    `--sync=${opts.sync}`,
    `--disableBugDetectors=${DISABLED_BUG_DETECTORS}`,
    `--timeout=${INPUT_TIMEOUT_S * 1000}`,
    '--',
    ...libfuzzer,
  ];
  const log = join(o.out, `${name}.log`);
  const logLines: string[] = [`$ ${process.execPath} ${args.join(' ')}`];
  const t0 = performance.now();
  const r: TargetResult = { execs: 0, findings: 0, cov: 0, ft: 0, cov_seeds: 0, corpus_new: 0, seconds: 0, exec_per_s: 0 };
  const findings: Finding[] = [];
  let lastPrint = 0;
  const progress = (force = false) => {
    const now = performance.now();
    if (!force && now - lastPrint < 5000) return;
    lastPrint = now;
    const s = (now - t0) / 1000;
    console.log(`[${name}] ${s.toFixed(0)}s  #${r.execs}  cov ${r.cov}  ft ${r.ft}  findings ${findings.length}`);
  };
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, FUZZ_FINDINGS_DIR: o.out, FUZZ_HANG_MS: String(HANG_MS) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let killed = false;
  const killer = setTimeout(
    () => {
      killed = true;
      child.kill('SIGKILL');
    },
    (o.seconds + GRACE_S) * 1000,
  );
  /** What Jazzer.js / libFuzzer printed about the error that stopped the run (from its first ==pid== line). */
  const crash: string[] = [];
  let crashEnd = false;
  let started = false;
  const recent: string[] = [];
  const onLine = (line: string) => {
    const counted = /^FUZZ-EXECS (\d+)$/.exec(line);
    if (counted) {
      r.execs = Math.max(r.execs, Number(counted[1]));
      return;
    }
    logLines.push(line);
    const m = STATUS.exec(line);
    if (m) {
      r.execs = Math.max(r.execs, Number(m[1]));
      r.cov = Number(m[3]);
      r.ft = Number(m[4]);
      if (m[2] === 'INITED') {
        r.cov_seeds = r.cov;
        started = true;
      }
      progress();
      return;
    }
    const done = /^Done (\d+) runs in/.exec(line) ?? /^stat::number_of_executed_units:\s+(\d+)/.exec(line);
    if (done) r.execs = Math.max(r.execs, Number(done[1]));
    if (line.startsWith('FUZZ-FINDING ')) {
      try {
        const f = JSON.parse(line.slice('FUZZ-FINDING '.length)) as { file: string; kind: string; error: string };
        findings.push({ target: name, file: f.file, kind: f.kind, error: f.error });
        console.log(`[${name}] FINDING (${f.kind}): ${f.error.split('\n')[0]}`);
      } catch {
        /* a torn line: the file is still in --out */
      }
      return;
    }
    if (crash.length === 0 && /^==\d+==\s*(ERROR|Uncaught)/.test(line)) {
      // An error Node printed itself (an uncaught exception) comes just before libFuzzer's line.
      const before = recent.findIndex((l) => /^\S+:\d+$/.test(l) || /^\w*Error\b/.test(l));
      crash.push(...(before >= 0 ? recent.slice(before) : []), line);
    } else if (crash.length > 0 && !crashEnd && crash.length < 80) {
      if (/^(MS:|artifact_prefix=|stat::|Done \d|SUMMARY:|INFO:)/.test(line)) crashEnd = true;
      else crash.push(line);
    }
    recent.push(line);
    if (recent.length > 20) recent.shift();
    const unit = /Test unit written to (\S+)/.exec(line);
    if (unit) findings.push({ target: name, file: unit[1]!, kind: /-(timeout|oom|leak)-/.exec(unit[1]!)?.[1] ?? 'crash', error: '' });
  };
  const pump = (stream: NodeJS.ReadableStream) => {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const l of lines) onLine(l.replace(/\r$/, ''));
    });
    stream.on('end', () => rest && onLine(rest));
  };
  pump(child.stdout!);
  pump(child.stderr!);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('close', (c, sig) => res([c, sig])));
  logLines.push(`(exit code ${code}${signal !== null ? `, signal ${signal}` : ''})`);
  clearTimeout(killer);
  // libFuzzer's artifacts (a thrown finding such as a hang, a timeout, out of memory): the error, from
  // the log, goes beside the input, as the harness writes it for the findings it records itself.
  for (const f of findings.filter((x) => x.error === '')) {
    const headline = crash.find((l) => /^\w*Error\b|^==\d+==/.test(l));
    f.error = headline?.replace(/^==\d+==\s*/, '') ?? `see ${log}`;
    if (f.error.includes('FuzzFinding: the check did not settle')) f.kind = 'hang';
    writeFileSync(
      `${f.file}.txt`,
      [`target: ${name}`, `reproduce: npx tsx scripts/fuzz.ts --target ${name} --repro ${f.file}`, '', ...crash, ''].join('\n'),
    );
  }
  r.seconds = Number(((performance.now() - t0) / 1000).toFixed(1));
  // From what is on disk and the harness's count: libFuzzer's final stats can be cut short at exit.
  r.exec_per_s = Math.round(r.execs / Math.max(1, Math.min(o.seconds, r.seconds)));
  r.corpus_new = readdirSync(corpus).length;
  writeFileSync(log, logLines.join('\n') + '\n');
  if (killed) {
    r.error = `did not stop within ${o.seconds + GRACE_S} s; killed (see ${log})`;
    findings.push({ target: name, file: log, kind: 'stuck', error: r.error });
  } else if (code !== 0 && findings.length === 0) {
    const why = crash[0]?.replace(/^==\d+==\s*/, '') ?? firstError(logLines);
    if (started) {
      // Died while fuzzing without an input on disk (say an unhandled rejection): the log is the evidence.
      r.error = `the fuzzer process died (exit code ${code}${signal !== null ? `, ${signal}` : ''}): ${why}`;
      findings.push({ target: name, file: log, kind: 'died', error: r.error });
    } else r.error = `jazzer exited with code ${code} before fuzzing (see ${log}): ${why}`;
  }
  r.findings = findings.length;
  progress(true);
  return { result: r, findings };
}

function firstError(lines: string[]): string {
  return (lines.find((l) => /Error|error:/.test(l) && !l.startsWith('$')) ?? lines.at(-1) ?? '').trim().slice(0, 300);
}

// -- main ------------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  const known = listTargets();
  let a: Args;
  try {
    a = parseArgs(argv, known);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`fuzz: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (a.help) {
    console.log(USAGE);
    return 0;
  }
  if (a.list) {
    console.log(known.join('\n'));
    return 0;
  }
  if (a.repro !== undefined) {
    if (!existsSync(a.repro) || !statSync(a.repro).isFile()) {
      console.error(`fuzz: ${a.repro} is not a file\n\n${USAGE}`);
      return 2;
    }
    const tsx = requireHere.resolve('tsx/cli');
    const r = spawnSync(process.execPath, [tsx, join(FUZZ_DIR, 'repro.ts'), a.targets[0]!, a.repro], { cwd: REPO_ROOT, stdio: 'inherit' });
    return r.status ?? 1;
  }

  const t0 = performance.now();
  const work = mkdtempSync(join(tmpdir(), 'stageward-fuzz-'));
  const out = a.out ?? mkdtempSync(join(tmpdir(), 'stageward-fuzz-out-'));
  mkdirSync(out, { recursive: true });
  const share = Math.max(1, Math.floor(a.seconds / a.targets.length));
  console.log(`fuzz: ${a.targets.join(', ')}: ${share} s each; findings and logs go to ${out}`);
  const results: Record<string, TargetResult> = {};
  const findings: Finding[] = [];
  // Ctrl-C reaches the running child too (same process group): let it stop, then skip the rest.
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  try {
    const preload = loadableAddon(work);
    const bundles = await bundle(a.targets, join(work, 'bundle'));
    for (const name of a.targets) {
      if (interrupted) break;
      const { result, findings: f } = await runTarget(name, bundles[name]!, { seconds: share, out, work, preload, seed: a.seed });
      results[name] = result;
      findings.push(...f);
      if (result.error !== undefined) console.log(`[${name}] ERROR: ${result.error}`);
    }
  } finally {
    if (a.keep) console.log(`fuzz: temp folder kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
  for (const f of findings) console.log(`finding: ${f.target} ${f.kind}: ${f.file}\n  ${f.error.split('\n')[0]}`);
  const failed = Object.entries(results).filter(([, r]) => r.error !== undefined && r.findings === 0);
  const summary = {
    fuzz_execs: Object.values(results).reduce((s, r) => s + r.execs, 0),
    fuzz_findings: findings.length,
    seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
    out,
    targets: results,
  };
  console.log(JSON.stringify(summary));
  return findings.length > 0 || failed.length > 0 ? 1 : interrupted ? 130 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`fuzz: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    console.log(JSON.stringify({ fuzz_execs: 0, fuzz_findings: 0, seconds: 0, targets: {}, error: String(err) }));
    process.exit(1);
  },
);
