// Parsing helpers shared by the CLI verbs: each turns a flag's text into a checked value or throws
// an error that names the flag.

import { InvalidArgumentError } from 'commander';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../models/runtime.ts';
import { viewOfKey } from '../datasets/format.ts';
import { checkSmoothing, type SmoothingOption } from '../models/engine.ts';

export function intOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer in [${min}, ${max}]`);
    return n;
  };
}

export function numberOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`must be a number in [${min}, ${max}]`);
    return n;
  };
}

export function choiceOption<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!choices.includes(value as T)) throw new InvalidArgumentError(`must be one of ${choices.join(', ')}`);
    return value as T;
  };
}

/** `--provider webgpu,cpu` -> ['webgpu', 'cpu'] */
export function providersOption(value: string): ExecutionProvider[] {
  const list = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of list) {
    if (!EXECUTION_PROVIDERS.includes(p as ExecutionProvider))
      throw new InvalidArgumentError(`unknown provider "${p}" (use ${EXECUTION_PROVIDERS.join(', ')})`);
  }
  if (list.length === 0) throw new InvalidArgumentError('name at least one provider');
  return list as ExecutionProvider[];
}

/** `0-9,12` -> [0..9, 12] */
export function episodeListOption(value: string): number[] {
  const out = new Set<number>();
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`"${part}" is not N or N-M`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new InvalidArgumentError(`"${part}" ends before it starts`);
    if (b - a > 1_000_000) throw new InvalidArgumentError(`"${part}" is too long a range`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  if (out.size === 0) throw new InvalidArgumentError('name at least one episode');
  return [...out].sort((x, y) => x - y);
}

/** `front=observation.images.top,wrist=hand` (repeatable) -> {front: 'top', wrist: 'hand'} */
export function viewMapOption(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const out = { ...(previous ?? {}) };
  for (const part of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^([^=]+)=(.+)$/.exec(part);
    if (!m) throw new InvalidArgumentError(`"${part}" is not MODEL_VIEW=DATASET_VIEW`);
    const datasetView = m[2]!.trim();
    out[m[1]!.trim()] = viewOfKey(datasetView);
  }
  return out;
}

/** A repeatable flag (`--bundle a --bundle b`): the values in order. */
export function repeatOption(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** `--smoothing none | ema | ema:ALPHA | ema:ALPHA,U0` -> the engine's smoothing option, checked by the engine's rule. */
export function smoothingOption(value: string): SmoothingOption {
  const m = /^(none|ema)(?::([^,]+)(?:,(.+))?)?$/.exec(value.trim());
  if (!m || (m[1] === 'none' && m[2] !== undefined)) throw new InvalidArgumentError('must be none, ema, ema:ALPHA or ema:ALPHA,U0');
  if (m[1] === 'none') return { kind: 'none' };
  const option: SmoothingOption = { kind: 'ema' };
  if (m[2] !== undefined) option.alpha = Number(m[2]);
  if (m[3] !== undefined) option.u0 = Number(m[3]);
  try {
    checkSmoothing(option);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/`/g, ''));
  }
  return option;
}
