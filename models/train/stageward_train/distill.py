"""Distil a package's frame encoder into a cheaper one; the SARM and GRM heads are kept as they are.

Usage (from models/train; `stageward distill` runs this):
    python3 -m stageward_train.distill --teacher ../zoo/pick_place --bundle ../../zoo-data/bundles/pp-train-mixed \
        [--bundle ...] --out /tmp/pick_place-sep [--block separable] [--norm none] [--channels 32,64,64,128] \
        [--time-budget-min 20] [--seed 0]

The student (nets.FrameEncoder with the student architecture) learns to give the teacher's features
for the bundles' frames, every view, half of each batch augmented (augment.py) so it also agrees off
the demonstrations; when the teacher's card has missing_views fill "black", two images of each batch
are black, as a server fills a missing camera. The loss is the mean squared error per feature, each feature scaled by the
teacher's standard deviation over the training frames. The heads read features only, so the package
keeps the teacher's sarm.onnx and grm.onnx byte for byte and swaps encoder.onnx.

Held-out episodes of each bundle (--heldout-frac, by episode, seeded) give the figures in the card's
`metrics.distillation`: `nmse` (that loss on un-augmented held-out frames; 0 is a perfect copy, 1 is
no better than the mean feature), `nmse_augmented` (the same frames augmented) and `cosine` (the mean
cosine similarity of student and teacher features). Whether the rewards hold is for `stageward eval`
on held-out datasets to show (models/zoo/rebuild.sh does both).
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .augment import AugmentSpec, random_augment
from .card import graph_files
from .config import ENCODER_BLOCKS, ENCODER_NORMS, ModelConfig
from .data import open_bundle
from .export import code_revision, export_package, file_sha256
from .nets import FrameEncoder
from .onnx_weights import load_encoder
from .train import bundle_provenance, code_dirty, fmt_s, read_package

FEATURE_CHUNK = 256       # images per teacher forward when caching features
CALIBRATION_STEPS = 10    # steps timed before the rest of the budget is planned
EXPORT_RESERVE_S = 30.0   # budget kept for the held-out figures and the export
MAX_HELDOUT_IMAGES = 4096
BLACK_PER_BATCH = 2       # black frames in each batch when the teacher's card lets a server fill with them


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="stageward_train.distill", description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, required=True, help="model package whose encoder is copied")
    p.add_argument("--bundle", type=Path, action="append", required=True,
                   help="training bundle (`stageward dataset export`) whose frames are used; repeatable")
    p.add_argument("--out", type=Path, required=True, help="package folder to write (replaced atomically)")
    p.add_argument("--block", choices=ENCODER_BLOCKS, default="separable", help="student encoder_block")
    p.add_argument("--norm", choices=ENCODER_NORMS, default="none", help="student encoder_norm")
    p.add_argument("--channels", default=None,
                   help="student encoder_channels, comma-separated (default: the teacher's)")
    p.add_argument("--time-budget-min", type=float, default=20.0, help="wall-clock budget, minutes")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: the budget decides)")
    p.add_argument("--batch", type=int, default=128, help="images per step")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (cosine decay to 0)")
    p.add_argument("--augment-share", type=float, default=0.5, help="share of each batch augmented")
    p.add_argument("--heldout-frac", type=float, default=0.1, help="share of each bundle's episodes held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: every CPU this process may use)")
    p.add_argument("--version", default=None, help="the package's version (default: the teacher's + '-distilled')")
    args = p.parse_args(argv)
    if args.time_budget_min <= 0 or not math.isfinite(args.time_budget_min):
        p.error("--time-budget-min must be a positive number")
    if args.batch < 2:
        p.error("--batch must be at least 2")
    if not 0.0 <= args.augment_share <= 1.0:
        p.error("--augment-share must be in [0, 1]")
    if not 0.0 < args.heldout_frac < 1.0:
        p.error("--heldout-frac must be in (0, 1)")
    return args


def student_config(teacher: ModelConfig, args: argparse.Namespace) -> ModelConfig:
    """The teacher's contract with the student's encoder architecture."""
    arch = teacher.architecture
    channels = arch.encoder_channels
    if args.channels:
        try:
            channels = tuple(int(c) for c in args.channels.split(","))
        except ValueError:
            raise ValueError(f"--channels: expected comma-separated integers, got {args.channels!r}") from None
    if arch.backbone != "conv":
        raise ValueError(f"--teacher: its encoder is a frozen {arch.backbone} backbone; distillation "
                         "starts from the trained CNN (architecture.backbone \"conv\")")
    version = args.version or f"{teacher.version}-distilled"
    return replace(teacher, version=version, architecture=replace(
        arch, encoder_channels=channels, encoder_block=args.block, encoder_norm=args.norm))


class Images:
    """Every (frame, view) of the bundles as one index, split by episode into train and held out."""

    def __init__(self, bundles, heldout_frac: float, seed: int):
        self.bundles = bundles
        rng = np.random.default_rng(seed)
        train: List[np.ndarray] = []
        held: List[np.ndarray] = []
        for b_i, b in enumerate(bundles):
            episodes = b.header["episodes"]
            order = rng.permutation(len(episodes))
            n_held = max(1, int(round(heldout_frac * len(episodes)))) if len(episodes) > 1 else 0
            views = np.arange(len(b.view_order))
            for rank, e_i in enumerate(order):
                ep = episodes[e_i]
                frames = np.arange(ep["offset"], ep["offset"] + ep["length"])
                rows = np.stack([np.full(frames.size * views.size, b_i), np.repeat(frames, views.size),
                                 np.tile(views, frames.size)], axis=1)
                (held if rank < n_held else train).append(rows)
        self.train = np.concatenate(train) if train else np.zeros((0, 3), np.int64)
        self.held = np.concatenate(held) if held else np.zeros((0, 3), np.int64)

    def pixels(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 [n, H, W, 3] for rows of (bundle, frame, config view)."""
        out = []
        for b_i, frame, view in rows:
            b = self.bundles[b_i]
            out.append(np.asarray(b.frames[frame, b.view_order[view]]))
        return torch.from_numpy(np.stack(out))


