// Server configuration: configs/default.json, then a config file (--config), then STAGEWARD_* env
// vars, then CLI flags, each overriding the one before. Every field is validated at start-up against
// one schema table; an error names the field and where its value came from (SW_ERR_CONFIG). Unknown
// fields in a file are refused, so a misspelt limit never silently keeps its default.
//
// Env vars: STAGEWARD_HOST, _PORT, _MODEL, _API_KEYS (comma-separated), _INSECURE_PUBLIC (true/false),
// every limit, batching and runtime field in SCREAMING_SNAKE case (STAGEWARD_MAX_PAYLOAD_BYTES,
// STAGEWARD_MAX_BATCH_WAIT_MS, STAGEWARD_PROVIDERS, ...), and STAGEWARD_OPENPI_TASK / _GAMMA /
// _SHAPING / _PROGRESS. `openpi.views` (a map) comes from files only.

import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { StagewardError } from '../core/errors.ts';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../models/runtime.ts';
import { SHAPING_MODES, type ShapingMode } from '../models/shaping.ts';
import { REPO_ROOT } from '../core/paths.ts';
import { INFERENCE_THREADS, type InferenceThread } from '../models/load.ts';
import { PROGRESS_SOURCES, type ProgressSource } from '../models/engine.ts';
import type { BatchingOptions } from '../models/batching.ts';

export const MISSING_VIEWS_POLICIES = ['refuse', 'fill'] as const;
export type MissingViewsPolicy = (typeof MISSING_VIEWS_POLICIES)[number];

export const DEFAULT_CONFIG_FILE = join(REPO_ROOT, 'configs', 'default.json');

export interface ServerLimits {
  /** Largest WebSocket message, bytes; refused on its declared length (close 1009). */
  maxPayloadBytes: number;
  /**
   * Largest image in a request, width x height pixels, checked from the header or array shape before
   * decoding. The per-request wire limit for untrusted clients (2048 x 2048 in configs/default.json);
   * the server hands it to the engine, in place of the engine's looser library default
   * ENGINE_MAX_IMAGE_PIXELS (4096 x 4096, models/preprocess.ts), which is for callers that set none.
   */
  maxImagePixels: number;
  /** Most views in one step, goal or hello. */
  maxViews: number;
  /** Deepest nesting of maps and lists in one message (levels). */
  maxNestingDepth: number;
  /**
   * Most values (scalars, strings, binaries, lists, maps, map keys) one message may hold, counted while
   * decoding, before they exist: bounds the objects any message builds and the main thread's work on it.
   */
  maxMessageElements: number;
  /** Most bytes of strings in one MessagePack message (names, prompts, ids; images travel as bin and are not counted). */
  maxStringBytes: number;
  /** Largest JSON text message, bytes (text frames are for debugging: parsing copies every byte). */
  maxTextPayloadBytes: number;
  /** Most WebSocket connections at once (close 1013 beyond). */
  maxSessions: number;
  /** Messages of one connection received and not yet answered before the server stops reading it. */
  maxInFlightSteps: number;
  /** Hard cap on unanswered messages per connection; beyond it a message is refused (SW_ERR_BUSY). */
  maxQueuedMessages: number;
  /** A connection with no message and no reply for this long is closed (ms). */
  idleTimeoutMs: number;
  /** A native connection must send a valid hello within this of opening (ms), whatever else it sends. */
  helloTimeoutMs: number;
  /** A TCP connection must complete its HTTP request headers (and the WebSocket upgrade) within this (ms). */
  upgradeTimeoutMs: number;
  /** Most TCP connections not (yet) upgraded to WebSocket (HTTP requests, upgrades in progress); more are cut at once. */
  maxPendingSockets: number;
  /** Most reply bytes queued on one connection's socket unread by the client; beyond it the connection is closed (SW_ERR_SLOW_READER, 4429). */
  maxQueuedReplyBytes: number;
  /** Image decodes running at once, queued fairly between sessions by their bytes (core/fair-queue.ts). */
  decodeSlots: number;
  /** Of those, most decodes of large images at once (below decodeSlots, small frames always have a slot). */
  decodeLargeSlots: number;
  /** From this many encoded bytes an image counts as large. */
  decodeLargeBytes: number;
  /** Most of one core's time large decodes take while sessions with small frames are active, in (0, 1]. */
  decodeLargeShare: number;
  /** On SIGTERM/SIGINT, longest wait for in-flight steps before closing (ms). */
  shutdownGraceMs: number;
  /**
   * In the drain, once a connection's received messages are answered, it closes only after this long
   * without a message (within shutdownGraceMs): a request already on the wire is answered
   * (SW_ERR_SHUTTING_DOWN) instead of meeting the close frame unanswered (ms).
   */
  drainQuietMs: number;
}

