// The reward server: one HTTP server (node:http) with WebSocket upgrades (ws) on `/v1/stream` (native)
// and `/openpi` or `/` (openpi-client), HTTP routes beside them (server/http.ts), one RewardEngine over
// a dynamically batching model (models/batching.ts) shared by every session, and the live dashboard:
// its page and session API on HTTP, its feed on `/v1/live` (server/LIVE.md; live.ts, live-feed.ts).
//
//   const server = await StagewardServer.start({ config, model });   // listens
//   server.url                                                       // ws://127.0.0.1:8000
//   await server.shutdown();                                         // graceful: see below
//
// Connections past maxSessions get SW_ERR_TOO_MANY_SESSIONS (close 1013); a wrong key in the upgrade's
// Authorization header gets SW_ERR_AUTH (close 4401), as does an openpi connection without one when
// keys are configured. TCP connections that are not WebSocket sessions (HTTP requests, upgrades under
// way) are capped at maxPendingSockets and are cut upgradeTimeoutMs after opening unless they upgraded
// (after the response, when a request is in progress). Shutdown (the drain): /healthz
// answers 503 and upgrades are refused with 503 while the listener stays open, so a load balancer sees
// the drain; every message already received is answered (up to shutdownGraceMs, then with
// SW_ERR_SHUTTING_DOWN), each connection closes with 1001, then the listener and the model close.

import { performance } from 'node:perf_hooks';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { BatchingProgressModel } from '../models/batching.ts';
import { RewardEngine } from '../models/engine.ts';
import { StagewardError } from '../core/errors.ts';
import type { ProgressModel } from '../models/package.ts';
import { ApiKeys } from './auth.ts';
import { replicaName, type ServerConfig } from './config.ts';
import { Connection, type Endpoint, type Protocol } from './connection.ts';
import { dashboardFiles } from './dashboard/files.ts';
import { handleHttp, type HttpContext } from './http.ts';
import { LiveHub } from './live.ts';
import { LiveFeed } from './live-feed.ts';
import { ServerMetrics } from './metrics.ts';
import { NativeSession } from './native-session.ts';
import { checkOpenpiConfig, OpenpiSession } from './openpi-session.ts';
import type { SessionContext } from './session.ts';
import { checkPromptMap } from '../models/tasks.ts';

export interface ServerOptions {
  config: ServerConfig;
  /** The loaded model; the server wraps it for batching and closes it on shutdown. */
  model: ProgressModel;
  /** Log sink for server-side events (internal errors with stacks); default console.error. */
  log?: (line: string) => void;
}

export interface ServerStats {
  sessions: number;
  inFlight: number;
  queueDepth: Record<string, number>;
}

const ROUTES: Record<string, Endpoint> = { '/v1/stream': 'native', '/openpi': 'openpi', '/': 'openpi' };

export class StagewardServer {
  readonly config: ServerConfig;
  /** This process's name among replicas (config `replica`, else `<hostname>-<pid>`). */
  readonly replica: string;
  readonly engine: RewardEngine;
  readonly model: BatchingProgressModel;
  readonly metrics: ServerMetrics;
  /** The dashboard's live state; undefined when `dashboard.enabled` is false. */
  readonly live: LiveHub | undefined;
  readonly #feed: LiveFeed | undefined;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #keys: ApiKeys;
  readonly #log: (line: string) => void;
  readonly #connections = new Set<Connection>();
  /** TCP connections not upgraded to WebSocket, each with its deadline. */
  readonly #pendingSockets = new Map<Socket, PendingSocket>();
  #nextSession = 1;
  #address: { host: string; port: number } | undefined;
  #shutdown: Promise<void> | undefined;

