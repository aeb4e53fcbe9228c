import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, StagewardError } from '../../core/errors.ts';
import { REPO_ROOT } from '../../core/paths.ts';

describe('error codes', () => {
  it('ERRORS.md documents every code with its close code, and no code that does not exist', async () => {
    const doc = await readFile(join(REPO_ROOT, 'ERRORS.md'), 'utf8');
    const documented = [...doc.matchAll(/^\| `(SW_ERR_[A-Z_]+)` \| ([0-9]+|—) \|/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(documented)).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([k, v]) => [k, v.close === null ? '—' : String(v.close)])),
    );
  });

  it('an error knows its close code and carries no stack in its message', () => {
    const err = new StagewardError('SW_ERR_INFERENCE', 'inference failed: x');
    expect(err.closeCode).toBe(1011);
    expect(new StagewardError('SW_ERR_VIEW_MISSING', 'm').closeCode).toBeNull();
    expect(err.message).not.toContain('    at ');
  });
});
