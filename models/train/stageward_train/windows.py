"""The causal SARM window (models/PACKAGE.md, "The window"): which frames fill the T slots at step t.

Pure functions, no torch: the trainer, the fixture writer and the TypeScript port share this rule.

    window_indices(t=7, length=5, stride=2, include_initial=True) -> ([0, 1, 3, 5, 7], [1, 1, 1, 1, 1])
    window_indices(t=1, length=5, stride=2, include_initial=True) -> ([0, -1, -1, -1, 1], [1, 0, 0, 0, 1])
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

PADDING_INDEX = -1


def window_indices(t: int, length: int, stride: int, include_initial: bool) -> Tuple[List[int], List[int]]:
    """Frame index per slot (PADDING_INDEX where the frame would be negative) and valid flags (1/0).

    With include_initial, slot 0 holds frame 0 and slot 1 + j holds t - (T-2-j)*stride; without,
    slot j holds t - (T-1-j)*stride. The last slot is always frame t.
    """
    if not isinstance(t, int) or t < 0:
        raise ValueError(f"t: must be a non-negative integer, got {t!r}")
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length: must be a positive integer, got {length!r}")
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: must be a positive integer, got {stride!r}")
    if include_initial and length < 2:
        raise ValueError("length: must be at least 2 when include_initial is true")
    past = length - 1 if include_initial else length
    frames = [t - (past - 1 - j) * stride for j in range(past)]
    if include_initial:
        frames = [0] + frames
    indices = [f if f >= 0 else PADDING_INDEX for f in frames]
    valid = [1 if f >= 0 else 0 for f in frames]
    return indices, valid


def gather_window(features: np.ndarray, t: int, length: int, stride: int,
                  include_initial: bool) -> Tuple[np.ndarray, np.ndarray]:
    """The SARM inputs for step t from an episode's per-frame features.

    features: float32 [frames, V, D] (frames 0..t at least) -> (window float32 [T, V, D] with zeros
    in padded slots, valid float32 [T]).
    """
    if features.ndim != 3:
        raise ValueError(f"features: expected [frames, V, D], got shape {features.shape}")
    if t >= features.shape[0]:
        raise ValueError(f"t: {t} is past the last frame {features.shape[0] - 1}")
    indices, valid = window_indices(t, length, stride, include_initial)
    window = np.zeros((length,) + features.shape[1:], dtype=np.float32)
    for slot, frame in enumerate(indices):
        if frame != PADDING_INDEX:
            window[slot] = features[frame]
    return window, np.asarray(valid, dtype=np.float32)
