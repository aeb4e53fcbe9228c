// The live state behind the dashboard (server/LIVE.md): per session, what it runs and how it is
// doing (task, episode, step, steps/s, latency, errors by code) and a bounded history of its rewards
// (the current and the previous episodes); per server, throughput, batching, queues, event-loop lag
// and memory. Sessions write here on every step, so the work is a few array writes; everything a
// viewer reads is built when the feed asks (live-feed.ts), at the feed's own rate.
//
// Bounds: each episode keeps at most `maxPoints` points (past that every other point is dropped, so
// a long episode stays whole at half the resolution), a session keeps KEEP_EPISODES episodes,
// closed sessions stay listed until KEEP_CLOSED newer ones closed, and a session holds on to its
// latest camera frames only while a viewer watches it.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ModelCard } from '../models/card.ts';
import type { StepResult } from '../models/engine.ts';
import type { FrameSet } from '../models/preprocess.ts';
import type { Endpoint } from './connection.ts';

/** Episodes a session keeps: the current one and the one before. */
export const KEEP_EPISODES = 2;
/** Closed sessions still listed (the newest). */
export const KEEP_CLOSED = 16;
/** Steps behind a session's latency percentiles and its steps/s. */
const RECENT_STEPS = 256;
/** Window of the steps/s figures. */
const RATE_WINDOW_MS = 5000;
/** Shortest span a rate is taken over (a session's first steps would read as a burst). */
const MIN_RATE_SPAN_MS = 1000;
/** Longest episode label shown (labels are client strings). */
const MAX_LABEL = 64;

/** One step as the feed sends it: [step, progress, stage index, shaped, sarm, grm, uncertainty]. */
export type LivePoint = [number, number, number, number, number, number | null, number | null];
export const POINT_FIELDS = ['step', 'progress', 'stage', 'shaped', 'sarm', 'grm', 'uncertainty'] as const;

export interface LiveEpisode {
  /** 0, 1, 2, ... by episodes started on the session. */
  ordinal: number;
  /** The label the session's replies carry. */
  label: string | number;
  task: string;
  points: LivePoint[];
  /** The sequence number of each point (for a feed's "since"), parallel to `points`. */
  seqs: number[];
}

export interface SessionSummary {
  id: string;
  protocol: Endpoint;
  state: 'open' | 'closed';
  task: string | null;
  model: string;
  episode: string | number | null;
  episodes: number;
  step: number | null;
  steps_per_s: number;
  latency_ms: { p50: number | null; p99: number | null };
  errors: Record<string, number>;
  progress: number | null;
  stage: { index: number; name: string } | null;
  shaped: number | null;
  heads: { sarm: number; grm?: number } | null;
  uncertainty: number | null;
  opened_at: string;
  closed_at: string | null;
}

/** Counts of steps within the last RATE_WINDOW_MS, from a ring of timestamps. */
class RecentSteps {
  readonly at = new Float64Array(RECENT_STEPS);
  readonly ms = new Float64Array(RECENT_STEPS);
  n = 0;

  add(now: number, ms: number): void {
    this.at[this.n % RECENT_STEPS] = now;
    this.ms[this.n % RECENT_STEPS] = ms;
    this.n++;
  }

  /**
   * Steps per second over the last RATE_WINDOW_MS, or over the time since `since` (when counting
   * began) when that is shorter, or over the ring when it spans less time than the window.
   */
  rate(now: number, since: number): number {
    const held = Math.min(this.n, RECENT_STEPS);
    let inWindow = 0;
    let oldest = now;
    for (let i = 0; i < held; i++) {
      const t = this.at[i]!;
      if (now - t <= RATE_WINDOW_MS) {
        inWindow++;
        if (t < oldest) oldest = t;
      }
    }
    if (inWindow === 0) return 0;
    const span = inWindow === RECENT_STEPS ? now - oldest : Math.min(RATE_WINDOW_MS, now - since);
    return (inWindow * 1000) / Math.max(span, MIN_RATE_SPAN_MS);
  }

