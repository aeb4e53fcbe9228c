"""Write the TypeScript side's test fixtures: a tiny random-weight package and torch parity arrays.

Usage (from models/train):
    python3 -m stageward_train.make_fixture [--out ../../test/fixtures]

Writes <out>/tiny-model/ (a complete package, < 1 MB) and <out>/parity/ (.npy inputs and the
outputs torch computed, described by manifest.json). Deterministic: seed 1234, one thread; re-running
reproduces model.json and every .npy byte for byte (ONNX bytes may differ, their results do not).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .config import ModelConfig
from .evaluate import compose_progress
from .export import _replace_dir, export_package, seeded_modules
from .windows import gather_window

SEED = 1234
TOLERANCE = 1e-4
REPO_ROOT = Path(__file__).resolve().parents[3]
TINY_CONFIG = {
    "name": "tiny-fixture", "version": "0.0.1", "views": ["front", "side", "wrist"],
    "image": {"height": 64, "width": 64, "resize": "stretch"}, "feature_dim": 32,
    "window": {"length": 5, "stride_frames": 2, "include_initial": True}, "fps": 10,
    "tasks": ["pick_place", "stack_three"],
    "instructions": {"pick_place": ["put the red cube in the blue bowl"],
                     "stack_three": ["stack the red cube on the green cube, then the yellow cube on the "
                                     "red cube"]},
    "stages": {
        "pick_place": [{"name": n, "prior": p} for n, p in
                       [("reach", 0.2), ("grasp", 0.15), ("lift", 0.15), ("carry", 0.3),
                        ("place", 0.2)]],
        "stack_three": [{"name": n, "prior": p} for n, p in
                        [("reach_a", 0.14), ("grasp_a", 0.12), ("stack_a", 0.16), ("reach_b", 0.14),
                         ("grasp_b", 0.12), ("stack_b", 0.2), ("retreat", 0.12)]],
    },
    "progress": {"composition": "argmax"}, "grm": {"present": True, "goal": "client"},
    "architecture": {"encoder_channels": [8, 16, 16, 32], "encoder_kernel": 3,
                     "encoder_norm": "group", "d_model": 32, "layers": 1, "heads": 2,
                     "mlp_ratio": 2, "grm_hidden": 32, "dropout": 0.0},
}
EPISODE_TASK = 1
EPISODE_FRAMES = 10


def synthetic_images(rng: np.random.Generator, size: int) -> np.ndarray:
    """uint8 [6, size, size, 3]: two gradients, rectangles, noise, a checkerboard, black/white."""
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    images = np.zeros((6, size, size, 3), dtype=np.uint8)
    images[0] = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)),
                          np.full((size, size), 128.0)], axis=-1).astype(np.uint8)
    images[1] = np.stack([255 - np.tile(ramp[:, None], (1, size)), np.full((size, size), 30.0),
                          np.tile(ramp, (size, 1))], axis=-1).astype(np.uint8)
    images[2] = 90
    for _ in range(5):
        y, x = rng.integers(0, size - 8, size=2)
        h, w = rng.integers(6, size // 2, size=2)
        images[2, y:y + h, x:x + w] = rng.integers(0, 256, size=3)
    images[3] = rng.integers(0, 256, size=(size, size, 3))
    cells = (np.add.outer(np.arange(size) // 8, np.arange(size) // 8) % 2).astype(bool)
    images[4][cells] = (220, 40, 40)
    images[4][~cells] = (20, 20, 200)
    images[5, :, size // 2:] = 255
    return images


def _scene(rng: np.random.Generator, size: int, obj_xy, grip_xy, tint) -> np.ndarray:
    """One view: tinted vertical gradient, a red 12 px object, a grey 6x16 px gripper, mild noise."""
    ramp = np.linspace(40, 200, size)[:, None, None]
    img = np.broadcast_to(ramp * np.asarray(tint)[None, None, :], (size, size, 3)).copy()
    ox, oy = (int(round(v)) for v in obj_xy)
    img[max(oy, 0):oy + 12, max(ox, 0):ox + 12] = (210, 30, 30)
    gx, gy = (int(round(v)) for v in grip_xy)
    img[max(gy, 0):gy + 16, max(gx, 0):gx + 6] = (160, 160, 160)
    img += rng.normal(0.0, 4.0, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_episode(rng: np.random.Generator, size: int, frames: int):
    """uint8 frames [frames, 3, size, size, 3] (front, side, wrist) and goal [3, size, size, 3]."""
    tints = [(1.0, 1.0, 1.0), (0.8, 1.0, 0.8), (1.0, 0.9, 0.7)]

    def views(s: float):  # s in [0, 1]: gripper reaches, then carries the object right and up
        grip = (6 + 40 * min(2 * s, 1.0), 40 - 20 * max(2 * s - 1, 0.0))
        obj = (40.0 + 16 * max(2 * s - 1, 0.0), 44 - 20 * max(2 * s - 1, 0.0))
        front = _scene(rng, size, obj, grip, tints[0])
        side = _scene(rng, size, (obj[0] * 0.5 + 10, obj[1]), (grip[0] * 0.5 + 8, grip[1]), tints[1])
        wrist = _scene(rng, size, (size / 2 + (obj[0] - grip[0]) * 1.5, size / 2 + (obj[1] - grip[1])),
                       (size / 2 - 3, size / 2 - 20), tints[2])
        return np.stack([front, side, wrist])

    episode = np.stack([views(t / (frames - 1)) for t in range(frames)])
    return episode, views(1.0)


@torch.no_grad()
def compute_parity(cfg: ModelConfig, modules, rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """Inputs and torch outputs for every graph, and a whole episode run the serving way."""
    enc, sarm, grm = modules["encoder"].eval(), modules["sarm"].eval(), modules["grm"].eval()
    size, t_len, v, d = cfg.image.height, cfg.window.length, cfg.num_views, cfg.feature_dim
    a: Dict[str, np.ndarray] = {}

    def encode(pixels: np.ndarray) -> np.ndarray:
        return enc(torch.from_numpy(pixels)).numpy()

    a["enc_pixels"] = synthetic_images(rng, size)
    a["enc_features"] = encode(a["enc_pixels"])

    valid = np.array([[1, 1, 1, 1, 1], [1, 0, 0, 1, 1], [1, 0, 0, 0, 1]], dtype=np.float32)
    feats = rng.standard_normal((3, t_len, v, d)).astype(np.float32) * valid[:, :, None, None]
    a["sarm_features"], a["sarm_valid"] = feats, valid
    a["sarm_task"] = np.array([0, 1, 1], dtype=np.int64)
    logits, tau, spread = sarm.predict(torch.from_numpy(feats), torch.from_numpy(valid), torch.from_numpy(a["sarm_task"]))
    a["sarm_stage_logits"], a["sarm_tau"] = logits.numpy(), tau.numpy()
    if spread is not None:  # an ensemble: its uncertainty output too
        a["sarm_uncertainty"] = spread.numpy()

    for name in ("start", "goal", "before", "after"):
        a[f"grm_{name}"] = rng.standard_normal((3, v, d)).astype(np.float32)
    a["grm_task"] = np.array([1, 0, 1], dtype=np.int64)
    a["grm_hop"] = grm(*(torch.from_numpy(a[f"grm_{n}"]) for n in ("start", "goal", "before", "after")),
                       torch.from_numpy(a["grm_task"])).numpy()

    frames, goal = synthetic_episode(rng, size, EPISODE_FRAMES)
    a["ep_frames"], a["ep_goal"] = frames, goal
    ep_feats = encode(frames.reshape(-1, size, size, 3)).reshape(EPISODE_FRAMES, v, d)
    goal_feats = encode(goal).reshape(v, d)
    a["ep_features"], a["ep_goal_features"] = ep_feats, goal_feats
    windows = [gather_window(ep_feats, t, t_len, cfg.window.stride_frames, cfg.window.include_initial)
               for t in range(EPISODE_FRAMES)]
    task = torch.full((EPISODE_FRAMES,), EPISODE_TASK, dtype=torch.int64)
    logits, tau = sarm(torch.from_numpy(np.stack([w for w, _ in windows])),
                       torch.from_numpy(np.stack([m for _, m in windows])), task)
    a["ep_stage_logits"], a["ep_tau"] = logits.numpy(), tau.numpy()
    start = torch.from_numpy(np.repeat(ep_feats[:1], EPISODE_FRAMES, axis=0))
    goal_t = torch.from_numpy(np.repeat(goal_feats[None], EPISODE_FRAMES, axis=0))
    current = torch.from_numpy(ep_feats)
    previous = torch.from_numpy(np.concatenate([ep_feats[:1], ep_feats[:-1]]))
    for name, before in (("incremental", previous), ("forward", start), ("backward", goal_t)):
        a[f"ep_hop_{name}"] = grm(start, goal_t, before, current, task).numpy()
    # SARM progress by the trainer's own composition (evaluate.py), both rules: the serving side's
    # progress is checked against these, not against its own sarmProgress.
    for rule in ("argmax", "expected"):
        a[f"ep_progress_{rule}"] = compose_progress(cfg, a["ep_stage_logits"], a["ep_tau"], task.numpy(),
                                                    rule).astype(np.float32)
    return a


def _top2_margin(logits: np.ndarray) -> float:
    top = np.sort(logits, axis=-1)
    return float(np.min(top[:, -1] - top[:, -2]))


def _manifest(arrays: Dict[str, np.ndarray]) -> dict:
    io = dict
    return {
        "model": "../tiny-model",
        "task_index": EPISODE_TASK,
        "tolerance": {"abs": TOLERANCE},
        "torch_version": torch.__version__.split("+")[0],
        "checks": {
            "encoder": {"inputs": io(pixels="enc_pixels"), "outputs": io(features="enc_features")},
            "sarm": {"inputs": io(features="sarm_features", valid="sarm_valid", task="sarm_task"),
                     "outputs": io(stage_logits="sarm_stage_logits", tau="sarm_tau")},
            "grm": {"inputs": io(start="grm_start", goal="grm_goal", before="grm_before",
                                 after="grm_after", task="grm_task"), "outputs": io(hop="grm_hop")},
        },
        "episode": {
            "about": "frames [time, view, H, W, C] in card view order, task = task_index, goal "
                     "frames per view; every frame encoded once, causal window per PACKAGE.md "
                     "(padding: zero features, valid 0); GRM start = frame 0, goal = encoded goal "
                     "frames, before = previous frame (frame 0 at t = 0) / start / goal",
            "frames": "ep_frames", "goal": "ep_goal",
            "features": "ep_features", "goal_features": "ep_goal_features",
            "stage_logits": "ep_stage_logits", "tau": "ep_tau",
            "hop": {"incremental": "ep_hop_incremental", "forward": "ep_hop_forward",
                    "backward": "ep_hop_backward"},
            "progress": {"argmax": "ep_progress_argmax", "expected": "ep_progress_expected"},
        },
        "arrays": {name: {"file": f"{name}.npy", "dtype": str(arr.dtype), "shape": list(arr.shape)}
                   for name, arr in arrays.items()},
    }


def make_fixtures(out: Path) -> Dict[str, np.ndarray]:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    cfg = ModelConfig.from_dict(TINY_CONFIG)
    modules = seeded_modules(cfg, SEED)
    arrays = compute_parity(cfg, modules, np.random.default_rng(SEED))
    for key in ("sarm_stage_logits", "ep_stage_logits"):
        margin = _top2_margin(arrays[key])
        if margin < 10 * TOLERANCE:  # a near tie could flip the in-graph argmax between runtimes
            raise RuntimeError(f"{key}: top-2 logit margin {margin:.2e} is too small for a fixture")
    out = Path(out).resolve()
    export_package(cfg, modules, out / "tiny-model", provenance={
        "weights": "random (untrained): shapes and parity only, not a reward model",
        "seed": SEED, "command": "python3 -m stageward_train.make_fixture"})
    tmp = Path(tempfile.mkdtemp(prefix=".parity.tmp-", dir=str(out)))
    try:
        for name, arr in arrays.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))))
        (tmp / "manifest.json").write_text(json.dumps(_manifest(arrays), indent=2) + "\n",
                                           encoding="utf-8")
        tmp.chmod(0o755)
        _replace_dir(tmp, out / "parity")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return arrays


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stageward_train.make_fixture",
                                     description="Write test/fixtures/tiny-model and parity.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test" / "fixtures",
                        help="fixtures folder (default: the repository's test/fixtures)")
    args = parser.parse_args(argv)
    make_fixtures(args.out)
    total = sum(p.stat().st_size for p in args.out.resolve().rglob("*") if p.is_file())
    print(json.dumps({"fixtures": str(args.out.resolve()), "total_bytes": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
