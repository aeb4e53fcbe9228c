// The Python client's own tests (clients/python/tests: codec, client against a fake server, gym
// wrapper), with an interpreter found as test/clients/python.ts says:
//   tsx test/clients/run-pytest.ts [pytest args]

import { spawnSync } from 'node:child_process';
import { CLIENT_DIR, findClientPython } from './python.ts';

try {
  const python = findClientPython(['numpy', 'msgpack', 'websockets', 'pytest']);
  const r = spawnSync(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', ...process.argv.slice(2)], {
    cwd: CLIENT_DIR,
    stdio: 'inherit',
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  process.exitCode = r.status ?? 1;
} catch (err) {
  console.error(`stageward: ${(err as Error).message}`);
  process.exitCode = 1;
}
