// The HTTP routes on the server's port (GET and HEAD only):
//
//   GET /healthz     200 {"status": "ok", "replica", ...} while serving, 503 {"status": "shutting_down", "replica"} after
//   GET /metrics     Prometheus text format (server/metrics.ts)
//   GET /v1/models   the served model: name, version, views, image, tasks and stages, heads, providers
//   GET /v1/sessions       every session's summary and the server's figures (server/LIVE.md)
//   GET /v1/sessions/<id>  one session's summary and its kept episodes' points
//   GET / and /dashboard   the live dashboard page (server/dashboard/), its files under /dashboard/
//                          (a short plain-text index of the endpoints when the dashboard is disabled)
//
// With API keys configured, /metrics, /v1/models and /v1/sessions need `Authorization: Api-Key
// <key>` (401 otherwise); /healthz stays open for load balancers, and the dashboard's files hold no
// data (the page asks for the key and sends it itself). Errors are JSON {code, message}.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModelCard } from '../models/card.ts';
import type { ExecutionProvider } from '../models/runtime.ts';
import type { ApiKeys } from './auth.ts';
import type { DashboardFiles } from './dashboard/files.ts';
import { POINT_FIELDS, type LiveHub } from './live.ts';
import type { ServerMetrics } from './metrics.ts';

export interface HttpContext {
  card: ModelCard;
  providers: Record<string, ExecutionProvider>;
  keys: ApiKeys;
  metrics: ServerMetrics;
  replica: string;
  shuttingDown: () => boolean;
  sessions: () => number;
  /** The dashboard's state and files; undefined when `dashboard.enabled` is false. */
  live: { hub: LiveHub; files: DashboardFiles } | undefined;
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(head ? undefined : body);
}

function json(res: ServerResponse, status: number, body: unknown, head: boolean): void {
  send(res, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
}

export function modelInfo(card: ModelCard, providers: Record<string, ExecutionProvider>): Record<string, unknown> {
  return {
    name: card.name,
    version: card.version,
    format: card.format,
    views: card.views,
    image: card.image,
    feature_dim: card.featureDim,
    window: card.window,
    fps: card.fps,
    tasks: card.tasks.map((task, i) => ({ task, stages: card.stages[i]!.map((s) => ({ name: s.name, prior: s.prior })) })),
    composition: card.composition,
    heads: { sarm: true, grm: card.grm.present },
    providers,
    provenance: card.provenance,
    metrics: card.metrics,
  };
}

const INDEX = `stageward reward server

WebSocket  /v1/stream   native protocol (hello, reset, step, end)
WebSocket  /openpi      openpi-client compatible (also on /)
GET        /healthz     liveness
GET        /metrics     Prometheus metrics
GET        /v1/models   the served model
GET        /v1/sessions the sessions (the dashboard is disabled: dashboard.enabled is false)
`;

function sendFile(res: ServerResponse, files: DashboardFiles, name: string, head: boolean): void {
  const f = files.get(name)!;
  send(res, 200, f.type, f.body, head, { 'content-security-policy': DASHBOARD_CSP, 'referrer-policy': 'no-referrer' });
}

/** The page loads only its own files and talks only to its own server. */
const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function handleHttp(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): void {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.setHeader('allow', 'GET, HEAD');
    json(res, 405, { code: 'SW_ERR_PROTOCOL', message: `method ${req.method} is not allowed` }, false);
    return;
  }
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const authorized = () => {
    if (!ctx.keys.required || ctx.keys.fromHeaders(req.headers) === 'valid') return true;
    ctx.metrics.errors.inc({ code: 'SW_ERR_AUTH' });
    res.setHeader('www-authenticate', 'Api-Key');
    json(res, 401, { code: 'SW_ERR_AUTH', message: 'this endpoint needs `Authorization: Api-Key <key>`' }, head);
    return false;
  };
  switch (path) {
    case '/healthz':
      if (ctx.shuttingDown()) json(res, 503, { status: 'shutting_down', replica: ctx.replica }, head);
      else
        json(
          res,
          200,
          { status: 'ok', replica: ctx.replica, model: ctx.card.name, version: ctx.card.version, sessions: ctx.sessions() },
          head,
        );
      return;
    case '/metrics':
      if (authorized()) send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', ctx.metrics.render(), head);
      return;
    case '/v1/models':
      if (authorized()) json(res, 200, { models: [modelInfo(ctx.card, ctx.providers)] }, head);
      return;
    case '/v1/sessions':
      if (ctx.live === undefined) break;
      if (authorized()) {
        const { hub } = ctx.live;
        json(res, 200, { replica: ctx.replica, server: hub.serverView(), sessions: hub.sessions().map((s) => s.summary()) }, head);
      }
      return;
    case '/':
      if (ctx.live === undefined) send(res, 200, 'text/plain; charset=utf-8', INDEX, head);
      else sendFile(res, ctx.live.files, 'index.html', head);
      return;
    case '/dashboard':
      if (ctx.live === undefined) break;
      sendFile(res, ctx.live.files, 'index.html', head);
      return;
  }
  if (ctx.live !== undefined && path.startsWith('/v1/sessions/')) {
    if (!authorized()) return;
    const id = path.slice('/v1/sessions/'.length);
    const s = ctx.live.hub.get(id);
    if (s === undefined) json(res, 404, { code: 'SW_ERR_NO_SESSION', message: `no session ${JSON.stringify(id.slice(0, 64))}` }, head);
    else
      json(
        res,
        200,
        {
          session: s.summary(),
          fields: POINT_FIELDS,
          episodes: s.episodes.map((e) => ({ ordinal: e.ordinal, episode: e.label, task: e.task, points: e.points })),
        },
        head,
      );
    return;
  }
  if (ctx.live !== undefined && path.startsWith('/dashboard/') && ctx.live.files.has(path.slice('/dashboard/'.length))) {
    sendFile(res, ctx.live.files, path.slice('/dashboard/'.length), head);
    return;
  }
  json(res, 404, { code: 'SW_ERR_PROTOCOL', message: `no route ${path.slice(0, 100)}` }, head);
}
