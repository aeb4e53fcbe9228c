"""StagewardRewardWrapper with a fake env and a fake client that shapes like the server (PBRS)."""
import numpy as np
import pytest

from stageward_client import StagewardRewardWrapper


class FakeEnv:
    """Episodes of `length` steps; reward 1 on the last step; terminates or truncates there."""

    def __init__(self, length=3, ending="terminated"):
        self.length, self.ending, self.t, self.closed = length, ending, 0, False
        self.action_space = "discrete(2)"

    def reset(self, seed=None):
        self.t = 0
        return {"front": np.full((4, 4, 3), 0, np.uint8), "t": 0}, {"seed": seed}

    def step(self, action):
        self.t += 1
        last = self.t == self.length
        obs = {"front": np.full((4, 4, 3), self.t, np.uint8), "t": self.t}
        return (obs, 1.0 if last else 0.0, last and self.ending == "terminated",
                last and self.ending == "truncated", {"is_success": last})

    def close(self):
        self.closed = True


class FakeClient:
    """Phi(s_t) = t / 10. shaped = r + gamma * Phi' * (1 - terminated) - Phi, as the server does."""

    def __init__(self):
        self.calls = []
        self.gamma = None
        self.phi = None
        self.ended = True

    def hello(self, task, views, gamma, shaping="pbrs", progress=None):
        self.calls.append(("hello", task, tuple(views), gamma, shaping))
        self.gamma = gamma
        return {"type": "ready", "session": "s1"}

    def reset(self, goal=None, episode=None):
        self.calls.append(("reset",))
        self.phi, self.ended = None, False
        return {"type": "episode", "episode": "e"}

    def step(self, frames, reward=None, terminated=False, truncated=False, state=None):
        assert not self.ended, "step after the episode ended"
        t = int(frames["front"][0, 0, 0])
        self.calls.append(("step", t, reward, terminated, truncated))
        phi_next = t / 10
        if self.phi is None:
            shaped = 0.0
        else:
            shaped = (reward or 0.0) + self.gamma * phi_next * (0.0 if terminated else 1.0) - self.phi
        self.phi = phi_next
        return {"type": "reward", "step": t, "progress": phi_next, "stage": {"index": 0, "name": "reach"},
                "shaped": shaped}

    def end(self, terminated=None, truncated=None, success=None):
        self.calls.append(("end", terminated, truncated, success))
        self.ended = True
        return {"type": "summary", "steps": 3}


def make(ending="terminated", mode="add", gamma=0.9):
    env, client = FakeEnv(ending=ending), FakeClient()
    w = StagewardRewardWrapper(env, client, "pick_place", lambda obs: {"front": obs["front"]}, gamma=gamma, mode=mode)
    return w, env, client


def test_reset_opens_the_session_once_and_sends_the_initial_frames_as_step_zero():
    w, _, client = make()
    obs, info = w.reset(seed=3)
    assert info["seed"] == 3 and info["stageward"]["progress"] == 0.0
    assert client.calls == [("hello", "pick_place", ("front",), 0.9, "pbrs"), ("reset",), ("step", 0, None, False, False)]
    w.step(0), w.step(0), w.step(0)
    w.reset()
    assert [c[0] for c in client.calls].count("hello") == 1


def test_add_mode_returns_the_servers_shaped_reward_and_puts_progress_in_info():
    w, _, _ = make(gamma=0.9)
    w.reset()
    _, r, term, trunc, info = w.step(0)
    assert r == pytest.approx(0.9 * 0.1 - 0.0)
    assert not term and not trunc
    assert info["stageward"]["progress"] == pytest.approx(0.1) and info["stageward"]["env_reward"] == 0.0
    assert info["is_success"] is False


def test_replace_mode_returns_the_shaping_term_without_the_env_reward():
    w, _, _ = make(mode="replace", gamma=0.9)
    w.reset()
    w.step(0), w.step(0)
    _, r, term, _, _ = w.step(0)  # env reward 1, terminated: F = 0 - Phi(s_2) = -0.2
    assert term and r == pytest.approx(-0.2)


def test_termination_zeroes_the_next_potential_and_truncation_keeps_it():
    for ending, expected in (("terminated", 1.0 - 0.2), ("truncated", 1.0 + 0.9 * 0.3 - 0.2)):
        w, _, client = make(ending=ending, gamma=0.9)
        w.reset()
        w.step(0), w.step(0)
        _, r, term, trunc, info = w.step(0)
        assert (term, trunc) == (ending == "terminated", ending == "truncated")
        assert r == pytest.approx(expected), ending
        assert client.calls[-2] == ("step", 3, 1.0, term, trunc)  # flags passed as the env gave them
        assert client.calls[-1] == ("end", term, trunc, True)
        assert info["stageward"]["summary"] == {"type": "summary", "steps": 3}


def test_a_new_episode_starts_after_either_ending():
    for ending in ("terminated", "truncated"):
        w, _, client = make(ending=ending)
        w.reset()
        for _ in range(3):
            w.step(0)
        with pytest.raises(RuntimeError, match="call reset"):
            w.step(0)
        _, info = w.reset()
        assert client.calls[-2:] == [("reset",), ("step", 0, None, False, False)]
        _, r, _, _, _ = w.step(0)
        assert r == pytest.approx(0.9 * 0.1)  # potential restarted from Phi(s_0) of the new episode


def test_reset_mid_episode_ends_the_old_episode_without_flags():
    w, _, client = make()
    w.reset()
    w.step(0)
    w.reset()
    assert client.calls[-4:] == [("step", 1, 0.0, False, False), ("end", None, None, None), ("reset",),
                                 ("step", 0, None, False, False)]


def test_step_before_reset_is_refused():
    w, _, _ = make()
    with pytest.raises(RuntimeError, match="before reset"):
        w.step(0)


def test_old_gym_four_tuple_steps_are_refused_with_a_clear_message():
    w, env, _ = make()
    w.reset()
    env.step = lambda action: ({"front": np.zeros((4, 4, 3), np.uint8)}, 0.0, False, {})
    with pytest.raises(TypeError, match="old gym API"):
        w.step(0)


def test_bad_mode_and_gamma_are_refused_at_construction():
    with pytest.raises(ValueError, match="mode"):
        make(mode="multiply")
    with pytest.raises(ValueError, match="gamma"):
        make(gamma=0.0)


def test_attributes_forward_to_the_env_and_close_ends_the_episode():
    w, env, client = make()
    assert w.action_space == "discrete(2)" and w.unwrapped is env
    w.reset()
    w.close()
    assert client.calls[-1] == ("end", None, None, None) and env.closed
