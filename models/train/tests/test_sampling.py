"""What the trainer's steps see: hop targets, causal rewind windows and their labels, GRM pair mix,
the episode split."""
import numpy as np
import pytest

from stageward_train.data import split_episodes
from stageward_train.labels import frame_labels, hop_target, step_progress
from stageward_train.sampling import GrmMix, PairSampler, rewound_windows, sample_rewind
from stageward_train.windows import window_indices


# ---- hop targets -----------------------------------------------------------------------------

def test_hop_is_normalised_by_what_remained():
    assert hop_target(0.2, 0.6) == pytest.approx(0.5)        # (0.6 - 0.2) / (1 - 0.2)
    assert hop_target(0.6, 0.3) == pytest.approx(-0.5)       # (0.3 - 0.6) / 0.6
    assert hop_target(0.0, 0.7) == pytest.approx(0.7)        # forward from the start = progress
    assert hop_target(1.0, 0.25) == pytest.approx(-0.75)     # backward from the goal = progress - 1
    assert hop_target(0.4, 0.4) == 0.0


def test_hop_is_zero_where_the_denominator_is_zero():
    assert hop_target(1.0, 1.0) == 0.0 and hop_target(0.0, 0.0) == 0.0
    out = hop_target(np.array([1.0, 0.0, 0.5]), np.array([1.0, 0.0, 1.0]))
    assert out.dtype == np.float32 and out.tolist() == [0.0, 0.0, 1.0]
    assert np.isfinite(hop_target(np.linspace(0, 1, 11)[:, None], np.linspace(0, 1, 11)[None, :])).all()


def _episodes(lengths):
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return offsets, np.asarray(lengths, dtype=np.int64)


def test_near_identical_pairs_are_labelled_zero():
    offset, length = _episodes([20, 30])
    progress = np.linspace(0, 1, 50).astype(np.float32)
    sampler = PairSampler(np.arange(2), offset, length, np.array([True, True]), np.zeros(2, dtype=np.int64),
                          progress, np.random.default_rng(0), GrmMix(near_identical=1.0, forward=0, backward=0))
    b = sampler.sample(np.random.default_rng(1), 200)
    assert (b.kind == 1).all() and (b.hop == 0).all()
    assert (np.abs(b.after - b.before) <= 1).all()
    ep = np.searchsorted(offset, b.after, side="right") - 1
    assert (np.searchsorted(offset, b.before, side="right") - 1 == ep).all()  # same episode


def test_pairs_carry_hop_targets_and_references():
    offset, length = _episodes([15, 25, 10])
    progress = np.concatenate([np.linspace(0, 1, 15), np.linspace(0, 1, 25), np.linspace(0, 0.4, 10)]).astype(np.float32)
    success = np.array([True, True, False])
    sampler = PairSampler(np.arange(3), offset, length, success, np.zeros(3, dtype=np.int64), progress,
                          np.random.default_rng(0))
    b = sampler.sample(np.random.default_rng(2), 2000)
    np.testing.assert_allclose(b.hop[b.kind != 1], hop_target(progress[b.before], progress[b.after])[b.kind != 1], atol=1e-6)
    ep = np.searchsorted(offset, b.after, side="right") - 1
    assert (b.start == offset[ep]).all()                                  # start = the episode's frame 0
    goal_ep = np.searchsorted(offset, b.goal, side="right") - 1
    assert (b.goal == offset[goal_ep] + length[goal_ep] - 1).all()        # goal = a last frame...
    assert success[goal_ep].all()                                         # ...of a successful episode
    swapped = (goal_ep != ep)[success[ep]].mean()
    assert 0.65 < swapped < 0.85                                          # swapped with p = 0.75
    assert (b.before[b.kind == 2] == b.start[b.kind == 2]).all()          # forward-anchored
    assert (b.before[b.kind == 3] == b.goal[b.kind == 3]).all()           # backward-anchored
    pairs = b.kind == 0
    assert (b.hop[pairs] < -0.05).mean() > 0.25 and (b.hop[pairs] > 0.05).mean() > 0.25  # both directions
    gaps = np.abs(b.after - b.before)[pairs]
    assert (gaps <= 2).mean() > 0.1 and (gaps >= 8).mean() > 0.1         # short and long gaps


