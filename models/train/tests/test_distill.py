"""`stageward_train.distill`: the student package keeps the teacher's heads byte for byte, its card
names the separable encoder and the held-out figures, training brings the student's features toward
the teacher's, its encoder.onnx reads back into torch (so `train --from` works on it), and what cannot
be distilled is refused by name."""
import copy
import json

import numpy as np
import pytest
import torch

from stageward_train import distill
from stageward_train.config import ModelConfig
from stageward_train.export import export_package, seeded_modules
from stageward_train.make_fixture import TINY_CONFIG
from stageward_train.nets import FrameEncoder
from stageward_train.onnx_weights import load_encoder
from stageward_train.synthetic import write_bundle


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    cfg_dict = copy.deepcopy(TINY_CONFIG)
    cfg_dict.update(name="tiny-teacher", image={"height": 32, "width": 32, "resize": "stretch"})
    cfg = ModelConfig.from_dict(cfg_dict)
    export_package(cfg, seeded_modules(cfg, 3), root / "teacher")
    write_bundle(root / "pp", episodes=6, length=12, seed=0)
    return root


def run(root, out, steps):
    argv = ["--teacher", str(root / "teacher"), "--bundle", str(root / "pp"), "--out", str(out),
            "--max-steps", str(steps), "--batch", "16", "--heldout-frac", "0.34", "--threads", "1", "--lr", "3e-3"]
    assert distill.main(argv) == 0
    return json.loads((out / "model.json").read_text())


@pytest.fixture(scope="module")
def distilled(setup):
    return run(setup, setup / "student", 150), setup / "student"


def test_the_student_keeps_the_teachers_heads_and_says_what_it_is(setup, distilled):
    card, out = distilled
    teacher = json.loads((setup / "teacher" / "model.json").read_text())
    for name in ("sarm.onnx", "grm.onnx"):
        assert (out / name).read_bytes() == (setup / "teacher" / name).read_bytes()
    assert (out / "encoder.onnx").read_bytes() != (setup / "teacher" / "encoder.onnx").read_bytes()
    assert card["architecture"]["encoder_block"] == "separable"
    assert card["architecture"]["encoder_norm"] == "none"
    assert card["version"] == teacher["version"] + "-distilled"
    for key in ("views", "image", "feature_dim", "window", "tasks", "stages", "grm"):
        assert card[key] == teacher[key], key
    prov = card["provenance"]
    assert prov["teacher"]["name"] == "tiny-teacher" and len(prov["teacher"]["encoder_sha256"]) == 64
    assert prov["commands"][0].startswith("python3 -m stageward_train.distill --teacher")
    m = card["metrics"]["distillation"]
    assert m["steps"] == 150 and m["heldout_images"] > 0 and m["train_images"] > m["heldout_images"]


def test_training_brings_the_students_features_to_the_teachers(setup, distilled):
    untrained = run(setup, setup / "untrained", 1)["metrics"]["distillation"]
    trained = distilled[0]["metrics"]["distillation"]
    assert trained["nmse"] < 0.6 * untrained["nmse"], (trained, untrained)
    assert trained["nmse_augmented"] < untrained["nmse_augmented"]
    assert trained["cosine"] > untrained["cosine"]


def test_the_students_encoder_reads_back_into_torch(distilled):
    card, out = distilled
    cfg = ModelConfig.from_dict(card)
    enc = FrameEncoder(cfg)
    load_encoder(out / "encoder.onnx", enc)
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 8, 1, 16, 1, 16, 1]  # depthwise then 1x1 after the first
    assert not any(isinstance(m, torch.nn.GroupNorm) for m in enc.modules())
    enc.eval()
    with torch.no_grad():
        out_a = enc(torch.zeros(2, 32, 32, 3, dtype=torch.uint8))
    assert torch.isfinite(out_a).all() and out_a.shape == (2, 32)


def test_what_cannot_be_distilled_is_refused(setup, tmp_path, capsys):
    base = ["--teacher", str(setup / "teacher"), "--bundle", str(setup / "pp"), "--out", str(tmp_path / "x"),
            "--max-steps", "1", "--batch", "16", "--threads", "1"]
    assert distill.main(base[:1] + [str(tmp_path / "nothing")] + base[2:]) == 2
    assert "--teacher" in (err := capsys.readouterr().err) and "no model package there" in err
    assert distill.main(base + ["--channels", "8,x"]) == 2
    assert "--channels" in capsys.readouterr().err
    assert distill.main(base + ["--batch", "4096"]) == 2
    assert "fewer than one batch" in capsys.readouterr().err
    write_bundle(tmp_path / "one", episodes=1, length=12, seed=2)
    assert distill.main(base[:3] + [str(tmp_path / "one")] + base[4:]) == 2
    assert "none can be held out" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
