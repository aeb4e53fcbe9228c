// Model rewards from a reward server over a real WebSocket (`/v1/stream`, the TypeScript client): one
// connection (session) per environment, its steps pipelined, frames sent as raw uint8 arrays (openpi's
// numpy encoding; no JPEG round trip) so the server's engine sees exactly the bridge's pixels. Without
// a URL, a server with the package is started in this process on a free loopback port (its idle
// timeout lifted, since an RL learner may pause between batches of episodes) and shut down on close.
// Replies' floats travel as MessagePack float64, so the rewards equal the in-process engine's exactly.

import { isStagewardError, StagewardError } from '../../core/errors.ts';
import type { RawImage } from '../../core/image.ts';
import type { ExecutionProvider } from '../../models/runtime.ts';
import { StagewardClient, type HelloOptions, type ReadyReply } from '../../server/client.ts';
import { startServer } from '../../server/run.ts';
import { loadConfig } from '../../server/config.ts';
import type { StagewardServer } from '../../server/server.ts';
import type { ModelReward, RewardService, RewardStream, StreamSettings, Transition } from './reward-stream.ts';

export interface WsServiceOptions extends StreamSettings {
  /** Server URL; absent: start one here with `model`. */
  url?: string;
  apiKey?: string;
  /** Model package folder for a server started here. */
  model: string;
  providers: ExecutionProvider[];
  /** Sessions the server started here must admit. */
  envs: number;
  log?: (message: string) => void;
}

/** A day: a server started here never closes a bridge connection for idling. */
const LOCAL_IDLE_TIMEOUT_MS = 86_400_000;

export class WsRewardService implements RewardService {
  readonly views: readonly string[];
  readonly image: { height: number; width: number };
  /** The server started here, if any. */
  readonly server: StagewardServer | undefined;
  readonly url: string;
  readonly #connect: () => Promise<Connected>;
  readonly #streams: WsRewardStream[] = [];
  #first: Connected | undefined;

  private constructor(url: string, server: StagewardServer | undefined, first: Connected, connect: () => Promise<Connected>) {
    this.url = url;
    this.server = server;
    this.#first = first;
    this.#connect = connect;
    this.views = [...first.ready.model.views];
    this.image = { ...first.ready.model.image };
  }

  static async connect(o: WsServiceOptions): Promise<WsRewardService> {
    let server: StagewardServer | undefined;
    let url = o.url;
    let apiKey = o.apiKey;
    if (url === undefined) {
      const config = loadConfig({
        env: process.env,
        flags: { model: o.model, port: 0, host: '127.0.0.1', 'runtime.providers': o.providers },
        overrides: { 'limits.idleTimeoutMs': LOCAL_IDLE_TIMEOUT_MS, 'limits.maxSessions': Math.max(64, o.envs + 1) },
      });
      server = (await startServer(config, o.log ?? ((m) => console.warn(m)))).server;
      url = server.url;
      apiKey ??= config.apiKeys[0];
    }
    const hello: HelloOptions = { task: o.task, gamma: o.gamma, shaping: o.shaping, scale: o.scale };
    const connect = async (): Promise<Connected> => {
      const client = await StagewardClient.connect(url, { apiKey });
      try {
        return { client, ready: await client.hello(hello) };
      } catch (err) {
        await client.close();
        throw err;
      }
    };
    try {
      return new WsRewardService(url, server, await connect(), connect);
    } catch (err) {
      await server?.shutdown();
      throw err;
    }
  }

  async open(): Promise<RewardStream> {
    const connected = this.#first ?? (await this.#connect());
    this.#first = undefined;
    const stream = new WsRewardStream(connected.client, this.#connect);
    this.#streams.push(stream);
    return stream;
  }

  async close(): Promise<void> {
    const first = this.#first;
    this.#first = undefined;
    await Promise.all([...this.#streams.map((s) => s.close()), first?.client.close()]);
    await this.server?.shutdown();
  }
}

interface Connected {
  client: StagewardClient;
  ready: ReadyReply;
}

/** A connection that closed while the stream was idle: worth one reconnect before an episode. */
function connectionGone(err: unknown): boolean {
  return isStagewardError(err, 'SW_ERR_IDLE_TIMEOUT') || isStagewardError(err, 'SW_ERR_CONNECTION_CLOSED');
}

class WsRewardStream implements RewardStream {
  #client: StagewardClient;
  readonly #connect: () => Promise<Connected>;
  #episodes = 0;

  constructor(client: StagewardClient, connect: () => Promise<Connected>) {
    this.#client = client;
    this.#connect = connect;
  }

  async begin(): Promise<void> {
    try {
      await this.reset();
    } catch (err) {
      if (!connectionGone(err)) throw err;
      await this.#client.close();
      this.#client = (await this.#connect()).client;
      await this.reset();
    }
  }

  async reset(): Promise<void> {
    await this.#client.reset(undefined, { episode: this.#episodes++ });
  }

  async step(frames: Record<string, RawImage>, t?: Transition): Promise<ModelReward> {
    const r = await this.#client.step(
      frames,
      t === undefined ? {} : { reward: t.reward, terminated: t.terminated, truncated: t.truncated },
    );
    if (typeof r.progress !== 'number' || typeof r.shaped !== 'number') {
      throw new StagewardError('SW_ERR_PROTOCOL', 'a reward reply lacks `progress` or `shaped`');
    }
    return { progress: r.progress, shaped: r.shaped };
  }

  async end(outcome: { terminated: boolean; truncated: boolean; success: boolean }): Promise<void> {
    await this.#client.end(outcome);
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}