export interface OpenpiConfig {
  /** Observation key -> model view, e.g. "observation/image" -> "front". */
  views: Record<string, string>;
  /** Task when an observation has no `prompt`; null: `prompt` is required. */
  task: string | null;
  gamma: number;
  shaping: ShapingMode;
  progress: ProgressSource;
  /**
   * An observation arriving this long after the previous one starts a new episode (ms; 0: never).
   * openpi's `reset()` sends nothing, so a pause between episodes is the boundary the stock runtime gives.
   */
  episodeGapMs: number;
}

export interface ServerConfig {
  host: string;
  port: number;
  /** Model package folder; null: the bundled model (core/paths.ts defaultModelDir). */
  model: string | null;
  apiKeys: string[];
  /** Allow listening on a non-loopback address without API keys. */
  insecurePublic: boolean;
  /**
   * This process's name among replicas (in `ready`, the openpi metadata, /healthz and
   * `stageward_replica_info`); null: `<hostname>-<pid>` (a Kubernetes pod's hostname is its name).
   */
  replica: string | null;
  /**
   * Prompt text -> task id, for prompts that are neither a task id nor one of the card's
   * instructions (models/tasks.ts: compared normalised). Used by openpi observations and the
   * native hello. From files only.
   */
  promptMap: Record<string, string>;
  /**
   * A client without every camera of the model: `refuse` (SW_ERR_VIEW_MISSING), or `fill` the views
   * it lacks as the model card's `missing_views` says (a card without it refuses this at start-up).
   */
  missingViews: MissingViewsPolicy;
  limits: ServerLimits;
  batching: Pick<BatchingOptions, 'maxBatch' | 'maxBatchWaitMs' | 'maxConcurrentBatches'>;
  /** `inferenceThread`: run the graphs on a worker thread (default) or on the main thread. */
  runtime: { providers: ExecutionProvider[]; intraOpThreads: number; inferenceThread: InferenceThread };
  openpi: OpenpiConfig;
  dashboard: DashboardConfig;
}

/** The live dashboard (GET /, GET /v1/sessions, the feed on /v1/live; server/LIVE.md). */
export interface DashboardConfig {
  /** false: no dashboard, no session API, no feed, and sessions record nothing for them. */
  enabled: boolean;
  /** Viewers connected to the feed at once; more get SW_ERR_TOO_MANY_SESSIONS. */
  maxViewers: number;
  /** One feed update per this many ms, whatever the step rate. */
  tickMs: number;
  /** Thumbnails of the watched session per second, at most. */
  thumbnailHz: number;
  /** Thumbnail width in pixels (height keeps the aspect). */
  thumbnailWidth: number;
  /** A viewer with more than this unsent gets no updates until it catches up. */
  maxViewerBufferBytes: number;
  /** Points kept per episode (past it every other point is dropped). */
  maxPoints: number;
}

type Kind =
  | { t: 'int'; min: number; max: number }
  | { t: 'number'; min: number; max: number }
  | { t: 'string'; nullable?: boolean; pattern?: { re: RegExp; text: string } }
  | { t: 'bool' }
  | { t: 'keys' }
  | { t: 'providers' }
  | { t: 'choice'; of: readonly string[] }
  | { t: 'viewMap' }
  | { t: 'promptMap' };

const int = (min: number, max: number): Kind => ({ t: 'int', min, max });