  private constructor(opts: ServerOptions) {
    const { config } = opts;
    this.config = config;
    this.replica = replicaName(config);
    this.#log = opts.log ?? ((line) => console.error(line));
    const card = opts.model.card;
    if (config.missingViews === 'fill' && card.missingViews === null)
      throw new StagewardError(
        'SW_ERR_CONFIG',
        `\`missingViews\` is "fill", but model ${card.name}'s card declares no \`missing_views\` fill (it was not measured with a camera missing); use "refuse"`,
      );
    checkOpenpiConfig(config.openpi, card.views, card.tasks, card.grm.present, config.missingViews);
    const promptProblem = checkPromptMap(config.promptMap, card.tasks);
    if (promptProblem !== undefined) throw new StagewardError('SW_ERR_CONFIG', `\`promptMap\` ${promptProblem}`);
    this.metrics = new ServerMetrics({
      model: { name: card.name, version: card.version },
      replica: this.replica,
      sessions: () =>
        (['native', 'openpi'] as const).map((e) => [
          { endpoint: e },
          [...this.#connections].filter((c) => c.protocol.endpoint === e).length,
        ]),
      inFlight: () => this.stats().inFlight,
      queueDepth: () => this.model.queueDepth,
    });
    this.model = new BatchingProgressModel(opts.model, {
      ...config.batching,
      onBatch: (e) => {
        this.metrics.batchRows.observe(e.rows, { graph: e.graph });
        this.metrics.batchRequests.observe(e.requests, { graph: e.graph });
        this.metrics.batchSeconds.observe(e.ms / 1000, { graph: e.graph });
        this.live?.recordBatch(e.graph, e.rows, e.requests);
      },
    });
    const { maxImagePixels, decodeSlots, decodeLargeSlots, decodeLargeBytes, decodeLargeShare } = config.limits;
    this.engine = new RewardEngine(this.model, {
      limits: { maxImagePixels },
      decode: { slots: decodeSlots, largeSlots: decodeLargeSlots, largeCost: decodeLargeBytes, largeShare: decodeLargeShare },
    });
    this.#keys = new ApiKeys(config.apiKeys);
    let dashboard: HttpContext['live'];
    if (config.dashboard.enabled) {
      this.live = new LiveHub({
        card,
        replica: this.replica,
        maxPoints: config.dashboard.maxPoints,
        gauges: () => ({ inFlight: this.stats().inFlight, queueDepth: this.model.queueDepth, viewers: this.#feed?.viewers ?? 0 }),
      });
      this.#feed = new LiveFeed({
        hub: this.live,
        keys: this.#keys,
        card,
        providers: opts.model.providers,
        metrics: this.metrics,
        config: config.dashboard,
        log: this.#log,
      });
      dashboard = { hub: this.live, files: dashboardFiles() };
    }
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.limits.maxPayloadBytes,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.#http = createServer((req, res) =>
      handleHttp(req, res, {
        card,
        providers: opts.model.providers,
        keys: this.#keys,
        metrics: this.metrics,
        replica: this.replica,
        shuttingDown: () => this.#shutdown !== undefined,
        sessions: () => this.#connections.size,
        live: dashboard,
      }),
    );
    const deadline = config.limits.upgradeTimeoutMs;
    // node:http's own deadlines for the request head; the per-socket timer below covers idle sockets.
    this.#http.headersTimeout = deadline;
    this.#http.requestTimeout = deadline;
    this.#http.on('connection', (socket: Socket) => this.#pending(socket));
    this.#http.on('request', (req: IncomingMessage, res) => {
      // A deadline that passes during a request cuts the socket once its response is sent.
      const p = this.#pendingSockets.get(req.socket as Socket);
      if (p === undefined) return;
      // Past half its time, a keep-alive socket is told to close after this response, so a client
      // polling /healthz reconnects cleanly instead of meeting the cut between two requests.
      if (performance.now() - p.openedAt >= this.config.limits.upgradeTimeoutMs / 2) res.shouldKeepAlive = false;
      p.requests++;
      res.on('finish', () => {
        p.requests--;
        if (p.expired && p.requests === 0) req.socket.destroy();
      });
    });
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    this.#http.on('clientError', (_err, socket) => socket.destroy());
  }

  /**
   * A new TCP connection: cut at once past maxPendingSockets; else it has upgradeTimeoutMs from its
   * opening to become a WebSocket session (HTTP keep-alive included: a scraper reconnects).
   */
  #pending(socket: Socket): void {
    if (this.#pendingSockets.size >= this.config.limits.maxPendingSockets) {
      this.metrics.errors.inc({ code: 'SW_ERR_LIMIT' });
      socket.destroy();
      return;
    }
    const p: PendingSocket = { timer: undefined, openedAt: performance.now(), requests: 0, expired: false };
    p.timer = setTimeout(() => {
      p.expired = true;
      if (p.requests > 0) return;
      this.metrics.errors.inc({ code: 'SW_ERR_IDLE_TIMEOUT' });
      socket.destroy();
    }, this.config.limits.upgradeTimeoutMs);
    p.timer.unref();
    this.#pendingSockets.set(socket, p);
    socket.once('close', () => this.#release(socket));
  }

  /** The socket upgraded or closed: it no longer counts as pending. */
  #release(socket: Socket): void {
    clearTimeout(this.#pendingSockets.get(socket)?.timer);
    this.#pendingSockets.delete(socket);
  }

  /** Build the server around a loaded model and listen on config.host:config.port. */
  static async start(opts: ServerOptions): Promise<StagewardServer> {
    const server = new StagewardServer(opts);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        reject(new StagewardError('SW_ERR_CONFIG', `cannot listen on ${opts.config.host}:${opts.config.port}: ${err.code ?? err.message}`));
      };
      server.#http.once('error', onError);
      server.#http.listen(opts.config.port, opts.config.host, () => {
        server.#http.off('error', onError);
        const a = server.#http.address() as AddressInfo;
        server.#address = { host: a.address, port: a.port };
        resolve();
      });
    });
    return server;
  }

  /** Where the server listens (kept after shutdown, for messages). */
  get address(): { host: string; port: number } {
    return this.#address!;
  }

  /** ws://host:port (the native endpoint is `${url}/v1/stream`). */
  get url(): string {
    const { host, port } = this.address;
    return `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  stats(): ServerStats {
    let inFlight = 0;
    for (const c of this.#connections) inFlight += c.inFlight;
    return { sessions: this.#connections.size, inFlight, queueDepth: this.model.queueDepth };
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const endpoint = Object.hasOwn(ROUTES, path) ? ROUTES[path] : undefined;
    const refuse = (status: string) => {
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    const feed = path === '/v1/live' ? this.#feed : undefined;
    if (endpoint === undefined && feed === undefined) return refuse('404 Not Found');
    if (this.#shutdown !== undefined) return refuse('503 Service Unavailable');
    this.#release(socket as Socket);
    if (feed !== undefined) {
      this.#wss.handleUpgrade(req, socket, head, (ws) => feed.accept(ws, this.#keys.fromHeaders(req.headers)));
      return;
    }
    if (endpoint === undefined) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, endpoint, req, socket));
  }

  #accept(ws: WebSocket, endpoint: Endpoint, req: IncomingMessage, socket: Duplex): void {
    const limits = this.config.limits;
    const sessionId = `s${this.#nextSession++}`;
    const auth = this.#keys.fromHeaders(req.headers);
    // Refusals answer with an error in the endpoint's style before anything else is sent.
    const refusal = this.#refusal(endpoint, auth);
    const live = refusal === undefined ? this.live?.open(sessionId, endpoint) : undefined;
    const session: SessionContext = {
      engine: this.engine,
      limits,
      metrics: this.metrics,
      sessionId,
      replica: this.replica,
      promptMap: this.config.promptMap,
      missingViews: this.config.missingViews,
      live,
    };
    const protocol: Protocol =
      endpoint === 'native'
        ? new NativeSession({ ...session, keys: this.#keys, authenticated: auth === 'valid' })
        : new OpenpiSession({ ...session, openpi: this.config.openpi });
    const ctx = {
      limits,
      metrics: this.metrics,
      log: this.#log,
      onError: live && ((code: string) => live.errored(code)),
      transport: socket,
    };
    if (refusal !== undefined) {
      const conn = new Connection(ws, silent(protocol), ctx);
      conn.reject(refusal, endpoint === 'native' ? 'binary' : 'text');
      return;
    }
    const conn = new Connection(ws, protocol, ctx);
    this.metrics.connections.inc({ endpoint });
    this.#connections.add(conn);
    conn.onGone(() => {
      this.#connections.delete(conn);
      live?.closed();
    });
  }

  #refusal(endpoint: Endpoint, auth: 'none' | 'valid' | 'invalid'): StagewardError | undefined {
    if (this.#connections.size >= this.config.limits.maxSessions) {
      return new StagewardError(
        'SW_ERR_TOO_MANY_SESSIONS',
        `the server holds maxSessions (${this.config.limits.maxSessions}) connections; try again later`,
      );
    }
    if (auth === 'invalid') return new StagewardError('SW_ERR_AUTH', 'the API key in the Authorization header is not valid');
    if (auth === 'none' && endpoint === 'openpi' && this.#keys.required) {
      return new StagewardError('SW_ERR_AUTH', 'an API key is required: send `Authorization: Api-Key <key>`');
    }
    return undefined;
  }

  /** Graceful shutdown (idempotent): see the header. */
  shutdown(): Promise<void> {
    this.#shutdown ??= (async () => {
      // The listener stays open through the drain: /healthz says 503 and upgrades get 503.
      // Viewers go first: they are not robots, and nothing of theirs needs draining.
      this.#feed?.close();
      const { shutdownGraceMs, drainQuietMs } = this.config.limits;
      await Promise.all([...this.#connections].map((c) => c.drain(shutdownGraceMs, drainQuietMs)));
      const closed = new Promise<void>((r) => this.#http.close(() => r()));
      this.#http.closeAllConnections();
      for (const socket of this.#pendingSockets.keys()) socket.destroy();
      await closed;
      this.metrics.close();
      this.live?.close();
      await this.model.close();
    })();
    return this.#shutdown;
  }
}

/** A TCP connection not (yet) upgraded to WebSocket. */
interface PendingSocket {
  timer: NodeJS.Timeout | undefined;
  openedAt: number;
  /** HTTP requests in progress on it. */
  requests: number;
  /** Its upgradeTimeoutMs has passed. */
  expired: boolean;
}

/** A protocol with no greeting, for connections that are refused at once. */
function silent(p: Protocol): Protocol {
  return {
    endpoint: p.endpoint,
    awaitingHello: false,
    greeting: () => undefined,
    handle: () => Promise.reject(new StagewardError('SW_ERR_PROTOCOL', 'connection refused')),
    errorFrame: (err, seq, kind) => p.errorFrame(err, seq, kind),
    dispose: () => {},
  };
}
