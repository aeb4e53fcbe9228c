"""The causal window rule of models/PACKAGE.md, which the TypeScript engine must reproduce."""
import numpy as np
import pytest

from stageward_train.windows import gather_window, window_indices


def test_first_step_fills_initial_and_last_slot_with_frame_zero():
    assert window_indices(0, 5, 2, True) == ([0, -1, -1, -1, 0], [1, 0, 0, 0, 1])


def test_step_before_one_stride_has_only_initial_and_current():
    assert window_indices(1, 5, 2, True) == ([0, -1, -1, -1, 1], [1, 0, 0, 0, 1])


def test_partly_filled_window_pads_the_oldest_slots():
    assert window_indices(3, 5, 2, True) == ([0, -1, -1, 1, 3], [1, 0, 0, 1, 1])


def test_full_window_with_initial_frame():
    assert window_indices(10, 5, 2, True) == ([0, 4, 6, 8, 10], [1, 1, 1, 1, 1])
    assert window_indices(40, 9, 5, True) == ([0, 5, 10, 15, 20, 25, 30, 35, 40], [1] * 9)


def test_without_initial_frame_all_slots_are_strided_past():
    assert window_indices(10, 5, 2, False) == ([2, 4, 6, 8, 10], [1] * 5)
    assert window_indices(3, 5, 2, False) == ([-1, -1, -1, 1, 3], [0, 0, 0, 1, 1])
    assert window_indices(0, 1, 3, False) == ([0], [1])


@pytest.mark.parametrize("include_initial", [True, False])
def test_last_slot_is_always_the_current_frame_and_padding_is_consistent(include_initial):
    for t in range(30):
        idx, valid = window_indices(t, 6, 3, include_initial)
        assert len(idx) == len(valid) == 6 and idx[-1] == t and valid[-1] == 1
        assert all((i >= 0) == bool(v) for i, v in zip(idx, valid))
        assert all(0 <= i <= t for i in idx if i >= 0)


@pytest.mark.parametrize("args", [(-1, 5, 2, True), (0, 0, 2, False), (0, 5, 0, True), (0, 1, 1, True)])
def test_bad_arguments_are_refused(args):
    with pytest.raises(ValueError):
        window_indices(*args)


def test_gather_window_zeroes_padded_slots():
    feats = np.arange(4 * 2 * 3, dtype=np.float32).reshape(4, 2, 3) + 1
    window, valid = gather_window(feats, 3, 5, 2, True)
    assert window.shape == (5, 2, 3) and window.dtype == np.float32
    np.testing.assert_array_equal(valid, [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(window[0], feats[0])
    np.testing.assert_array_equal(window[1:3], 0)
    np.testing.assert_array_equal(window[3], feats[1])
    np.testing.assert_array_equal(window[4], feats[3])
