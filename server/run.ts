// Running a server from a config, as `stageward serve`, `stageward start`, the simulator bridge and the
// benchmarks do: settings from flags, loading the configured (or bundled) model, graceful shutdown on
// signals, and the lines that tell a user where it listens.

import { existsSync } from 'node:fs';
import { NATIVE_JPEG_ADDON, NATIVE_JPEG_ENV, nativeJpeg, nativeJpegDisabled } from '../models/native-jpeg.ts';
import { defaultModelDir } from '../core/paths.ts';
import { loadProgressModel } from '../models/load.ts';
import { loadConfig, type ServerConfig } from './config.ts';
import { StagewardServer } from './server.ts';

export interface ServeFlags {
  model?: string;
  port?: number;
  host?: string;
  config?: string;
  apiKey?: string[];
  insecurePublic?: boolean;
  replica?: string;
  provider?: string[];
}

/** Config from the flags (dotted paths; undefined leaves a setting alone). */
export function configFromFlags(o: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  return loadConfig({
    file: o.config,
    env,
    flags: {
      model: o.model,
      port: o.port,
      host: o.host,
      apiKeys: o.apiKey,
      insecurePublic: o.insecurePublic,
      replica: o.replica,
      'runtime.providers': o.provider,
    },
  });
}

/** Load the configured (or bundled) model and start listening. */
export async function startServer(
  config: ServerConfig,
  log: (line: string) => void = console.log,
): Promise<{ server: StagewardServer; trained: boolean; dir: string }> {
  const picked = config.model !== null ? { dir: config.model, trained: true } : defaultModelDir();
  const options = { providers: config.runtime.providers, intraOpThreads: config.runtime.intraOpThreads, log };
  const model = await loadProgressModel(picked.dir, config.runtime.inferenceThread, options);
  try {
    const server = await StagewardServer.start({ config, model });
    return { server, trained: picked.trained, dir: picked.dir };
  } catch (err) {
    await model.close();
    throw err;
  }
}

/**
 * Shut down on the first SIGTERM/SIGINT (`stopped` resolves when done); a second signal exits at
 * once. `release()` removes the handlers.
 */
export function shutdownOnSignals(
  server: StagewardServer,
  log: (line: string) => void,
  before?: () => void,
): { stopped: Promise<void>; release: () => void } {
  let stopping = false;
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const stopped = new Promise<void>((resolve) => {
    onSignal = (signal) => {
      if (stopping) {
        log(`stageward: ${signal} again, exiting now`);
        process.exit(130);
      }
      stopping = true;
      log(`stageward: ${signal}, shutting down (answering in-flight steps, up to ${server.config.limits.shutdownGraceMs} ms)`);
      before?.();
      void server.shutdown().then(resolve);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  return { stopped, release };
}

export function describeServer(server: StagewardServer, dir: string, trained: boolean): string[] {
  const card = server.engine.card;
  const base = server.url;
  const http = base.replace(/^ws/, 'http');
  const dashboard = server.live
    ? `  dashboard ${http}/   (live sessions, rewards and camera thumbnails; open it in a browser)`
    : '  dashboard off (dashboard.enabled is false)';
  const lines = [
    `stageward: replica ${server.replica} serving model ${card.name} ${card.version} from ${dir} (providers ${JSON.stringify(server.model.providers)}, inference on the ${server.config.runtime.inferenceThread} thread)`,
    `  native    ${base}/v1/stream`,
    `  openpi    ${base}/openpi   (or WebsocketClientPolicy(host="${server.address.host}", port=${server.address.port}))`,
    `  http      ${http}/healthz  ${http}/metrics  ${http}/v1/models  ${http}/v1/sessions`,
    `  views ${card.views.join('/')}, tasks ${card.tasks.join(', ')}; API keys ${server.config.apiKeys.length ? 'required' : 'off (loopback only)'}`,
    `  jpeg      ${jpegDecoderLine()}`,
    dashboard,
  ];
  if (!trained)
    lines.push(
      '  (no bundled model yet: this is the test fixture with random weights; its rewards show the pipeline, not a trained reward)',
    );
  return lines;
}

/** Which JPEG decoder serves (models/native-jpeg.ts), and why when it is not the native one. */
function jpegDecoderLine(): string {
  if (nativeJpeg() !== null) return 'native (libjpeg-turbo, DCT-scaled)';
  if (nativeJpegDisabled()) return `sharp (${NATIVE_JPEG_ENV} turns the native decoder off)`;
  return existsSync(NATIVE_JPEG_ADDON)
    ? 'sharp (the native decoder did not load)'
    : 'sharp (native decoder not built: apt-get install libturbojpeg0-dev, then npm run build:native)';
}
