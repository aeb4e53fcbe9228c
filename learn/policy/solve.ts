// The weighted least-squares solve that behaviour cloning (bc.ts) and the RL update (learn/rl/power.ts)
// share: the symmetric normal equations G x_k = r_k, one LU decomposition (mathjs) for all the
// right-hand sides. mathjs takes about a second to load, so it is loaded on the first solve rather
// than by every command that imports these modules for their options and defaults.

import { createRequire } from 'node:module';
import type * as MathJs from 'mathjs';

let mathjs: typeof MathJs | undefined;

function loadMathjs(): typeof MathJs {
  mathjs ??= createRequire(import.meta.url)('mathjs') as typeof MathJs;
  return mathjs;
}

/** The solutions x_k of `gram` x_k = `rhs[k]`, one per right-hand side (`gram` square and non-singular). */
export function solveNormalEquations(gram: number[][], rhs: readonly number[][]): number[][] {
  const { lup, lusolve, matrix } = loadMathjs();
  const lu = lup(matrix(gram));
  return rhs.map((r) => ((lusolve(lu, r) as MathJs.Matrix).toArray() as number[][]).map((row) => row[0]!));
}
