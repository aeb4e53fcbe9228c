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

Reconnect (off unless `reconnect_attempts` > 0; 5 is a good value). Behind a load balancer, a
replica that drains on SIGTERM answers what it has received and closes its connections with 1001.
With reconnect on, the client then opens the same URL again (the balancer picks a live replica),
re-sends the session's hello with the same options, and passes the new `ready` to
`on_reconnect(ready)` (also `client.ready`; `client.reconnects` counts them):

- only once a hello has succeeded, never after the client's own `close()` (which also stops a
  reconnect under way), and only on closes that need not recur: 1001 (not an idle timeout), 1005,
  1006 (the socket dropped), 1011, 1012, 1013, 1014. A wrong key (4401), protocol errors (1002,
  1007-1009, an unreadable reply), a slow reader (4429), an idle timeout and a normal close (1000)
  stay final, as before: every later call raises that error.
- Requests pending at the close raise first, as before (`SW_ERR_CONNECTION_CLOSED` with
  `.close_code`, or the server's `SW_ERR_SHUTTING_DOWN` reply during a drain); they are not re-sent.
- An episode's state lives on the server and is gone with the connection. If one was open (`reset()`
  called, `end()` not answered), `step()` and `end()` raise `SW_ERR_EPISODE_LOST` until `reset()`
  starts a new episode: a step never continues the old episode, nor starts a new one, silently.
- A call made while reconnecting waits for it and is sent on the new connection, in call order; so
  does a call made after a reply said SW_ERR_SHUTTING_DOWN (the replica drains and closes next), which
  also loses the open episode: nothing more goes to a replica that is leaving.
- Try i (0-based; open + hello) waits `reconnect_backoff_s * 2**i`, at most
  `reconnect_max_backoff_s`, less a random fraction of up to `reconnect_jitter`; defaults 0.1 s,
  2 s, 0.2 (5 tries: about 3 s in all). A try refused for good (HTTP 4xx other than 408/429, or a
  hello refused with a code other than SW_ERR_TOO_MANY_SESSIONS, SW_ERR_SHUTTING_DOWN, SW_ERR_BUSY,
  SW_ERR_INTERNAL, SW_ERR_INFERENCE) ends the reconnect; when it ends without a connection, waiting
  and later calls raise the last try's error.

