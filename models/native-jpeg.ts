// The optional native JPEG decoder (native/jpeg: libjpeg-turbo through N-API), used by
// preprocess.ts in place of sharp for JPEG bytes: it decodes at the smallest DCT scale that still
// covers the model's size, on libuv's threads, at about a tenth of sharp's cost for a 96x96 frame.
// sharp stays the fallback: when the addon was not built (`npm install` builds it where
// libturbojpeg's headers are, see native/README.md), failed to load (one log line), or is turned
// off with STAGEWARD_NATIVE_JPEG=0.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO_ROOT } from '../core/paths.ts';

export interface NativeJpeg {
  /** RGB uint8 HWC of `bytes`, at least minWidth x minHeight when the JPEG is (DCT-scaled down when it is at least twice that). */
  decode(bytes: Uint8Array, minWidth: number, minHeight: number): Promise<{ data: Buffer; width: number; height: number }>;
  library: string;
}

export const NATIVE_JPEG_ADDON = join(REPO_ROOT, 'native', 'jpeg', 'build', 'Release', 'stageward_jpeg.node');
/** Set to 0 (or off, false) to decode every JPEG with sharp. */
export const NATIVE_JPEG_ENV = 'STAGEWARD_NATIVE_JPEG';

let loaded: NativeJpeg | null | undefined;

/** Whether the environment turns the native decoder off. */
export function nativeJpegDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env[NATIVE_JPEG_ENV]?.trim().toLowerCase();
  return v === '0' || v === 'off' || v === 'false';
}

/** The native decoder, or null (not built, failed to load, or turned off); loaded once per process. */
export function nativeJpeg(log: (line: string) => void = (line) => console.error(line)): NativeJpeg | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (nativeJpegDisabled() || !existsSync(NATIVE_JPEG_ADDON)) return loaded;
  try {
    const addon = createRequire(import.meta.url)(NATIVE_JPEG_ADDON) as NativeJpeg;
    if (typeof addon.decode !== 'function') throw new Error('it exports no decode()');
    loaded = addon;
  } catch (err) {
    log(`stageward: the native JPEG decoder did not load (${(err as Error).message.split('\n')[0]}); decoding with sharp`);
  }
  return loaded;
}

/** Forget the loaded decoder (tests that flip STAGEWARD_NATIVE_JPEG). */
export function resetNativeJpeg(): void {
  loaded = undefined;
}
