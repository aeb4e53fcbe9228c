// Fair turns: a connection with a thousand messages waiting cannot hold the main thread for all of
// them, and another connection's message is taken in the first turn after it arrives.

import { describe, expect, it } from 'vitest';
import { Turns, type TurnTaker } from '../../server/turns.ts';

/** A taker with `n` messages waiting; records, in one shared log, each message it takes and in which turn. */
function taker(name: string, n: number, log: { name: string; turn: number }[], turn: () => number): TurnTaker & { left: number } {
  const t = {
    left: n,
    takeTurn(): boolean {
      t.left--;
      log.push({ name, turn: turn() });
      return t.left > 0;
    },
  };
  return t;
}

/** Runs `turns` until nothing waits; returns how many turns (event-loop iterations) that took. */
async function turnsUntil(done: () => boolean): Promise<number> {
  let n = 0;
  while (!done()) {
    n++;
    await new Promise<void>((r) => setImmediate(r));
  }
  return n;
}

describe('Turns', () => {
  it('takes at most maxMessages per turn, round-robin, so a late sender is served in the first turn after it asks', async () => {
    const turns = new Turns(8, 1000, () => 0); // a clock that never moves: only the message cap ends a turn
    const log: { name: string; turn: number }[] = [];
    let turn = 0;
    const count = () => turn;
    const flood = taker('flood', 100, log, count);
    turns.request(flood);
    const polite = taker('polite', 2, log, count);
    turns.request(polite);
    const n = await turnsUntil(() => {
      turn++;
      return flood.left === 0 && polite.left === 0;
    });
    // 102 messages at 8 a turn: 13 turns, each one full but the last.
    expect(n).toBeGreaterThanOrEqual(13);
    const perTurn = new Map<number, number>();
    for (const e of log) perTurn.set(e.turn, (perTurn.get(e.turn) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).toBe(8);
    // Round-robin: polite's two messages are the second and fourth taken, not after flood's hundred.
    expect(log.slice(0, 4).map((e) => e.name)).toEqual(['flood', 'polite', 'flood', 'polite']);
    expect(log.length).toBe(102);
  });

  it('ends a turn when its time budget is spent, and a cancelled taker gets no more turns', async () => {
    let clock = 0;
    const turns = new Turns(1000, 5, () => clock);
    let taken = 0;
    const slow: TurnTaker = {
      takeTurn() {
        clock += 2; // each message takes 2 ms of the turn's 5
        taken++;
        return true;
      },
    };
    turns.request(slow);
    await new Promise<void>((r) => setImmediate(r));
    // 2, 4, 6 ms: the turn ends after the third.
    expect(taken).toBe(3);
    await new Promise<void>((r) => setImmediate(r));
    expect(taken).toBe(6); // the next turn, three more
    turns.cancel(slow);
    await new Promise((r) => setTimeout(r, 20));
    expect(taken).toBe(6);
  });
});
