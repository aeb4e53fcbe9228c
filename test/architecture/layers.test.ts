// The import rules of ARCHITECTURE.md, checked on every source file: each top-level folder is a layer,
// a file imports only from its own layer or an earlier one, CLI verbs never import each other, and no
// files import each other in a circle (tests included). Imports are read with TypeScript's own
// pre-processor (static, dynamic and `export ... from`), plus the module URLs (`new URL` of a relative
// .ts/.mjs path and import.meta.url) that start worker threads.

import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { execFileSync } from 'node:child_process';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../core/paths.ts';

/** The layer order, first to last; a file may import from its own layer and the ones before it. */
export const LAYERS = ['core', 'models', 'datasets', 'server', 'sim', 'offline', 'learn', 'bench', 'cli', 'scripts'] as const;
/** Entry points above every layer: they may import anything and nothing imports them. */
const ENTRY_POINTS = [
  'bin/stageward.js',
  'index.ts',
  'vitest.config.ts',
  'vitest.python.config.ts',
  'vitest.nginx.config.ts',
  'vitest.native.config.ts',
  'vitest.dav1d.config.ts',
  'vitest.sim.config.ts',
  'vitest.browser.config.ts',
  'vitest.mutation.config.ts',
  'stryker.config.mjs',
  'eslint.config.js',
];

const SOURCE = /\.(ts|mts|js|mjs)$/;

function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return out
    .split('\n')
    .filter((f) => SOURCE.test(f) && !f.startsWith('node_modules/') && !f.startsWith('models/train/') && !f.startsWith('test/fixtures/'))
    .filter((f) => {
      try {
        readFileSync(join(REPO_ROOT, f));
        return true;
      } catch {
        return false; // deleted in the working tree
      }
    });
}

/** Repository-relative paths of the files `file` imports (relative specifiers only). */
function importsOf(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const specs = ts.preProcessFile(text, true, true).importedFiles.map((r) => r.fileName);
  for (const m of text.matchAll(/new URL\(\s*'(\.[^']+\.(?:ts|mjs|js))'\s*,\s*import\.meta\.url\s*\)/g)) specs.push(m[1]!);
  return specs.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(file), s)));
}

function layerOf(file: string): number {
  const top = file.split('/')[0]!;
  return LAYERS.indexOf(top as (typeof LAYERS)[number]);
}

const files = trackedFiles();
const sources = files.filter((f) => !f.startsWith('test/') && !ENTRY_POINTS.includes(f));
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('layers', () => {
  it('puts every source file in a layer of ARCHITECTURE.md, and the document lists the same order', () => {
    expect(sources.filter((f) => layerOf(f) < 0)).toEqual([]);
    const doc = readFileSync(join(REPO_ROOT, 'ARCHITECTURE.md'), 'utf8');
    const line = doc.split('\n').find((l) => l.startsWith('Layer order:'));
    expect(line, 'ARCHITECTURE.md has a line "Layer order: core -> models -> ..."').toBeDefined();
    expect(
      line!
        .replace('Layer order:', '')
        .split('->')
        .map((s) => s.trim().replace(/`/g, '')),
    ).toEqual([...LAYERS]);
  });

  it('imports only from the same or an earlier layer', () => {
    const against: string[] = [];
    for (const f of sources) {
      for (const t of graph.get(f)!) {
        if (t.startsWith('test/')) against.push(`${f} -> ${t} (source imports a test file)`);
        else if (ENTRY_POINTS.includes(t)) against.push(`${f} -> ${t} (an entry point)`);
        else if (layerOf(t) > layerOf(f)) against.push(`${f} (${LAYERS[layerOf(f)]}) -> ${t} (${LAYERS[layerOf(t)]})`);
      }
    }
    expect(against).toEqual([]);
  });

  it('keeps each CLI verb on its own: verbs import library code, never another verb', () => {
    const verbs = sources.filter((f) => f.startsWith('cli/commands/'));
    const against = verbs.flatMap((f) =>
      graph
        .get(f)!
        .filter((t) => t.startsWith('cli/commands/'))
        .map((t) => `${f} -> ${t}`),
    );
    expect(against).toEqual([]);
  });

  it('has no import cycle between files, tests included', () => {
    // Tarjan's strongly connected components; any component of two or more files is a cycle.
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const cycles: string[][] = [];
    const visit = (v: string) => {
      idx.set(v, index);
      low.set(v, index++);
      stack.push(v);
      onStack.add(v);
      for (const w of graph.get(v) ?? []) {
        if (!graph.has(w)) continue;
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const comp: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
      }
    };
    for (const f of graph.keys()) if (!idx.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  it('resolves every relative import to a file that exists', () => {
    const missing = [...graph].flatMap(([f, ts]) =>
      ts
        .filter((t) => !graph.has(t) && !t.startsWith('models/train/') && !t.startsWith('test/fixtures/'))
        .map((t) => `${f} -> ${relative(REPO_ROOT, join(REPO_ROOT, t))}`),
    );
    expect(missing).toEqual([]);
  });
});
