// Fuzz target: a text WebSocket message through decodeFrame (server/codec.ts): the structure scan,
// JSON.parse and the revival of numpy maps with base64 `data` (server/ndarray.ts), under the
// configured limits. Refusals are expected; anything else escaping is a finding (test/fuzz/harness.ts).
//
// Read by scripts/fuzz.ts (synchronous: no promise per input; -max_len bounds the input libFuzzer builds):
// fuzz-options: --sync -max_len=4096

import { decodeFrame } from '../../../server/codec.ts';
import { attempt, fuzzEntry, LIMITS } from '../harness.ts';

export function check(data: Buffer): void {
  attempt('decodeFrame', () => decodeFrame(data, 'text', LIMITS));
}

export const fuzz = fuzzEntry('json', check);