/** Every field: dotted path -> kind. The env var is derived from the leaf name. */
const SCHEMA: Record<string, Kind> = {
  host: { t: 'string' },
  port: int(0, 65535),
  model: { t: 'string', nullable: true },
  apiKeys: { t: 'keys' },
  insecurePublic: { t: 'bool' },
  promptMap: { t: 'promptMap' },
  missingViews: { t: 'choice', of: MISSING_VIEWS_POLICIES },
  replica: {
    t: 'string',
    nullable: true,
    pattern: { re: /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, text: 'letters, digits and . _ : @ - (at most 128)' },
  },
  'limits.maxPayloadBytes': int(1024, 1 << 30),
  'limits.maxImagePixels': int(1, 16384 * 16384),
  'limits.maxViews': int(1, 64),
  'limits.maxNestingDepth': int(4, 128),
  'limits.maxMessageElements': int(64, 1 << 22),
  'limits.maxStringBytes': int(1024, 1 << 30),
  'limits.maxTextPayloadBytes': int(1024, 1 << 30),
  'limits.maxSessions': int(1, 100_000),
  'limits.maxInFlightSteps': int(1, 1024),
  'limits.maxQueuedMessages': int(1, 65536),
  'limits.idleTimeoutMs': int(100, 86_400_000),
  'limits.helloTimeoutMs': int(100, 3_600_000),
  'limits.upgradeTimeoutMs': int(100, 600_000),
  'limits.maxPendingSockets': int(1, 100_000),
  'limits.maxQueuedReplyBytes': int(65_536, 1 << 30),
  'limits.shutdownGraceMs': int(0, 600_000),
  'limits.drainQuietMs': int(0, 60_000),
  'limits.decodeSlots': int(1, 256),
  'limits.decodeLargeSlots': int(1, 256),
  'limits.decodeLargeBytes': int(1, 1 << 30),
  'limits.decodeLargeShare': { t: 'number', min: 0.01, max: 1 },
  'batching.maxBatch': int(1, 4096),
  'batching.maxBatchWaitMs': { t: 'number', min: 0, max: 1000 },
  'batching.maxConcurrentBatches': int(1, 64),
  'runtime.providers': { t: 'providers' },
  'runtime.intraOpThreads': int(0, 1024),
  'runtime.inferenceThread': { t: 'choice', of: INFERENCE_THREADS },
  'openpi.views': { t: 'viewMap' },
  'openpi.task': { t: 'string', nullable: true },
  'openpi.gamma': { t: 'number', min: 0, max: 1 },
  'openpi.shaping': { t: 'choice', of: SHAPING_MODES },
  'openpi.progress': { t: 'choice', of: PROGRESS_SOURCES },
  'openpi.episodeGapMs': int(0, 86_400_000),
  'dashboard.enabled': { t: 'bool' },
  'dashboard.maxViewers': int(1, 1024),
  'dashboard.tickMs': int(50, 10_000),
  'dashboard.thumbnailHz': { t: 'number', min: 0.1, max: 30 },
  'dashboard.thumbnailWidth': int(16, 1024),
  'dashboard.maxViewerBufferBytes': int(65_536, 1 << 30),
  'dashboard.maxPoints': int(16, 100_000),
};

export function envName(path: string): string {
  const [section, leaf] = path.includes('.') ? (path.split('.') as [string, string]) : ['', path];
  const snake = leaf.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  const prefix = section === 'openpi' || section === 'dashboard' ? `${section.toUpperCase()}_` : '';
  return `STAGEWARD_${prefix}${snake}`;
}

/** Every STAGEWARD_* variable the server reads (openpi.views, a map, comes from files only). */
export function configEnvNames(): string[] {
  return Object.entries(SCHEMA)
    .filter(([, kind]) => kind.t !== 'viewMap' && kind.t !== 'promptMap')
    .map(([path]) => envName(path));
}

/** A partial config layer and where it came from (for error messages). */
export interface ConfigLayer {
  source: string;
  values: Record<string, unknown>;
}

function configError(path: string, source: string, problem: string): never {
  throw new StagewardError('SW_ERR_CONFIG', `\`${path}\` (${source}) ${problem}`);
}

