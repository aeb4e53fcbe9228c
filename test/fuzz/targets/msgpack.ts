// Fuzz target: a binary WebSocket message through decodeFrame (server/codec.ts): the strict
// MessagePack decoder (server/msgpack.ts) with openpi's numpy maps (server/ndarray.ts), under the
// configured limits. Refusals (SW_ERR_PROTOCOL, SW_ERR_LIMIT, SW_ERR_NDARRAY) are expected; anything
// else escaping is a finding (test/fuzz/harness.ts).
//
// Read by scripts/fuzz.ts (synchronous: no promise per input; -max_len bounds the input libFuzzer builds):
// fuzz-options: --sync -max_len=4096

import { decodeFrame } from '../../../server/codec.ts';
import { attempt, fuzzEntry, LIMITS } from '../harness.ts';

export function check(data: Buffer): void {
  attempt('decodeFrame', () => decodeFrame(data, 'binary', LIMITS));
}

export const fuzz = fuzzEntry('msgpack', check);
