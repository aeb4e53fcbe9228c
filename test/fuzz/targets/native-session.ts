// Fuzz target: the native protocol's state machine (server/native-session.ts) fed a sequence of
// messages cut from the input (test/fuzz/harness.ts, `splitFrames`): hello, reset, step, end in any
// order and shape, over a real RewardEngine (with the server's batching) and a fast fake model.
// A fresh session and engine per input, so every input replays the same way.
//
// Read by scripts/fuzz.ts (async: handle() is awaited; -max_len bounds the input libFuzzer builds):
// fuzz-options: -max_len=8192

import { ApiKeys } from '../../../server/auth.ts';
import { NativeSession } from '../../../server/native-session.ts';
import { CONFIG, drive, fuzzEngine, fuzzEntry, fuzzSession, splitFrames } from '../harness.ts';

export async function check(data: Buffer): Promise<void> {
  const engine = fuzzEngine();
  const session = new NativeSession({ ...fuzzSession(engine), keys: new ApiKeys(CONFIG.apiKeys), authenticated: false });
  await drive(session, splitFrames(data));
}

export const fuzz = fuzzEntry('native-session', check);
