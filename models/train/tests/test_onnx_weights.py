"""The ONNX initializer reader: an exported encoder reads back into a FrameEncoder bit for bit, each
bundled package's encoder loads into the encoder its card describes (the trainer's full CNN with
GroupNorm, or pick_place_fast's distilled separable one), and what cannot be placed is refused."""
import json
import shutil
import struct
import subprocess
import warnings

import numpy as np
import pytest
import torch

from stageward_train.config import ModelConfig
from stageward_train.export import _graph_specs, export_package, seeded_modules
from stageward_train.make_fixture import REPO_ROOT
from stageward_train.nets import FrameEncoder
from stageward_train.onnx_weights import encoder_state_dict, load_encoder, parse_tensor, read_initializers

ZOO = REPO_ROOT / "models" / "zoo"
DEFAULT_CONFIG = REPO_ROOT / "models" / "train" / "configs" / "default.json"
PACKAGES = ["pick_place", "pick_place_fast", "stack_three"]


def card_config(package):
    return ModelConfig.from_dict(json.loads((ZOO / package / "model.json").read_text()))


def randomise(module, seed):
    """Every parameter random (GroupNorm weights and biases too, which start as ones and zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return module


def pixels(cfg, n=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, cfg.image.height, cfg.image.width, 3), generator=gen, dtype=torch.uint8)


@pytest.mark.parametrize("trained_norms", [True, False], ids=["random-weights", "fresh-groupnorms"])
def test_an_exported_encoder_reads_back_exactly(tiny_cfg, tmp_path, trained_norms):
    # fresh GroupNorms (all ones / zeros) make the exporter share one constant through Identity nodes
    modules = seeded_modules(tiny_cfg, 0)
    if trained_norms:
        randomise(modules["encoder"], 1)
    pkg = export_package(tiny_cfg, modules, tmp_path / "pkg")
    torch.manual_seed(99)
    fresh = randomise(FrameEncoder(tiny_cfg), 2)
    want = modules["encoder"].state_dict()
    assert not torch.equal(fresh.state_dict()["convs.7.weight"], want["convs.7.weight"])
    load_encoder(pkg / "encoder.onnx", fresh)
    got = fresh.state_dict()
    assert list(got) == list(want)
    for key in want:
        assert torch.equal(got[key], want[key]), key
    x = pixels(tiny_cfg)
    modules["encoder"].eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), modules["encoder"](x))


def test_the_full_cnn_zoo_encoder_has_the_expected_initializers():
    assert card_config("stack_three").architecture == ModelConfig.from_dict(json.loads(DEFAULT_CONFIG.read_text())).architecture
    inits = read_initializers(ZOO / "stack_three" / "encoder.onnx")
    shapes = {k: list(v.shape) for k, v in inits.items()}
    assert shapes["convs.0.weight"] == [32, 3, 3, 3] and shapes["convs.0.bias"] == [32]
    assert shapes["convs.3.weight"] == [64, 32, 3, 3] and shapes["out.weight"] == [128, 384]
    assert shapes["log_temperature"] == [1] and shapes["grid"] == [36, 2] and shapes["mean"] == [1, 3, 1, 1]
    folded = [(k, s) for k, s in shapes.items() if k.startswith("onnx::")]
    assert [s for _, s in folded] == [[32, 1, 1]] * 2 + [[64, 1, 1]] * 4 + [[128, 1, 1]] * 2
    assert [k.split("_")[0] for k, _ in folded] == ["onnx::Mul", "onnx::Add"] * 4
    assert all(v.dtype == np.float32 for v in inits.values())


@pytest.mark.parametrize("package", PACKAGES)
def test_the_zoo_encoder_loads_into_its_cards_config_and_exports_back_the_same(tmp_path, package):
    cfg = card_config(package)
    enc = FrameEncoder(cfg)
    state = encoder_state_dict(ZOO / package / "encoder.onnx", enc)
    assert set(state) == set(enc.state_dict())  # no missing keys
    enc.load_state_dict(state, strict=True)
    enc.eval()
    # the loaded module exports to the very same initializers, in the same order: nothing misplaced
    args, inputs, outputs, axes = _graph_specs(cfg)["encoder"]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(enc, args, str(tmp_path / "again.onnx"), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    original = list(read_initializers(ZOO / package / "encoder.onnx").values())
    again = list(read_initializers(tmp_path / "again.onnx").values())
    assert len(again) == len(original)
    for a, b in zip(again, original):
        assert a.shape == b.shape and np.array_equal(a, b)
    with torch.no_grad():
        feats = enc(pixels(cfg))
    assert feats.shape == (4, cfg.feature_dim) and torch.isfinite(feats).all()


@pytest.mark.parametrize("package", PACKAGES)
def test_torch_with_the_zoo_weights_computes_what_onnx_runtime_does(tmp_path, package):
    """The loaded encoder against the package's own graph under ONNX Runtime (the server's runtime)."""
    assert shutil.which("node") is not None and (REPO_ROOT / "node_modules" / "onnxruntime-node").is_dir(), \
        "this check needs node and the repository's node_modules: run `npm ci` first"
    cfg = card_config(package)
    enc = FrameEncoder(cfg)
    load_encoder(ZOO / package / "encoder.onnx", enc)
    enc.eval()
    x = pixels(cfg, n=3, seed=7)
    (tmp_path / "in.bin").write_bytes(x.numpy().tobytes())
    script = (
        "const ort = require('onnxruntime-node'); const fs = require('fs'); const [m, i, o, n, h, w] = "
        "process.argv.slice(1); (async () => { const s = await ort.InferenceSession.create(m); "
        "const t = new ort.Tensor('uint8', new Uint8Array(fs.readFileSync(i)), [+n, +h, +w, 3]); "
        "const r = await s.run({pixels: t}); const f = r.features.data; "
        "fs.writeFileSync(o, Buffer.from(f.buffer, f.byteOffset, f.byteLength)); })()"
        ".catch(e => { console.error(e); process.exit(1); });")
    r = subprocess.run(["node", "-e", script, str(ZOO / package / "encoder.onnx"), str(tmp_path / "in.bin"),
                        str(tmp_path / "out.bin"), "3", str(cfg.image.height), str(cfg.image.width)],
                       cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ort_out = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype="<f4").reshape(3, cfg.feature_dim)
    with torch.no_grad():
        mine = enc(x).numpy()
    assert np.abs(mine - ort_out).max() < 1e-4
    assert np.abs(ort_out).max() > 1e-2  # real features, not zeros


def _key(number, wire):
    return bytes([number << 3 | wire])


def _varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def _delimited(number, payload):
    return _key(number, 2) + _varint(len(payload)) + payload


def test_tensors_without_raw_data_and_with_unpacked_dims():
    values = [1.5, -2.0, 0.25, 4.0, 8.0, -0.5]
    tensor = (_key(1, 0) + _varint(2) + _key(1, 0) + _varint(3)           # dims 2, 3 one by one
              + _key(2, 0) + _varint(1)                                    # float32
              + _delimited(4, struct.pack("<6f", *values))                 # packed float_data
              + _delimited(8, b"w"))
    name, arr = parse_tensor(tensor)
    assert name == "w" and arr.shape == (2, 3) and arr.dtype == np.float32
    assert arr.ravel().tolist() == values
    longs = (_delimited(1, _varint(3)) + _key(2, 0) + _varint(7)            # packed dims [3], int64
             + _delimited(7, _varint(5) + _varint(2 ** 64 - 1) + _varint(0)) + _delimited(8, b"shape"))
    name, arr = parse_tensor(longs)
    assert name == "shape" and arr.tolist() == [5, -1, 0] and arr.dtype == np.int64
    with pytest.raises(ValueError, match="dims \\[2, 3\\] need 6 values, it holds 5"):
        parse_tensor(_key(1, 0) + _varint(2) + _key(1, 0) + _varint(3) + _key(2, 0) + _varint(1)
                     + _delimited(4, struct.pack("<5f", *values[:5])) + _delimited(8, b"w"))


def test_what_cannot_be_placed_is_refused_by_name(tiny_dict, tiny_cfg, tmp_path):
    pkg = export_package(tiny_cfg, seeded_modules(tiny_cfg, 0), tmp_path / "pkg")
    tiny_dict["architecture"]["encoder_channels"] = [8, 16, 16, 24]
    other = FrameEncoder(ModelConfig.from_dict(tiny_dict))
    with pytest.raises(ValueError, match=r"convs\.9\.weight: convs\.9\.weight has shape \[32, 16, 3, 3\], "
                                         r"the encoder \[24, 16, 3, 3\]") as err:
        encoder_state_dict(pkg / "encoder.onnx", other)
    assert "convs.10.weight" in str(err.value)  # the folded GroupNorm weight is checked by shape too
    tiny_dict["architecture"]["encoder_channels"] = [8, 16, 16, 32]
    tiny_dict["architecture"]["encoder_norm"] = "none"
    with pytest.raises(ValueError, match="the encoder has 0 GroupNorm layer\\(s\\), the graph 4"):
        encoder_state_dict(pkg / "encoder.onnx", FrameEncoder(ModelConfig.from_dict(tiny_dict)))
    (tmp_path / "junk.onnx").write_bytes(b"\x3a\xff\xff\xff")
    with pytest.raises(ValueError, match="not an ONNX model"):
        read_initializers(tmp_path / "junk.onnx")
