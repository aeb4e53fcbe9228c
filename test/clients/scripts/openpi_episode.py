"""Driven by test/clients/python-client.test.ts: an openpi-style client on `/openpi`, written with
plain msgpack + websockets the way openpi-client is (numpy maps with binary keys, the server's
metadata map first, one observation dict per request, one reply dict back). No stageward code.

    python3 openpi_episode.py ws://127.0.0.1:PORT/openpi   -> one JSON object on stdout
"""
import asyncio
import json
import sys

import msgpack
import numpy as np
import websockets


def pack_array(obj):
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj):
    return msgpack.packb(obj, default=pack_array)


def unpackb(data):
    return msgpack.unpackb(data, object_hook=unpack_array)


async def main(url: str) -> dict:
    rng = np.random.default_rng(1)
    out = {"replies": []}
    async with websockets.connect(url, compression=None, max_size=None) as ws:
        metadata = unpackb(await ws.recv())
        out["metadata"] = metadata
        keys = metadata["observation_keys"]  # observation key -> view
        for t in range(10):
            obs = {key: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for key in keys}
            obs["observation/state"] = rng.random(7).astype(np.float32)  # not a view: ignored
            obs["prompt"] = "pick_place"
            obs["reward"] = np.float32(0.0)  # a numpy scalar, as robot code sends
            obs["terminated"] = t == 9
            await ws.send(packb(obs))
            reply = await ws.recv()
            if isinstance(reply, str):
                raise RuntimeError(f"error from the server: {reply}")
            out["replies"].append(unpackb(reply))
        await ws.send(packb({"prompt": "pick_place"}))  # no images: an error, as a text frame
        err = await ws.recv()
        out["error_is_text"] = isinstance(err, str)
        out["error"] = json.loads(err) if isinstance(err, str) else None
        obs = {key: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for key in keys}
        obs["prompt"] = "pick_place"
        await ws.send(packb(obs))
        out["after_error"] = unpackb(await ws.recv())
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1])), default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
