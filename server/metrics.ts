// Prometheus metrics, written by hand in the text exposition format (version 0.0.4): counters,
// gauges read at scrape time, and histograms with fixed buckets. `ServerMetrics` names the series
// the server records; `render()` is what GET /metrics returns.

import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function num(x: number): string {
  return Number.isFinite(x) ? String(x) : x > 0 ? '+Inf' : x < 0 ? '-Inf' : 'NaN';
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const e = this.#values.get(key) ?? { labels, value: 0 };
    e.value += by;
    this.#values.set(key, e);
  }

  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels))?.value ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.#values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.#values.values()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

/** A gauge read from the server's state when scraped. */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => Array<[Labels, number]>,
  ) {}

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [labels, value] of this.read()) lines.push(`${this.name}${labelText(labels)} ${num(value)}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}

  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    let s = this.#series.get(key);
    if (!s) {
      s = { labels, counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  count(labels: Labels = {}): number {
    return this.#series.get(labelText(labels))?.count ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.#series.values()) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${labelText({ ...labels, le: num(le) })} ${counts[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${num(sum)}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines.join('\n');
  }
}

const LOOP_RESOLUTION_MS = 10;
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const ROWS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

export interface GaugeSources {
  sessions: () => Array<[Labels, number]>;
  inFlight: () => number;
  queueDepth: () => Record<string, number>;
  model: { name: string; version: string };
  /** This process's replica name (server/config.ts replicaName). */
  replica: string;
}

export class ServerMetrics {
  readonly steps = new Counter('stageward_steps_total', 'Steps answered with a reward');
  readonly episodes = new Counter('stageward_episodes_total', 'Episodes started');
  readonly errors = new Counter('stageward_errors_total', 'Error replies and error closes, by code');
  readonly connections = new Counter('stageward_connections_total', 'WebSocket connections accepted, by endpoint');
  readonly stepSeconds = new Histogram('stageward_step_seconds', 'Server time per step, message received to reply sent', SECONDS);
  readonly queueSeconds = new Histogram(
    'stageward_step_queue_seconds',
    'Time a step waited behind earlier messages of its connection',
    SECONDS,
  );
  readonly batchRows = new Histogram('stageward_batch_rows', 'Rows per model call (images, windows or pairs), by graph', ROWS);
  readonly batchRequests = new Histogram('stageward_batch_requests', 'Requests merged into one model call, by graph', ROWS);
  readonly batchSeconds = new Histogram('stageward_batch_seconds', 'Wall time of one model call, by graph', SECONDS);
  /** Main-thread time decoding one message (the only work whose cost grows with what a client sends). */
  readonly decodeSeconds = new Histogram(
    'stageward_message_decode_seconds',
    'Main-thread time decoding one message, by frame kind',
    SECONDS,
  );
  #decodeMax = 0;
  /** Main-thread event-loop delay since the server started (a stall from any one message shows as its max). */
  readonly #loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  readonly #metrics: Metric[];

  constructor(sources: GaugeSources) {
    this.#loop.enable();
    // The histogram holds each 10 ms timer's interval; the delay is what exceeds the 10 ms.
    const loop = (f: (h: IntervalHistogram) => number) => () =>
      [[{}, this.#loop.count === 0 ? 0 : Math.max(0, f(this.#loop) / 1e9 - LOOP_RESOLUTION_MS / 1000)]] as [Labels, number][];
    this.#metrics = [
      new Gauge('stageward_replica_info', 'This replica (1), by its name', () => [[{ replica: sources.replica }, 1]]),
      new Gauge('stageward_model_info', 'The served model', () => [[{ name: sources.model.name, version: sources.model.version }, 1]]),
      new Gauge('stageward_sessions', 'Open WebSocket connections, by endpoint', sources.sessions),
      new Gauge('stageward_in_flight_messages', 'Messages received and not yet answered, all connections', () => [
        [{}, sources.inFlight()],
      ]),
      new Gauge('stageward_batch_queue_depth', 'Requests waiting for a model call, by graph', () =>
        Object.entries(sources.queueDepth()).map(([graph, n]) => [{ graph }, n]),
      ),
      new Gauge(
        'stageward_event_loop_delay_max_seconds',
        'Longest main-thread event-loop delay since start (beyond a 10 ms sampling timer)',
        loop((h) => h.max),
      ),
      new Gauge('stageward_message_decode_max_seconds', 'Longest main-thread decode of one message since start', () => [
        [{}, this.#decodeMax],
      ]),
      new Gauge(
        'stageward_event_loop_delay_p99_seconds',
        '99th percentile of the main-thread event-loop delay since start',
        loop((h) => h.percentile(99)),
      ),
      this.connections,
      this.steps,
      this.episodes,
      this.errors,
      this.stepSeconds,
      this.queueSeconds,
      this.batchRows,
      this.batchRequests,
      this.batchSeconds,
      this.decodeSeconds,
    ];
  }

  /** One message decoded on the main thread in `seconds`. */
  observeDecode(seconds: number, kind: string): void {
    this.decodeSeconds.observe(seconds, { kind });
    if (seconds > this.#decodeMax) this.#decodeMax = seconds;
  }

  /** Stop sampling the event loop (the server is gone). */
  close(): void {
    this.#loop.disable();
  }

  render(): string {
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}
