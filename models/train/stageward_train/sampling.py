"""What a training step sees, pure numpy: SARM windows (with SARM's rewind augmentation made causal)
and GRM frame pairs with their hop targets. Indices only; the trainer gathers features for them.

Rewind, causal: SARM appends 1..4 earlier window frames in reverse order after frame t and labels the
sequence by the last (rewound) frame. Our window ends at "now", so the rewound sequence is read at a
virtual time v = t + r (r = slots * stride frames) on the timeline reflected at t: position x > t
shows frame 2t - x. The last slot then holds frame t - r, earlier slots the frames up to t, and the
target is frame t - r's own, lower label. r = 0 is exactly window_indices (models/PACKAGE.md).

    rewound_window(t=20, length=5, stride=2, include_initial=True, rewind=4)
      -> frames [0, 18, 20, 18, 16], target frame 16
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from .labels import hop_target

# Hop bins for stratification; the middle bin holds hop exactly 0 (gaps, after the last span).
HOP_EDGES = np.array([-1.0, -0.6, -0.3, -0.1, -1e-6, 1e-6, 0.1, 0.3, 0.6, 1.0 + 1e-6])
# Gap bins, in frames: [1, 2), [2, 4), ... [64, inf).
GAP_EDGES = np.array([1, 2, 4, 8, 16, 32, 64, np.iinfo(np.int64).max])
MAX_PAIRS_PER_EPISODE = 4096


def rewound_windows(t: np.ndarray, rewind: np.ndarray, length: int, stride: int,
                    include_initial: bool) -> Tuple[np.ndarray, np.ndarray]:
    """Frame index per slot ([B, T], -1 = padding) and valid [B, T] float32 for steps t rewound by
    `rewind` frames (0 <= rewind <= t). The target frame is column -1."""
    t = np.asarray(t, dtype=np.int64).reshape(-1)
    rewind = np.asarray(rewind, dtype=np.int64).reshape(-1)
    if ((rewind < 0) | (rewind > t)).any():
        raise ValueError("rewind: must be in [0, t] for every sample")
    past = length - 1 if include_initial else length
    offsets = (past - 1 - np.arange(past)) * stride                   # [past]
    x = (t + rewind)[:, None] - offsets[None, :]                       # virtual positions
    x = np.where(x > t[:, None], 2 * t[:, None] - x, x)                # reflect the rewound part
    if include_initial:
        x = np.concatenate([np.zeros((len(t), 1), dtype=np.int64), x], axis=1)
    valid = (x >= 0).astype(np.float32)
    return np.where(x >= 0, x, -1), valid


def sample_rewind(rng: np.random.Generator, t: np.ndarray, stride: int, p: float,
                  max_slots: int = 4) -> np.ndarray:
    """Rewind in frames per sample: with probability p, 1..max_slots window slots (capped by t)."""
    t = np.asarray(t, dtype=np.int64)
    slots = rng.integers(1, max_slots + 1, size=len(t))
    slots = np.minimum(slots, t // stride)
    return np.where(rng.random(len(t)) < p, slots * stride, 0).astype(np.int64)


@dataclass
class GrmBatch:
    """Global frame indices and targets for one GRM batch."""

    start: np.ndarray
    goal: np.ndarray
    before: np.ndarray
    after: np.ndarray
    task: np.ndarray
    hop: np.ndarray      # float32 target
    kind: np.ndarray     # int64: 0 pair, 1 near-identical, 2 forward-anchored, 3 backward-anchored


@dataclass(frozen=True)
class GrmMix:
    near_identical: float = 0.05
    forward: float = 0.15
    backward: float = 0.15
    goal_swap: float = 0.75  # goal = another successful episode's last frame (always, for a failure)


class PairSampler:
    """GRM pairs from training episodes, stratified over hop value and frame gap.

    Targets are Robo-Dopamine hops on step-wise progress (`progress`, [G]). For each pair: choose a
    hop bin uniformly among the non-empty ones, then a gap bin uniformly among that hop bin's
    non-empty ones, then a pair. Mixed in: near-identical pairs (same or adjacent frame, label 0),
    forward-anchored (before = frame 0) and backward-anchored (before = the goal) pairs, which are
    the serving perspectives. References: start = the episode's frame 0; goal = the last frame of a
    successful episode of the same task (the episode's own with p = 1 - goal_swap when it succeeded).
    """

    def __init__(self, episodes: np.ndarray, ep_offset: np.ndarray, ep_length: np.ndarray,
                 ep_success: np.ndarray, ep_task: np.ndarray, progress: np.ndarray,
                 rng: np.random.Generator, mix: GrmMix = GrmMix()):
        self.episodes = np.asarray(episodes, dtype=np.int64)
        self.offset, self.length, self.success, self.ep_task = ep_offset, ep_length, ep_success, ep_task
        self.progress = progress
        self.mix = mix
        self.successful: Dict[int, np.ndarray] = {}
        for task in np.unique(ep_task[self.episodes]):
            mine = self.episodes[(ep_task[self.episodes] == task) & ep_success[self.episodes]]
            self.successful[int(task)] = mine if len(mine) else self.episodes[ep_task[self.episodes] == task]
        before, after = [], []
        for e in self.episodes:
            n = int(ep_length[e])
            if n < 2:
                continue
            if n * (n - 1) <= MAX_PAIRS_PER_EPISODE:
                p, q = np.nonzero(~np.eye(n, dtype=bool))
            else:
                p = rng.integers(0, n, MAX_PAIRS_PER_EPISODE)
                q = (p + rng.integers(1, n, MAX_PAIRS_PER_EPISODE)) % n
            before.append(p + ep_offset[e])
            after.append(q + ep_offset[e])
        self.before = np.concatenate(before) if before else np.zeros(0, dtype=np.int64)
        self.after = np.concatenate(after) if after else np.zeros(0, dtype=np.int64)
        hop = hop_target(progress[self.before], progress[self.after]) if len(self.before) else np.zeros(0)
        hop_bin = np.clip(np.searchsorted(HOP_EDGES, hop, side="right") - 1, 0, len(HOP_EDGES) - 2)
        gap = np.abs(self.after - self.before)
        gap_bin = np.searchsorted(GAP_EDGES, gap, side="right") - 1
        cell = hop_bin * (len(GAP_EDGES) - 1) + gap_bin
        order = np.argsort(cell, kind="stable")
        self.before, self.after, self.cell = self.before[order], self.after[order], cell[order]
        cells, starts, counts = np.unique(self.cell, return_index=True, return_counts=True)
        self.cells: List[Tuple[int, int, int]] = list(zip(cells.tolist(), starts.tolist(), counts.tolist()))
        by_hop: Dict[int, List[Tuple[int, int]]] = {}
        for c, s, n in self.cells:
            by_hop.setdefault(c // (len(GAP_EDGES) - 1), []).append((s, n))
        self.by_hop = [by_hop[h] for h in sorted(by_hop)]
        self.frames = np.concatenate([np.arange(ep_offset[e], ep_offset[e] + ep_length[e]) for e in self.episodes])

    def _episode_of(self, g: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offset, g, side="right") - 1

    def _goal(self, rng: np.random.Generator, e: int) -> int:
        pool = self.successful[int(self.ep_task[e])]
        own = self.success[e] and rng.random() >= self.mix.goal_swap
        if not own and len(pool) > 1:
            other = pool[pool != e]
            e = int(other[rng.integers(len(other))]) if len(other) else e
        elif not own:
            e = int(pool[0])
        return int(self.offset[e] + self.length[e] - 1)

    def sample(self, rng: np.random.Generator, batch: int) -> GrmBatch:
        kinds = rng.choice(4, size=batch, p=self._kind_p())
        start, goal, before, after = (np.zeros(batch, dtype=np.int64) for _ in range(4))
        hop = np.zeros(batch, dtype=np.float32)
        for i, kind in enumerate(kinds):
            if kind == 0:
                hops = self.by_hop[rng.integers(len(self.by_hop))]
                s, n = hops[rng.integers(len(hops))]
                j = s + rng.integers(n)
                b, a = int(self.before[j]), int(self.after[j])
            else:
                a = int(self.frames[rng.integers(len(self.frames))])
            e = int(self._episode_of(np.array([a]))[0])
            first, last = int(self.offset[e]), int(self.offset[e] + self.length[e] - 1)
            g = self._goal(rng, e)
            if kind == 1:
                b = int(np.clip(a + rng.integers(-1, 2), first, last))
                h = 0.0
            elif kind == 2:
                b = first
                h = hop_target(self.progress[b], self.progress[a])
            elif kind == 3:
                b = g
                h = hop_target(self.progress[g], self.progress[a])
            else:
                h = hop_target(self.progress[b], self.progress[a])
            start[i], goal[i], before[i], after[i], hop[i] = first, g, b, a, h
        return GrmBatch(start, goal, before, after, self.ep_task[self._episode_of(after)], hop,
                        kinds.astype(np.int64))

    def _kind_p(self) -> np.ndarray:
        m = self.mix
        pair = 1.0 - m.near_identical - m.forward - m.backward
        if len(self.before) == 0:
            pair = 0.0
        p = np.array([pair, m.near_identical, m.forward, m.backward])
        return p / p.sum()
