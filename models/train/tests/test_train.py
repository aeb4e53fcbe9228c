"""The trainer end to end on tiny synthetic bundles: it trains both phases, exports a package whose
card carries the bundles' priors, provenance and held-out metrics, the server's loader accepts it and
its ONNX graphs match torch; a run resumes from its checkpoint; bad bundles are refused by field."""
import copy
import hashlib
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
from stageward_train.export import export_package, seeded_modules
from stageward_train.make_fixture import REPO_ROOT, TINY_CONFIG, compute_parity
from stageward_train.phases import Settings
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


# ---- --from PACKAGE and --provenance FILE ---------------------------------------------------------

def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def trainer(*args):
    return train_mod.Trainer(train_mod.parse_args(list(args)), list(args))


EXTRA = {"datasets": [{"path": "/data/pp", "sha256": "ab" * 32}], "command": "stageward train --dataset /data/pp"}


def test_from_a_package_warm_starts_the_encoder_and_records_it(setup, trained, tmp_path):
    (tmp_path / "extra.json").write_text(json.dumps(EXTRA))
    out = tmp_path / "warm"
    t = trainer(*argv(setup, out, "--from", str(trained), "--provenance", str(tmp_path / "extra.json")))
    # the package's encoder is the one the first run trained and checkpointed, bit for bit
    final = load_checkpoint(setup / "work-pkg" / "final.pt")["encoder"]
    for key, value in t.modules["encoder"].state_dict().items():
        assert torch.equal(value, final[key]), key
    assert t.phase1_share == Settings().warm_phase1_share == Settings().phase1_share / 3
    assert t.run() == 0
    prov = json.loads((out / "model.json").read_text())["provenance"]
    assert prov["from"] == {"path": str(trained.resolve()), "sha256": sha256(trained / "encoder.onnx"),
                            "name": "tiny-trained", "version": TINY_CONFIG["version"],
                            "phase1_share": Settings().warm_phase1_share}
    assert {k: prov[k] for k in EXTRA} == EXTRA
    assert prov["commands"][0].startswith("python3 -m stageward_train.train --bundle")
    assert set(prov) - set(EXTRA) <= set(train_mod.OWN_PROVENANCE_KEYS)


def test_settings_choose_the_phase1_share_of_a_warm_start(setup, trained, tmp_path):
    def share(settings):
        (tmp_path / "s.json").write_text(json.dumps(settings))
        return trainer(*argv(setup, tmp_path / "o", "--from", str(trained), "--settings", str(tmp_path / "s.json"))) \
            .phase1_share
    assert share({}) == Settings().warm_phase1_share
    assert share({"warm_phase1_share": 0.1}) == 0.1
    assert share({"phase1_share": 0.5}) == 0.5  # an explicit phase1_share alone holds for warm starts too
    assert share({"phase1_share": 0.5, "warm_phase1_share": 0.2}) == 0.2
    assert trainer(*argv(setup, tmp_path / "o")).phase1_share == Settings().phase1_share


def test_a_warm_run_resumes_with_its_package_and_provenance(setup, trained, tmp_path):
    (tmp_path / "extra.json").write_text(json.dumps(EXTRA))
    out = tmp_path / "warm-resumed"
    first = trainer(*argv(setup, out, "--from", str(trained), "--provenance", str(tmp_path / "extra.json")))
    first.phase1()
    first.checkpoint()
    ckpt = first.work / "last.pt"
    again = trainer(*argv(setup, out, "--resume", str(ckpt)))  # neither flag again: both are kept
    assert again.state["from"] == first.state["from"] and again.phase1_share == Settings().warm_phase1_share
    assert {k: again.provenance()[k] for k in EXTRA} == EXTRA
    cfg = ModelConfig.from_dict(load_checkpoint(ckpt)["config"])
    other = export_package(cfg, seeded_modules(cfg, 5), tmp_path / "other")
    with pytest.raises(ValueError, match="started from another encoder"):
        trainer(*argv(setup, out, "--resume", str(ckpt), "--from", str(other)))
    with pytest.raises(ValueError, match="did not start from a package; resume it without --from"):
        trainer(*argv(setup, tmp_path / "x", "--resume", str(setup / "work-pkg" / "final.pt"), "--from", str(trained)))


