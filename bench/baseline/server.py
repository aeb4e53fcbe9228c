"""The baseline for `stageward bench server`: an openpi-style reward server in Python, built the way
openpi's `serving/websocket_policy_server.py` is (websockets + msgpack with the openpi numpy
encoding, a metadata map sent first, one request at a time per connection, inference run inside the
async handler), running the SAME network in PyTorch eager (modules built from the model card with
seed 0, as `stageward_train.bench_torch` does; eager latency does not depend on weight values).

    python3 bench/baseline/server.py --model DIR [--host 127.0.0.1] [--port 0] [--threads 0]

Prints `{"listening": PORT}` on stdout once it accepts connections. Per connection, per message:

    observation {<key>: uint8 HWC array or JPEG/PNG bytes, one per model view (keys as the stageward
                 server's `openpi.views`, e.g. "observation/image" -> front),
                 "prompt"?: task string (default: the card's first task), "reset"?: bool (first
                 frame of a new episode; so is a connection's first message and the one after a
                 terminated or truncated step), "reward"?: float, "terminated"?: bool,
                 "truncated"?: bool, "gamma"?: float}
    reply       {"step", "progress", "stage": {"index", "name", "probs"}, "tau", "reward", "shaped",
                 "server_timing": {"infer_ms"}}

Per step: decode, resize to the card's size if needed, encode the new frame of every view once,
cache the features the causal window can still use, run the SARM head on the window, compose
progress (argmax: Phi = P_k + a_k * tau), shape (PBRS: r + gamma * Phi' * (1 - terminated) - Phi).
An error closes the connection with 1011 and a one-line reason (openpi sends a traceback; we don't).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import msgpack
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "models" / "train"))
sys.path.insert(0, str(REPO / "clients" / "python"))

import websockets  # noqa: E402
from stageward_client import msgpack_numpy  # noqa: E402
from stageward_train.config import ModelConfig  # noqa: E402
from stageward_train.export import seeded_modules  # noqa: E402
from stageward_train.windows import PADDING_INDEX, window_indices  # noqa: E402

try:
    from PIL import Image
except ImportError:  # arrays still work; encoded images need Pillow
    Image = None

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Observation key -> view: the stageward server's own default (`openpi.views`), so one load fits both.
DEFAULT_VIEW_KEYS = json.loads((REPO / "configs" / "default.json").read_text())["openpi"]["views"]


class RewardPolicy:
    """The model: frames of one step in, progress and shaped reward out. One instance per server."""

    def __init__(self, model_dir: Path, view_keys: Dict[str, str]):
        self.card = json.loads((model_dir / "model.json").read_text())
        self.cfg = ModelConfig.from_dict(self.card)
        modules = seeded_modules(self.cfg, 0)
        for m in modules.values():
            m.eval()
        self.encoder, self.sarm = modules["encoder"], modules["sarm"]
        self.views: List[str] = list(self.cfg.views)
        self.tasks: List[str] = list(self.cfg.tasks)
        by_view = {view: key for key, view in view_keys.items()}
        missing = [v for v in self.views if v not in by_view]
        if missing:
            raise SystemExit(f"--view-keys maps no observation key to the model's view(s) {missing}")
        self.keys: List[str] = [by_view[v] for v in self.views]  # in the model's view order
        w = self.cfg.window
        # Frames the window can still reach: frame 0 (include_initial) and the strided past.
        self.history = (w.length - (2 if w.include_initial else 1)) * w.stride_frames + 1

    @property
    def metadata(self) -> Dict[str, Any]:
        c = self.card
        return {"model": c["name"], "version": c.get("version"), "views": self.views, "image": c["image"],
                "tasks": self.tasks, "stages": c["stages"], "observation_keys": dict(zip(self.keys, self.views))}

    def decode(self, image: Any) -> np.ndarray:
        h, w = self.cfg.image.height, self.cfg.image.width
        if isinstance(image, (bytes, bytearray)):
            if Image is None:
                raise ValueError("encoded images need Pillow (python3-pil) in the baseline server")
            pil = Image.open(io.BytesIO(image)).convert("RGB")
            if pil.size != (w, h):
                pil = pil.resize((w, h), Image.BILINEAR)
            return np.asarray(pil, dtype=np.uint8)
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected uint8 [H, W, 3], got {arr.dtype} {arr.shape}")
        if arr.shape[:2] != (h, w):
            if Image is None:
                raise ValueError(f"images must be {h}x{w} without Pillow")
            arr = np.asarray(Image.fromarray(arr).resize((w, h), Image.BILINEAR))
        return arr

    @torch.no_grad()
    def infer(self, obs: Dict[str, Any], episode: "Episode") -> Dict[str, Any]:
        t0 = time.perf_counter()
        if obs.get("reset") or episode.t < 0 or episode.done:
            episode.start(str(obs.get("prompt", self.tasks[0])), self.tasks)
        pixels = np.stack([self.decode(obs[key]) for key in self.keys])                     # [V, H, W, 3]
        feats = self.encoder(torch.from_numpy(pixels))                                      # [V, D]
        t = episode.t = episode.t + 1
        episode.cache[t] = feats
        win = self.cfg.window
        old = t - self.history  # no longer reachable by any later window (frame 0 may still be)
        if old > 0 or (old == 0 and not win.include_initial):
            episode.cache.pop(old, None)
        indices, valid = window_indices(t, win.length, win.stride_frames, win.include_initial)
        window = torch.zeros(1, win.length, len(self.views), self.cfg.feature_dim)
        for slot, frame in enumerate(indices):
            if frame != PADDING_INDEX:
                window[0, slot] = episode.cache[frame]
        logits, tau = self.sarm(window, torch.tensor([valid], dtype=torch.float32),
                                torch.tensor([episode.task_index], dtype=torch.int64))
        stages = self.cfg.stages[episode.task]
        probs = torch.softmax(logits[0, :len(stages)], dim=0)
        k = int(torch.argmax(probs))
        tau_v = float(tau[0])
        priors = [prior for _, prior in stages]
        phi = min(1.0, max(0.0, sum(priors[:k]) + priors[k] * min(1.0, max(0.0, tau_v))))
        reward = float(obs.get("reward", 0.0) or 0.0)
        gamma = float(obs.get("gamma", 0.99))
        terminated = bool(obs.get("terminated", False))
        shaped = 0.0 if episode.phi is None else reward + gamma * phi * (0.0 if terminated else 1.0) - episode.phi
        episode.phi = phi
        episode.done = terminated or bool(obs.get("truncated", False))  # the next observation starts anew
        return {"step": t, "progress": phi, "stage": {"index": k, "name": stages[k][0], "probs": probs.tolist()},
                "tau": tau_v, "reward": reward, "shaped": shaped,
                "server_timing": {"infer_ms": (time.perf_counter() - t0) * 1000}}


class Episode:
    """A connection's episode: task, step index, cached features, last potential."""

    def __init__(self) -> None:
        self.t = -1
        self.task = ""
        self.task_index = 0
        self.cache: Dict[int, torch.Tensor] = {}
        self.phi: Optional[float] = None
        self.done = False

    def start(self, task: str, tasks: List[str]) -> None:
        if task not in tasks:
            raise ValueError(f"unknown task {task!r}")
        self.t, self.task, self.task_index, self.cache, self.phi = -1, task, tasks.index(task), {}, None
        self.done = False


