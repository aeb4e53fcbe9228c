// The dashboard's live state stays bounded whatever the robots do: long episodes are thinned to
// maxPoints (first and latest kept), a session keeps its current and previous episode, closed
// sessions drop off after KEEP_CLOSED newer ones, and client episode labels are cut short.
import { describe, expect, it } from 'vitest';
import type { StepResult } from '../../models/engine.ts';
import { KEEP_CLOSED, KEEP_EPISODES, LiveHub } from '../../server/live.ts';
import { FIXTURE_CARD } from './helpers.ts';

const hub = (maxPoints = 16) =>
  new LiveHub({ card: FIXTURE_CARD, replica: 'r', maxPoints, gauges: () => ({ inFlight: 0, queueDepth: {}, viewers: 0 }) });

function result(step: number): StepResult {
  return {
    episode: 0,
    step,
    progress: step / 1000,
    stage: { index: 0, name: 'reach', probs: [1] },
    tau: 0,
    heads: { sarm: step / 1000 },
    uncertainty: null,
    reward: 0,
    shaped: 0,
    done: false,
  } as StepResult;
}

describe('LiveHub', () => {
  it('thins a long episode to at most maxPoints, keeping its first and latest step in order', () => {
    const h = hub(16);
    const s = h.open('s1', 'native');
    s.episodeStarted('pick_place', 0);
    for (let t = 0; t < 1000; t++) s.stepped(result(t), 1, {});
    const steps = s.current!.points.map((p) => p[0]);
    expect(steps.length).toBeLessThanOrEqual(16);
    expect(steps[0]).toBe(0);
    expect(steps.at(-1)).toBe(999);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    expect(s.current!.seqs).toHaveLength(steps.length);
    h.close();
  });

  it('keeps the current and previous episode, and cuts long client labels', () => {
    const h = hub();
    const s = h.open('s1', 'openpi');
    for (let e = 0; e < 5; e++) {
      s.episodeStarted('pick_place', e === 4 ? 'x'.repeat(500) : e);
      s.stepped(result(0), 1, {});
    }
    expect(s.episodes.map((e) => e.ordinal)).toEqual([3, 4]);
    expect(KEEP_EPISODES).toBe(2);
    expect(String(s.summary().episode).length).toBeLessThanOrEqual(65);
    expect(s.summary()).toMatchObject({ episodes: 5, step: 0, stage: { index: 0 } });
    h.close();
  });

  it('lists open sessions first, then the newest closed ones, forgetting those past KEEP_CLOSED', () => {
    const h = hub();
    const open = h.open('live', 'native');
    const closed = Array.from({ length: KEEP_CLOSED + 2 }, (_, i) => h.open(`c${i}`, 'native'));
    for (const c of closed) c.closed();
    const ids = h.sessions().map((s) => s.id);
    expect(ids[0]).toBe(open.id);
    expect(ids).toHaveLength(KEEP_CLOSED + 1);
    expect(ids[1]).toBe(`c${KEEP_CLOSED + 1}`);
    expect(h.get('c0')).toBeUndefined();
    expect(h.get('c2')).toBeDefined();
    h.close();
  });
});
