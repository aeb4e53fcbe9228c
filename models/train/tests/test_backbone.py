"""architecture.backbone: a frozen torchvision model inside the frame encoder. The config reads and
refuses it by field; the backbone never trains (no gradients, BatchNorm statistics fixed even in train
mode) while the projection does; the exported encoder.onnx (BatchNorm folded) loads in the server's
loader and matches torch; pretrained weights come only from local files, with an error naming the file.
Random weights of the same architecture everywhere (no network here to fetch the real ones)."""
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from stageward_train.checkpoint import load_checkpoint, modules_from_checkpoint, save_checkpoint
from stageward_train.config import ModelConfig
from stageward_train.export import export_package, seeded_modules
from stageward_train.make_fixture import REPO_ROOT, TINY_CONFIG, compute_parity
from stageward_train.nets import BACKBONE_CUTS, WEIGHTS_ENV, FrameEncoder, build_modules

torchvision = pytest.importorskip("torchvision")
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 file


def backbone_dict(backbone="resnet18", weights="random"):
    data = copy.deepcopy(TINY_CONFIG)  # 64x64, 3 views, D 32
    data["architecture"].update(backbone=backbone, backbone_weights=weights)
    return data


def refusal(data) -> str:
    with pytest.raises(ValueError) as err:
        ModelConfig.from_dict(data)
    return str(err.value)


