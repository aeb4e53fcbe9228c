"""Driven by test/clients/python-client.test.ts: stageward_client's RewardClient against a live server.

    python3 native_episode.py ws://127.0.0.1:PORT   -> one JSON object on stdout

Episode 1: 10 sequential steps of random 64x64 frames (one view as PNG bytes), the last truncated.
Episode 2: 6 pipelined steps (step_nowait). Then a step missing a view, which must come back as a
StagewardError while the session goes on. Then StagewardRewardWrapper over a 5-step env that
terminates, on its own connection.
"""
import json
import struct
import sys
import zlib

import numpy as np

from stageward_client import RewardClient, StagewardError, StagewardRewardWrapper

VIEWS = ["front", "side", "wrist"]


def png(rgb: np.ndarray) -> bytes:
    """A minimal PNG encoder (8-bit RGB), so the test needs no imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def frames(rng: np.random.Generator) -> dict:
    out = {v: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for v in VIEWS}
    out["wrist"] = png(out["wrist"])
    return out


class CountingEnv:
    """Five steps of random frames; env reward 1 on the last, which terminates."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.t = rng, 0

    def _obs(self) -> dict:
        return {v: self.rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for v in VIEWS}

    def reset(self, seed=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), float(self.t == 5), self.t == 5, False, {"is_success": self.t == 5}


def wrapped_episode(url: str, rng: np.random.Generator) -> dict:
    with RewardClient(url, timeout_s=20) as client:
        env = StagewardRewardWrapper(CountingEnv(rng), client, "pick_place", lambda obs: obs, gamma=0.9, progress="sarm")
        _, info = env.reset()
        steps = [{"progress": info["stageward"]["progress"]}]
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(0)
            done = terminated or truncated
            steps.append({"reward": reward, "terminated": terminated, **{k: info["stageward"][k] for k in ("progress", "shaped", "env_reward")}})
        return {"steps": steps, "summary": info["stageward"]["summary"]}


def main() -> None:
    rng = np.random.default_rng(0)
    out = {}
    with RewardClient(sys.argv[1], timeout_s=20) as client:
        out["ready"] = client.hello("pick_place", VIEWS, gamma=0.99, progress="sarm")
        out["episode"] = client.reset()
        steps = []
        for t in range(10):
            steps.append(client.step(frames(rng), reward=None if t == 0 else 0.0, truncated=t == 9))
        out["steps"] = steps
        out["summary"] = client.end(truncated=True)
        client.reset()
        futures = [client.step_nowait(frames(rng), reward=None if t == 0 else 0.0) for t in range(6)]
        out["pipelined"] = [f.result(20) for f in futures]
        try:
            client.step({"front": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}, reward=0.0)
            out["missing_view_error"] = None
        except StagewardError as e:
            out["missing_view_error"] = {"code": e.code, "message": e.message, "seq": e.seq}
        out["after_error"] = client.step(frames(rng), reward=0.0)
        out["end"] = client.end()
    out["wrapper"] = wrapped_episode(sys.argv[1], rng)
    print(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


if __name__ == "__main__":
    main()
