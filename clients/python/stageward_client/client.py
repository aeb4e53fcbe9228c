"""Clients for stageward's native WebSocket protocol (`/v1/stream`, server/PROTOCOL.md in the repository).

    from stageward_client import RewardClient

    with RewardClient("ws://127.0.0.1:8000", api_key=None) as client:
        ready = client.hello(task="pick_place", views=["front", "side", "wrist"], gamma=0.99)
        client.reset()
        r = client.step({"front": img0, "side": img1, "wrist": img2})          # step 0: Phi(s_0)
        r = client.step(frames, reward=0.0, terminated=False, truncated=False)  # one reply per step
        print(r["progress"], r["stage"]["name"], r["shaped"])
        summary = client.end(success=True)

`AsyncRewardClient` is the asyncio implementation; `RewardClient` runs one on a private event-loop
thread and blocks on each call (websockets 10 has no sync client). Frames are uint8 HWC numpy
arrays (any size; the server resizes; grey [H, W] and RGBA pass too) or encoded JPEG/PNG bytes. Every request gets exactly one
reply, in order; an `error` reply raises `StagewardError(code, message)`. `step_nowait` pipelines
steps (the server bounds the in-flight steps per session and answers each in order).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import threading
from typing import Any, Deque, Dict, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from . import msgpack_numpy
from .errors import CONNECT, CONNECTION_CLOSED, PROTOCOL, StagewardError

PROTOCOL_VERSION = 1
STREAM_PATH = "/v1/stream"

Frame = Union[np.ndarray, bytes, bytearray, memoryview]
Frames = Mapping[str, Frame]

try:  # websockets >= 13: the new asyncio implementation takes `additional_headers`
    from websockets.asyncio.client import connect as _ws_connect  # type: ignore

    _HEADERS_ARG = "additional_headers"
except ImportError:  # websockets 10-12: the legacy client takes `extra_headers`
    from websockets.client import connect as _ws_connect  # type: ignore

    _HEADERS_ARG = "extra_headers"
from websockets.exceptions import ConnectionClosed, InvalidHandshake


def stream_url(url: str) -> str:
    """`ws://host:port` (no path) means the native endpoint, `ws://host:port/v1/stream`."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"url: expected ws:// or wss://, got {url!r}")
    if parts.path in ("", "/"):
        parts = parts._replace(path=STREAM_PATH)
    return urlunsplit(parts)


def encode_frame(view: str, frame: Frame) -> Union[np.ndarray, bytes]:
    """A frame as it goes on the wire: uint8 HWC arrays as they are, encoded images as bytes."""
    if isinstance(frame, np.ndarray):
        if (frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4))
                or frame.size == 0):
            raise ValueError(f"frames[{view!r}]: expected a non-empty uint8 array [H, W, 3] (RGB; [H, W], "
                             f"[H, W, 1] and [H, W, 4] also pass), got {frame.dtype} {frame.shape}")
        return frame
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame)
    raise TypeError(f"frames[{view!r}]: expected a uint8 numpy array [H, W, 3] or JPEG/PNG bytes, "
                    f"got {type(frame).__name__}")


def encode_frames(frames: Frames) -> Dict[str, Union[np.ndarray, bytes]]:
    if not isinstance(frames, Mapping) or not frames:
        raise ValueError("frames: expected a non-empty mapping of view name -> image")
    return {str(view): encode_frame(str(view), f) for view, f in frames.items()}


