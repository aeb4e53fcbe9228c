// `stageward serve`: run the reward server until SIGTERM or SIGINT (then shut down gracefully).
//
//   stageward serve                                        # bundled model on 127.0.0.1:8000
//   stageward serve --model models/zoo/pick_place --port 9000
//   stageward serve --host 0.0.0.0 --api-key "$KEY"        # public: needs a key (or --insecure-public)
//   stageward serve --config my.json                       # see configs/README.md; STAGEWARD_* env vars too
//
// Settings come from configs/default.json < --config FILE < STAGEWARD_* env vars < flags; all are
// checked before the model loads. A model that cannot load stops start-up with its error code.

import { Command } from 'commander';
import { OnnxProgressModel } from '../../models/package.ts';
import { loadConfig, type ServerConfig } from '../config.ts';
import { intOption, providersOption } from '../options.ts';
import { defaultModelDir } from '../paths.ts';
import { StagewardServer } from '../server.ts';
import { WorkerProgressModel } from '../../models/worker-model.ts';

export interface ServeFlags {
  model?: string;
  port?: number;
  host?: string;
  config?: string;
  apiKey?: string[];
  insecurePublic?: boolean;
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
      'runtime.providers': o.provider,
    },
  });
}

/** Load the configured (or bundled) model and start listening. */
export async function startServer(config: ServerConfig, log: (line: string) => void = console.log): Promise<{ server: StagewardServer; trained: boolean; dir: string }> {
  const picked = config.model !== null ? { dir: config.model, trained: true } : defaultModelDir();
  const options = { providers: config.runtime.providers, intraOpThreads: config.runtime.intraOpThreads, log };
  const model = config.runtime.inferenceThread === 'worker'
    ? await WorkerProgressModel.load(picked.dir, options)
    : await OnnxProgressModel.load(picked.dir, options);
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
export function shutdownOnSignals(server: StagewardServer, log: (line: string) => void, before?: () => void): { stopped: Promise<void>; release: () => void } {
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
  const lines = [
    `stageward: serving model ${card.name} ${card.version} from ${dir} (providers ${JSON.stringify(server.model.providers)}, inference on the ${server.config.runtime.inferenceThread} thread)`,
    `  native    ${base}/v1/stream`,
    `  openpi    ${base}/openpi   (or WebsocketClientPolicy(host="${server.address.host}", port=${server.address.port}))`,
    `  http      ${http}/healthz  ${http}/metrics  ${http}/v1/models`,
    `  views ${card.views.join('/')}, tasks ${card.tasks.join(', ')}; API keys ${server.config.apiKeys.length ? 'required' : 'off (loopback only)'}`,
  ];
  if (!trained) lines.push('  (no bundled model yet: this is the test fixture with random weights; its rewards show the pipeline, not a trained reward)');
  return lines;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the reward server (WebSocket /v1/stream and /openpi, HTTP /healthz /metrics /v1/models)')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--port <n>', 'TCP port (0: any free port)', intOption(0, 65535))
    .option('--host <addr>', 'address to listen on (non-loopback needs --api-key or --insecure-public)')
    .option('--config <file>', 'JSON config file (see configs/README.md)')
    .option('--api-key <key>', 'accepted API key (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--insecure-public', 'allow a non-loopback address without API keys')
    .option('--provider <list>', 'execution providers to try in order, comma-separated (cpu, webgpu, cuda, tensorrt)', providersOption)
    .action(async (o: ServeFlags) => {
      const config = configFromFlags(o);
      const { server, trained, dir } = await startServer(config);
      for (const line of describeServer(server, dir, trained)) console.log(line);
      const signals = shutdownOnSignals(server, (l) => console.log(l));
      await signals.stopped;
      signals.release();
      console.log('stageward: stopped');
    });
}