def scramble_batchnorm(module: nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial statistics and affine parameters (fresh ones are the identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """torch.hub.get_dir() is an empty folder and STAGEWARD_BACKBONE_WEIGHTS is unset."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)  # an earlier set_dir() beats TORCH_HOME
    assert Path(torch.hub.get_dir()) == tmp_path / "torch" / "hub"
    return tmp_path / "torch" / "hub"


def test_config_reads_writes_and_refuses_backbone_fields(tiny_dict):
    cfg = ModelConfig.from_dict(backbone_dict())
    assert (cfg.architecture.backbone, cfg.architecture.backbone_weights) == ("resnet18", "random")
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    arch = cfg.to_dict()["architecture"]
    assert (arch["backbone"], arch["backbone_weights"]) == ("resnet18", "random")
    given = backbone_dict()
    del given["architecture"]["backbone_weights"]
    assert ModelConfig.from_dict(given).architecture.backbone_weights == "pretrained"  # the default
    # the default "conv" is not written, so existing configs and cards read and write as before
    conv = ModelConfig.from_dict(tiny_dict)
    assert conv.architecture.backbone == "conv" and "backbone" not in conv.to_dict()["architecture"]
    explicit = backbone_dict("conv", "pretrained")
    assert ModelConfig.from_dict(explicit).to_dict() == tiny_dict
    for name in ("mobilenet_v3_small", "efficientnet_b0"):
        assert ModelConfig.from_dict(backbone_dict(name)).architecture.backbone == name
    assert refusal(backbone_dict("resnet50")).startswith("architecture.backbone: must be one of")
    assert refusal(backbone_dict(weights="imagenet")).startswith("architecture.backbone_weights: must be one of")
    assert refusal(backbone_dict("conv", "random")).startswith("architecture.backbone_weights: applies only")
    small = backbone_dict()
    small["image"] = {"height": 16, "width": 64, "resize": "stretch"}
    assert refusal(small).startswith("architecture.backbone: resnet18 is cut after a 16x downsampling")


def test_backbone_is_frozen_and_only_the_projection_trains():
    cfg = ModelConfig.from_dict(backbone_dict())
    torch.manual_seed(0)
    enc = FrameEncoder(cfg)
    scramble_batchnorm(enc.backbone, 1)
    assert all(not p.requires_grad for p in enc.backbone.parameters())
    assert all(p.requires_grad for n, p in enc.named_parameters() if not n.startswith("backbone."))
    enc.train()
    assert enc.training and not enc.backbone.training
    assert not any(m.training for m in enc.backbone.modules())
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    # all encoder parameters, frozen ones included, with weight decay: what train.py's phase 1 builds
    opt = torch.optim.AdamW(enc.parameters(), lr=1e-2, weight_decay=0.1)
    gen = torch.Generator().manual_seed(2)
    for _ in range(2):
        pixels = torch.randint(0, 256, (6, 64, 64, 3), dtype=torch.uint8, generator=gen)
        loss = enc(pixels).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = enc.state_dict()
    backbone_keys = [k for k in after if k.startswith("backbone.")]
    assert any(k.endswith("running_mean") for k in backbone_keys)  # BatchNorm statistics among them
    assert any(k.endswith("num_batches_tracked") for k in backbone_keys)
    for k in backbone_keys:
        assert torch.equal(after[k], before[k]), k
    for k in ("convs.0.weight", "out.weight", "log_temperature"):
        assert not torch.equal(after[k], before[k]), k
    assert all(p.grad is None for p in enc.backbone.parameters())


def test_exported_encoder_loads_in_the_server_and_matches_torch(tmp_path):
    assert shutil.which("node") is not None and (REPO_ROOT / "node_modules" / "tsx").is_dir(), \
        "the loader check needs node and the repository's node_modules: run `npm ci` first"
    cfg = ModelConfig.from_dict(backbone_dict())
    modules = seeded_modules(cfg, 0)
    scramble_batchnorm(modules["encoder"].backbone, 3)  # so folding BatchNorm into the convs matters
    out = export_package(cfg, modules, tmp_path / "pkg", provenance={"seed": 0})
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["backbone"] == "resnet18" and card["architecture"]["backbone_weights"] == "random"
    assert "resnet18 up to layer3, frozen" in card["provenance"]["backbone"]
    assert "random: untrained weights" in card["provenance"]["backbone"] and card["provenance"]["seed"] == 0
    assert b"BatchNormalization" not in (out / "encoder.onnx").read_bytes()  # folded in eval mode
    arrays = compute_parity(cfg, modules, np.random.default_rng(5))
    parity = tmp_path / "parity"
    parity.mkdir()
    for name, arr in arrays.items():
        np.save(parity / f"{name}.npy", np.ascontiguousarray(arr))
    assert np.abs(arrays["enc_features"]).max() > 1e-3  # features that a tolerance of 1e-4 can tell apart
    script = REPO_ROOT / "models" / "train" / "tests" / "check_package.ts"
    r = subprocess.run(["node", "--import", "tsx", str(script), str(out), str(parity)], cwd=str(REPO_ROOT),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    diffs = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("encoder", "stage_logits", "tau", "hop"):
        assert diffs[key] is not None and diffs[key] < 1e-4, (key, diffs)


def test_checkpoint_round_trip_keeps_the_backbone_weights(tmp_path):
    cfg = ModelConfig.from_dict(backbone_dict())
    modules = seeded_modules(cfg, 4)
    scramble_batchnorm(modules["encoder"].backbone, 5)
    save_checkpoint(tmp_path / "ckpt.pt", cfg, modules)
    loaded = modules_from_checkpoint(cfg, load_checkpoint(tmp_path / "ckpt.pt"))
    want, got = modules["encoder"].state_dict(), loaded["encoder"].state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert not any(p.requires_grad for p in loaded["encoder"].backbone.parameters())


def test_pretrained_without_the_weights_file_names_the_file_and_how_to_get_it(empty_hub):
    cfg = ModelConfig.from_dict(backbone_dict(weights="pretrained"))
    with pytest.raises(ValueError) as err:
        FrameEncoder(cfg)
    msg = str(err.value)
    assert msg.startswith("architecture.backbone_weights:")
    assert str(empty_hub / "checkpoints" / RESNET18_FILE) in msg
    assert "torchvision.models.resnet18(weights='IMAGENET1K_V1')" in msg and WEIGHTS_ENV in msg
    assert not (empty_hub / "checkpoints").exists()  # nothing was fetched or created
    # weights a checkpoint will replace need no file
    assert build_modules(cfg, load_backbone=False)["encoder"].backbone is not None


def test_pretrained_reads_the_hub_cache_or_the_file_the_env_var_names(empty_hub, tmp_path, monkeypatch):
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(weights=None)
    scramble_batchnorm(reference, 6)
    saved = tmp_path / "my-resnet18.pth"
    torch.save(reference.state_dict(), str(saved))
    want = BACKBONE_CUTS["resnet18"][2](reference).state_dict()
    cfg = ModelConfig.from_dict(backbone_dict(weights="pretrained"))

    def loaded_body():
        torch.manual_seed(0)
        enc = FrameEncoder(cfg)
        assert enc.backbone.source is not None
        return enc.backbone.body.state_dict()

    monkeypatch.setenv(WEIGHTS_ENV, str(saved))
    got = loaded_body()
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    torch.manual_seed(0)
    fresh = FrameEncoder(ModelConfig.from_dict(backbone_dict())).backbone.body.state_dict()
    assert not torch.equal(fresh["0.weight"], got["0.weight"])  # not the random init of the same seed
    monkeypatch.delenv(WEIGHTS_ENV)
    (empty_hub / "checkpoints").mkdir(parents=True)
    shutil.copy(saved, empty_hub / "checkpoints" / RESNET18_FILE)
    got = loaded_body()
    assert all(torch.equal(got[k], want[k]) for k in want)


def test_unusable_weights_files_and_a_missing_torchvision_are_refused(tmp_path, monkeypatch):
    cfg = ModelConfig.from_dict(backbone_dict(weights="pretrained"))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "absent.pth"))
    with pytest.raises(ValueError, match=f"looked for at {tmp_path / 'absent.pth'} \\(from \\${WEIGHTS_ENV}\\)"):
        FrameEncoder(cfg)
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "junk.pth"))
    with pytest.raises(ValueError, match="is not a readable state dict"):
        FrameEncoder(cfg)
    torch.save(nn.Linear(2, 2).state_dict(), str(tmp_path / "other.pth"))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "other.pth"))
    with pytest.raises(ValueError, match="does not hold resnet18's weights"):
        FrameEncoder(cfg)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    with pytest.raises(ValueError, match="install it \\(Debian: apt install python3-torchvision"):
        FrameEncoder(ModelConfig.from_dict(backbone_dict()))