class AsyncRewardClient:
    """asyncio client: one connection, one session, requests answered in order.

    `max_message_bytes` bounds a reply (replies are small); `open_timeout_s` bounds the handshake.
    """

    def __init__(self, url: str, api_key: Optional[str] = None, *, open_timeout_s: float = 10.0,
                 max_message_bytes: int = 16 * 1024 * 1024):
        self.url = stream_url(url)
        self._api_key = api_key
        self._open_timeout_s = open_timeout_s
        self._max_message_bytes = max_message_bytes
        self._ws: Any = None
        self._reader: Optional[asyncio.Task] = None
        self._pending: Deque[Tuple[asyncio.Future, Optional[int]]] = collections.deque()
        self._failure: Optional[StagewardError] = None
        self._packer = msgpack_numpy.Packer()
        self._seq = 0
        self._t = 0
        self.ready: Optional[Dict[str, Any]] = None
        self.episode: Optional[Dict[str, Any]] = None

    async def __aenter__(self) -> "AsyncRewardClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        headers = {"Authorization": f"Api-Key {self._api_key}"} if self._api_key else {}
        kwargs = {_HEADERS_ARG: headers, "compression": None, "max_size": self._max_message_bytes,
                  "open_timeout": self._open_timeout_s}
        try:
            self._ws = await _ws_connect(self.url, **kwargs)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as e:
            raise StagewardError(CONNECT, f"could not open {self.url}: {e}") from None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def hello(self, task: str, views: Sequence[str], gamma: float, shaping: str = "pbrs",
                    progress: Optional[str] = None, *, model: Optional[str] = None,
                    fps: Optional[float] = None, scale: Optional[float] = None,
                    composition: Optional[str] = None) -> Dict[str, Any]:
        """Open the session: returns `ready` {session, model: {name, version, views, stages, image}, limits}.

        shaping: pbrs | delta | progress | sparse; progress: sarm | grm | both (server default when
        None); scale: lambda of the shaping term; composition: argmax | expected (SARM).
        """
        msg: Dict[str, Any] = {"type": "hello", "protocol": PROTOCOL_VERSION, "task": task,
                               "views": [str(v) for v in views], "gamma": float(gamma), "shaping": shaping}
        for key, value in (("progress", progress), ("model", model), ("composition", composition)):
            if value is not None:
                msg[key] = value
        for key, number in (("fps", fps), ("scale", scale)):
            if number is not None:
                msg[key] = float(number)
        self.ready = await self._request(msg)
        return self.ready

    async def reset(self, goal: Optional[Frames] = None, episode: Optional[Union[str, int]] = None) -> Dict[str, Any]:
        """Start an episode (clears the server's window and cache); the next step is t = 0."""
        msg: Dict[str, Any] = {"type": "reset"}
        if episode is not None:
            msg["episode"] = episode
        if goal is not None:
            msg["goal"] = encode_frames(goal)
        self.episode = await self._request(msg)
        self._t = 0
        return self.episode

    async def send_step(self, frames: Frames, reward: Optional[float] = None, terminated: bool = False,
                        truncated: bool = False, state: Optional[np.ndarray] = None) -> "asyncio.Future[Dict[str, Any]]":
        """Send one step now; the returned future resolves to its `reward` reply (or raises)."""
        msg: Dict[str, Any] = {"type": "step", "seq": self._seq, "t": self._t, "frames": encode_frames(frames)}
        if reward is not None:
            msg["reward"] = float(reward)
        if terminated:
            msg["terminated"] = True
        if truncated:
            msg["truncated"] = True
        if state is not None:
            msg["state"] = np.asarray(state, dtype=np.float32)
        fut = await self._send(msg, seq=self._seq)
        self._seq += 1
        self._t += 1
        return fut

    async def step(self, frames: Frames, reward: Optional[float] = None, terminated: bool = False,
                   truncated: bool = False, state: Optional[np.ndarray] = None) -> Dict[str, Any]:
        """One step and its reply: {seq, episode, step, progress, stage, tau, reward, shaped, timing, ...}."""
        return await (await self.send_step(frames, reward, terminated, truncated, state))

    async def end(self, terminated: Optional[bool] = None, truncated: Optional[bool] = None,
                  success: Optional[bool] = None) -> Dict[str, Any]:
        """End the episode: returns its `summary`."""
        msg: Dict[str, Any] = {"type": "end"}
        for key, value in (("terminated", terminated), ("truncated", truncated), ("success", success)):
            if value is not None:
                msg[key] = bool(value)
        summary = await self._request(msg)
        self.episode = None
        return summary

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
            self._reader = None

    # -- internals -------------------------------------------------------------------------

    async def _request(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return await (await self._send(msg, seq=None))

    async def _send(self, msg: Dict[str, Any], seq: Optional[int]) -> "asyncio.Future[Dict[str, Any]]":
        if self._ws is None:
            raise StagewardError(CONNECTION_CLOSED, "not connected: call connect() first")
        if self._failure is not None:
            raise self._failure
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((fut, seq))  # before sending, so a fast reply finds it
        try:
            await self._ws.send(self._packer.pack(msg))
        except ConnectionClosed:
            pass  # the reader fails every pending future with the close code
        return fut

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        except Exception as e:  # a reply we cannot read: fail loudly, not silently
            self._fail(StagewardError(PROTOCOL, f"unreadable reply: {e}"))
            await self._ws.close(1002)
            return
        code, reason = self._ws.close_code, self._ws.close_reason
        self._fail(StagewardError(CONNECTION_CLOSED, f"connection closed ({code} {reason or 'no reason'})".strip(),
                                  close_code=code))

    def _dispatch(self, raw: Union[bytes, str]) -> None:
        msg = json.loads(raw) if isinstance(raw, str) else msgpack_numpy.unpackb(raw)
        if not isinstance(msg, dict) or "type" not in msg:
            raise ValueError(f"expected a map with a 'type', got {type(msg).__name__}")
        if not self._pending:
            if msg["type"] == "error":  # not the answer to a request: the session is failing
                self._failure = _error_of(msg)
                return
            raise ValueError(f"a '{msg['type']}' message arrived with no request waiting")
        fut, seq = self._pending[0]
        got = msg.get("seq", seq)
        if seq is not None and got is not None and got != seq:  # left queued: _fail answers it
            raise ValueError(f"a '{msg['type']}' for seq {got} arrived where seq {seq} was next")
        self._pending.popleft()
        if fut.done():  # its caller gave up (timeout); the reply is dropped with it
            return
        if msg["type"] == "error":
            fut.set_exception(_error_of(msg))
        else:
            fut.set_result(msg)

    def _fail(self, err: StagewardError) -> None:
        if self._failure is None:
            self._failure = err
        while self._pending:
            fut, _ = self._pending.popleft()
            if not fut.done():
                fut.set_exception(self._failure)


def _error_of(msg: Mapping[str, Any]) -> StagewardError:
    return StagewardError(str(msg.get("code", "SW_ERR_UNKNOWN")), str(msg.get("message", "")), seq=msg.get("seq"))


class RewardClient:
    """Blocking client: an `AsyncRewardClient` on a private event-loop thread.

    Each call waits at most `timeout_s` (then raises TimeoutError; a late reply is discarded).
    """

    def __init__(self, url: str, api_key: Optional[str] = None, *, timeout_s: float = 30.0,
                 open_timeout_s: float = 10.0, max_message_bytes: int = 16 * 1024 * 1024):
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stageward-client", daemon=True)
        self._thread.start()
        self._client = AsyncRewardClient(url, api_key, open_timeout_s=open_timeout_s,
                                         max_message_bytes=max_message_bytes)
        try:
            self._call(self._client.connect(), open_timeout_s + 1.0)
        except BaseException:
            self._stop_loop()
            raise

    @property
    def url(self) -> str:
        return self._client.url

    @property
    def ready(self) -> Optional[Dict[str, Any]]:
        return self._client.ready

    def __enter__(self) -> "RewardClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def hello(self, task: str, views: Sequence[str], gamma: float, shaping: str = "pbrs",
              progress: Optional[str] = None, *, model: Optional[str] = None,
              fps: Optional[float] = None, scale: Optional[float] = None,
              composition: Optional[str] = None) -> Dict[str, Any]:
        return self._call(self._client.hello(task, views, gamma, shaping, progress, model=model, fps=fps,
                                             scale=scale, composition=composition))

    def reset(self, goal: Optional[Frames] = None, episode: Optional[Union[str, int]] = None) -> Dict[str, Any]:
        return self._call(self._client.reset(goal, episode))

    def step(self, frames: Frames, reward: Optional[float] = None, terminated: bool = False,
             truncated: bool = False, state: Optional[np.ndarray] = None) -> Dict[str, Any]:
        return self._call(self._client.step(frames, reward, terminated, truncated, state))

    def step_nowait(self, frames: Frames, reward: Optional[float] = None, terminated: bool = False,
                    truncated: bool = False, state: Optional[np.ndarray] = None) -> "concurrent.futures.Future[Dict[str, Any]]":
        """Send a step and return at once; `.result()` on the returned future gives its reply."""
        sent = self._call(self._client.send_step(frames, reward, terminated, truncated, state))
        return asyncio.run_coroutine_threadsafe(_await(sent), self._loop)

    def end(self, terminated: Optional[bool] = None, truncated: Optional[bool] = None,
            success: Optional[bool] = None) -> Dict[str, Any]:
        return self._call(self._client.end(terminated, truncated, success))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.close())
        finally:
            self._stop_loop()

    def _call(self, coro: Any, timeout_s: Optional[float] = None) -> Any:
        if self._loop.is_closed():
            coro.close()
            raise StagewardError(CONNECTION_CLOSED, "the client is closed")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(self._timeout_s if timeout_s is None else timeout_s)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no reply from {self.url} within {timeout_s or self._timeout_s} s") from None

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


async def _await(fut: "asyncio.Future[Any]") -> Any:
    return await fut