  /** Nearest-rank percentiles of the held latencies (null before the first step). */
  latency(): { p50: number | null; p99: number | null } {
    const held = Math.min(this.n, RECENT_STEPS);
    if (held === 0) return { p50: null, p99: null };
    const sorted = Array.from(this.ms.subarray(0, held)).sort((a, b) => a - b);
    const at = (q: number) => round(sorted[Math.min(held - 1, Math.ceil(q * held) - 1)]!);
    return { p50: at(0.5), p99: at(0.99) };
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export class LiveSession {
  readonly id: string;
  readonly protocol: Endpoint;
  readonly openedAt = new Date();
  readonly #openedAtMs = performance.now();
  closedAt: Date | null = null;
  readonly episodes: LiveEpisode[] = [];
  /** The latest camera frames and their step, kept only while watched (see watch()). */
  frames: { step: number; ordinal: number; frames: FrameSet } | undefined;
  /** Bumped on every new frame set; thumbnails are made once per value. */
  framesVersion = 0;
  readonly #hub: LiveHub;
  readonly #recent = new RecentSteps();
  readonly #errors = new Map<string, number>();
  #last: StepResult | undefined;
  #started = 0;
  #seq = 0;
  #watchers = 0;

  constructor(hub: LiveHub, id: string, protocol: Endpoint) {
    this.#hub = hub;
    this.id = id;
    this.protocol = protocol;
  }

  /** The sequence number of the latest point (0 before any). */
  get seq(): number {
    return this.#seq;
  }

  get current(): LiveEpisode | undefined {
    return this.episodes.at(-1);
  }

  /** An episode started on the session. */
  episodeStarted(task: string, label: string | number): void {
    const shown = typeof label === 'string' && label.length > MAX_LABEL ? `${label.slice(0, MAX_LABEL)}…` : label;
    this.episodes.push({ ordinal: this.#started++, label: shown, task, points: [], seqs: [] });
    while (this.episodes.length > KEEP_EPISODES) this.episodes.shift();
    this.#last = undefined;
  }

  /** A step answered with a reward, `totalMs` after its message arrived. */
  stepped(r: StepResult, totalMs: number, frames: FrameSet): void {
    const now = performance.now();
    this.#recent.add(now, totalMs);
    this.#hub.recordStep(now);
    this.#last = r;
    const ep = this.current;
    if (ep !== undefined) {
      ep.points.push([r.step, r.progress, r.stage.index, r.shaped, r.heads.sarm, r.heads.grm ?? null, r.uncertainty]);
      ep.seqs.push(++this.#seq);
      if (ep.points.length > this.#hub.maxPoints) thin(ep);
      if (this.#watchers > 0) {
        this.frames = { step: r.step, ordinal: ep.ordinal, frames };
        this.framesVersion++;
      }
    }
  }

  /** An error reply or error close on the session's connection. */
  errored(code: string): void {
    this.#errors.set(code, (this.#errors.get(code) ?? 0) + 1);
  }

  /** The connection is gone. */
  closed(): void {
    if (this.closedAt !== null) return;
    this.closedAt = new Date();
    this.frames = undefined;
    this.#hub.sessionClosed(this);
  }

  /** A viewer starts watching (frames are kept from the next step on); returns its release. */
  watch(): () => void {
    this.#watchers++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.#watchers === 0) this.frames = undefined;
    };
  }

  summary(now = performance.now()): SessionSummary {
    const r = this.#last;
    const ep = this.current;
    const stages = ep !== undefined ? this.#hub.stageNames(ep.task) : undefined;
    return {
      id: this.id,
      protocol: this.protocol,
      state: this.closedAt === null ? 'open' : 'closed',
      task: ep?.task ?? null,
      model: this.#hub.model,
      episode: ep?.label ?? null,
      episodes: this.#started,
      step: r?.step ?? null,
      steps_per_s: this.closedAt === null ? round(this.#recent.rate(now, this.#openedAtMs)) : 0,
      latency_ms: this.#recent.latency(),
      errors: Object.fromEntries(this.#errors),
      progress: r?.progress ?? null,
      stage: r !== undefined ? { index: r.stage.index, name: stages?.[r.stage.index] ?? r.stage.name } : null,
      shaped: r?.shaped ?? null,
      heads: r?.heads ?? null,
      uncertainty: r?.uncertainty ?? null,
      opened_at: this.openedAt.toISOString(),
      closed_at: this.closedAt?.toISOString() ?? null,
    };
  }
}

/** Drop every other point of an episode (the first and the latest stay). */
function thin(ep: LiveEpisode): void {
  const keep = (_: unknown, i: number) => i % 2 === 0 || i === ep.points.length - 1;
  ep.points = ep.points.filter(keep);
  ep.seqs = ep.seqs.filter(keep);
}

export interface BatchStats {
  calls: number;
  mean_rows: number;
  mean_requests: number;
}

export interface ServerView {
  replica: string;
  uptime_s: number;
  steps_per_s: number;
  sessions: number;
  viewers: number;
  in_flight: number;
  queue_depth: Record<string, number>;
  /** Model calls per graph since the previous server view. */
  batches: Record<string, BatchStats>;
  /** Main-thread event-loop delay since the previous server view, ms (beyond the 10 ms sampling timer). */
  event_loop_lag_ms: { p99: number; max: number };
  memory_mb: { rss: number; heap_used: number };
}

export interface LiveHubOptions {
  card: ModelCard;
  replica: string;
  maxPoints: number;
  /** Current server figures the hub does not keep itself. */
  gauges: () => { inFlight: number; queueDepth: Record<string, number>; viewers: number };
}

const LOOP_RESOLUTION_MS = 10;
/** Shortest period behind the server view's batch and event-loop figures. */
const PERIOD_MS = 1000;

export class LiveHub {
  readonly model: string;
  readonly maxPoints: number;
  readonly #opts: LiveHubOptions;
  readonly #sessions = new Map<string, LiveSession>();
  readonly #closed: LiveSession[] = [];
  readonly #steps = new RecentSteps();
  readonly #startedAt = performance.now();
  readonly #loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  #batches = new Map<string, { calls: number; rows: number; requests: number }>();
  #periodStart = performance.now();
  #period: Pick<ServerView, 'batches' | 'event_loop_lag_ms'> = { batches: {}, event_loop_lag_ms: { p99: 0, max: 0 } };

  constructor(opts: LiveHubOptions) {
    this.#opts = opts;
    this.model = `${opts.card.name}@${opts.card.version}`;
    this.maxPoints = opts.maxPoints;
    this.#loop.enable();
  }

  /** A new session on a connection. */
  open(id: string, protocol: Endpoint): LiveSession {
    const s = new LiveSession(this, id, protocol);
    this.#sessions.set(id, s);
    return s;
  }

  get(id: string): LiveSession | undefined {
    return this.#sessions.get(id);
  }

  /** Open sessions first (oldest first), then the closed ones still listed (newest first). */
  sessions(): LiveSession[] {
    const open = [...this.#sessions.values()].filter((s) => s.closedAt === null);
    return [...open, ...[...this.#closed].reverse()];
  }

  /** The stage names of a task (the card's), for summaries. */
  stageNames(task: string): string[] | undefined {
    const i = this.#opts.card.tasks.indexOf(task);
    return i < 0 ? undefined : this.#opts.card.stages[i]!.map((s) => s.name);
  }

  recordStep(now: number): void {
    this.#steps.add(now, 0);
  }

  /** One model call (the batching model's onBatch). */
  recordBatch(graph: string, rows: number, requests: number): void {
    const b = this.#batches.get(graph) ?? { calls: 0, rows: 0, requests: 0 };
    b.calls++;
    b.rows += rows;
    b.requests += requests;
    this.#batches.set(graph, b);
  }

  sessionClosed(s: LiveSession): void {
    this.#closed.push(s);
    while (this.#closed.length > KEEP_CLOSED) this.#sessions.delete(this.#closed.shift()!.id);
  }

  /**
   * Server figures. Batch counts and event-loop delay cover the last completed period of at least
   * PERIOD_MS, so every caller (feed ticks, GET /v1/sessions) reads the same figures.
   */
  serverView(): ServerView {
    const now = performance.now();
    if (now - this.#periodStart >= PERIOD_MS) {
      const batches: Record<string, BatchStats> = {};
      for (const [graph, b] of this.#batches)
        batches[graph] = { calls: b.calls, mean_rows: round(b.rows / b.calls), mean_requests: round(b.requests / b.calls) };
      const lag = (ns: number) => (this.#loop.count === 0 ? 0 : round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS)));
      this.#period = { batches, event_loop_lag_ms: { p99: lag(this.#loop.percentile(99)), max: lag(this.#loop.max) } };
      this.#batches = new Map();
      this.#loop.reset();
      this.#periodStart = now;
    }
    const g = this.#opts.gauges();
    const mem = process.memoryUsage();
    return {
      replica: this.#opts.replica,
      uptime_s: Math.round((now - this.#startedAt) / 1000),
      steps_per_s: round(this.#steps.rate(now, this.#startedAt)),
      sessions: [...this.#sessions.values()].filter((s) => s.closedAt === null).length,
      viewers: g.viewers,
      in_flight: g.inFlight,
      queue_depth: g.queueDepth,
      batches: this.#period.batches,
      event_loop_lag_ms: this.#period.event_loop_lag_ms,
      memory_mb: { rss: Math.round(mem.rss / 2 ** 20), heap_used: Math.round(mem.heapUsed / 2 ** 20) },
    };
  }

  close(): void {
    this.#loop.disable();
  }
}
