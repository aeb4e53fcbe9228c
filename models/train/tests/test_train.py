"""The trainer end to end on tiny synthetic bundles: it trains both phases, exports a package whose
card carries the bundles' priors, provenance and held-out metrics, the server's loader accepts it and
its ONNX graphs match torch; a run resumes from its checkpoint; bad bundles are refused by field."""
import copy
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from stageward_train import train as train_mod
from stageward_train.checkpoint import load_checkpoint, modules_from_checkpoint
from stageward_train.config import ModelConfig
from stageward_train.make_fixture import REPO_ROOT, TINY_CONFIG, compute_parity
from stageward_train.synthetic import write_bundle

PP_PRIORS = [("reach", 0.3), ("grasp", 0.1), ("lift", 0.1), ("carry", 0.3), ("place", 0.2)]
ST_STAGES = tuple((s["name"], s["prior"]) for s in TINY_CONFIG["stages"]["stack_three"])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    cfg = copy.deepcopy(TINY_CONFIG)
    cfg.update(name="tiny-trained", image={"height": 32, "width": 32, "resize": "stretch"})
    cfg["architecture"] = {**cfg["architecture"], "ensemble": 3}  # train and export the uncertainty output too
    (root / "tiny.json").write_text(json.dumps(cfg))
    write_bundle(root / "pp", PP_PRIORS, episodes=6, length=12, seed=0)
    write_bundle(root / "st", ST_STAGES, episodes=6, length=14, seed=1, task="stack the three cubes")
    return root


def argv(root, out, *extra):
    return ["--bundle", str(root / "pp"), "--bundle", str(root / "st"), "--config", str(root / "tiny.json"),
            "--out", str(out), "--work-dir", str(root / f"work-{out.name}"), "--time-budget-min", "0.5",
            "--heldout-frac", "0.34", "--epochs", "1", "--head-epochs", "1", "--threads", "1", *extra]


@pytest.fixture(scope="module")
def trained(setup):
    out = setup / "pkg"
    assert train_mod.main(argv(setup, out, "--eval-bundle", str(setup / "pp"))) == 0
    return out


def test_exports_a_package_with_bundle_priors_provenance_and_metrics(setup, trained):
    card = json.loads((trained / "model.json").read_text())
    assert card["name"] == "tiny-trained" and card["tasks"] == ["pick_place", "stack_three"]
    assert [(s["name"], round(s["prior"], 6)) for s in card["stages"]["pick_place"]] == PP_PRIORS
    prov = card["provenance"]
    assert prov["commands"][0].startswith("python3 -m stageward_train.train --bundle")
    assert prov["seeds"]["seed"] == 0 and prov["torch_version"] == torch.__version__
    assert prov["code_revision"] and prov["date"]
    assert [b["episodes"] for b in prov["bundles"]] == [6, 6]
    assert prov["bundles"][0]["source"]["path"] == "synthetic:0"
    m = card["metrics"]
    assert m["split"]["by"] == "episode" and m["split"]["train_episodes"] + m["split"]["heldout_episodes"] == 12
    assert m["split"]["heldout_failed_episodes"] >= 1
    for key in ("stage_accuracy", "progress_mae", "tau_mae", "grm_progress_mae"):
        assert 0 <= m["heldout"][key] <= 1, key
    assert m["heldout"]["frames"] == m["split"]["heldout_frames"]
    assert m["eval"]["pp"]["episodes"] == 6
    assert m["training"]["phase1_steps"] >= 8 and m["training"]["phase2_steps"] >= 8
    log = [json.loads(line) for line in (setup / "work-pkg" / "log.jsonl").read_text().splitlines()]
    epochs = [r for r in log if r.get("event") == "epoch"]
    assert {r["phase"] for r in epochs} == {1, 2} and all("heldout" in r for r in epochs)


def test_untrained_tasks_are_dropped_from_the_card(setup, tmp_path):
    out = tmp_path / "pp-only"
    args = argv(setup, out)
    args[args.index("--bundle") + 2: args.index("--bundle") + 4] = []  # only the pick_place bundle
    args[args.index("--epochs") + 1] = "1"
    assert train_mod.main(args) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["tasks"] == ["pick_place"] and list(card["stages"]) == ["pick_place"]


def test_the_server_loads_it_and_onnx_matches_torch(setup, trained):
    assert shutil.which("node") is not None and (REPO_ROOT / "node_modules" / "tsx").is_dir(), \
        "the loader check needs node and the repository's node_modules: run `npm ci` first"
    data = load_checkpoint(setup / "work-pkg" / "final.pt")
    cfg = ModelConfig.from_dict(data["config"])
    modules = modules_from_checkpoint(cfg, data)
    arrays = compute_parity(cfg, modules, np.random.default_rng(5))
    parity = setup / "parity"
    parity.mkdir(exist_ok=True)
    for name, arr in arrays.items():
        np.save(parity / f"{name}.npy", np.ascontiguousarray(arr))
    script = REPO_ROOT / "models" / "train" / "tests" / "check_package.ts"
    r = subprocess.run(["node", "--import", "tsx", str(script), str(trained), str(parity)], cwd=str(REPO_ROOT),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    diffs = json.loads(r.stdout.strip().splitlines()[-1])
    assert diffs["name"] == "tiny-trained"
    for key in ("encoder", "stage_logits", "tau", "hop", "uncertainty"):
        assert diffs[key] is not None and diffs[key] < 1e-4, (key, diffs)


def test_resume_continues_from_the_checkpoint(setup, tmp_path):
    out = tmp_path / "resumed"
    first = train_mod.Trainer(train_mod.parse_args(argv(setup, out)), argv(setup, out))
    first.phase1()
    first.checkpoint()
    ckpt = first.work / "last.pt"
    weights = {k: v.clone() for k, v in first.modules["encoder"].state_dict().items()}
    again = argv(setup, out, "--resume", str(ckpt))
    second = train_mod.Trainer(train_mod.parse_args(again), again)
    assert second.state["step"] == first.state["step"] > 0 and second.state["phase"] == 1
    assert len(second.state["commands"]) == 2 and "--resume" in second.state["commands"][1]
    for k, v in second.modules["encoder"].state_dict().items():
        assert torch.equal(v, weights[k]), k
    assert second.optimizer is not None and len(second.optimizer.state) > 0
    assert second.rng.bit_generator.state == first.rng.bit_generator.state
    assert second.run() == 0
    card = json.loads((out / "model.json").read_text())
    assert len(card["provenance"]["commands"]) == 2


def test_resume_refuses_another_split(setup, tmp_path, trained):
    args = argv(setup, tmp_path / "x", "--resume", str(setup / "work-pkg" / "final.pt"), "--seed", "3")
    assert train_mod.main(args) == 2


def test_bundles_that_do_not_fit_are_refused_by_field(setup, tmp_path, capsys):
    odd = write_bundle(tmp_path / "odd", [("a", 0.5), ("b", 0.5)], episodes=2, length=6)
    base = ["--config", str(setup / "tiny.json"), "--out", str(tmp_path / "o"), "--work-dir", str(tmp_path / "w")]
    assert train_mod.main(["--bundle", str(odd), *base]) == 2
    assert "name the task with --task" in capsys.readouterr().err
    assert train_mod.main(["--bundle", str(odd), "--task", "pick_place", *base]) == 2
    assert "differ from the config's stages" in capsys.readouterr().err
    big = write_bundle(tmp_path / "big", PP_PRIORS, episodes=2, length=6, size=40)
    assert train_mod.main(["--bundle", str(big), *base]) == 2
    assert "re-export with --size" in capsys.readouterr().err