It is off by default because a reconnect changes what the rewards come from: the new replica may
serve another model version (a rolling deploy), and one training run would then mix two reward
functions. Turn it on where that is acceptable, and compare `ready["model"]` in `on_reconnect`
(which runs on the client's event loop: in `RewardClient`, its private thread; keep it short).
"""
from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import random
import re
import threading
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from . import msgpack_numpy
from .errors import CONNECT, CONNECTION_CLOSED, EPISODE_LOST, PROTOCOL, StagewardError

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

#: Close codes after which a reconnect may succeed (going away, dropped, server fault, restart, try later).
RECONNECT_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1014})
#: Refusals of a re-sent hello that another try (or replica) may not repeat.
RETRY_CODES = frozenset({"SW_ERR_TOO_MANY_SESSIONS", "SW_ERR_SHUTTING_DOWN", "SW_ERR_BUSY", "SW_ERR_INTERNAL",
                         "SW_ERR_INFERENCE"})
_REASON_CODE = re.compile(r"^(SW_ERR_[A-Z_]+):")


def _may_retry(err: StagewardError) -> bool:
    """Whether another try may succeed: set on close and connect errors made here, else by code."""
    retry = getattr(err, "_retry", None)
    return err.code in RETRY_CODES if retry is None else bool(retry)


def _http_status(e: BaseException) -> Optional[int]:
    status = getattr(e, "status_code", None)  # websockets 10-12: InvalidStatusCode
    if status is None:
        status = getattr(getattr(e, "response", None), "status_code", None)  # >= 13: InvalidStatus
    return status if isinstance(status, int) else None


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

    `max_message_bytes` bounds a reply (replies are small); `open_timeout_s` bounds the handshake
    (and, on a reconnect, the wait for `ready`). `reconnect_attempts` > 0 turns reconnect on (module
    docstring); `on_reconnect(ready)` is called after each one.
    """

    def __init__(self, url: str, api_key: Optional[str] = None, *, open_timeout_s: float = 10.0,
                 max_message_bytes: int = 16 * 1024 * 1024, reconnect_attempts: int = 0,
                 reconnect_backoff_s: float = 0.1, reconnect_max_backoff_s: float = 2.0,
                 reconnect_jitter: float = 0.2, on_reconnect: Optional[Callable[[Dict[str, Any]], Any]] = None):
        if isinstance(reconnect_attempts, bool) or not isinstance(reconnect_attempts, int) or reconnect_attempts < 0:
            raise ValueError(f"reconnect_attempts: expected an int >= 0, got {reconnect_attempts!r}")
        if not (reconnect_backoff_s >= 0 and reconnect_max_backoff_s >= 0 and 0 <= reconnect_jitter <= 1):
            raise ValueError("reconnect_backoff_s and reconnect_max_backoff_s: expected >= 0; reconnect_jitter: "
                             f"expected [0, 1]; got {reconnect_backoff_s!r}, {reconnect_max_backoff_s!r}, "
                             f"{reconnect_jitter!r}")
        self.url = stream_url(url)
        self._api_key = api_key
        self._open_timeout_s = open_timeout_s
        self._max_message_bytes = max_message_bytes
        self._reconnect_attempts = reconnect_attempts
        self._reconnect_backoff_s = float(reconnect_backoff_s)
        self._reconnect_max_backoff_s = float(reconnect_max_backoff_s)
        self._reconnect_jitter = float(reconnect_jitter)
        self._on_reconnect = on_reconnect
        self._ws: Any = None
        self._reader: Optional[asyncio.Task] = None
        self._pending: Deque[Tuple[asyncio.Future, Optional[int]]] = collections.deque()
        self._waiting: Deque[Tuple[asyncio.Future, Dict[str, Any], Optional[int]]] = collections.deque()
        self._failure: Optional[StagewardError] = None  # final: every request raises it
        self._closing: Optional[StagewardError] = None  # this connection's unsolicited error
        self._packer = msgpack_numpy.Packer()
        self._seq = 0
        self._t = 0
        self._hello_msg: Optional[Dict[str, Any]] = None  # the hello that succeeded, re-sent on reconnect
        self._episode_state = "none"  # open: reset() called, end() not answered; lost: open at a close
        self._reconnecting = False
        self._leaving = False  # a reply said SW_ERR_SHUTTING_DOWN: new calls wait for the next connection
        self._reconnect_task: Optional[asyncio.Task] = None
        self._late_close: Optional[StagewardError] = None  # the current socket closed during a reconnect
        self._user_closed = False
        self.reconnects = 0
        self.ready: Optional[Dict[str, Any]] = None
        self.episode: Optional[Dict[str, Any]] = None

    @property
    def reconnecting(self) -> bool:
        """A reconnect is under way: calls wait for it."""
        return self._reconnecting

    async def __aenter__(self) -> "AsyncRewardClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        self._ws = await self._open()
        self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))

    async def _open(self) -> Any:
        headers = {"Authorization": f"Api-Key {self._api_key}"} if self._api_key else {}
        kwargs = {_HEADERS_ARG: headers, "compression": None, "max_size": self._max_message_bytes,
                  "open_timeout": self._open_timeout_s}
        try:
            return await _ws_connect(self.url, **kwargs)
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as e:
            err = StagewardError(CONNECT, f"could not open {self.url}: {e}")
            status = _http_status(e)
            err._retry = status is None or status >= 500 or status in (408, 429)  # type: ignore[attr-defined]
            raise err from None

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
        self._hello_msg = msg
        return self.ready

    async def reset(self, goal: Optional[Frames] = None, episode: Optional[Union[str, int]] = None) -> Dict[str, Any]:
        """Start an episode (clears the server's window and cache); the next step is t = 0."""
        msg: Dict[str, Any] = {"type": "reset"}
        if episode is not None:
            msg["episode"] = episode
        if goal is not None:
            msg["goal"] = encode_frames(goal)
        self._episode_state = "open"
        self.episode = await self._request(msg)
        self._t = 0
        return self.episode

    async def send_step(self, frames: Frames, reward: Optional[float] = None, terminated: bool = False,
                        truncated: bool = False, state: Optional[np.ndarray] = None) -> "asyncio.Future[Dict[str, Any]]":
        """Send one step now; the returned future resolves to its `reward` reply (or raises)."""
        self._check_episode()
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
        self._check_episode()
        msg: Dict[str, Any] = {"type": "end"}
        for key, value in (("terminated", terminated), ("truncated", truncated), ("success", success)):
            if value is not None:
                msg[key] = bool(value)
        summary = await self._request(msg)
        self.episode = None
        if self._episode_state == "open":
            self._episode_state = "none"
        return summary

    async def close(self) -> None:
        """Close the connection and stop any reconnect; every later call raises."""
        self._user_closed = True
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
            self._reader = None

    # -- internals -------------------------------------------------------------------------

    def _check_episode(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._episode_state == "lost":
            raise StagewardError(EPISODE_LOST, "the connection closed mid-episode; the episode's state was lost with "
                                               "it; call reset() to start a new episode")

    async def _request(self, msg: Dict[str, Any]) -> Dict[str, Any]:
        return await (await self._send(msg, seq=None))

    async def _send(self, msg: Dict[str, Any], seq: Optional[int],
                    internal: bool = False) -> "asyncio.Future[Dict[str, Any]]":
        if self._ws is None:
            raise StagewardError(CONNECTION_CLOSED, "not connected: call connect() first")
        if self._failure is not None:
            raise self._failure
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        if (self._reconnecting or self._leaving) and not internal:  # sent, in call order, once the new connection is ready
            self._waiting.append((fut, msg, seq))
            return fut
        if self._closing is not None:
            raise self._closing
        self._pending.append((fut, seq))  # before sending, so a fast reply finds it
        try:
            await self._ws.send(self._packer.pack(msg))
        except ConnectionClosed:
            pass  # the reader fails every pending future with the close code
        return fut

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                if ws is self._ws:
                    self._dispatch(raw)
        except ConnectionClosed:
            pass
        except Exception as e:  # a reply we cannot read: fail loudly, not silently
            self._fail(StagewardError(PROTOCOL, f"unreadable reply: {e}"))
            await ws.close(1002)
            return
        if ws is not self._ws:  # a socket already replaced
            return
        code, reason = ws.close_code, ws.close_reason
        err = StagewardError(CONNECTION_CLOSED, f"connection closed ({code} {reason or 'no reason'})".strip(),
                             close_code=code)
        m = _REASON_CODE.match(reason or "")
        idle = m is not None and m.group(1) == "SW_ERR_IDLE_TIMEOUT"  # reconnecting would idle out again
        err._retry = code in RECONNECT_CLOSE_CODES and not idle  # type: ignore[attr-defined]
        self._on_close(err)

    def _on_close(self, close_err: StagewardError) -> None:
        err = self._closing or close_err
        if self._closing is not None:
            err._retry = _may_retry(close_err) and _may_retry(err)  # type: ignore[attr-defined]
        while self._pending:
            fut, _ = self._pending.popleft()
            if not fut.done():
                fut.set_exception(self._failure or err)
        if self._reconnecting:  # a try's socket (its hello fails), or the new one while waiting calls go out
            self._late_close = err
            return
        # Leaving, the episode was marked lost already; one opened since waits for the next connection.
        was_leaving, self._leaving = self._leaving, False
        self._after_close(err, episode_kept=was_leaving)

    def _after_close(self, err: StagewardError, episode_kept: bool = False) -> None:
        if self._failure is not None:
            return
        if self._reconnect_attempts <= 0 or self._hello_msg is None or self._user_closed or not _may_retry(err):
            self._fail(err)
            return
        if self._episode_state == "open" and not episode_kept:
            self._episode_state = "lost"
            self.episode = None
        self._reconnecting = True
        self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_all(err))

    async def _reconnect_all(self, cause: StagewardError) -> None:
        """Try until one opens a socket and gets a ready; without one, every waiting call fails."""
        last = cause
        try:
            for i in range(self._reconnect_attempts):
                delay = min(self._reconnect_max_backoff_s, self._reconnect_backoff_s * 2 ** i)
                await asyncio.sleep(delay * (1 - self._reconnect_jitter * random.random()))
                ready = await self._attempt()
                if isinstance(ready, StagewardError):
                    last = ready
                    if not _may_retry(last):
                        break
                    continue
                self.ready = ready
                self.reconnects += 1
                if self._on_reconnect is not None:
                    try:
                        self._on_reconnect(ready)
                    except Exception:  # a logging callback must not undo the reconnect
                        pass
                await self._flush()
                self._reconnecting = False
                late, self._late_close = self._late_close, None
                if late is not None:  # the new connection closed while waiting calls went out
                    self._after_close(late)
                return
        except asyncio.CancelledError:  # close()
            last = StagewardError(CONNECTION_CLOSED, "the client was closed")
        self._reconnecting = False
        self._fail(last)

    async def _flush(self) -> None:
        """Send the calls that waited, in call order (calls made meanwhile queue behind them)."""
        while self._waiting and self._late_close is None:
            fut, msg, seq = self._waiting.popleft()
            if fut.done():  # its caller gave up (timeout): never sent
                continue
            if self._closing is not None:
                fut.set_exception(self._closing)
                continue
            self._pending.append((fut, seq))
            try:
                await self._ws.send(self._packer.pack(msg))
            except ConnectionClosed:
                pass  # the reader fails every pending future with the close code

    async def _attempt(self) -> Union[Dict[str, Any], StagewardError]:
        """One try: open the URL, re-send the hello; an unanswered hello is cut after open_timeout_s."""
        try:
            ws = await self._open()
        except StagewardError as e:
            return e
        self._ws, self._closing, self._late_close = ws, None, None
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            fut = await self._send(self._hello_msg or {}, None, internal=True)
            return await asyncio.wait_for(fut, self._open_timeout_s)
        except StagewardError as e:
            return e
        except asyncio.TimeoutError:
            _abort(ws)
            err = StagewardError(CONNECTION_CLOSED, f"no ready from {self.url} within {self._open_timeout_s} s")
            err._retry = True  # type: ignore[attr-defined]
            return err

    def _dispatch(self, raw: Union[bytes, str]) -> None:
        msg = json.loads(raw) if isinstance(raw, str) else msgpack_numpy.unpackb(raw)
        if not isinstance(msg, dict) or "type" not in msg:
            raise ValueError(f"expected a map with a 'type', got {type(msg).__name__}")
        if not self._pending:
            if msg["type"] == "error":  # not the answer to a request: the session is failing
                self._closing = _error_of(msg)
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
            err = _error_of(msg)
            if err.code == "SW_ERR_SHUTTING_DOWN":
                self._replica_leaving()
            fut.set_exception(err)
        else:
            fut.set_result(msg)

    def _replica_leaving(self) -> None:
        """The replica drains and closes next: with reconnect on, nothing more goes to it (see the module docstring)."""
        if self._reconnect_attempts <= 0 or self._hello_msg is None or self._reconnecting or self._user_closed:
            return
        self._leaving = True
        if self._episode_state == "open":
            self._episode_state = "lost"
            self.episode = None

    def _fail(self, err: StagewardError) -> None:
        """Final: this error answers what is pending or waiting, and every later call."""
        if self._failure is None:
            self._failure = err
        while self._pending:
            fut, _ = self._pending.popleft()
            if not fut.done():
                fut.set_exception(self._failure)
        while self._waiting:
            fut, _, _ = self._waiting.popleft()
            if not fut.done():
                fut.set_exception(self._failure)


