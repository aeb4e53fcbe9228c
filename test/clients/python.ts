// Finding a Python for the Python client (clients/python): one that imports numpy, msgpack and
// websockets. Order: $STAGEWARD_PYTHON, then python3, /usr/bin/python3 (Debian's, where apt puts
// python3-msgpack and python3-websockets), python. Used by the vitest suite and run-pytest.ts.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../core/paths.ts';

export const CLIENT_DIR = join(REPO_ROOT, 'clients', 'python');

/** The interpreter to use; throws with install instructions when none has the modules. */
export function findClientPython(modules: readonly string[] = ['numpy', 'msgpack', 'websockets']): string {
  const override = process.env.STAGEWARD_PYTHON;
  const candidates = override ? [override] : ['python3', '/usr/bin/python3', 'python'];
  for (const cmd of candidates) {
    const r = spawnSync(cmd, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return cmd;
  }
  const debian = modules.map((m) => `python3-${m}`).join(' ');
  throw new Error(
    `no Python among ${candidates.join(', ')} can import ${modules.join(', ')}, which the Python client needs; ` +
      `install them (Debian/Ubuntu: \`sudo apt-get install -y ${debian}\`, or \`pip install ${modules.join(' ')}\`), ` +
      'or point STAGEWARD_PYTHON at an interpreter that has them',
  );
}
