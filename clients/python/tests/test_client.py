"""RewardClient against a fake protocol server (in-process, websockets): messages, order, errors."""
import asyncio
import math
import socket
import threading

import numpy as np
import pytest
import websockets

from stageward_client import RewardClient, StagewardError
from stageward_client import msgpack_numpy as mn
from stageward_client.client import stream_url

VIEWS = ["front", "side"]


def _path_and_headers(ws, path):
    request = getattr(ws, "request", None)  # websockets >= 13 (new implementation)
    if request is not None:
        return request.path, request.headers
    return path or ws.path, ws.request_headers


class FakeServer:
    """Speaks the native protocol; progress = t / 10. Records what it received."""

    def __init__(self):
        self.received, self.paths, self.auth = [], [], []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(websockets.serve(self._handle, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, ws, path=None):
        p, headers = _path_and_headers(ws, path)
        self.paths.append(p)
        self.auth.append(headers.get("Authorization"))
        async for raw in ws:
            msg = mn.unpackb(raw)
            self.received.append(msg)
            kind = msg["type"]
            if kind == "hello":
                reply = {"type": "ready", "session": "s1", "model": {"name": "fake", "views": msg["views"]}, "limits": {}}
            elif kind == "reset":
                reply = {"type": "episode", "episode": "e1", "phi0": None}
            elif kind == "step":
                if isinstance(msg.get("reward"), float) and math.isnan(msg["reward"]):
                    reply = {"type": "error", "seq": msg["seq"], "code": "SW_ERR_BAD_VALUE", "message": "reward is NaN"}
                elif msg.get("reward") == -999.0:
                    await ws.close(1011, "boom")
                    return
                else:
                    reply = {"type": "reward", "seq": msg["seq"], "episode": "e1", "step": msg["t"],
                             "progress": msg["t"] / 10, "stage": {"index": 0, "name": "reach", "probs": [1.0]},
                             "tau": 0.5, "reward": msg.get("reward", 0.0), "shaped": 0.25,
                             "timing": {"queue_ms": 0.0, "infer_ms": 1.0, "total_ms": 1.0}}
            elif kind == "end":
                reply = {"type": "summary", "steps": 3}
            await ws.send(mn.packb(reply))

    def url(self, path=""):
        return f"ws://127.0.0.1:{self.port}{path}"

    def stop(self):
        async def shutdown():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def server():
    s = FakeServer()
    yield s
    s.stop()


def frames(t=0):
    return {"front": np.full((8, 10, 3), t, np.uint8), "side": b"\x89PNG fake"}


def test_a_whole_episode_in_order_with_api_key_header_and_default_path(server):
    with RewardClient(server.url(), api_key="k123") as c:
        ready = c.hello("pick_place", VIEWS, gamma=0.99)
        assert ready["session"] == "s1" and c.ready is ready
        c.reset()
        replies = [c.step(frames(t), reward=None if t == 0 else 0.0) for t in range(4)]
        summary = c.end(success=True)
    assert [r["step"] for r in replies] == [0, 1, 2, 3]
    assert [r["seq"] for r in replies] == [0, 1, 2, 3]
    assert summary["type"] == "summary"
    assert server.paths == ["/v1/stream"] and server.auth == ["Api-Key k123"]
    hello, reset, step0, step1 = server.received[:4]
    assert hello == {"type": "hello", "protocol": 1, "task": "pick_place", "views": VIEWS, "gamma": 0.99, "shaping": "pbrs"}
    assert reset == {"type": "reset"}
    assert "reward" not in step0 and step1["reward"] == 0.0
    assert step1["frames"]["front"].dtype == np.uint8 and step1["frames"]["front"].shape == (8, 10, 3)
    assert step1["frames"]["side"] == b"\x89PNG fake"
    assert server.received[-1] == {"type": "end", "success": True}


def test_terminated_and_truncated_are_sent_only_when_set(server):
    with RewardClient(server.url("/v1/stream")) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        c.reset()
        c.step(frames())
        c.step(frames(), reward=1.0, truncated=True)
    assert server.auth == [None]
    last = server.received[-1]
    assert last["truncated"] is True and "terminated" not in last


def test_an_error_reply_raises_with_its_code_and_the_session_goes_on(server):
    with RewardClient(server.url()) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        c.reset()
        with pytest.raises(StagewardError) as e:
            c.step(frames(), reward=float("nan"))
        assert e.value.code == "SW_ERR_BAD_VALUE" and e.value.seq == 0 and "NaN" in e.value.message
        assert c.step(frames(), reward=0.0)["seq"] == 1


def test_pipelined_steps_resolve_in_order(server):
    with RewardClient(server.url()) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        c.reset()
        futures = [c.step_nowait(frames(t), reward=0.0) for t in range(8)]
        assert [f.result(5)["seq"] for f in futures] == list(range(8))


def test_a_close_under_a_request_raises_connection_closed_with_the_close_code(server):
    with RewardClient(server.url()) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        c.reset()
        with pytest.raises(StagewardError) as e:
            c.step(frames(), reward=-999.0)
        assert e.value.code == "SW_ERR_CONNECTION_CLOSED" and e.value.close_code == 1011 and "boom" in e.value.message
        with pytest.raises(StagewardError, match="SW_ERR_CONNECTION_CLOSED"):
            c.step(frames(), reward=0.0)


def test_an_unreachable_server_raises_connect():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StagewardError) as e:
        RewardClient(f"ws://127.0.0.1:{port}", open_timeout_s=2)
    assert e.value.code == "SW_ERR_CONNECT"


def test_frames_are_checked_before_sending(server):
    with RewardClient(server.url()) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        c.reset()
        with pytest.raises(ValueError, match="uint8 array"):
            c.step({"front": np.zeros((4, 4, 3), np.float32)})
        with pytest.raises(ValueError, match="uint8 array"):
            c.step({"front": np.zeros((4, 4, 2), np.uint8)})
        with pytest.raises(TypeError, match="JPEG/PNG bytes"):
            c.step({"front": [1, 2, 3]})
        with pytest.raises(ValueError, match="non-empty mapping"):
            c.step({})
        assert c.step(frames())["seq"] == 0  # nothing was sent for the refused steps


def test_stream_url_adds_the_native_path_only_when_none_is_given():
    assert stream_url("ws://h:1") == "ws://h:1/v1/stream"
    assert stream_url("ws://h:1/") == "ws://h:1/v1/stream"
    assert stream_url("wss://h/custom") == "wss://h/custom"
    with pytest.raises(ValueError):
        stream_url("http://h:1")


def test_the_asyncio_client_pipelines_and_reports_errors(server):
    from stageward_client import AsyncRewardClient

    async def go():
        async with AsyncRewardClient(server.url()) as c:
            await c.hello("pick_place", VIEWS, gamma=0.9, scale=0.5, composition="expected")
            await c.reset(episode=7)
            sent = [await c.send_step(frames(t), reward=0.0) for t in range(3)]
            bad = await c.send_step(frames(), reward=float("nan"))
            replies = [await f for f in sent]
            with pytest.raises(StagewardError) as e:
                await bad
            return replies, e.value.code

    replies, code = asyncio.run(go())
    assert [r["seq"] for r in replies] == [0, 1, 2] and code == "SW_ERR_BAD_VALUE"
    hello, reset = server.received[:2]
    assert hello["scale"] == 0.5 and hello["composition"] == "expected" and reset == {"type": "reset", "episode": 7}