def test_from_refuses_a_package_of_another_encoder_by_field(setup, tmp_path, capsys):
    base = json.loads((setup / "tiny.json").read_text())
    cases = {"feature_dim differs: the package has 16, the config 32": {"feature_dim": 16},
             "image.height differs: the package has 64, the config 32": {"image": {**base["image"], "height": 64}},
             "architecture.encoder_channels differs: the package has [8, 16, 32], the config [8, 16, 16, 32]":
                 {"architecture": {**base["architecture"], "encoder_channels": [8, 16, 32]}}}
    for i, (message, change) in enumerate(cases.items()):
        cfg = ModelConfig.from_dict({**base, **change})
        pkg = export_package(cfg, seeded_modules(cfg, 0), tmp_path / f"pkg{i}")
        assert train_mod.main(argv(setup, tmp_path / "o", "--from", str(pkg))) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"train: error: --from {pkg}: ") and message in err, err
    assert train_mod.main(argv(setup, tmp_path / "o", "--from", str(tmp_path / "nothing"))) == 2
    assert "no model package there" in capsys.readouterr().err


def test_from_accepts_other_views_and_task_names_and_other_heads(setup, trained):
    cfg = ModelConfig.from_dict(json.loads((setup / "tiny.json").read_text()))
    card = json.loads((trained / "model.json").read_text())
    card["views"] = ["cam_a", "cam_b"]  # another robot: other names, and one camera fewer
    card["tasks"] = ["other_task"]
    card["stages"] = {"other_task": [{"name": "only", "prior": 1.0}]}
    card.pop("instructions", None)
    card["architecture"] = {**card["architecture"], "d_model": 64, "layers": 3, "ensemble": 1}
    assert train_mod.check_warm_start(trained, card, cfg).views == ("cam_a", "cam_b")


def test_provenance_file_must_be_an_object_without_the_trainers_keys(setup, tmp_path, capsys):
    for content, message in [("[1, 2]", "must hold a JSON object, got list"),
                             ('{"datasets": [], "commands": []}', "key 'commands' is written by the trainer itself"),
                             ('{"from": {}}', "key 'from' is written by the trainer itself"),
                             ("{not json", "not JSON")]:
        (tmp_path / "p.json").write_text(content)
        assert train_mod.main(argv(setup, tmp_path / "o", "--provenance", str(tmp_path / "p.json"))) == 2
        err = capsys.readouterr().err
        assert f"train: error: --provenance {tmp_path / 'p.json'}: {message}" in err, err


def test_a_run_with_no_episode_held_out_exports_without_held_out_figures(setup, tmp_path):
    # a tiny dataset (round(0.15 * 3) = 0 per group) or --heldout-frac 0: nothing to measure on, no crash
    out = tmp_path / "all-train"
    args = argv(setup, out)
    args[args.index("--heldout-frac") + 1] = "0"
    assert train_mod.main(args) == 0
    metrics = json.loads((out / "model.json").read_text())["metrics"]
    assert metrics["split"]["heldout_episodes"] == 0 and metrics["split"]["train_episodes"] == 12
    assert "heldout_frame_head" not in metrics and metrics["heldout"] == {}


def test_phase1_grows_its_plan_when_epochs_run_faster_than_the_calibration():
    # calibrated at 1 s/step: 100 steps planned; after 50, epochs run at 0.25 s/step with 50 s to the deadline
    assert train_mod.grown_total(100, 50, 0.25, 50.0, 10_000) == 250
    assert train_mod.grown_total(100, 50, 0.25, 50.0, 120) == 120           # capped by the epoch limit
    assert train_mod.grown_total(100, 50, 0.9, 50.0, 10_000) is None        # 55 fit, 50 planned: within noise
    assert train_mod.grown_total(100, 50, 2.0, 50.0, 10_000) is None        # slower: never shorter here
    assert train_mod.grown_total(100, 100, 0.25, 0.0, 10_000) is None       # the deadline is reached