def _abort(ws: Any) -> None:
    transport = getattr(ws, "transport", None)
    if transport is not None:
        transport.abort()


def _error_of(msg: Mapping[str, Any]) -> StagewardError:
    return StagewardError(str(msg.get("code", "SW_ERR_UNKNOWN")), str(msg.get("message", "")), seq=msg.get("seq"))


class RewardClient:
    """Blocking client: an `AsyncRewardClient` on a private event-loop thread.

    Each call waits at most `timeout_s` (then raises TimeoutError; a late reply is discarded), the
    wait for a reconnect included. The reconnect options are `AsyncRewardClient`'s; `on_reconnect`
    runs on the client's private event-loop thread.
    """

    def __init__(self, url: str, api_key: Optional[str] = None, *, timeout_s: float = 30.0,
                 open_timeout_s: float = 10.0, max_message_bytes: int = 16 * 1024 * 1024,
                 reconnect_attempts: int = 0, reconnect_backoff_s: float = 0.1,
                 reconnect_max_backoff_s: float = 2.0, reconnect_jitter: float = 0.2,
                 on_reconnect: Optional[Callable[[Dict[str, Any]], Any]] = None):
        self._timeout_s = timeout_s
        client = AsyncRewardClient(url, api_key, open_timeout_s=open_timeout_s, max_message_bytes=max_message_bytes,
                                   reconnect_attempts=reconnect_attempts, reconnect_backoff_s=reconnect_backoff_s,
                                   reconnect_max_backoff_s=reconnect_max_backoff_s, reconnect_jitter=reconnect_jitter,
                                   on_reconnect=on_reconnect)  # checks its arguments before a thread starts
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stageward-client", daemon=True)
        self._thread.start()
        self._client = client
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
        """The `ready` of the latest successful hello (the one re-sent on the last reconnect, if any)."""
        return self._client.ready

    @property
    def reconnects(self) -> int:
        """Reconnects that succeeded."""
        return self._client.reconnects

    @property
    def reconnecting(self) -> bool:
        """A reconnect is under way: calls wait for it."""
        return self._client.reconnecting

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
