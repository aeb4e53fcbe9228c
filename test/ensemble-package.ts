// A model package with the optional `uncertainty` output of sarm.onnx (models/PACKAGE.md), made from
// the tiny fixture without Python: sarm.onnx is edited at the protobuf wire level to add one node,
// `uncertainty = tau * tau` (finite, >= 0, one per window, different per row), and its graph output
// float32 [batch]. The numbers mean nothing; the package exercises the real ONNX Runtime path
// (in process, worker thread, batching) of an ensemble package's extra output, which the fixture
// made by models/train cannot do inside `npm test`.
//
//   const dir = await ensemblePackage();          // a temp folder; remove its parent when done
//   const model = await OnnxProgressModel.load(dir);

import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_MODEL_DIR } from '../core/paths.ts';

// Field numbers of onnx.proto3 (ModelProto.graph, GraphProto.node/output, NodeProto, ValueInfoProto, ...).
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const GRAPH_OUTPUT = 12;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP_TYPE = 4;
const VALUE_NAME = 1;
const VALUE_TYPE = 2;
const TYPE_TENSOR = 1;
const TENSOR_ELEM_TYPE = 1;
const TENSOR_SHAPE = 2;
const SHAPE_DIM = 1;
const DIM_PARAM = 2;
const FLOAT = 1;
const WIRE_VARINT = 0;
const WIRE_LEN = 2;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function readVarint(buf: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[at++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, at];
    scale *= 128;
  }
}

const key = (field: number, wire: number) => varint(field * 8 + wire);
const bytesField = (field: number, body: Uint8Array): Uint8Array =>
  Uint8Array.from([...key(field, WIRE_LEN), ...varint(body.length), ...body]);
const stringField = (field: number, s: string) => bytesField(field, new TextEncoder().encode(s));
const varintField = (field: number, n: number) => Uint8Array.from([...key(field, WIRE_VARINT), ...varint(n)]);
const join2 = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** The byte range of the (single) length-delimited field `field` of a message, body only. */
function findField(buf: Uint8Array, field: number): { keyAt: number; bodyAt: number; end: number } {
  let at = 0;
  while (at < buf.length) {
    const keyAt = at;
    const [k, afterKey] = readVarint(buf, at);
    const wire = k & 7;
    at = afterKey;
    if (wire === WIRE_VARINT) at = readVarint(buf, at)[1];
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === WIRE_LEN) {
      const [len, bodyAt] = readVarint(buf, at);
      if (Math.floor(k / 8) === field) return { keyAt, bodyAt, end: bodyAt + len };
      at = bodyAt + len;
    } else throw new Error(`unexpected protobuf wire type ${wire}`);
  }
  throw new Error(`protobuf field ${field} not found`);
}

/** sarm.onnx bytes with the `uncertainty` output added (repeated fields appended keep their order). */
export function withUncertaintyOutput(model: Uint8Array): Uint8Array {
  const g = findField(model, MODEL_GRAPH);
  const node = join2(
    stringField(NODE_INPUT, 'tau'),
    stringField(NODE_INPUT, 'tau'),
    stringField(NODE_OUTPUT, 'uncertainty'),
    stringField(NODE_NAME, 'test_uncertainty'),
    stringField(NODE_OP_TYPE, 'Mul'),
  );
  const shape = bytesField(SHAPE_DIM, stringField(DIM_PARAM, 'B'));
  const tensor = join2(varintField(TENSOR_ELEM_TYPE, FLOAT), bytesField(TENSOR_SHAPE, shape));
  const output = join2(stringField(VALUE_NAME, 'uncertainty'), bytesField(VALUE_TYPE, bytesField(TYPE_TENSOR, tensor)));
  const graph = join2(model.subarray(g.bodyAt, g.end), bytesField(GRAPH_NODE, node), bytesField(GRAPH_OUTPUT, output));
  return join2(model.subarray(0, g.keyAt), bytesField(MODEL_GRAPH, graph), model.subarray(g.end));
}

/** A temp copy of the fixture package whose sarm.onnx also outputs `uncertainty`; returns its folder. */
export async function ensemblePackage(): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'stageward-ensemble-')), 'model');
  await cp(FIXTURE_MODEL_DIR, dir, { recursive: true });
  const card = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as { architecture: Record<string, unknown> };
  card.architecture.ensemble = 2; // informational, as the trainer writes it; the loader reads the graph
  await writeFile(join(dir, 'model.json'), JSON.stringify(card));
  const sarm = join(dir, 'sarm.onnx');
  await writeFile(sarm, withUncertaintyOutput(await readFile(sarm)));
  return dir;
}