/** Flatten a JSON config object into dotted paths, refusing unknown fields. */
export function flattenConfig(obj: unknown, source: string): Record<string, unknown> {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) configError('(root)', source, 'must be a JSON object');
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    if (['limits', 'batching', 'runtime', 'openpi', 'dashboard'].includes(key)) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) configError(key, source, 'must be an object');
      for (const [leaf, v] of Object.entries(value)) {
        const path = `${key}.${leaf}`;
        if (!Object.hasOwn(SCHEMA, path))
          configError(
            path,
            source,
            `is not a setting (known in ${key}: ${Object.keys(SCHEMA)
              .filter((p) => p.startsWith(`${key}.`))
              .map((p) => p.slice(key.length + 1))
              .join(', ')})`,
          );
        out[path] = v;
      }
    } else {
      if (!Object.hasOwn(SCHEMA, key)) configError(key, source, 'is not a setting');
      out[key] = value;
    }
  }
  return out;
}

export function readConfigFile(path: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new StagewardError('SW_ERR_CONFIG', `config file ${path} cannot be read`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new StagewardError('SW_ERR_CONFIG', `config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const source = `config file ${path}`;
  return { source, values: flattenConfig(json, source) };
}

/** STAGEWARD_* env vars as a layer (text values; validated with the rest). */
export function envLayer(env: NodeJS.ProcessEnv): ConfigLayer[] {
  const layers: ConfigLayer[] = [];
  for (const [path, kind] of Object.entries(SCHEMA)) {
    if (kind.t === 'viewMap' || kind.t === 'promptMap') continue;
    const name = envName(path);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    let value: unknown = raw;
    if (kind.t === 'int' || kind.t === 'number') value = raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    else if (kind.t === 'bool') value = raw === 'true' || raw === '1' ? true : raw === 'false' || raw === '0' ? false : raw;
    else if (kind.t === 'keys' || kind.t === 'providers')
      value = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    layers.push({ source: `env ${name}`, values: { [path]: value } });
  }
  return layers;
}

function check(path: string, kind: Kind, v: unknown, source: string): unknown {
  const bad = (problem: string) => configError(path, source, problem);
  switch (kind.t) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < kind.min || v > kind.max)
        bad(`must be an integer in [${kind.min}, ${kind.max}], got ${JSON.stringify(v)}`);
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < kind.min || v > kind.max)
        bad(`must be a number in [${kind.min}, ${kind.max}], got ${JSON.stringify(v)}`);
      return v;
    case 'string':
      if (v === null && kind.nullable) return null;
      if (typeof v !== 'string' || v.length === 0) bad(`must be a non-empty string${kind.nullable ? ' or null' : ''}`);
      if (kind.pattern !== undefined && !kind.pattern.re.test(v as string))
        bad(`must be ${kind.pattern.text}, got ${JSON.stringify((v as string).slice(0, 64))}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') bad('must be true or false');
      return v;
    case 'choice':
      if (typeof v !== 'string' || !kind.of.includes(v)) bad(`must be one of ${kind.of.join(', ')}, got ${JSON.stringify(v)}`);
      return v;
    case 'keys':
      if (!Array.isArray(v) || v.some((k) => typeof k !== 'string')) bad('must be a list of strings');
      for (const k of v as string[]) if (k.length < 16 || /\s/.test(k)) bad('API keys must be at least 16 characters, without spaces');
      return v;
    case 'providers':
      if (!Array.isArray(v) || v.length === 0) bad('must be a non-empty list');
      for (const p of v as unknown[])
        if (!EXECUTION_PROVIDERS.includes(p as ExecutionProvider))
          bad(`has the unknown execution provider ${JSON.stringify(p)} (use ${EXECUTION_PROVIDERS.join(', ')})`);
      return v;
    case 'viewMap': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('must be a map of observation key to view name');
      const entries = Object.entries(v as object);
      if (entries.length === 0) bad('must map at least one observation key');
      for (const [k, view] of entries)
        if (typeof view !== 'string' || view.length === 0 || k.length === 0)
          bad(`maps ${JSON.stringify(k)} to ${JSON.stringify(view)}; keys and views must be non-empty strings`);
      if (new Set(entries.map(([, view]) => view)).size !== entries.length) bad('maps two observation keys to the same view');
      return v;
    }
    case 'promptMap': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) bad('must be a map of prompt text to task id');
      const entries = Object.entries(v as object);
      if (entries.length > 10_000) bad('has more than 10000 prompts');
      for (const [prompt, task] of entries)
        if (typeof task !== 'string' || task.length === 0 || prompt.trim().length === 0 || prompt.length > 1024)
          bad(
            `maps ${JSON.stringify(prompt.slice(0, 64))} to ${JSON.stringify(task)}; prompts (at most 1024 characters) and tasks must be non-empty strings`,
          );
      return v;
    }
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost|::ffff:127\.\d+\.\d+\.\d+)$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** Merge the layers (later wins), validate every field, check the bind rule. */
export function resolveConfig(layers: ConfigLayer[]): ServerConfig {
  const values: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  for (const layer of layers) {
    for (const [path, v] of Object.entries(layer.values)) {
      if (!Object.hasOwn(SCHEMA, path)) configError(path, layer.source, 'is not a setting');
      if (v === undefined) continue;
      values[path] = v;
      sources[path] = layer.source;
    }
  }
  const cfg: Record<string, any> = { limits: {}, batching: {}, runtime: {}, openpi: {}, dashboard: {} };
  for (const [path, kind] of Object.entries(SCHEMA)) {
    if (!Object.hasOwn(values, path)) configError(path, 'no value', 'is missing (configs/default.json should set it)');
    const v = check(path, kind, values[path], sources[path]!);
    const [a, b] = path.split('.') as [string, string | undefined];
    if (b === undefined) cfg[a] = v;
    else cfg[a][b] = v;
  }
  const config = cfg as ServerConfig;
  if (config.limits.maxQueuedMessages < config.limits.maxInFlightSteps) {
    configError(
      'limits.maxQueuedMessages',
      sources['limits.maxQueuedMessages']!,
      `must be at least limits.maxInFlightSteps (${config.limits.maxInFlightSteps})`,
    );
  }
  if (config.limits.decodeLargeSlots > config.limits.decodeSlots) {
    configError(
      'limits.decodeLargeSlots',
      sources['limits.decodeLargeSlots']!,
      `must be at most limits.decodeSlots (${config.limits.decodeSlots})`,
    );
  }
  if (!isLoopback(config.host) && config.apiKeys.length === 0 && !config.insecurePublic) {
    configError(
      'host',
      sources.host!,
      `is "${config.host}", not a loopback address, and no API keys are set: set apiKeys (--api-key, STAGEWARD_API_KEYS) or allow open access explicitly with --insecure-public`,
    );
  }
  return config;
}

