"""A gymnasium-style reward wrapper: the env's camera frames go to stageward, the learner gets
shaped rewards (models/SHAPING.md in the repository). No gymnasium dependency: any env whose `reset()` returns
`(obs, info)` and `step(action)` returns `(obs, reward, terminated, truncated, info)` works.

    client = RewardClient("ws://127.0.0.1:8000")
    env = StagewardRewardWrapper(env, client, task="pick_place",
                                 view_fn=lambda obs: {"front": obs["front"], "wrist": obs["wrist"]},
                                 gamma=0.99)                       # the learner's own discount
    obs, info = env.reset(seed=0)       # new episode; frames of s_0 sent as step 0
    obs, r, terminated, truncated, info = env.step(action)
    info["stageward"]                   # the server's reply: progress, stage, tau, shaped, timing

Modes (what the learner receives; the env reward is always sent, so the server's logs see it):
- `add`: `r + F`, where `F = lambda * (gamma * Phi(s') * (1 - terminated) - Phi(s))` for `pbrs`;
  this is the server's `shaped` and keeps the optimal policy of the env reward.
- `replace`: `F` alone (the server's `shaped` minus the env reward).
On termination the next potential is 0; on truncation it is kept: the wrapper passes both flags as
the env reports them and never turns one into the other. Either ends the episode (its summary goes
in `info["stageward"]["summary"]`); the next `reset()` starts a new one.

With a reconnecting client (`reconnect_attempts` > 0), a connection lost mid-episode makes the
next `step()` raise (the pending step's `SW_ERR_CONNECTION_CLOSED`, or `SW_ERR_EPISODE_LOST`): the
episode's state was on the old replica. `reset()` then starts a new episode on the new connection;
the lost episode is not ended (there is nothing left to end).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from .client import Frames
from .errors import EPISODE_LOST, StagewardError

MODES = ("add", "replace")


class StagewardRewardWrapper:
    """Wraps `env`; `client` is a connected `RewardClient` (or anything with its methods).

    `view_fn(observation) -> {view: frame}` picks the camera frames (uint8 HWC arrays or JPEG/PNG
    bytes) out of an observation; its keys name the views sent in `hello`. The session opens at the
    first `reset()`. `gamma` must equal the learner's discount.
    """

    def __init__(self, env: Any, client: Any, task: str, view_fn: Callable[[Any], Frames], gamma: float,
                 shaping: str = "pbrs", mode: str = "add", progress: Optional[str] = None):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma: expected a discount in (0, 1], got {gamma!r}")
        self.env = env
        self.client = client
        self.task = task
        self.view_fn = view_fn
        self.gamma = float(gamma)
        self.shaping = shaping
        self.mode = mode
        self.progress = progress
        self.ready: Optional[Dict[str, Any]] = None
        self._episode_open = False

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the wrapper lacks: action_space, observation_space, render, ...
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Any:
        return getattr(self.env, "unwrapped", self.env)

    def reset(self, **kwargs: Any) -> Tuple[Any, Dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        frames = self.view_fn(obs)
        if self.ready is None:
            self.ready = self.client.hello(self.task, list(frames), self.gamma, self.shaping, self.progress)
        if self._episode_open:  # reset mid-episode: close the old one, neither terminated nor truncated
            self._episode_open = False
            self._end_open_episode()
        self.client.reset()
        reply = self.client.step(frames)  # t = 0: the server computes Phi(s_0)
        self._episode_open = True
        info = dict(info)
        info["stageward"] = dict(reply)
        return obs, info

    def step(self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
        if not self._episode_open:
            raise RuntimeError("step() before reset(), or after the episode terminated or was truncated: "
                               "call reset() to start a new episode")
        result = self.env.step(action)
        if len(result) != 5:
            raise TypeError("env.step() must return (obs, reward, terminated, truncated, info); "
                            f"got a {len(result)}-tuple (old gym API?)")
        obs, env_reward, terminated, truncated, info = result
        env_reward, terminated, truncated = float(env_reward), bool(terminated), bool(truncated)
        reply = self.client.step(self.view_fn(obs), reward=env_reward, terminated=terminated, truncated=truncated)
        shaped = float(reply["shaped"])
        reward = shaped if self.mode == "add" else shaped - env_reward
        meta = dict(reply)
        meta["env_reward"] = env_reward
        if terminated or truncated:
            self._episode_open = False
            success = _success(info)
            meta["summary"] = self.client.end(terminated=terminated, truncated=truncated, success=success)
        info = dict(info)
        info["stageward"] = meta
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Ends an open episode and closes the env; the client stays open (the caller owns it)."""
        try:
            if self._episode_open:
                self._episode_open = False
                self._end_open_episode()
        finally:
            close = getattr(self.env, "close", None)
            if close is not None:
                close()


    def _end_open_episode(self) -> None:
        """Ends the open episode, unless a lost connection already took it with it."""
        try:
            self.client.end()
        except StagewardError as err:
            if err.code != EPISODE_LOST:
                raise


def _success(info: Mapping[str, Any]) -> Optional[bool]:
    value = info.get("is_success", info.get("success")) if isinstance(info, Mapping) else None
    return None if value is None else bool(value)
