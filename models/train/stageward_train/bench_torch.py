"""The PyTorch-eager side of `npm run bench:engine`: the same networks, stepped the way the engine
steps them (encode the new frame of every view once, cache features, build the causal window, run
the SARM head and, when asked, the GRM head for the incremental and forward perspectives).

    python3 -m stageward_train.bench_torch --model DIR --steps 1200 [--progress both] [--threads 0]

Weights come from the card's architecture with seed 0 (what `export --random-seed 0` writes); eager
latency does not depend on the weights' values. Last output line: one JSON object of the figures.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .config import ModelConfig
from .export import seeded_modules
from .windows import PADDING_INDEX, window_indices


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="model package folder (its model.json)")
    p.add_argument("--steps", type=int, default=1200, help="timed steps")
    p.add_argument("--warmup", type=int, default=30, help="untimed steps first")
    p.add_argument("--episode-length", type=int, default=200, help="steps per episode")
    p.add_argument("--progress", choices=("sarm", "grm", "both"), default="both")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = p.parse_args(argv)

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    card = json.loads((args.model / "model.json").read_text())
    cfg = ModelConfig.from_dict(card)
    modules = seeded_modules(cfg, 0)
    for m in modules.values():
        m.eval()
    encoder, sarm, grm = modules["encoder"], modules["sarm"], modules.get("grm")
    use_grm = args.progress != "sarm" and grm is not None
    v, d, h, w = cfg.num_views, cfg.feature_dim, cfg.image.height, cfg.image.width
    win = cfg.window
    rng = np.random.default_rng(7)
    pool = [torch.from_numpy(rng.integers(0, 256, (v, h, w, 3), dtype=np.uint8)) for _ in range(16)]
    task = torch.zeros(1, dtype=torch.int64)

    samples = []
    cache = []
    with torch.no_grad():
        for i in range(args.steps + args.warmup):
            if i % args.episode_length == 0:
                cache = []
            t = len(cache)
            t0 = time.perf_counter()
            feats = encoder(pool[i % len(pool)])  # [V, D]
            cache.append(feats)
            indices, valid = window_indices(t, win.length, win.stride_frames, win.include_initial)
            window = torch.zeros(1, win.length, v, d)
            for slot, frame in enumerate(indices):
                if frame != PADDING_INDEX:
                    window[0, slot] = cache[frame]
            logits, tau = sarm(window, torch.tensor([valid], dtype=torch.float32), task)
            torch.softmax(logits[0], dim=0)
            if use_grm:
                start, prev = cache[0], cache[max(t - 1, 0)]
                before = torch.stack([prev, start])
                grm(torch.stack([start, start]), torch.stack([start, start]), before,
                    torch.stack([feats, feats]), task.repeat(2))
            ms = (time.perf_counter() - t0) * 1000
            if i >= args.warmup:
                samples.append(ms)
    figures = {
        "torch_step_p50_ms": float(np.percentile(samples, 50)),
        "torch_step_p99_ms": float(np.percentile(samples, 99)),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "steps": args.steps,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