/** The CLI flag that sets a field, for error messages. */
const FLAGS: Record<string, string> = {
  host: '--host',
  port: '--port',
  model: '--model',
  apiKeys: '--api-key',
  insecurePublic: '--insecure-public',
  replica: '--replica',
  'runtime.providers': '--provider',
};

export interface LoadConfigOptions {
  /** A config file (--config). */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** CLI flags as dotted paths, e.g. { port: 9000, 'limits.maxSessions': 4 }. */
  flags?: Record<string, unknown>;
  /** Extra values applied last (tests). */
  overrides?: Record<string, unknown>;
}

export function loadConfig(o: LoadConfigOptions = {}): ServerConfig {
  const layers: ConfigLayer[] = [readConfigFile(DEFAULT_CONFIG_FILE)];
  if (o.file !== undefined) layers.push(readConfigFile(o.file));
  layers.push(...envLayer(o.env ?? {}));
  if (o.flags) {
    for (const [path, v] of Object.entries(o.flags))
      if (v !== undefined) layers.push({ source: `flag ${FLAGS[path] ?? path}`, values: { [path]: v } });
  }
  if (o.overrides) layers.push({ source: 'overrides', values: o.overrides });
  return resolveConfig(layers);
}

/** The replica's name: the configured one, else `<hostname>-<pid>` (characters outside the config's pattern become `-`). */
export function replicaName(config: Pick<ServerConfig, 'replica'>, host: string = hostname(), pid: number = process.pid): string {
  if (config.replica !== null) return config.replica;
  const safe = host
    .replace(/[^A-Za-z0-9._:@-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 100);
  return `${safe || 'stageward'}-${pid}`;
}
