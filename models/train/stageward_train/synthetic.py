"""A tiny synthetic training bundle (datasets/bundle.ts format) for tests: moving-object frames from
make_fixture's synthetic scenes, spans split evenly over the stages, every `failed_every`-th episode a
failure that regresses to the first stage. Labels come from labels.py.

    python3 -m stageward_train.synthetic --out /tmp/bundle [--size 32] [--episodes 6] [--length 12]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from .labels import AFTER_LAST_TAU, frame_labels
from .make_fixture import TINY_CONFIG, synthetic_episode

PICK_PLACE = tuple((s["name"], s["prior"]) for s in TINY_CONFIG["stages"]["pick_place"])


def write_bundle(out: Path, stages: Sequence[Tuple[str, float]] = PICK_PLACE, episodes: int = 6,
                 length: int = 12, size: int = 32, seed: int = 0, failed_every: int = 3,
                 task: str = "put the red cube in the blue bowl") -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [n for n, _ in stages]
    priors = [p for _, p in stages]
    k = len(names)
    frames, labels, eps, success = [], [], [], []
    offset = 0
    for e in range(episodes):
        n = length + int(rng.integers(0, 4))
        failed = failed_every > 0 and e % failed_every == failed_every - 1
        bounds = np.linspace(0, n, k + 1).round().astype(int)
        spans = [{"name": names[i], "start": int(bounds[i]), "end": int(bounds[i + 1] - 1)}
                 for i in range(k) if bounds[i + 1] > bounds[i]]
        if failed:  # progress up to the middle stage, then back to the first stage for the rest
            keep = [s for s in spans if s["end"] < n // 2]
            spans = keep + [{"name": names[0], "start": keep[-1]["end"] + 1 if keep else 0, "end": n - 1}]
        ep_frames, _ = synthetic_episode(rng, size, n)
        frames.append(ep_frames)
        labels.append(frame_labels(spans, n, names, priors, f"episode {e}"))
        eps.append({"index": e, "length": n, "success": not failed, "offset": offset, "task_index": 0})
        success.append(0 if failed else 1)
        offset += n
    arrays = {
        "frames": np.concatenate(frames).astype(np.uint8),
        "episode_index": np.concatenate([np.full(ep["length"], ep["index"]) for ep in eps]).astype(np.int64),
        "frame_index": np.concatenate([np.arange(ep["length"]) for ep in eps]).astype(np.int64),
        "task_index": np.zeros(offset, dtype=np.int64),
        "stage": np.concatenate([lb["stage"] for lb in labels]).astype(np.int64),
        "tau": np.concatenate([lb["tau"] for lb in labels]),
        "progress_sarm": np.concatenate([lb["progress_sarm"] for lb in labels]),
        "progress_step": np.concatenate([lb["progress_step"] for lb in labels]),
        "success": np.asarray(success, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", arr)
    header = {
        "format": 1, "views": ["front", "side", "wrist"], "task": task, "task_id": 0, "tasks": [task],
        "stages": [{"name": n, "prior": p} for n, p in stages], "priors_source": "dataset", "fps": 10,
        "image": {"height": size, "width": size, "resize": "stretch"}, "frames": offset, "episodes": eps,
        "labels": {"rule": "sarm", "after_last_tau": AFTER_LAST_TAU, "success_unknown_as": 1},
        "arrays": {n: {"dtype": str(a.dtype), "shape": list(a.shape)} for n, a in arrays.items()},
        "source": {"path": f"synthetic:{seed}", "codebase_version": "v3.0", "robot_type": None,
                   "total_episodes": episodes},
    }
    (out / "bundle.json").write_text(json.dumps(header, indent=2), encoding="utf-8")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m stageward_train.synthetic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--episodes", type=int, default=6)
    p.add_argument("--length", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=("pick_place", "stack_three"), default="pick_place")
    a = p.parse_args(argv)
    stages = tuple((s["name"], s["prior"]) for s in TINY_CONFIG["stages"][a.task])
    text = "put the red cube in the blue bowl" if a.task == "pick_place" else "stack the three cubes"
    write_bundle(a.out, stages, a.episodes, a.length, a.size, a.seed, task=text)
    print(json.dumps({"bundle": str(Path(a.out).resolve())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
