// Worker-thread bootstrap: registers tsx (as bin/stageward.js does for the main thread), then loads
// the TypeScript entry named in workerData.entry. Worker threads do not inherit the main thread's
// module hooks, and a .ts entry cannot be loaded without them.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
