// Loads a trained package with the server's own loader (models/package.ts) and runs its ONNX graphs
// on the parity inputs test_train.py wrote with torch; prints the largest differences as JSON.
//   node --import tsx models/train/tests/check_package.ts <package dir> <parity dir>

import { join } from 'node:path';
import { readNpy } from '../../../datasets/npy.ts';
import { OnnxProgressModel } from '../../package.ts';

const [dir, parity] = process.argv.slice(2) as [string, string];
const load = async (name: string) => readNpy(join(parity, `${name}.npy`));
const f32 = async (name: string) => (await load(name)).data as Float32Array;
const ints = async (name: string) => Array.from((await load(name)).data as BigInt64Array, Number);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

const model = await OnnxProgressModel.load(dir);
try {
  const px = await load('enc_pixels');
  const features = await model.encode(px.data as Uint8Array, px.shape[0]!);
  const sarm = await model.sarm({ features: await f32('sarm_features'), valid: await f32('sarm_valid'), task: await ints('sarm_task') });
  const hop = await model.grm({
    start: await f32('grm_start'), goal: await f32('grm_goal'), before: await f32('grm_before'), after: await f32('grm_after'), task: await ints('grm_task'),
  });
  console.log(JSON.stringify({
    name: model.card.name,
    tasks: model.card.tasks,
    encoder: maxDiff(features, await f32('enc_features')),
    stage_logits: maxDiff(sarm.stageLogits, await f32('sarm_stage_logits')),
    tau: maxDiff(sarm.tau, await f32('sarm_tau')),
    hop: maxDiff(hop, await f32('grm_hop')),
    // an ensemble package: the uncertainty output against torch's; null when neither side has one
    uncertainty: sarm.uncertainty === undefined ? null : maxDiff(sarm.uncertainty, await f32('sarm_uncertainty')),
  }));
} finally {
  await model.close();
}
