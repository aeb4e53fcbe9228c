"""The exporter writes a complete, valid package atomically and reproducibly."""
import json

import pytest
import torch

from stageward_train import export as export_mod
from stageward_train.card import CARD_FIELDS, validate_card
from stageward_train.checkpoint import load_checkpoint, modules_from_checkpoint, save_checkpoint
from stageward_train.config import ModelConfig
from stageward_train.export import export_package, main, seeded_modules


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_package_has_every_card_field_and_its_graphs(tiny_cfg, tmp_path):
    out = export_package(tiny_cfg, seeded_modules(tiny_cfg, 0), tmp_path / "pkg",
                         provenance={"seed": 0}, metrics={"voc": 0.5})
    card = json.loads((out / "model.json").read_text())
    # every field, in order; the optional ones only when the config has them (the tiny config has instructions)
    assert list(card) == [k for k in CARD_FIELDS if k in card] and card["format"] == 1
    assert [k for k in CARD_FIELDS if k not in card] == ["missing_views"]
    assert card["graphs"] == {"encoder": "encoder.onnx", "sarm": "sarm.onnx", "grm": "grm.onnx"}
    for stages in card["stages"].values():
        assert abs(sum(s["prior"] for s in stages) - 1) < 1e-3
    assert card["metrics"] == {"voc": 0.5} and card["provenance"] == {"seed": 0}
    assert card["architecture"]["d_model"] == 32
    assert validate_card(card, out) == tiny_cfg
    assert sorted(p.name for p in out.iterdir()) == ["encoder.onnx", "grm.onnx", "model.json", "sarm.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]  # no temporary folders left


def test_package_without_grm_has_no_grm_graph(tiny_dict, tmp_path):
    tiny_dict["grm"] = {"present": False, "goal": "none"}
    cfg = ModelConfig.from_dict(tiny_dict)
    out = export_package(cfg, seeded_modules(cfg, 0), tmp_path / "pkg")
    assert not (out / "grm.onnx").exists()
    assert "grm" not in json.loads((out / "model.json").read_text())["graphs"]


def test_card_validation_names_missing_fields_and_graphs(tiny_cfg, tmp_path):
    out = export_package(tiny_cfg, seeded_modules(tiny_cfg, 0), tmp_path / "pkg")
    card = json.loads((out / "model.json").read_text())
    (out / "sarm.onnx").unlink()
    with pytest.raises(ValueError, match="graphs.sarm"):
        validate_card(card, out)
    del card["provenance"]
    with pytest.raises(ValueError, match="provenance"):
        validate_card(card)


def test_failed_export_leaves_the_existing_package_untouched(tiny_cfg, tmp_path, monkeypatch):
    target = tmp_path / "pkg"
    export_package(tiny_cfg, seeded_modules(tiny_cfg, 0), target)
    before = snapshot(target)
    with pytest.raises(ValueError, match="grm"):
        export_package(tiny_cfg, {k: v for k, v in seeded_modules(tiny_cfg, 1).items() if k != "grm"},
                       target)
    real_export = torch.onnx.export
    calls = []

    def failing_export(*args, **kwargs):  # the second graph fails half-way through the package
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(export_mod.torch.onnx, "export", failing_export)
    with pytest.raises(RuntimeError, match="disk full"):
        export_package(tiny_cfg, seeded_modules(tiny_cfg, 1), target)
    assert snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_export_replaces_an_existing_package(tiny_cfg, tmp_path):
    target = tmp_path / "pkg"
    export_package(tiny_cfg, seeded_modules(tiny_cfg, 0), target, metrics={"run": 1})
    export_package(tiny_cfg, seeded_modules(tiny_cfg, 1), target, metrics={"run": 2})
    assert json.loads((target / "model.json").read_text())["metrics"] == {"run": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_same_seed_gives_same_weights_and_outputs(tiny_cfg):
    a, b, c = (seeded_modules(tiny_cfg, s) for s in (7, 7, 8))
    for role in a:
        sa, sb, sc = a[role].state_dict(), b[role].state_dict(), c[role].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    pixels = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(a["encoder"].eval()(pixels), b["encoder"].eval()(pixels))


def test_cli_exports_random_weights_with_provenance(tiny_cfg, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_cfg.to_dict()))
    assert main(["--config", str(config), "--random-seed", "3", "--out", str(tmp_path / "pkg")]) == 0
    prov = json.loads((tmp_path / "pkg" / "model.json").read_text())["provenance"]
    assert prov["seed"] == 3 and prov["date"] and prov["code_revision"]
    assert "--random-seed 3" in prov["command"]


def test_cli_exports_a_checkpoint_with_its_weights(tiny_cfg, tmp_path):
    modules = seeded_modules(tiny_cfg, 5)
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, tiny_cfg, modules, provenance={"seed": 5, "data": "sim v1"},
                    metrics={"voc": 0.9})
    assert main(["--weights", str(ckpt), "--out", str(tmp_path / "pkg")]) == 0
    card = json.loads((tmp_path / "pkg" / "model.json").read_text())
    assert card["metrics"] == {"voc": 0.9} and card["provenance"]["data"] == "sim v1"
    assert len(card["provenance"]["weights"]["sha256"]) == 64
    loaded = modules_from_checkpoint(tiny_cfg, load_checkpoint(ckpt))
    for role in modules:
        sa, sb = modules[role].state_dict(), loaded[role].state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_checkpoint_with_other_stage_counts_is_refused(tiny_dict, tiny_cfg, tmp_path):
    tiny_dict["stages"]["stack_three"] = tiny_dict["stages"]["stack_three"][:5]
    tiny_dict["stages"]["stack_three"][-1]["prior"] = 0.44
    other = ModelConfig.from_dict(tiny_dict)  # K = 5, not 7
    ckpt = tmp_path / "ckpt.pt"
    save_checkpoint(ckpt, other, seeded_modules(other, 0))
    with pytest.raises(ValueError, match="^stages: the checkpoint was trained with"):
        modules_from_checkpoint(tiny_cfg, load_checkpoint(ckpt))
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_cfg.to_dict()))
    assert main(["--config", str(config), "--weights", str(ckpt), "--out", str(tmp_path / "pkg")]) == 2
    assert not (tmp_path / "pkg").exists()


def test_ensemble_package_says_how_its_uncertainty_is_made(tiny_dict, tmp_path):
    tiny_dict["architecture"]["ensemble"] = 3
    cfg = ModelConfig.from_dict(tiny_dict)
    out = export_package(cfg, seeded_modules(cfg, 0), tmp_path / "pkg", provenance={"seed": 0})
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["ensemble"] == 3
    assert "3 SARM members" in card["provenance"]["uncertainty"] and card["provenance"]["seed"] == 0
    one = ModelConfig.from_dict({**tiny_dict, "architecture": {**tiny_dict["architecture"], "ensemble": 1}})
    plain = export_package(one, seeded_modules(one, 0), tmp_path / "plain")
    assert "uncertainty" not in json.loads((plain / "model.json").read_text())["provenance"]
