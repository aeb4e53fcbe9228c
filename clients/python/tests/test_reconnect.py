"""Reconnect (client.py docstring) against a fake native-protocol server that can drain (1001), drop
its sockets (1006), stop listening and come back on the same port, and refuse keys (4401).

Like the real server, the fake keeps each episode on its connection: a step on a connection that
has had no reset is refused with SW_ERR_NO_EPISODE, and each episode counts its steps from 0.
"""
import asyncio
import threading
import time

import numpy as np
import pytest
import websockets

from stageward_client import AsyncRewardClient, RewardClient, StagewardError
from stageward_client import msgpack_numpy as mn

VIEWS = ["front", "side"]
QUICK = dict(reconnect_attempts=40, reconnect_backoff_s=0.01, reconnect_max_backoff_s=0.05, reconnect_jitter=0.0)


class Replica:
    """A fake server on a fixed port. `hold` leaves steps unanswered (in flight at a drain)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = 0
        self.server = None
        self.conns = []  # every connection ever accepted
        self.received = []  # (connection index, message)
        self.hold = False
        self.shutting_down = False  # answer every message with SW_ERR_SHUTTING_DOWN, as a draining replica does
        self.key = None
        self.sessions = 0
        self.start()

    def _do(self, coro, timeout=5):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self):
        async def go():
            self.server = await websockets.serve(self._handle, "127.0.0.1", self.port)
            self.port = self.server.sockets[0].getsockname()[1]
        self._do(go())

    def stop(self, code=1001, reason="SW_ERR_SHUTTING_DOWN: the server is shutting down"):
        """Close every open connection with `code` (a drain), then stop listening."""
        async def go():
            for ws in self.conns:
                await ws.close(code, reason)
            self.server.close()
            await self.server.wait_closed()
        self._do(go())

    def drop(self):
        """Cut every connection without a close frame: the client sees 1006."""
        def go():
            for ws in self.conns:
                ws.transport.abort()
        self.loop.call_soon_threadsafe(go)

    def close_with(self, code, reason):
        async def go():
            for ws in self.conns:
                await ws.close(code, reason)
        self._do(go())

    def shutdown(self):
        async def go():
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
        try:
            self._do(go())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)

    def messages(self, conn):
        return [m for c, m in self.received if c == conn]

    async def _handle(self, ws, path=None):
        index = len(self.conns)
        self.conns.append(ws)
        step = None  # this connection's episode: steps counted from 0
        try:
            async for raw in ws:
                msg = mn.unpackb(raw)
                self.received.append((index, msg))
                kind = msg["type"]
                if self.shutting_down:
                    await ws.send(mn.packb({"type": "error", "seq": msg.get("seq"), "code": "SW_ERR_SHUTTING_DOWN",
                                            "message": "the server is shutting down and takes no new messages"}))
                    continue
                if kind == "hello":
                    if self.key is not None and msg.get("api_key") != self.key:
                        await ws.send(mn.packb({"type": "error", "code": "SW_ERR_AUTH", "message": "the API key is wrong"}))
                        await ws.close(4401, "SW_ERR_AUTH: the API key is wrong")
                        return
                    self.sessions += 1
                    reply = {"type": "ready", "session": f"s{self.sessions}", "model": {"name": "fake"}, "limits": {},
                             "replica": self.port}
                elif kind == "reset":
                    step = 0
                    reply = {"type": "episode", "episode": f"e{index}"}
                elif kind == "step":
                    if self.hold:
                        continue
                    if step is None:
                        reply = {"type": "error", "seq": msg["seq"], "code": "SW_ERR_NO_EPISODE", "message": "send reset"}
                    else:
                        reply = {"type": "reward", "seq": msg["seq"], "episode": f"e{index}", "step": step, "t": msg["t"],
                                 "shaped": 0.0}
                        step += 1
                elif kind == "end":
                    reply = {"type": "summary", "steps": step or 0}
                    step = None
                await ws.send(mn.packb(reply))
        except websockets.ConnectionClosed:
            pass


@pytest.fixture
def replica():
    r = Replica()
    yield r
    r.shutdown()


def frames():
    return {"front": np.zeros((4, 4, 3), np.uint8), "side": b"\x89PNG fake"}


def wait_until(cond, timeout=5.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_a_drain_mid_episode_fails_the_pending_step_reconnects_and_loses_the_episode_until_reset(replica):
    readies = []
    with RewardClient(f"ws://127.0.0.1:{replica.port}",
                      on_reconnect=readies.append, **QUICK) as c:
        first = c.hello("pick_place", VIEWS, gamma=0.99, scale=0.5)
        c.reset()
        assert c.step(frames())["step"] == 0
        replica.hold = True
        pending = c.step_nowait(frames(), reward=0.0)
        wait_until(lambda: len(replica.messages(0)) == 4)
        replica.stop()  # 1001; the held step is still unanswered
        with pytest.raises(StagewardError) as e:
            pending.result(5)
        assert e.value.code == "SW_ERR_CONNECTION_CLOSED" and e.value.close_code == 1001
        assert "SW_ERR_SHUTTING_DOWN" in e.value.message
        wait_until(lambda: c.reconnecting)
        replica.hold = False
        replica.start()  # the "next replica", on the same port
        wait_until(lambda: c.reconnects == 1)
        assert not c.reconnecting
        assert readies == [c.ready] and c.ready["session"] == "s2" and c.ready["replica"] == replica.port
        assert first["session"] == "s1"
        new_hello = replica.messages(1)[0]
        assert new_hello == replica.messages(0)[0] and new_hello["scale"] == 0.5  # the same options

        with pytest.raises(StagewardError) as lost:
            c.step(frames(), reward=0.0)
        assert lost.value.code == "SW_ERR_EPISODE_LOST" and "reset()" in lost.value.message
        with pytest.raises(StagewardError, match="SW_ERR_EPISODE_LOST"):
            c.end()
        assert len(replica.messages(1)) == 1  # nothing but the hello reached the new replica

        c.reset()
        r = c.step(frames())
        assert r["step"] == 0 and r["t"] == 0 and r["episode"] == "e1"
        assert c.step(frames(), reward=0.0)["step"] == 1
        assert c.end()["steps"] == 2
        c.reset()  # after end(), a new episode as usual
        assert c.step(frames())["step"] == 0


def test_a_dropped_socket_fails_pipelined_steps_and_calls_made_while_reconnecting_wait_in_order(replica):
    async def go():
        c = AsyncRewardClient(f"ws://127.0.0.1:{replica.port}", reconnect_attempts=3, reconnect_backoff_s=0.1,
                              reconnect_jitter=0.0)
        await c.connect()
        try:
            await c.hello("pick_place", VIEWS, gamma=0.9)
            await c.reset()
            replica.hold = True
            sent = [await c.send_step(frames(), reward=0.0) for _ in range(3)]
            while len(replica.messages(0)) < 5:
                await asyncio.sleep(0.005)
            replica.drop()
            codes = []
            for f in sent:
                with pytest.raises(StagewardError) as e:
                    await f
                codes.append((e.value.code, e.value.close_code))
            assert c.reconnecting
            replica.hold = False
            calls = [asyncio.ensure_future(c.reset(episode=9)),
                     asyncio.ensure_future(c.step(frames())),
                     asyncio.ensure_future(c.step(frames(), reward=0.0))]
            await asyncio.sleep(0)
            assert len(c._pending) == 0  # waiting, not sent
            episode, r0, r1 = await asyncio.gather(*calls)
            return codes, episode, r0, r1, c.reconnects
        finally:
            await c.close()

    codes, episode, r0, r1, reconnects = asyncio.run(go())
    assert codes == [("SW_ERR_CONNECTION_CLOSED", 1006)] * 3
    assert episode["type"] == "episode" and [r0["step"], r1["step"]] == [0, 1]
    assert r1["seq"] == r0["seq"] + 1 and reconnects == 1
    assert [m["type"] for m in replica.messages(1)] == ["hello", "reset", "step", "step"]
    assert replica.messages(1)[1] == {"type": "reset", "episode": 9}


def test_close_during_the_backoff_stops_the_reconnect(replica):
    called = []
    c = RewardClient(f"ws://127.0.0.1:{replica.port}", reconnect_attempts=5, reconnect_backoff_s=10.0,
                     on_reconnect=called.append)
    c.hello("pick_place", VIEWS, gamma=0.9)
    replica.drop()
    wait_until(lambda: c.reconnecting)
    waiting = c._client  # a call that waits: from another thread, so close() can run meanwhile
    result = {}

    def call():
        try:
            c.reset()
        except StagewardError as e:
            result["error"] = e
    t = threading.Thread(target=call)
    t.start()
    time.sleep(0.05)
    assert len(waiting._waiting) == 1
    t0 = time.monotonic()
    c.close()
    assert time.monotonic() - t0 < 1.0
    t.join(5)
    assert result["error"].code == "SW_ERR_CONNECTION_CLOSED" and "closed" in result["error"].message
    time.sleep(0.05)
    assert len(replica.conns) == 1 and called == []


def test_when_every_try_fails_a_waiting_call_raises_the_last_connection_error(replica):
    with RewardClient(f"ws://127.0.0.1:{replica.port}", reconnect_attempts=3, reconnect_backoff_s=0.01,
                      reconnect_jitter=0.0) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        replica.stop()  # and it never comes back
        wait_until(lambda: c.reconnecting)
        with pytest.raises(StagewardError) as e:
            c.reset()
        assert e.value.code == "SW_ERR_CONNECT" and "could not open" in e.value.message
        assert not c.reconnecting and c.reconnects == 0
        with pytest.raises(StagewardError, match="SW_ERR_CONNECT"):
            c.step(frames())


def test_a_refused_key_is_final_whether_on_the_first_hello_or_a_resent_one(replica):
    replica.key = "right"
    with RewardClient(f"ws://127.0.0.1:{replica.port}", **QUICK) as c:
        with pytest.raises(StagewardError, match="SW_ERR_AUTH"):
            c.hello("pick_place", VIEWS, gamma=0.9)
        time.sleep(0.1)
        assert not c.reconnecting and len(replica.conns) == 1

    replica.key = None
    with RewardClient(f"ws://127.0.0.1:{replica.port}", **QUICK) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        replica.stop()
        replica.key = "right"  # the next replica wants a key this client lacks
        replica.start()
        with pytest.raises(StagewardError) as e:
            c.reset()
        assert e.value.code == "SW_ERR_AUTH"
        time.sleep(0.2)  # longer than the next backoffs: no further try
        assert len(replica.conns) == 3 and not c.reconnecting


def test_an_idle_timeout_is_final_and_reconnect_is_off_by_default(replica):
    with RewardClient(f"ws://127.0.0.1:{replica.port}", **QUICK) as c:
        c.hello("pick_place", VIEWS, gamma=0.9)
        replica.close_with(1001, "SW_ERR_IDLE_TIMEOUT: no message for 60000 ms")
        wait_until(lambda: c._client._failure is not None)
        with pytest.raises(StagewardError) as e:
            c.reset()
        assert e.value.close_code == 1001 and "SW_ERR_IDLE_TIMEOUT" in e.value.message
        assert not c.reconnecting and len(replica.conns) == 1

    with RewardClient(f"ws://127.0.0.1:{replica.port}") as plain:
        plain.hello("pick_place", VIEWS, gamma=0.9)
        plain.reset()
        replica.drop()
        wait_until(lambda: plain._client._failure is not None)
        with pytest.raises(StagewardError) as e:
            plain.step(frames())
        assert e.value.code == "SW_ERR_CONNECTION_CLOSED" and e.value.close_code == 1006
        assert not plain.reconnecting and len(replica.conns) == 2


def test_reconnect_settings_are_checked():
    with pytest.raises(ValueError, match="reconnect_attempts"):
        AsyncRewardClient("ws://127.0.0.1:1", reconnect_attempts=-1)
    with pytest.raises(ValueError, match="reconnect_jitter"):
        RewardClient("ws://127.0.0.1:1", reconnect_jitter=2.0)


def test_the_gym_wrapper_resets_into_a_new_episode_after_a_drain_lost_the_open_one(replica):
    from stageward_client import StagewardRewardWrapper

    class Env:
        def reset(self, seed=None):
            return {"front": np.zeros((4, 4, 3), np.uint8)}, {}

        def step(self, action):
            return {"front": np.ones((4, 4, 3), np.uint8)}, 0.0, False, False, {}

    with RewardClient(f"ws://127.0.0.1:{replica.port}", **QUICK) as c:
        env = StagewardRewardWrapper(Env(), c, task="pick_place", view_fn=lambda o: {"front": o["front"]}, gamma=0.99)
        env.reset()
        env.step(0)
        replica.stop()
        wait_until(lambda: c.reconnecting)
        replica.start()
        wait_until(lambda: c.reconnects == 1)
        with pytest.raises(StagewardError, match="SW_ERR_EPISODE_LOST"):
            env.step(0)  # the episode was on the old connection
        _, info = env.reset()  # no end() of the lost episode reaches the new replica
        assert info["stageward"]["step"] == 0 and info["stageward"]["episode"] == "e1"
        assert [m["type"] for m in replica.messages(1)] == ["hello", "reset", "step"]
        _, _, _, _, info = env.step(0)
        assert info["stageward"]["step"] == 1
        env.close()  # ends the new episode on the new replica
        assert replica.messages(1)[-1]["type"] == "end"


def test_after_a_shutting_down_reply_nothing_more_goes_to_the_draining_replica(replica):
    import concurrent.futures
    with RewardClient(f"ws://127.0.0.1:{replica.port}", **QUICK) as c:
        c.hello("pick_place", VIEWS, gamma=0.99)
        c.reset()
        c.step(frames())
        replica.shutting_down = True
        with pytest.raises(StagewardError, match="SW_ERR_SHUTTING_DOWN"):
            c.step(frames(), reward=0.0)
        sent = len(replica.messages(0))
        with pytest.raises(StagewardError, match="SW_ERR_EPISODE_LOST"):
            c.step(frames(), reward=0.0)  # the episode went with the replica
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            reset = pool.submit(c.reset)  # waits for the next connection
            time.sleep(0.2)
            assert not reset.done() and len(replica.messages(0)) == sent  # nothing more reached the old replica
            replica.shutting_down = False
            replica.stop()  # the drain's 1001
            replica.start()
            assert reset.result(5)["type"] == "episode"
        assert [m["type"] for m in replica.messages(1)] == ["hello", "reset"]
        assert c.step(frames())["step"] == 0
