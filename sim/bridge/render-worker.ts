// The render thread (worker side of render-pool.ts): renders the views of each scene snapshot it is
// sent with the repository's ray caster and posts the frames back (their buffers transferred, not
// copied), in the order the requests came.
//
// Messages in:  {id, scene: SceneSnapshot, views: string[], width, height}
// Messages out: {id, ok: true, frames: RawImage[]} (in `views` order) | {id, ok: false, code, message}

import { parentPort } from 'node:worker_threads';
import { isStagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import { createRenderer } from '../render/index.ts';
import type { SceneSnapshot } from '../types.ts';

interface Request {
  id: number;
  scene: SceneSnapshot;
  views: string[];
  width: number;
  height: number;
}

const port = parentPort!;
const renderer = createRenderer();

port.on('message', (req: Request) => {
  try {
    const frames: RawImage[] = req.views.map((v) => renderer.render(req.scene, v, req.width, req.height));
    port.postMessage(
      { id: req.id, ok: true, frames },
      frames.map((f) => f.data.buffer as ArrayBuffer),
    );
  } catch (err) {
    const code = isStagewardError(err) ? err.code : 'SW_ERR_INTERNAL';
    port.postMessage({ id: req.id, ok: false, code, message: err instanceof Error ? err.message.split('\n')[0] : String(err) });
  }
});
port.postMessage({ type: 'ready' });
