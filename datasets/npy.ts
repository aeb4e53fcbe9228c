// NumPy .npy files (format 1.0/2.0/3.0), read and written: the exchange format with the Python trainer
// (fixtures, training bundles). Little-endian, C order; the dtypes stageward uses only.

import { readFile } from 'node:fs/promises';

export type NpyDtype = 'uint8' | 'float32' | 'int64' | 'int32' | 'float64';

const DESCR: Record<NpyDtype, string> = {
  uint8: '|u1',
  float32: '<f4',
  int64: '<i8',
  int32: '<i4',
  float64: '<f8',
};

export type NpyData = Uint8Array | Float32Array | BigInt64Array | Int32Array | Float64Array;

export interface NpyArray<D extends NpyData = NpyData> {
  dtype: NpyDtype;
  shape: number[];
  data: D;
}

const MAGIC = '\x93NUMPY';

export function parseNpy(bytes: Uint8Array): NpyArray {
  const text = (a: number, b: number) => Buffer.from(bytes.subarray(a, b)).toString('latin1');
  if (text(0, 6) !== MAGIC) throw new Error('not a .npy file (bad magic)');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = text(start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new Error(`bad .npy header: ${header}`);
  if (fortran === 'True') throw new Error('.npy in Fortran order is not supported');
  const dtype = (Object.keys(DESCR) as NpyDtype[]).find((d) => DESCR[d] === descr);
  if (dtype === undefined) throw new Error(`unsupported .npy dtype ${descr}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  // Copy into a fresh, aligned buffer: the payload offset need not be a multiple of the element size.
  // (Uint8Array.prototype.slice copies; Buffer#slice would not.)
  const payload = Uint8Array.prototype.slice.call(bytes, offset, offset + count * elementBytes(dtype));
  if (payload.length !== count * elementBytes(dtype))
    throw new Error(`.npy payload is truncated: ${payload.length} bytes for shape [${shape.join(', ')}]`);
  return { dtype, shape, data: typed(dtype, payload.buffer) };
}

export function encodeNpy(arr: NpyArray): Uint8Array {
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[arr.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write(MAGIC, 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await readFile(path));
}

function elementBytes(dtype: NpyDtype): number {
  return dtype === 'uint8' ? 1 : dtype === 'float32' || dtype === 'int32' ? 4 : 8;
}

function typed(dtype: NpyDtype, buf: ArrayBuffer): NpyData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(buf);
    case 'float32':
      return new Float32Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'float64':
      return new Float64Array(buf);
  }
}
