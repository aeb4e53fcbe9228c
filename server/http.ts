// The HTTP routes on the server's port (GET and HEAD only):
//
//   GET /healthz     200 {"status": "ok", "replica", ...} while serving, 503 {"status": "shutting_down", "replica"} after
//   GET /metrics     Prometheus text format (server/metrics.ts)
//   GET /v1/models   the served model: name, version, views, image, tasks and stages, heads, providers
//   GET /            a short plain-text index of the endpoints
//
// With API keys configured, /metrics and /v1/models need `Authorization: Api-Key <key>` (401
// otherwise); /healthz stays open for load balancers. Errors are JSON {code, message}.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ModelCard } from '../models/card.ts';
import type { ExecutionProvider } from '../models/runtime.ts';
import type { ApiKeys } from './auth.ts';
import type { ServerMetrics } from './metrics.ts';

export interface HttpContext {
  card: ModelCard;
  providers: Record<string, ExecutionProvider>;
  keys: ApiKeys;
  metrics: ServerMetrics;
  replica: string;
  shuttingDown: () => boolean;
  sessions: () => number;
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
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
`;

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
    case '/':
      send(res, 200, 'text/plain; charset=utf-8', INDEX, head);
      return;
    default:
      json(res, 404, { code: 'SW_ERR_PROTOCOL', message: `no route ${path.slice(0, 100)}` }, head);
  }
}
