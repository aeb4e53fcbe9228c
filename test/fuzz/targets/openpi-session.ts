// Fuzz target: the openpi-client protocol (server/openpi-session.ts) fed a sequence of observation
// dicts cut from the input (test/fuzz/harness.ts, `splitFrames`), with the configured `openpi`
// settings (observation keys -> views, default task, gamma, shaping), over a real RewardEngine (with
// the server's batching) and a fast fake model. A fresh session and engine per input.
//
// Read by scripts/fuzz.ts (async: handle() is awaited; -max_len bounds the input libFuzzer builds):
// fuzz-options: -max_len=8192

import { checkOpenpiConfig, OpenpiSession } from '../../../server/openpi-session.ts';
import { CONFIG, drive, fuzzEngine, fuzzEntry, fuzzSession, splitFrames } from '../harness.ts';

const card = fuzzEngine().card;
checkOpenpiConfig(CONFIG.openpi, card.views, card.tasks, card.grm.present);

export async function check(data: Buffer): Promise<void> {
  const engine = fuzzEngine();
  const session = new OpenpiSession({ ...fuzzSession(engine), openpi: CONFIG.openpi });
  await drive(session, splitFrames(data));
}

export const fuzz = fuzzEntry('openpi-session', check);
