// Parsing helpers shared by the CLI verbs: each turns a flag's text into a checked value or throws
// an error that names the flag.

import { InvalidArgumentError } from 'commander';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../models/runtime.ts';

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
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const p of list) {
    if (!EXECUTION_PROVIDERS.includes(p as ExecutionProvider)) throw new InvalidArgumentError(`unknown provider "${p}" (use ${EXECUTION_PROVIDERS.join(', ')})`);
  }
  if (list.length === 0) throw new InvalidArgumentError('name at least one provider');
  return list as ExecutionProvider[];
}
