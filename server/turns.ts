// Fair turns for the main thread's per-message work (decoding a message and starting its handler).
// A connection queues what it receives and asks for turns; a turn takes one message from each
// connection that has some waiting, round-robin, and ends after TURN_MESSAGES messages or TURN_MS of
// work, leaving the rest for the next turn (a setImmediate: the event loop reads other sockets and
// flushes replies in between). A client that sends a thousand small messages at once thus delays
// every other client by at most a turn, not by a thousand messages' work.

import { performance } from 'node:perf_hooks';

/** Most messages one turn takes, over every connection together. */
export const TURN_MESSAGES = 32;
/** Most milliseconds of work one turn takes (checked after each message). */
export const TURN_MS = 2;

export interface TurnTaker {
  /** Process one waiting message; true while more wait. */
  takeTurn(): boolean;
}

export class Turns {
  readonly #waiting = new Set<TurnTaker>();
  #scheduled = false;
  readonly #maxMessages: number;
  readonly #maxMs: number;
  readonly #now: () => number;

  /** `now` is the clock the time budget is read from (ms; tests pass their own). */
  constructor(maxMessages = TURN_MESSAGES, maxMs = TURN_MS, now: () => number = () => performance.now()) {
    this.#maxMessages = maxMessages;
    this.#maxMs = maxMs;
    this.#now = now;
  }

  /** `taker` has messages waiting: it gets a turn soon, after those that asked before it. */
  request(taker: TurnTaker): void {
    this.#waiting.add(taker);
    this.#schedule();
  }

  /** `taker` is gone: no more turns for it. */
  cancel(taker: TurnTaker): void {
    this.#waiting.delete(taker);
  }

  #schedule(): void {
    if (this.#scheduled || this.#waiting.size === 0) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  readonly #run = (): void => {
    this.#scheduled = false;
    const start = this.#now();
    let taken = 0;
    // A taker with more waiting goes back to the end of the set, which this loop then reaches again:
    // round-robin until the turn's budget is spent.
    for (const taker of this.#waiting) {
      this.#waiting.delete(taker);
      if (taker.takeTurn()) this.#waiting.add(taker);
      if (++taken >= this.#maxMessages || this.#now() - start >= this.#maxMs) break;
    }
    this.#schedule();
  };
}

/** The process's turns, shared by every connection of every server in it. */
export const messageTurns = new Turns();