# ---- rewind ----------------------------------------------------------------------------------

@pytest.mark.parametrize("length,stride,initial", [(5, 2, True), (9, 5, True), (4, 3, False)])
def test_no_rewind_is_the_causal_window(length, stride, initial):
    t = np.arange(40)
    pos, valid = rewound_windows(t, np.zeros_like(t), length, stride, initial)
    for i in t:
        idx, ok = window_indices(int(i), length, stride, initial)
        assert pos[i].tolist() == idx and valid[i].tolist() == ok


def test_rewound_window_replays_earlier_frames_in_reverse():
    pos, valid = rewound_windows(np.array([20]), np.array([4]), 5, 2, True)
    assert pos[0].tolist() == [0, 18, 20, 18, 16] and valid[0].tolist() == [1, 1, 1, 1, 1]
    pos, _ = rewound_windows(np.array([30]), np.array([15]), 9, 5, True)
    # r = 3 slots at stride 5: virtual time 45 on the timeline reflected at 30
    assert pos[0].tolist() == [0, 10, 15, 20, 25, 30, 25, 20, 15]


def test_rewound_target_is_the_rewound_frames_lower_label():
    names, priors = ["reach", "grasp", "lift"], [0.3, 0.3, 0.4]
    labels = frame_labels([("reach", 0, 9), ("grasp", 10, 19), ("lift", 20, 29)], 30, names, priors)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 30, 500)
    rewind = sample_rewind(rng, t, 2, p=1.0, max_slots=4)
    pos, _ = rewound_windows(t, rewind, 5, 2, True)
    target = pos[:, -1]
    assert (target == t - rewind).all()
    rewound = rewind > 0
    assert rewound.mean() > 0.9                                             # p = 1, except t < stride
    prog = labels["progress_sarm"]
    assert (prog[target[rewound]] < prog[t[rewound]]).all()                # the target is lower
    step = step_progress(labels["stage"], labels["tau"], 3)
    assert (step[target[rewound]] < step[t[rewound]]).all()


def test_sample_rewind_respects_p_stride_and_episode_start():
    rng = np.random.default_rng(3)
    t = rng.integers(0, 50, 4000)
    r = sample_rewind(rng, t, 5, p=0.8)
    assert ((r >= 0) & (r <= t) & (r % 5 == 0) & (r <= 20)).all()
    eligible = t >= 20
    assert 0.75 < (r[eligible] > 0).mean() < 0.85
    assert set(np.unique(r[eligible] // 5)) == {0, 1, 2, 3, 4}
    assert (sample_rewind(rng, t, 5, p=0.0) == 0).all()
    assert (sample_rewind(rng, np.array([0, 3]), 5, p=1.0) == 0).all()


# ---- split -----------------------------------------------------------------------------------

def test_heldout_split_is_by_episode_seeded_and_stratified():
    bundle = np.repeat([0, 1], [40, 20])
    success = np.tile([True, True, True, False], 15)
    a = split_episodes(bundle, success, 0.25, seed=0)
    assert (a == split_episodes(bundle, success, 0.25, seed=0)).all()
    assert (a != split_episodes(bundle, success, 0.25, seed=1)).any()
    assert a[bundle == 0].sum() == 10 and a[bundle == 1].sum() == 5
    assert a[~success].sum() == round(0.25 * 10) + round(0.25 * 5)       # failures held out too
    assert not split_episodes(bundle, success, 0.0, seed=0).any()
    assert not split_episodes(np.zeros(1, dtype=np.int64), np.ones(1, dtype=bool), 0.9, seed=0).all()
