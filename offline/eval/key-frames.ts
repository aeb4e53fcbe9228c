// Key frames of one episode for the HTML reports of `stageward eval` and `stageward score`: the first
// frame and each frame where the predicted stage changes, as small JPEGs of one camera view. They are
// taken from the frames the run decodes anyway, as each one is stepped (no second decode pass), and
// only those few are kept: the frame is copied and encoded off the main thread by sharp while the run
// goes on. At most `limit` per episode; later changes are counted, not kept.
//
//   const kf = new KeyFrames('front');
//   kf.see(t, frames, stage);   // after each step, in time order
//   const frames = await kf.done();

import { thumbnailJpeg } from '../../core/image.ts';
import type { FrameSet } from '../../models/preprocess.ts';

/** Thumbnail width in pixels (smaller frames keep their size), and its JPEG quality. */
export const THUMB_WIDTH = 128;
const THUMB_QUALITY = 80;
/** Key frames kept per episode by default. */
export const KEY_FRAMES_PER_EPISODE = 8;

export interface KeyFrame {
  frame: number;
  stage: number;
  jpeg: Uint8Array;
}

export class KeyFrames {
  readonly #view: string;
  readonly #limit: number;
  #stage: number | undefined;
  readonly #taken: Promise<KeyFrame | null>[] = [];
  /** Stage changes seen after the limit was reached. */
  omitted = 0;

  constructor(view: string, limit = KEY_FRAMES_PER_EPISODE) {
    this.#view = view;
    this.#limit = limit;
  }

  /** Frame t and its predicted stage, in time order; null for a frame without its own prediction (it keeps the stage before). */
  see(t: number, frames: FrameSet, stage: number | null): void {
    if (stage === null || stage === this.#stage) return;
    this.#stage = stage;
    const img = frames[this.#view];
    if (img === undefined) return;
    if (this.#taken.length >= this.#limit) {
      this.omitted++;
      return;
    }
    // A thumbnail that cannot be made is left out: the report is decoration, never a reason to fail a run.
    this.#taken.push(
      thumbnailJpeg(img, THUMB_WIDTH, THUMB_QUALITY).then(
        (jpeg) => ({ frame: t, stage, jpeg }),
        () => null,
      ),
    );
  }

  /** The key frames in time order, once encoded. */
  async done(): Promise<KeyFrame[]> {
    return (await Promise.all(this.#taken)).filter((k): k is KeyFrame => k !== null);
  }
}
