// The inference thread (worker side of models/worker-model.ts): loads the model package with
// OnnxProgressModel and runs each request it is sent, one at a time, posting back the result or the
// error's code and message. onnxruntime-node runs a graph synchronously on the calling thread, so
// running it here keeps the server's event loop free while a batch computes.
//
// Messages in:  {id, op: 'encode' | 'sarm' | 'grm' | 'close', args}
// Messages out: {type: 'ready', card, providers} | {type: 'failed', code, message} once at start;
//               then {id, ok: true, result} | {id, ok: false, code, message} per request. A sarm
//               result is {stageLogits, tau, uncertainty?}: the optional output travels when present.

import { parentPort, workerData } from 'node:worker_threads';
import { isStagewardError } from '../core/errors.ts';
import { OnnxProgressModel, type LoadOptions } from './package.ts';

interface Request {
  id: number;
  op: 'encode' | 'sarm' | 'grm' | 'close';
  args: any;
}

const port = parentPort!;
const { dir, options } = workerData as { dir: string; options: LoadOptions };

function failure(err: unknown): { code: string; message: string } {
  if (isStagewardError(err)) return { code: err.code, message: err.message };
  return { code: 'SW_ERR_INTERNAL', message: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
}

let model: OnnxProgressModel;
try {
  model = await OnnxProgressModel.load(dir, { ...options, log: (m) => port.postMessage({ type: 'log', message: m }) });
  port.postMessage({ type: 'ready', card: model.card, providers: model.providers });
} catch (err) {
  port.postMessage({ type: 'failed', ...failure(err) });
  process.exit(0);
}

let queue = Promise.resolve();
port.on('message', (req: Request) => {
  queue = queue.then(async () => {
    try {
      let result: unknown;
      if (req.op === 'encode') result = await model.encode(req.args.pixels, req.args.n);
      else if (req.op === 'sarm') {
        // Named fields, so what crosses the thread is exactly the SarmOutput contract and nothing else.
        const out = await model.sarm(req.args);
        result = { stageLogits: out.stageLogits, tau: out.tau, ...(out.uncertainty ? { uncertainty: out.uncertainty } : {}) };
      } else if (req.op === 'grm') result = await model.grm(req.args);
      else {
        await model.close();
        result = null;
      }
      port.postMessage({ id: req.id, ok: true, result });
    } catch (err) {
      port.postMessage({ id: req.id, ok: false, ...failure(err) });
    }
  });
});