async def serve(policy: RewardPolicy, host: str, port: int) -> None:
    packer = msgpack_numpy.Packer()

    async def handler(ws: Any, path: Any = None) -> None:
        await ws.send(packer.pack(policy.metadata))
        episode = Episode()
        while True:
            try:
                raw = await ws.recv()
            except websockets.ConnectionClosed:
                return
            try:
                obs = msgpack_numpy.unpackb(raw)
                reply = policy.infer(obs, episode)  # synchronous, in the handler: openpi's shape
            except Exception as e:  # noqa: BLE001 - one line to the client, then close
                await ws.send(f"error: {type(e).__name__}: {e}")
                await ws.close(1011, "inference failed")
                return
            await ws.send(packer.pack(reply))

    async with websockets.serve(handler, host, port, compression=None, max_size=MAX_MESSAGE_BYTES) as server:
        bound = server.sockets[0].getsockname()[1]
        print(json.dumps({"listening": bound}), flush=True)
        await asyncio.Future()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="model package folder (its model.json)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--view-keys", type=json.loads, default=DEFAULT_VIEW_KEYS,
                   help="JSON map of observation key -> view (default: configs/default.json openpi.views)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    policy = RewardPolicy(args.model, args.view_keys)
    try:
        asyncio.run(serve(policy, args.host, args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
