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
import { configFromFlags, describeServer, shutdownOnSignals, startServer, type ServeFlags } from '../../server/run.ts';
import { intOption, providersOption, repeatOption } from '../options.ts';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the reward server (WebSocket /v1/stream and /openpi, HTTP /healthz /metrics /v1/models)')
    .option('--model <dir>', 'model package folder (default: the bundled model, else the test fixture)')
    .option('--port <n>', 'TCP port (0: any free port)', intOption(0, 65535))
    .option('--host <addr>', 'address to listen on (non-loopback needs --api-key or --insecure-public)')
    .option('--config <file>', 'JSON config file (see configs/README.md)')
    .option('--api-key <key>', 'accepted API key (repeat for several)', repeatOption)
    .option('--insecure-public', 'allow a non-loopback address without API keys')
    .option('--replica <name>', "this replica's name in ready, /healthz and /metrics (default: <hostname>-<pid>)")
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
