"""Stream random camera frames to a running stageward server and print what comes back.

    stageward serve --port 8000                       # in another terminal
    python3 examples/stream_random.py --url ws://127.0.0.1:8000 --steps 50 [--api-key KEY]

Random pixels are not a task, so the progress is meaningless; this shows the calls, the reply
fields and the round-trip time. Runs from a checkout without installing (adds ../ to sys.path).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stageward_client import RewardClient, StagewardError  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="ws://127.0.0.1:8000")
    p.add_argument("--api-key", default=None)
    p.add_argument("--task", default="pick_place", help="one of the served model's tasks")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--size", type=int, default=96, help="frame height and width in pixels")
    p.add_argument("--gamma", type=float, default=0.99)
    args = p.parse_args()

    rng = np.random.default_rng(0)
    try:
        with RewardClient(args.url, api_key=args.api_key) as client:
            ready = client.hello(args.task, ["front", "side", "wrist"], gamma=args.gamma)
            views = ready["model"]["views"]
            print(f"connected: session {ready['session']}, model {ready['model']['name']} {ready['model']['version']}, "
                  f"views {views}, stages {ready['model']['stages']}")
            client.reset()
            for t in range(args.steps):
                frames = {v: rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for v in views}
                t0 = time.perf_counter()
                r = client.step(frames, reward=None if t == 0 else 0.0, truncated=t == args.steps - 1)
                rtt = (time.perf_counter() - t0) * 1000
                print(f"t={r['step']:3d} progress {r['progress']:.3f} stage {r['stage']['name']:<10s} "
                      f"tau {r['tau']:.2f} shaped {r['shaped']:+.4f}  server {r['timing']['total_ms']:.1f} ms, "
                      f"round trip {rtt:.1f} ms")
            summary = client.end(truncated=True)
            print(f"summary: {summary}")
    except StagewardError as e:
        print(f"stageward: {e.code}: {e.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
