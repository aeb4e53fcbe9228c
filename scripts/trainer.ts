// Run a command of the Python trainer (models/train) with an interpreter that has torch:
//   tsx scripts/trainer.ts -m pytest -q
//   tsx scripts/trainer.ts -m stageward_train.make_fixture
// Finds the interpreter as models/python.ts says ($STAGEWARD_PYTHON to override).

import { runTrainer } from '../models/python.ts';

try {
  process.exitCode = runTrainer(process.argv.slice(2)).status;
} catch (err) {
  console.error(`stageward: ${(err as Error).message}`);
  process.exitCode = 1;
}
