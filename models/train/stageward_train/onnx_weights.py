"""Read the weights of an exported encoder.onnx back into a FrameEncoder, without the onnx package.

A small reader of the protobuf wire format, only as far as ONNX's initializers and nodes need it:

    ModelProto  7 graph (GraphProto)
    GraphProto  1 node (NodeProto), 5 initializer (TensorProto)
    NodeProto   1 input, 2 output (strings), 4 op_type
    TensorProto 1 dims (int64, packed or not), 2 data_type, 4 float_data (packed), 5 int32_data,
                7 int64_data, 8 name, 9 raw_data (little-endian), 10 double_data, 14 data_location

`read_initializers(path)` gives name -> numpy array. `encoder_state_dict(path, encoder)` maps them
onto the encoder's state_dict: parameters and buffers whose names survived the export by name; the
GroupNorm affine weight and bias, which constant folding turns into anonymous `onnx::Mul_*` /
`onnx::Add_*` tensors of shape [C, 1, 1], by the graph's order of GroupNorms, each one checked to
be the Mul -> Add pair that follows an InstanceNormalization (through its Reshape) and to have the
module's C channels. Constants the exporter shares (equal values, e.g. untrained GroupNorms) are
followed through their Identity nodes. Anything it cannot map unambiguously (a missing entry, another
shape, a buffer other than the config's, a weight initializer with no place in the module) is a
ValueError that names it.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

# TensorProto.DataType -> numpy dtype (little-endian, as raw_data is stored)
DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?", 10: "<f2",
          11: "<f8", 12: "<u4", 13: "<u8"}
# where a tensor's values live when raw_data is absent: field number and how they are packed
TYPED_FIELDS = {1: (4, "float"), 6: (5, "varint"), 7: (7, "varint"), 11: (10, "double"),
                2: (5, "varint"), 3: (5, "varint"), 4: (5, "varint"), 5: (5, "varint"), 9: (5, "varint"),
                10: (5, "varint")}
# how close a buffer (mean, std, grid) must be to the one the config builds
BUFFER_TOLERANCE = 1e-6
# problems named in one refusal (the rest are counted)
MAX_PROBLEMS = 8


class WireError(ValueError):
    """The bytes are not the protobuf message they should be."""


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[Tuple[int, int, object]]:
    """(field number, wire type, value) of one message: int for varint/fixed, bytes for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > end:
                raise WireError(f"field {number}: truncated 64-bit value")
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise WireError(f"field {number}: length {size} runs past the end of the message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            if pos + 4 > end:
                raise WireError(f"field {number}: truncated 32-bit value")
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise WireError(f"field {number}: unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(data: bytes) -> List[int]:
    out, pos = [], 0
    while pos < len(data):
        v, pos = _varint(data, pos)
        out.append(_signed(v))
    return out


def _bits_as(value: int, stored: str, wanted: str) -> float:
    return struct.unpack(wanted, struct.pack(stored, value))[0]


def parse_tensor(buf: bytes) -> Tuple[str, np.ndarray]:
    """(name, array) of one TensorProto."""
    dims: List[int] = []
    dtype, name, raw = 0, "", None
    values: Dict[int, list] = {}
    location = 0
    for number, wire, value in fields(buf):
        if number == 1:
            dims.extend(_packed_varints(value) if wire == 2 else [_signed(value)])
        elif number == 2:
            dtype = value
        elif number == 8:
            name = value.decode("utf-8")
        elif number == 9:
            raw = value
        elif number == 14:
            location = value
        elif number in (4, 5, 7, 10, 11):
            values.setdefault(number, []).append((wire, value))
    label = name or "<unnamed>"
    if location == 1:
        raise ValueError(f"initializer {label}: its data is stored outside the .onnx file (external data)")
    if dtype not in DTYPES:
        raise ValueError(f"initializer {label}: unsupported data_type {dtype}")
    if raw is not None:
        arr = np.frombuffer(raw, dtype=DTYPES[dtype])
    elif dtype not in TYPED_FIELDS:
        raise ValueError(f"initializer {label}: data_type {dtype} without raw_data is not supported")
    else:
        field, kind = TYPED_FIELDS[dtype]
        items: list = []
        for wire, value in values.get(field, []):
            if kind == "float":  # packed, or one fixed32 per value
                items.extend(np.frombuffer(value, "<f4") if wire == 2 else [_bits_as(value, "<I", "<f")])
            elif kind == "double":
                items.extend(np.frombuffer(value, "<f8") if wire == 2 else [_bits_as(value, "<Q", "<d")])
            else:
                items.extend(_packed_varints(value) if wire == 2 else [_signed(value)])
        if dtype == 10:  # float16 in int32_data holds the bit patterns
            arr = np.array(items, dtype="<u2").view("<f2")
        else:
            arr = np.array(items, dtype=DTYPES[dtype])
    count = int(np.prod(dims)) if dims else 1
    if arr.size != count:
        raise ValueError(f"initializer {label}: dims {dims} need {count} values, it holds {arr.size}")
    return name, arr.reshape(dims).astype(arr.dtype.newbyteorder("="))


def _graph(path: Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"{path}: cannot read: {err}") from None
    try:
        graphs = [v for n, w, v in fields(data) if n == 7 and w == 2]
    except WireError as err:
        raise ValueError(f"{path}: not an ONNX model ({err})") from None
    if len(graphs) != 1:
        raise ValueError(f"{path}: not an ONNX model (expected one graph, found {len(graphs)})")
    return graphs[0]


def _parse_graph(path: Path) -> Tuple[Dict[str, np.ndarray], List[Tuple[str, List[str], List[str]]]]:
    """(initializers by name in file order, nodes as (op_type, inputs, outputs) in graph order)."""
    inits: Dict[str, np.ndarray] = {}
    nodes = []
    try:
        for number, wire, value in fields(_graph(path)):
            if number == 5 and wire == 2:
                name, arr = parse_tensor(value)
                if not name:
                    raise ValueError(f"{path}: an initializer has no name")
                if name in inits:
                    raise ValueError(f"{path}: initializer {name} appears twice")
                inits[name] = arr
            elif number == 1 and wire == 2:
                op, ins, outs = "", [], []
                for n, w, v in fields(value):
                    if n == 1 and w == 2:
                        ins.append(v.decode("utf-8"))
                    elif n == 2 and w == 2:
                        outs.append(v.decode("utf-8"))
                    elif n == 4 and w == 2:
                        op = v.decode("utf-8")
                nodes.append((op, ins, outs))
    except WireError as err:
        raise ValueError(f"{path}: malformed ONNX graph ({err})") from None
    return inits, nodes


def read_initializers(path: Path) -> Dict[str, np.ndarray]:
    """Every initializer of the ONNX model at path: name -> array, in file order."""
    return _parse_graph(path)[0]


def _aliases(nodes: List[Tuple[str, List[str], List[str]]]) -> Dict[str, str]:
    """Output -> data input of the nodes that only rename or reshape a constant: Identity (torch's
    exporter keeps one copy of equal constants, e.g. untrained GroupNorm weights, and names the others
    through Identity nodes) and Unsqueeze (an export that does not fold [C] to [C, 1, 1])."""
    return {outs[0]: ins[0] for op, ins, outs in nodes
            if op in ("Identity", "Unsqueeze") and len(ins) >= 1 and len(outs) == 1}


def _resolve(name: str, inits: Mapping[str, np.ndarray], aliases: Mapping[str, str]) -> Optional[str]:
    """The initializer a tensor name stands for (through Identity nodes), or None."""
    seen = set()
    while name not in inits and name in aliases and name not in seen:
        seen.add(name)
        name = aliases[name]
    return name if name in inits else None


def _folded_group_norms(path: Path, inits: Mapping[str, np.ndarray],
                        nodes: List[Tuple[str, List[str], List[str]]],
                        aliases: Mapping[str, str]) -> List[Tuple[str, str]]:
    """(weight initializer, bias initializer) of each GroupNorm, in graph order.

    torch exports GroupNorm as InstanceNormalization over the groups, a Reshape back to [N, C, h, w],
    then Mul by weight [C, 1, 1] and Add of bias [C, 1, 1]; the pair is followed here through the node
    outputs, so an initializer shared between two nodes or renamed by the exporter is still found.
    `aliases` is _aliases(nodes)."""
    consumers: Dict[str, List[int]] = {}
    for i, (_, ins, _) in enumerate(nodes):
        for name in ins:
            consumers.setdefault(name, []).append(i)

    def only_next(output: str, op: str) -> Optional[int]:
        nxt = [j for j in consumers.get(output, []) if nodes[j][0] == op]
        return nxt[0] if len(consumers.get(output, [])) == 1 and len(nxt) == 1 else None

    pairs = []
    for i, (op, _, outs) in enumerate(nodes):
        if op != "InstanceNormalization":
            continue
        where = f"{path}: GroupNorm number {len(pairs) + 1} (InstanceNormalization node {i})"
        reshape = only_next(outs[0], "Reshape") if outs else None
        mul = only_next(nodes[reshape][2][0], "Mul") if reshape is not None else None
        add = only_next(nodes[mul][2][0], "Add") if mul is not None else None
        if add is None:
            raise ValueError(f"{where}: not followed by Reshape -> Mul -> Add, so its weight and bias "
                             "cannot be told apart")
        found = []
        for j, prev in ((mul, nodes[reshape][2][0]), (add, nodes[mul][2][0])):
            const = [_resolve(n, inits, aliases) for n in nodes[j][1] if n != prev]
            const = [n for n in const if n is not None]
            if len(const) != 1 or len(nodes[j][1]) != 2:
                raise ValueError(f"{where}: its {nodes[j][0]} has no single constant operand")
            found.append(const[0])
        pairs.append((found[0], found[1]))
    return pairs


def encoder_state_dict(path: Path, encoder: nn.Module) -> Dict[str, torch.Tensor]:
    """The state_dict of `encoder` (a nets.FrameEncoder) with every entry read from encoder.onnx at path.

    Raises ValueError naming every state_dict entry that has no initializer of its shape, or an
    initializer of another shape, and every buffer that differs from the encoder's own (mean, std
    and the keypoint grid follow from the config, so a difference means another architecture)."""
    inits, nodes = _parse_graph(Path(path))
    aliases = _aliases(nodes)
    own = encoder.state_dict()
    norms = [(name, m) for name, m in encoder.named_modules() if isinstance(m, nn.GroupNorm)]
    folded = _folded_group_norms(Path(path), inits, nodes, aliases)
    problems: List[str] = []
    if len(folded) != len(norms):
        problems.append(f"the encoder has {len(norms)} GroupNorm layer(s), the graph {len(folded)}")
    source: Dict[str, str] = {}
    norm_keys = {f"{m}.{x}" for m, _ in norms for x in ("weight", "bias")}
    for (module_name, _), (w_name, b_name) in zip(norms, folded):
        for suffix, init in (("weight", w_name), ("bias", b_name)):
            key = f"{module_name}.{suffix}"
            if key in inits or key in aliases:  # the exporter kept the name: it must be this very tensor
                if _resolve(key, inits, aliases) != init:
                    problems.append(f"{key}: the graph names it but uses {init} in that GroupNorm")
            source[key] = init
    for key in own:
        source.setdefault(key, key)
    params = {k for k, _ in encoder.named_parameters()}
    out: Dict[str, torch.Tensor] = {}
    for key, tensor in own.items():
        name = _resolve(source[key], inits, aliases)
        if name is None:
            problems.append(f"{key}: no initializer {source[key]}")
            continue
        source[key] = name
        arr = inits[name]
        if key in norm_keys and arr.shape == (tensor.numel(), 1, 1):  # folded: [C, 1, 1], the module [C]
            arr = arr.reshape(tensor.shape)
        if tuple(arr.shape) != tuple(tensor.shape):
            problems.append(f"{key}: {name} has shape {list(arr.shape)}, the encoder {list(tensor.shape)}")
            continue
        if np.dtype(arr.dtype) != np.dtype(str(tensor.dtype).replace("torch.", "")):
            problems.append(f"{key}: {name} is {arr.dtype}, the encoder {tensor.dtype}")
            continue
        value = torch.from_numpy(np.array(arr))
        if key not in params and not torch.allclose(value, tensor, rtol=0.0, atol=BUFFER_TOLERANCE):
            problems.append(f"{key}: the graph's constant differs from the one the config builds")
            continue
        out[key] = value
    # weights the encoder has no place for mean the package's encoder is another network: refuse
    # them too (scalars, shape constants and InstanceNormalization's own unit scale and zero bias are
    # part of how the graph computes, not weights)
    used = set(source.values())
    norm_consts = {_resolve(n, inits, aliases) for op, ins, _ in nodes if op == "InstanceNormalization"
                   for n in ins[1:]}
    extra = [n for n, a in inits.items() if n not in used and n not in norm_consts
             and a.dtype.kind == "f" and a.size > 1]
    if extra:
        problems.append("initializer(s) with no place in the encoder: "
                        + ", ".join(f"{n} {list(inits[n].shape)}" for n in extra))
    if problems:
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise ValueError(f"{path}: cannot map the weights onto the encoder: "
                         + "; ".join(problems[:MAX_PROBLEMS]) + more)
    return out


def load_encoder(path: Path, encoder: nn.Module) -> None:
    """Load encoder.onnx's weights into encoder in place (strict; see encoder_state_dict)."""
    encoder.load_state_dict(encoder_state_dict(path, encoder), strict=True)
