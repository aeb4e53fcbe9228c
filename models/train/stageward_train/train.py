"""Train a reward model from training bundles and export it as a model package (models/PACKAGE.md).

Usage (from models/train; `stageward train` calls this):
    python3 -m stageward_train.train --bundle /data/bundles/pp-train-mixed [--bundle ...] \
        --config configs/default.json --out ../zoo/pick_place [--task pick_place] [--seed 0] \
        [--time-budget-min 30] [--heldout-frac 0.15] [--epochs N] [--head-epochs N] \
        [--eval-bundle /data/bundles/pp-heldout-rand ...] [--work-dir DIR] [--resume DIR/last.pt] \
        [--from ../zoo/pick_place] [--provenance extra.json]

Design (2-core CPU, whole run inside --time-budget-min):
  split     held-out episodes per (bundle, success), seeded; the card reports the sizes
  phase 1   encoder + temporary per-frame head on single augmented frames (stage CE + tau MSE);
            steps planned from the measured step time to fill its share of the budget
  cache     encoder frozen; every frame encoded once per feature copy (clean + augmented episodes)
  phase 2   SARM head (causal windows, rewind, stage teacher forcing) and GRM head (stratified
            pairs, step-wise hop targets) on cached features, epochs until the budget
  export    held-out metrics, then export_package: card with dataset priors, provenance, metrics
A checkpoint (`<work-dir>/last.pt`: weights, optimiser, RNG states, plan, elapsed time) is written
after every epoch; --resume continues from one with the same bundles, config and seed. Untrained
tasks are dropped from the exported card unless --keep-all-tasks.

--from PACKAGE warm-starts the frame encoder from that package's encoder.onnx (same image size, view
count, feature_dim and encoder architecture; view and task names may differ) and gives phase 1 the
smaller Settings.warm_phase1_share; the SARM and GRM heads always train fresh. --provenance FILE adds
a JSON object's keys to the card's provenance (never replacing the trainer's own).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .augment import AugmentSpec
from .checkpoint import check_same_networks
from .config import ModelConfig
from .data import Corpus, build_corpus, merged_priors, open_bundle, split_episodes
from .evaluate import evaluate
from .export import code_revision, export_package, file_sha256
from .fastlinear import linear_as_conv
from .nets import build_modules
from .onnx_weights import load_encoder
from .phases import (FrameHead, Settings, encode_corpus, frame_head_metrics, grm_loss, lr_factor,
                     phase1_loss, sarm_loss)
from .sampling import PairSampler
from .train_state import Clock, load_state, save_state

CALIBRATION_STEPS = 8
TRAINER_DIR = Path(__file__).resolve().parents[1]
# The card's provenance keys that the trainer (and export_package) write; --provenance may not use them.
OWN_PROVENANCE_KEYS = ("weights", "commands", "seeds", "code_revision", "code_dirty", "date", "bundles",
                       "eval_bundles", "torch_version", "numpy_version", "python_version", "threads",
                       "settings", "augmentation", "time_budget_min", "from", "uncertainty", "backbone")
# Architecture fields of the SARM / GRM heads: a warm start (--from) may differ in these, never in the rest.
HEAD_FIELDS = ("d_model", "layers", "heads", "mlp_ratio", "grm_hidden", "dropout", "ensemble")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m stageward_train.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", action="append", required=True, type=Path, help="training bundle (repeat)")
    p.add_argument("--config", type=Path, default=TRAINER_DIR / "configs" / "default.json")
    p.add_argument("--out", type=Path, required=True, help="model package folder to (re)write")
    p.add_argument("--task", action="append", help="config task of the bundles: once for all, or once "
                   "per --bundle in order (default: the task with the bundle's stage names)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="phase-1 (encoder) epochs at most (default: fill the budget)")
    p.add_argument("--head-epochs", type=int, help="phase-2 (SARM/GRM heads) epochs at most")
    p.add_argument("--time-budget-min", type=float, default=30.0, help="whole run, resumed parts included")
    p.add_argument("--heldout-frac", type=float, default=0.15, help="episodes held out, per bundle")
    p.add_argument("--eval-bundle", action="append", default=[], type=Path,
                   help="extra bundle evaluated at the end only (repeat), e.g. a randomised held-out set")
    p.add_argument("--work-dir", type=Path, help="checkpoints and logs (default: models/train/runs/<out name>)")
    p.add_argument("--resume", type=Path, help="checkpoint to continue from")
    p.add_argument("--name", help="model name in the card (default: the config's)")
    p.add_argument("--version", help="model version in the card (default: the config's)")
    p.add_argument("--keep-all-tasks", action="store_true", help="keep the config's untrained tasks")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: every CPU this process may use)")
    p.add_argument("--settings", type=Path, help="JSON object overriding training settings (phases.Settings)")
    p.add_argument("--from", dest="from_package", type=Path, metavar="PACKAGE",
                   help="warm-start the image encoder from this model package's encoder.onnx (e.g. ../zoo/pick_place); "
                        "it needs the config's image size, view count, feature_dim and encoder architecture "
                        "(view and task names may differ). Only the encoder is read: the SARM and GRM heads "
                        "train fresh (their ONNX graphs hold folded, transposed weights). Phase 1 then gets "
                        "Settings.warm_phase1_share of the time instead of phase1_share, unless --settings "
                        "sets phase1_share alone")
    p.add_argument("--provenance", type=Path, metavar="FILE",
                   help="JSON object whose keys are added to the card's provenance (e.g. datasets, their hashes, "
                        "the command that ran this); a key the trainer writes itself is refused")
    args = p.parse_args(argv)
    if args.task and len(args.task) not in (1, len(args.bundle)):
        p.error(f"--task: give it once, or once per --bundle ({len(args.bundle)}), not {len(args.task)} times")
    if not 0 <= args.heldout_frac < 1:
        p.error("--heldout-frac: must be in [0, 1)")
    if args.time_budget_min <= 0:
        p.error("--time-budget-min: must be positive")
    return args


def say(log: Optional[Path], message: str, record: Optional[Dict[str, Any]] = None) -> None:
    print(message, flush=True)
    if log is not None and record is not None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def fmt_s(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def effective_config(full: ModelConfig, priors: Dict[str, List[float]], keep_all: bool,
                     name: Optional[str], version: Optional[str]) -> ModelConfig:
    """The trained model's config: the bundles' priors for trained tasks; untrained tasks dropped."""
    d = full.to_dict()
    d["tasks"] = [t for t in full.tasks if keep_all or t in priors]
    if "instructions" in d:
        d["instructions"] = {t: v for t, v in d["instructions"].items() if t in d["tasks"]}
    d["stages"] = {t: [{"name": s["name"], "prior": priors[t][i] if t in priors else s["prior"]}
                       for i, s in enumerate(d["stages"][t])] for t in d["tasks"]}
    if name:
        d["name"] = name
    if version:
        d["version"] = version
    return ModelConfig.from_dict(d)


def load_bundles(args: argparse.Namespace, full: ModelConfig):
    tasks = args.task or [None]
    tasks = tasks * len(args.bundle) if len(tasks) == 1 else tasks
    first = [open_bundle(b, full, t) for b, t in zip(args.bundle, tasks)]
    names = [full.tasks[b.task] for b in first]
    priors = {n: merged_priors(first, full.tasks.index(n)) for n in sorted(set(names))}
    cfg = effective_config(full, priors, args.keep_all_tasks, args.name, args.version)
    return cfg, [open_bundle(b, cfg, n) for b, n in zip(args.bundle, names)]


def bundle_provenance(bundles) -> List[Dict[str, Any]]:
    return [{"path": str(b.path), "task": b.header["task"], "stages_from": b.header.get("priors_source"),
             "episodes": len(b.header["episodes"]), "frames": int(b.header["frames"]),
             "successful": int(sum(1 for e in b.header["episodes"] if e["success"] is not False)),
             "source": b.header.get("source", {})} for b in bundles]


def goal_frames(corpus: Corpus, train_eps: np.ndarray) -> Dict[int, int]:
    """Per task, the goal image used in evaluation: the last frame of its first successful training episode."""
    goals = {}
    for e in train_eps:
        task = int(corpus.ep_task[e])
        if task not in goals and corpus.ep_success[e]:
            goals[task] = int(corpus.ep_offset[e] + corpus.ep_length[e] - 1)
    for e in train_eps:  # a task with no success: its first episode's last frame
        goals.setdefault(int(corpus.ep_task[e]), int(corpus.ep_offset[e] + corpus.ep_length[e] - 1))
    return goals


def read_package(package: Path, flag: str = "--from") -> Tuple[Dict[str, Any], Path]:
    """(card, path of its encoder graph) of a model package folder; errors name `flag`."""
    card_path = package / "model.json"
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"{flag} {package}: no model package there ({err.strerror}: {card_path})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag} {card_path}: not JSON ({err})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{flag} {card_path}: must hold a JSON object")
    graphs = card.get("graphs")
    name = graphs.get("encoder") if isinstance(graphs, dict) else None
    encoder = package / (name if isinstance(name, str) and name else "encoder.onnx")
    if not encoder.is_file():
        raise ValueError(f"{flag} {package}: the package has no encoder graph {encoder.name}")
    return card, encoder


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def check_warm_start(package: Path, card: Dict[str, Any], cfg: ModelConfig) -> ModelConfig:
    """The package's config; refuses one whose encoder cannot be the config's (naming the field)."""
    try:
        theirs = ModelConfig.from_dict(card)
    except ValueError as err:
        raise ValueError(f"--from {package / 'model.json'}: {err}") from None
    # Views may differ in names and in number: the encoder sees one image at a time, and the heads
    # that join the views train fresh.
    pairs = [("image.height", theirs.image.height, cfg.image.height),
             ("image.width", theirs.image.width, cfg.image.width),
             ("feature_dim", theirs.feature_dim, cfg.feature_dim)]
    mine_arch, their_arch = asdict(cfg.architecture), asdict(theirs.architecture)
    pairs += [(f"architecture.{k}", their_arch.get(k), v) for k, v in mine_arch.items() if k not in HEAD_FIELDS]
    for field, package_value, config_value in pairs:
        if package_value != config_value:
            raise ValueError(f"--from {package}: {field} differs: the package has {_plain(package_value)!r}, "
                             f"the config {_plain(config_value)!r}")
    backbone = getattr(cfg.architecture, "backbone", "conv")
    if backbone != "conv":
        raise ValueError(f"--from {package}: architecture.backbone {backbone!r}: only the small CNN encoder "
                         f"(\"conv\") can be warm-started; encoder.onnx holds a torchvision backbone with its "
                         f"BatchNorm folded into the convolutions, which cannot be read back into the module")
    return theirs


def code_dirty() -> Optional[bool]:
    """Whether tracked files differ from the code revision (None when git cannot tell)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=str(TRAINER_DIR),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def plan_steps(full_epoch: int, seconds: float, sec_per_step: float, max_epochs: int,
               minimum: int = CALIBRATION_STEPS) -> Dict[str, int]:
    """Steps that fit `seconds` (at least `minimum`, the calibration), cut into epochs near full passes."""
    total = max(minimum, min(max_epochs * full_epoch, int(seconds / max(sec_per_step, 1e-6))))
    epochs = max(1, int(round(total / full_epoch)), min(3, total // 20))
    per_epoch = max(math.ceil(total / epochs), min(total, minimum))  # the first epoch holds the calibration
    return {"total": total, "epochs": math.ceil(total / per_epoch), "steps_per_epoch": per_epoch}


def read_extra_provenance(path: Path) -> Dict[str, Any]:
    """--provenance FILE: a JSON object none of whose keys the trainer writes itself."""
    try:
        extra = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"--provenance {path}: not JSON ({err})") from None
    if not isinstance(extra, dict):
        raise ValueError(f"--provenance {path}: must hold a JSON object, got {type(extra).__name__}")
    taken = [k for k in extra if k in OWN_PROVENANCE_KEYS]
    if taken:
        raise ValueError(f"--provenance {path}: key '{taken[0]}' is written by the trainer itself "
                         f"(reserved: {list(OWN_PROVENANCE_KEYS)})")
    return extra


def grown_total(total: int, step: int, sec_per_step: float, seconds_left: float, max_total: int,
                min_gain: float = 1.25) -> Optional[int]:
    """Phase 1's step total re-planned upward at an epoch's end: the steps still planned plus those that
    fit the seconds left to its deadline at the epoch's measured speed, capped; None unless that is at
    least `min_gain` times the steps still planned (re-planning never shortens phase 1)."""
    planned_left = max(0, total - step)
    fits = int(max(0.0, seconds_left) / max(sec_per_step, 1e-6))
    if fits < max(1, min_gain * planned_left):
        return None
    grown = min(max_total, step + fits)
    return grown if grown > total else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        return Trainer(args, argv).run()
    except (ValueError, OSError) as err:
        print(f"train: error: {err}", file=sys.stderr)
        return 2


class Trainer:
    def __init__(self, args: argparse.Namespace, argv: Sequence[str]):
        self.args = args
        self.command = shlex.join(["python3", "-m", "stageward_train.train", *argv])
        overrides = json.loads(args.settings.read_text()) if args.settings else {}
        self.s = Settings(**overrides)
        # an explicit phase1_share in --settings (without warm_phase1_share) holds for warm starts too
        self.share_given = "phase1_share" in overrides and "warm_phase1_share" not in overrides
        extra = read_extra_provenance(args.provenance) if args.provenance is not None else None
        self.spec = AugmentSpec()
        # torch may default to one thread (Debian's build does); use every CPU we are allowed on
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        torch.set_num_threads(args.threads if args.threads > 0 else cpus)
        random.seed(args.seed)
        np.random.seed(args.seed)
        torch.manual_seed(args.seed)
        self.rng = np.random.default_rng(args.seed)
        self.gen = torch.Generator().manual_seed(args.seed)
        full = ModelConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
        self.cfg, self.bundles = load_bundles(args, full)
        self.corpus = build_corpus(self.bundles)
        held = split_episodes(self.corpus.ep_bundle, self.corpus.ep_success, args.heldout_frac, args.seed)
        self.train_eps, self.held_eps = np.nonzero(~held)[0], np.nonzero(held)[0]
        self.train_frames = self.corpus.frames_of(self.train_eps)
        self.held_frames = self.corpus.frames_of(self.held_eps)
        pick = np.random.default_rng(args.seed + 1)
        n_eval = min(len(self.held_frames), self.s.eval_frames_phase1)
        self.held_probe = np.sort(pick.choice(self.held_frames, n_eval, replace=False)) if n_eval else self.held_frames
        self.tasks_trained = np.unique(self.corpus.ep_task[self.train_eps])
        self.work = (args.work_dir or TRAINER_DIR / "runs" / args.out.resolve().name).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = self.work / "log.jsonl"
        torch.manual_seed(args.seed)
        self.modules = build_modules(self.cfg)
        self.head = FrameHead(self.cfg)
        self.state: Dict[str, Any] = {"phase": 1, "epoch": 0, "step": 0, "plan": {}, "history": [],
                                      "commands": [self.command], "throughput": {}}
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.clock = Clock(args.time_budget_min * 60.0, 0.0)
        if extra is not None:
            self.state["provenance_extra"] = extra
        if args.resume is not None:
            self._resume(args.resume)
        elif args.from_package is not None:
            self.state["from"] = self._warm_start(args.from_package)

    @property
    def phase1_share(self) -> float:
        """Phase 1's share of the time left: smaller when the encoder started from a package."""
        return self._share(warm=self.state.get("from") is not None)

    def _share(self, warm: bool) -> float:
        return self.s.warm_phase1_share if warm and not self.share_given else self.s.phase1_share

    def _warm_start(self, package: Path) -> Dict[str, Any]:
        """Load the package's encoder weights into the encoder; the provenance record of it."""
        package = package.resolve()
        card, graph = read_package(package)
        theirs = check_warm_start(package, card, self.cfg)
        load_encoder(graph, self.modules["encoder"])
        record = {"path": str(package), "sha256": file_sha256(graph), "name": theirs.name,
                  "version": theirs.version, "phase1_share": self._share(warm=True)}
        say(self.log, f"warm start: encoder from {package} ({theirs.name} {theirs.version}, "
                  f"{graph.name} sha256 {record['sha256'][:12]}); SARM and GRM heads train fresh; "
                  f"phase-1 share {record['phase1_share']:g}", {"event": "warm_start", **record})
        return record

    # ---- bookkeeping -----------------------------------------------------------------------

    def split(self) -> Dict[str, Any]:
        c = self.corpus
        return {"by": "episode", "seed": self.args.seed, "heldout_frac": self.args.heldout_frac,
                "train_episodes": int(len(self.train_eps)), "train_frames": int(len(self.train_frames)),
                "heldout_episodes": int(len(self.held_eps)), "heldout_frames": int(len(self.held_frames)),
                "heldout_failed_episodes": int((~c.ep_success[self.held_eps]).sum()),
                "heldout_keys": [c.ep_key[e] for e in self.held_eps]}

    def _optimizer(self, phase: int) -> torch.optim.Optimizer:
        s = self.s
        if phase == 1:
            params = list(self.modules["encoder"].parameters()) + list(self.head.parameters())
            return torch.optim.AdamW(params, lr=s.lr_encoder, weight_decay=s.wd_encoder)
        params = [p for r in ("sarm", "grm") if r in self.modules for p in self.modules[r].parameters()]
        return torch.optim.AdamW(params, lr=s.lr_heads, weight_decay=s.wd_heads)

    def checkpoint(self) -> None:
        self.state["elapsed_s"] = self.clock.elapsed()
        self.state["split_keys"] = self.split()["heldout_keys"]
        save_state(self.work / "last.pt", self.cfg, {**self.modules, "frame_head": self.head},
                   self.optimizer, self.state, self.rng, self.gen, self.provenance(), self.metrics())

    def _resume(self, path: Path) -> None:
        data, state = load_state(path, self.rng, self.gen)
        check_same_networks(self.cfg, data["config"])
        if state.get("split_keys") != self.split()["heldout_keys"]:
            raise ValueError(f"--resume {path}: the held-out split differs (other bundles, seed or --heldout-frac)")
        for role, module in {**self.modules, "frame_head": self.head}.items():
            module.load_state_dict(data[role], strict=True)
        started = state.get("from")
        if self.args.from_package is not None:  # the checkpoint's weights win; the package must be the same one
            if started is None:
                raise ValueError(f"--from: the run in {path} did not start from a package; resume it without --from")
            _, graph = read_package(self.args.from_package.resolve())
            if file_sha256(graph) != started["sha256"]:
                raise ValueError(f"--from {self.args.from_package}: the run in {path} started from another "
                                 f"encoder ({started['path']}, sha256 {started['sha256'][:12]}...)")
        if "provenance_extra" in self.state:  # a new --provenance replaces the checkpoint's
            state["provenance_extra"] = self.state["provenance_extra"]
        self.state = state
        self.state["commands"] = state.get("commands", []) + [self.command]
        self.clock = Clock(self.args.time_budget_min * 60.0, float(state.get("elapsed_s", 0.0)))
        if data.get("optimizer") is not None and state["phase"] in (1, 2) and state["step"] > 0:
            self.optimizer = self._optimizer(state["phase"])
            self.optimizer.load_state_dict(data["optimizer"])
        say(None, f"resumed {path}: phase {state['phase']}, epoch {state['epoch']}, step {state['step']}, "
                  f"{fmt_s(self.clock.elapsed())} spent")

    def provenance(self) -> Dict[str, Any]:
        return {
            "weights": "trained by stageward_train.train",
            "commands": self.state["commands"],
            "seeds": {"seed": self.args.seed, "split": self.args.seed, "torch": self.args.seed, "numpy": self.args.seed},
            "code_revision": code_revision(), "code_dirty": code_dirty(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "bundles": bundle_provenance(self.bundles),
            "eval_bundles": [str(p.resolve()) for p in self.args.eval_bundle],
            "torch_version": torch.__version__, "numpy_version": np.__version__,
            "python_version": platform.python_version(), "threads": torch.get_num_threads(),
            "settings": asdict(self.s), "augmentation": asdict(self.spec),
            "time_budget_min": self.args.time_budget_min,
            **({"from": self.state["from"]} if self.state.get("from") else {}),
            **self.state.get("provenance_extra", {}),
        }

    def metrics(self) -> Dict[str, Any]:
        m = {k: v for k, v in self.state.get("final", {}).items()}
        split = self.split()
        split.pop("heldout_keys")
        m["split"] = split
        m["training"] = {"phase1_steps": self.state["plan"].get("1", {}).get("done", 0),
                         "phase2_steps": self.state["plan"].get("2", {}).get("done", 0),
                         "wall_s": round(self.clock.elapsed(), 1), **self.state.get("throughput", {})}
        return m

    # ---- the run ---------------------------------------------------------------------------

    def run(self) -> int:
        c, a = self.corpus, self.args
        say(self.log, f"train: {len(self.bundles)} bundle(s), tasks {list(self.cfg.tasks)}, {c.num_frames} frames "
            f"x {self.cfg.num_views} views; split by episode: {len(self.train_eps)} train / {len(self.held_eps)} "
            f"held out ({len(self.train_frames)} / {len(self.held_frames)} frames); budget {a.time_budget_min:g} min; "
            f"work dir {self.work}", {"event": "start", "command": self.command, "split": self.split()})
        with linear_as_conv():  # training and evaluation only: the export traces the plain graphs
            if self.state["phase"] == 1:
                self.phase1()
                self.state.update(phase=2, epoch=0, step=0)
                self.optimizer = None
                self.checkpoint()
            features = self.cache_features()
            if self.state["phase"] == 2:
                self.phase2(features)
                self.state.update(phase=3)
                self.checkpoint()
            self.final_evaluation(features)
        return self.export()

    def phase1(self) -> None:
        s, c, st = self.s, self.corpus, self.state
        enc, head = self.modules["encoder"], self.head
        enc.train()
        head.train()
        self.optimizer = self.optimizer or self._optimizer(1)
        full = math.ceil(len(self.train_frames) / s.frames_per_batch)
        plan = st["plan"].setdefault("1", {"total": None, "steps_per_epoch": full, "epochs": None, "done": 0})
        images = s.frames_per_batch * self.cfg.num_views
        t_epoch, losses = time.perf_counter(), []
        order = self._epoch_order(full)
        while plan["total"] is None or st["step"] < plan["total"]:
            i = st["step"] - st["epoch"] * plan["steps_per_epoch"]
            if plan["total"] is not None and self.clock.elapsed() >= plan["deadline_s"]:
                say(self.log, f"[phase 1] time share used at step {st['step']}/{plan['total']}; moving on")
                break
            g = np.sort(order[np.arange(i * s.frames_per_batch, (i + 1) * s.frames_per_batch) % len(order)])
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr_encoder * lr_factor(st["step"], plan["total"] or 10 ** 9, s.warmup_encoder)
            if st["step"] == 2:
                t_cal = time.perf_counter()
            loss = phase1_loss(self.cfg, s, enc, head, c, g, self.gen, self.spec)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss))
            st["step"] += 1
            plan["done"] = st["step"]
            if plan["total"] is None and st["step"] == CALIBRATION_STEPS:
                sec = (time.perf_counter() - t_cal) / (CALIBRATION_STEPS - 2)
                self._plan_phase1(plan, full, sec, images)
            if plan["total"] is not None and (st["step"] == (st["epoch"] + 1) * plan["steps_per_epoch"]
                                              or st["step"] >= plan["total"]):
                self._end_epoch1(plan, losses, time.perf_counter() - t_epoch, images)
                t_epoch, losses = time.perf_counter(), []
                order = self._epoch_order(full)
        if losses:
            self._end_epoch1(plan, losses, time.perf_counter() - t_epoch, images)
        if len(self.held_frames):  # no episode held out (a tiny dataset, or --heldout-frac 0): no held-out figures
            st["final"] = {**st.get("final", {}),
                           "heldout_frame_head": frame_head_metrics(self.cfg, enc, head, c, self.held_frames)}

    def _epoch_order(self, full: int) -> np.ndarray:
        reps = 2 + (full * self.s.frames_per_batch) // max(1, len(self.train_frames))
        return np.concatenate([self.rng.permutation(self.train_frames) for _ in range(reps)])

    def _cache_estimate(self, train_images_per_s: float) -> float:
        """Seconds the feature cache will take, from the training rate (encoding is ~2x faster)."""
        c, s = self.corpus, self.s
        return c.num_frames * self.cfg.num_views * s.feature_copies / (2.0 * train_images_per_s)

    def _phase1_deadline(self, cache_s: float) -> float:
        """Elapsed time by which phase 1 must stop so caching, phase 2's minimum and export still fit."""
        s = self.s
        return self.clock.budget_s - s.reserve_s - cache_s - s.phase2_min_share * self.clock.budget_s

    def _plan_phase1(self, plan: Dict[str, Any], full: int, sec: float, images: int) -> None:
        s = self.s
        rate = images / sec
        cache_s = self._cache_estimate(rate)
        left = self.clock.left() - s.reserve_s - cache_s
        seconds = max(0.0, min(self.phase1_share * left, self._phase1_deadline(cache_s) - self.clock.elapsed()))
        plan.update(plan_steps(full, seconds, sec, self.args.epochs or s.max_epochs_encoder))
        plan["deadline_s"] = self.clock.elapsed() + seconds
        plan["sec_per_step"] = sec
        plan["cache_est_s"] = cache_s
        self.state["throughput"]["phase1_images_per_s"] = round(rate, 1)
        say(self.log, f"[phase 1] {rate:.0f} images/s in training; plan {plan['total']} steps = {plan['epochs']} "
                      f"epoch(s) of {plan['steps_per_epoch']} (a full pass is {full}), ~{fmt_s(plan['total'] * sec)}; "
                      f"feature cache ~{fmt_s(cache_s)}", {"event": "plan1", **plan})

    def _end_epoch1(self, plan, losses, seconds, images) -> None:
        st = self.state
        st["epoch"] += 1
        m = frame_head_metrics(self.cfg, self.modules["encoder"], self.head, self.corpus, self.held_probe) \
            if len(self.held_probe) else {}
        rate = len(losses) * images / max(seconds, 1e-6)
        # a slower machine than at calibration (other load): stop phase 1 earlier, never later
        plan["cache_est_s"] = max(plan["cache_est_s"], self._cache_estimate(rate))
        plan["deadline_s"] = min(plan["deadline_s"], self._phase1_deadline(plan["cache_est_s"]))
        # a faster one (the calibration's few steps ran beside other load): more steps until the same deadline
        grown = grown_total(plan["total"], st["step"], images / max(rate, 1e-6), plan["deadline_s"] - self.clock.elapsed(),
                            (self.args.epochs or self.s.max_epochs_encoder) * plan["steps_per_epoch"])
        if grown is not None:
            say(self.log, f"[phase 1] {rate:.0f} images/s, faster than the plan's {images / plan['sec_per_step']:.0f}: "
                          f"{grown} steps instead of {plan['total']} by the same deadline",
                {"event": "replan1", "total": grown, "was": plan["total"], "images_per_s": round(rate, 1)})
            plan["total"], plan["sec_per_step"] = grown, images / rate
            plan["epochs"] = math.ceil(grown / plan["steps_per_epoch"])
        left_steps = max(0, plan["total"] - st["step"])
        eta = left_steps * plan["sec_per_step"] + plan["cache_est_s"] + \
            max(0.0, (1 - self.phase1_share) * (self.clock.left() - left_steps * plan["sec_per_step"]))
        rec = {"event": "epoch", "phase": 1, "epoch": st["epoch"], "step": st["step"],
               "loss": round(float(np.mean(losses)), 5), "heldout": m, "images_per_s": round(rate, 1),
               "elapsed_s": round(self.clock.elapsed(), 1)}
        st["history"].append(rec)
        say(self.log, f"[phase 1] epoch {st['epoch']}/{plan['epochs']} step {st['step']}/{plan['total']} "
                      f"loss {rec['loss']:.4f} | held-out per-frame stage acc {m.get('stage_accuracy', float('nan')):.3f} "
                      f"progress MAE {m.get('progress_mae', float('nan')):.4f} | {rate:.0f} img/s | "
                      f"elapsed {fmt_s(self.clock.elapsed())} ETA {fmt_s(min(eta, self.clock.left()))}", rec)
        self.checkpoint()

    def cache_features(self) -> torch.Tensor:
        c, s = self.corpus, self.s
        t0 = time.perf_counter()
        n = c.num_frames * self.cfg.num_views * s.feature_copies
        feats = encode_corpus(self.modules["encoder"], c, s.feature_copies, self.args.seed, self.spec)
        sec = time.perf_counter() - t0
        self.state["throughput"]["encode_images_per_s"] = round(n / max(sec, 1e-6), 1)
        say(self.log, f"[cache] {n} images encoded ({s.feature_copies} copies) in {fmt_s(sec)}, "
                      f"{n / max(sec, 1e-6):.0f} images/s", {"event": "cache", "images": n, "seconds": round(sec, 1)})
        return feats

    def phase2(self, features: torch.Tensor) -> None:
        s, c, st = self.s, self.corpus, self.state
        sarm, grm = self.modules["sarm"], self.modules.get("grm")
        sarm.train()
        if grm is not None:
            grm.train()
        self.optimizer = self.optimizer or self._optimizer(2)
        sampler = PairSampler(self.train_eps, c.ep_offset, c.ep_length, c.ep_success, c.ep_task,
                              c.progress_step, np.random.default_rng(self.args.seed + 7)) if grm is not None else None
        full = math.ceil(len(self.train_frames) / s.windows_per_batch)
        plan = st["plan"].setdefault("2", {"total": None, "steps_per_epoch": full, "epochs": None, "done": 0})
        t_epoch, losses = time.perf_counter(), []
        while plan["total"] is None or st["step"] < plan["total"]:
            if plan["total"] is not None and self.clock.elapsed() >= plan["deadline_s"]:
                say(self.log, f"[phase 2] time budget used at step {st['step']}/{plan['total']}; finishing")
                break
            for group in self.optimizer.param_groups:
                group["lr"] = s.lr_heads * lr_factor(st["step"], plan["total"] or 10 ** 9, s.warmup_heads)
            if st["step"] == 2:
                t_cal = time.perf_counter()
            loss = sarm_loss(self.cfg, s, sarm, features, c, self.train_frames, self.rng, self.tasks_trained)
            parts = [float(loss)]
            if sampler is not None:
                lg = grm_loss(grm, features, sampler, self.rng, s.windows_per_batch)
                loss = loss + lg
                parts.append(float(lg))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(parts)
            st["step"] += 1
            plan["done"] = st["step"]
            if plan["total"] is None and st["step"] == CALIBRATION_STEPS:
                sec = (time.perf_counter() - t_cal) / (CALIBRATION_STEPS - 2)
                # the heads always get their minimum, even past the budget: a model without them is useless
                seconds = max(self.clock.left() - s.reserve_s, s.phase2_min_share * self.clock.budget_s)
                most = self.args.head_epochs or s.max_epochs_heads
                plan.update(plan_steps(full, seconds, sec, most,
                                       minimum=max(CALIBRATION_STEPS, min(most, s.phase2_min_epochs) * full)))
                plan.update(deadline_s=self.clock.elapsed() + seconds, sec_per_step=sec)
                say(self.log, f"[phase 2] {1 / sec:.1f} steps/s ({s.windows_per_batch} windows + pairs); plan "
                              f"{plan['total']} steps = {plan['epochs']} epoch(s) of {plan['steps_per_epoch']}",
                    {"event": "plan2", **plan})
            if plan["total"] is not None and (st["step"] == (st["epoch"] + 1) * plan["steps_per_epoch"]
                                              or st["step"] >= plan["total"]):
                self._end_epoch2(plan, losses, features)
                t_epoch, losses = time.perf_counter(), []
        if losses:
            self._end_epoch2(plan, losses, features)
        del t_epoch

    def _goal_features(self, features: torch.Tensor) -> Dict[int, torch.Tensor]:
        return {t: features[0, g] for t, g in goal_frames(self.corpus, self.train_eps).items()}

    def _end_epoch2(self, plan, losses, features) -> None:
        st = self.state
        st["epoch"] += 1
        m = evaluate(self.cfg, self.modules, features[0], self.corpus, self.held_eps, self._goal_features(features))
        mean = np.mean(np.array(losses), axis=0)
        rec = {"event": "epoch", "phase": 2, "epoch": st["epoch"], "step": st["step"],
               "loss_sarm": round(float(mean[0]), 5), "loss_grm": round(float(mean[1]), 5) if len(mean) > 1 else None,
               "heldout": m, "elapsed_s": round(self.clock.elapsed(), 1)}
        st["history"].append(rec)
        eta = max(0, plan["total"] - st["step"]) * plan["sec_per_step"] + 15
        grm = f" grm loss {rec['loss_grm']:.4f} progress MAE {m.get('grm_progress_mae', float('nan')):.4f} |" \
            if rec["loss_grm"] is not None else ""
        say(self.log, f"[phase 2] epoch {st['epoch']}/{plan['epochs']} step {st['step']}/{plan['total']} "
                      f"sarm loss {rec['loss_sarm']:.4f} | held-out stage acc {m.get('stage_accuracy', float('nan')):.3f} "
                      f"progress MAE {m.get('progress_mae', float('nan')):.4f} voc {m.get('voc', float('nan')):.3f} |{grm} "
                      f"elapsed {fmt_s(self.clock.elapsed())} ETA {fmt_s(min(eta, self.clock.left()))}", rec)
        self.checkpoint()

    def final_evaluation(self, features: torch.Tensor) -> None:
        final = self.state.setdefault("final", {})
        goals = self._goal_features(features)
        final["heldout"] = evaluate(self.cfg, self.modules, features[0], self.corpus, self.held_eps, goals)
        if self.args.eval_bundle:
            final["eval"] = {}
        for path in self.args.eval_bundle:
            bundle = open_bundle(path, self.cfg, self._eval_task(path))
            corpus = build_corpus([bundle])
            feats = encode_corpus(self.modules["encoder"], corpus, 1, self.args.seed, self.spec)
            final["eval"][bundle.name] = evaluate(self.cfg, self.modules, feats[0], corpus,
                                                  range(len(corpus.ep_offset)), goals)
            say(self.log, f"[eval] {bundle.name}: {json.dumps(final['eval'][bundle.name])}")

    def export(self) -> int:
        self.checkpoint()
        final_pt = self.work / "final.pt"
        os.replace(self.work / "last.pt", final_pt)
        out = export_package(self.cfg, self.modules, self.args.out, self.provenance(), self.metrics())
        summary = {"package": str(out), "checkpoint": str(final_pt), "metrics": self.metrics()}
        say(self.log, json.dumps(summary), {"event": "done", **summary})
        return 0

    def _eval_task(self, path: Path) -> Optional[str]:
        if self.args.task and len(set(self.args.task)) == 1:
            return self.args.task[0]
        return None


if __name__ == "__main__":
    sys.exit(main())
