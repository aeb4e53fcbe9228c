// API keys: `Authorization: Api-Key <key>` (as openpi-client sends it) or the native hello's
// `api_key`. Keys are compared as SHA-256 digests with crypto.timingSafeEqual, against every
// configured key without an early exit, so neither a key's content nor its length leaks in timing.
// No keys configured means open access (config.ts allows that on loopback addresses only).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export class ApiKeys {
  readonly #digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  /** True when a key is needed. */
  get required(): boolean {
    return this.#digests.length > 0;
  }

  /** Whether `key` is one of the configured keys (false for anything that is not a string). */
  check(key: unknown): boolean {
    if (typeof key !== 'string' || key.length > 1024) return false;
    const d = digest(key);
    let ok = false;
    for (const k of this.#digests) ok = timingSafeEqual(k, d) || ok;
    return ok;
  }

  /**
   * What the upgrade request's headers say: 'none' (no Authorization header), 'valid' or 'invalid'.
   */
  fromHeaders(headers: IncomingHttpHeaders): 'none' | 'valid' | 'invalid' {
    const h = headers.authorization;
    if (h === undefined) return 'none';
    const m = /^Api-Key\s+(\S+)\s*$/i.exec(h);
    if (m === null) return 'invalid';
    return this.check(m[1]) ? 'valid' : 'invalid';
  }
}
