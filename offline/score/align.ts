// Align camera views recorded at different frame rates (and sizes) on one timeline, causally. The
// timeline runs at `fps` from t0, the first moment every view has a frame (the latest first
// timestamp), to the last moment every view still has one (the earliest last timestamp):
// t_k = t0 + k / fps. At t_k each view contributes its latest frame with pts <= t_k, so no step sees
// a frame from its future. Holds two frames per view (the current one and the next).
//
//   for await (const step of alignViews({ front: decodeTimed(a, size), wrist: decodeTimed(b, size) }, 30)) ...

import { StagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import type { TimedFrame } from './timed-decode.ts';

/** A frame counts as shown at t when its pts is at most t + this (absorbs float rounding of pts and k/fps). */
export const PTS_TOLERANCE_S = 1e-6;

export interface AlignedStep {
  /** Step index on the timeline. */
  index: number;
  /** Timeline time in seconds (t0 + index / fps). */
  timeSeconds: number;
  frames: Record<string, RawImage>;
  /** The pts of the frame each view contributed. */
  pts: Record<string, number>;
}

interface Cursor {
  it: AsyncIterator<TimedFrame>;
  current: TimedFrame;
  next: TimedFrame | undefined;
}

async function pull(it: AsyncIterator<TimedFrame>): Promise<TimedFrame | undefined> {
  const r = await it.next();
  return r.done ? undefined : r.value;
}

export async function* alignViews(streams: Record<string, AsyncIterable<TimedFrame>>, fps: number): AsyncGenerator<AlignedStep> {
  if (!(fps > 0) || !Number.isFinite(fps))
    throw new StagewardError('SW_ERR_BAD_OPTION', `the timeline fps must be a positive number, got ${fps}`);
  const views = Object.keys(streams);
  if (views.length === 0) throw new StagewardError('SW_ERR_VIEW_MISSING', 'no views to align');
  const its = views.map((v) => streams[v]![Symbol.asyncIterator]());
  try {
    const firsts = await Promise.all(its.map(pull));
    const cursors: Cursor[] = [];
    for (let i = 0; i < views.length; i++) {
      const first = firsts[i];
      if (first === undefined) throw new StagewardError('SW_ERR_FFMPEG', `view "${views[i]}" has no frames`);
      cursors.push({ it: its[i]!, current: first, next: await pull(its[i]!) });
    }
    const t0 = Math.max(...cursors.map((c) => c.current.ptsSeconds));
    for (let k = 0; ; k++) {
      const t = t0 + k / fps;
      // Advance each view to its latest frame with pts <= t; views advance in parallel.
      await Promise.all(
        cursors.map(async (c) => {
          while (c.next !== undefined && c.next.ptsSeconds <= t + PTS_TOLERANCE_S) {
            c.current = c.next;
            c.next = await pull(c.it);
          }
        }),
      );
      // A view that has ended stops the timeline once t passes its last frame.
      if (cursors.some((c) => c.next === undefined && t > c.current.ptsSeconds + PTS_TOLERANCE_S)) return;
      const frames: Record<string, RawImage> = {};
      const pts: Record<string, number> = {};
      cursors.forEach((c, i) => {
        frames[views[i]!] = c.current.image;
        pts[views[i]!] = c.current.ptsSeconds;
      });
      yield { index: k, timeSeconds: t, frames, pts };
    }
  } finally {
    await Promise.all(its.map((it) => it.return?.(undefined)));
  }
}
