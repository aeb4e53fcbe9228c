// Dashboard viewers for `stageward bench server`'s dashboard phase, run as a child process of the
// load worker (bench/load-worker.ts forks it) so their CPU is charged to neither the server nor the
// robot: each viewer is a WebSocket on `/v1/live` (server/LIVE.md) that subscribes to one session
// with thumbnails on and reads every message as a browser tab would (JSON.parse, look at the type).
//
//   fork('bench/live-viewer.ts')   then IPC messages (ViewerCommand in, ViewerReply out):
//   {type: "open", url, session, viewers}  connect and subscribe; answered `opened` once every
//                                         viewer has its snapshot
//   {type: "close"}                       close them all; answered `closed` once every socket is
//                                         closed, with what they received since the `open`
//   {type: "exit"}                        close what is open and exit
//
// A viewer that gets an `error` message or is closed by the server is reported in `errors`.

import WebSocket from 'ws';

export type ViewerCommand =
  | { type: 'open'; url: string; session: string; viewers: number; apiKey?: string; timeoutMs: number }
  | { type: 'close' }
  | { type: 'exit' };

export interface ViewerCounts {
  /** Messages received, all types. */
  messages: number;
  /** Messages by type (snapshot, tick, thumbnail, error). */
  by_type: Record<string, number>;
  /** Thumbnail messages that carried every view's image. */
  thumbnails: number;
  /** Bytes of JSON text received. */
  bytes: number;
  /** What went wrong (error messages, unexpected closes), at most a few. */
  errors: string[];
}

export type ViewerReply = { type: 'opened' } | ({ type: 'closed' } & ViewerCounts) | { type: 'failed'; message: string };

const MAX_ERRORS = 8;

class Viewers {
  #sockets: WebSocket[] = [];
  #counts: ViewerCounts = empty();
  #closing = false;

  async open(c: Extract<ViewerCommand, { type: 'open' }>): Promise<void> {
    this.#counts = empty();
    this.#closing = false;
    await Promise.all(Array.from({ length: c.viewers }, (_, i) => this.#one(c, i)));
  }

  /** One viewer: resolves once its snapshot arrived. */
  #one(c: Extract<ViewerCommand, { type: 'open' }>, index: number): Promise<void> {
    const headers: Record<string, string> = c.apiKey ? { Authorization: `Api-Key ${c.apiKey}` } : {};
    const ws = new WebSocket(c.url, { perMessageDeflate: false, headers, handshakeTimeout: c.timeoutMs });
    this.#sockets.push(ws);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`viewer ${index}: no snapshot within ${c.timeoutMs} ms`)), c.timeoutMs);
      const done = (err?: Error) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      ws.once('open', () => ws.send(JSON.stringify({ type: 'subscribe', session: c.session, thumbnails: true })));
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        const n = this.#counts;
        n.messages++;
        n.bytes += data.length;
        let m: { type?: unknown; code?: unknown; message?: unknown; views?: unknown };
        try {
          m = isBinary ? {} : (JSON.parse(data.toString('utf8')) as typeof m);
        } catch {
          m = {};
        }
        const type = typeof m.type === 'string' ? m.type : 'unparsed';
        n.by_type[type] = (n.by_type[type] ?? 0) + 1;
        if (type === 'thumbnail' && m.views !== null && typeof m.views === 'object' && Object.keys(m.views).length > 0) n.thumbnails++;
        if (type === 'error' || type === 'unparsed') this.#error(`viewer ${index}: ${String(m.code ?? type)} ${String(m.message ?? '')}`);
        if (type === 'snapshot') done();
        else if (type === 'error') done(new Error(`viewer ${index}: ${String(m.code)} ${String(m.message)}`));
      });
      ws.on('error', (err) => {
        this.#error(`viewer ${index}: ${err.message}`);
        done(err);
      });
      ws.on('close', (code, reason) => {
        if (!this.#closing) this.#error(`viewer ${index}: closed by the server (${code} ${reason.toString()})`);
        done(new Error(`viewer ${index}: closed (${code} ${reason.toString()})`));
      });
    });
  }

  #error(line: string): void {
    if (this.#counts.errors.length < MAX_ERRORS) this.#counts.errors.push(line);
  }

  /** Close every viewer and wait until each socket is closed; what they received since open. */
  async close(): Promise<ViewerCounts> {
    this.#closing = true;
    const sockets = this.#sockets.splice(0);
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === WebSocket.CLOSED) return resolve();
            const timer = setTimeout(() => ws.terminate(), 5000);
            ws.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
            else ws.close(1000);
          }),
      ),
    );
    return this.#counts;
  }
}

function empty(): ViewerCounts {
  return { messages: 0, by_type: {}, thumbnails: 0, bytes: 0, errors: [] };
}

function reply(r: ViewerReply): void {
  process.send?.(r);
}

if (process.send !== undefined) {
  const viewers = new Viewers();
  process.on('message', (c: ViewerCommand) => {
    if (c.type === 'open')
      viewers.open(c).then(
        () => reply({ type: 'opened' }),
        (err: unknown) => reply({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
      );
    else if (c.type === 'close') void viewers.close().then((n) => reply({ type: 'closed', ...n }));
    else void viewers.close().then(() => process.disconnect());
  });
  process.on('disconnect', () => void viewers.close().then(() => process.exit(0)));
}