def _encode(net: FrameEncoder, pixels: torch.Tensor) -> torch.Tensor:
    """net over pixels in chunks of FEATURE_CHUNK images (no gradients)."""
    with torch.no_grad():
        return torch.cat([net(pixels[i:i + FEATURE_CHUNK]) for i in range(0, len(pixels), FEATURE_CHUNK)])


def teacher_features(teacher: FrameEncoder, images: Images, rows: np.ndarray, label: str) -> torch.Tensor:
    out = []
    start = time.monotonic()
    with torch.no_grad():
        for i in range(0, len(rows), FEATURE_CHUNK):
            out.append(teacher(images.pixels(rows[i:i + FEATURE_CHUNK])))
            done = min(len(rows), i + FEATURE_CHUNK)
            if i == 0 or done == len(rows) or (i // FEATURE_CHUNK) % 40 == 0:
                print(f"teacher features ({label}): {done}/{len(rows)} images, {fmt_s(time.monotonic() - start)}",
                      flush=True)
    return torch.cat(out) if out else torch.zeros(0, teacher.out.out_features)


def scores(student: FrameEncoder, teacher: FrameEncoder, pixels: torch.Tensor, target: torch.Tensor,
           std: torch.Tensor, gen: torch.Generator, spec: AugmentSpec) -> Dict[str, float]:
    """nmse (plain), nmse_augmented and cosine on held-out images, student in eval mode."""
    was = student.training
    student.eval()
    try:
        plain = _encode(student, pixels)
        aug = random_augment(pixels, gen, spec).round()
        t_aug, s_aug = _encode(teacher, aug), _encode(student, aug)
    finally:
        student.train(was)
    nmse = float((((plain - target) / std) ** 2).mean())
    nmse_aug = float((((s_aug - t_aug) / std) ** 2).mean())
    cosine = float(torch.nn.functional.cosine_similarity(plain, target, dim=1).mean())
    return {"nmse": round(nmse, 5), "nmse_augmented": round(nmse_aug, 5), "cosine": round(cosine, 5)}


def run(args: argparse.Namespace, argv: Sequence[str]) -> Dict[str, Any]:
    started = time.monotonic()
    budget_s = args.time_budget_min * 60.0
    torch.manual_seed(args.seed)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(args.threads if args.threads > 0 else cpus)
    teacher_dir = args.teacher.resolve()
    card, graph = read_package(teacher_dir, "--teacher")
    t_cfg = ModelConfig.from_dict(card)
    s_cfg = student_config(t_cfg, args)
    teacher = FrameEncoder(t_cfg)
    load_encoder(graph, teacher)
    teacher.eval()
    student = FrameEncoder(s_cfg)
    bundles = [open_bundle(b, t_cfg) for b in args.bundle]
    images = Images(bundles, args.heldout_frac, args.seed)
    if len(images.held) == 0:
        raise ValueError("--bundle: no bundle has two or more episodes, so none can be held out for the figures")
    if len(images.train) < args.batch:
        raise ValueError(f"--bundle: {len(images.train)} training images, fewer than one batch of {args.batch}")
    print(f"distill: {teacher_dir.name} -> {s_cfg.architecture.encoder_block} encoder "
          f"{list(s_cfg.architecture.encoder_channels)}, norm {s_cfg.architecture.encoder_norm}; "
          f"{len(images.train)} training and {len(images.held)} held-out images", flush=True)

    target = teacher_features(teacher, images, images.train, "training")
    std = target.std(dim=0).clamp_min(1e-6)
    rng = np.random.default_rng(args.seed)
    held_rows = images.held[rng.permutation(len(images.held))[:MAX_HELDOUT_IMAGES]]
    held_pixels = images.pixels(held_rows)
    held_target = _encode(teacher, held_pixels)

    gen = torch.Generator().manual_seed(args.seed)
    spec = AugmentSpec()
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    n_aug = int(round(args.augment_share * args.batch))
    black = t_cfg.missing_view_fill == "black" and n_aug > BLACK_PER_BATCH
    planned = args.max_steps or None
    step, step_start = 0, None
    losses: List[float] = []
    last_report = time.monotonic()
    while planned is None or step < planned:
        if step == CALIBRATION_STEPS:
            step_start = time.monotonic()
        if step == 2 * CALIBRATION_STEPS and planned is None:
            per_step = (time.monotonic() - step_start) / CALIBRATION_STEPS
            left = budget_s - (time.monotonic() - started) - EXPORT_RESERVE_S
            planned = max(step + 1, step + int(left / per_step))
            print(f"distill: {per_step * 1000:.0f} ms a step; {planned} steps fit the budget", flush=True)
        if args.max_steps == 0 and time.monotonic() - started > budget_s - EXPORT_RESERVE_S:
            print(f"distill: the budget ends at step {step} of {planned} planned (steps got slower)", flush=True)
            break
        total = planned or 10 ** 9
        for group in optimizer.param_groups:  # cosine decay over the planned steps
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
        pick = rng.integers(0, len(images.train), args.batch)
        pixels = images.pixels(images.train[pick]).float()
        want = target[pick]  # indexing copies: the rows below are overwritten in the copy only
        if n_aug:
            aug = random_augment(pixels[:n_aug], gen, spec).round()
            if black:  # what a server feeds for a missing camera (the card's missing_views fill)
                aug[-BLACK_PER_BATCH:] = 0
            pixels[:n_aug] = aug
            with torch.no_grad():
                want[:n_aug] = teacher(aug)
        loss = (((student(pixels) - want) / std) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
        step += 1
        if time.monotonic() - last_report > 30 or step == planned:
            last_report = time.monotonic()
            recent = float(np.mean(losses[-50:]))
            print(f"distill: step {step}/{planned or '?'}, loss {recent:.4f}, "
                  f"{fmt_s(time.monotonic() - started)} of {fmt_s(budget_s)}", flush=True)

    student.eval()
    heldout = scores(student, teacher, held_pixels, held_target, std, gen, spec)
    wall = round(time.monotonic() - started, 1)
    print(f"distill: held out nmse {heldout['nmse']}, augmented {heldout['nmse_augmented']}, "
          f"cosine {heldout['cosine']}; {fmt_s(wall)}", flush=True)
    provenance = {
        "weights": "distilled by stageward_train.distill: encoder trained to give the teacher's features; "
                   "sarm.onnx and grm.onnx are the teacher's",
        "commands": [" ".join(["python3", "-m", "stageward_train.distill", *argv])],
        "teacher": {"path": str(teacher_dir), "name": t_cfg.name, "version": t_cfg.version,
                    "encoder_sha256": file_sha256(graph), "architecture": card.get("architecture"),
                    "provenance": card.get("provenance", {})},
        "seeds": {"seed": args.seed},
        "code_revision": code_revision(), "code_dirty": code_dirty(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "bundles": bundle_provenance(bundles),
        "torch_version": torch.__version__, "numpy_version": np.__version__,
        "python_version": platform.python_version(), "threads": torch.get_num_threads(),
        "augmentation": asdict(spec), "time_budget_min": args.time_budget_min,
        "settings": {"batch": args.batch, "lr": args.lr, "augment_share": args.augment_share,
                     "heldout_frac": args.heldout_frac},
    }
    metrics = {"distillation": {**heldout, "steps": step, "final_train_loss": round(float(np.mean(losses[-50:])), 5),
                                "train_images": int(len(images.train)), "heldout_images": int(len(held_rows)),
                                "wall_s": wall}}
    heads = {role: teacher_dir / name for role, name in graph_files(s_cfg).items() if role != "encoder"}
    export_package(s_cfg, {"encoder": student}, args.out, provenance, metrics, copied_graphs=heads)
    print(f"distill: wrote {args.out.resolve()}", flush=True)
    return metrics["distillation"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        run(args, argv)
    except ValueError as err:
        print(f"stageward_train.distill: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
