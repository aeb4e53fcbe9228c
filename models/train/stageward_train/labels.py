"""Training labels from sparse subtask annotations, pure numpy: the Python twin of datasets/labels.ts.

Per frame: stage k, in-stage progress tau, SARM progress Phi = P_k + a_k * tau (duration priors a_k)
and step-wise progress (k + tau) / K (every stage worth 1/K, Robo-Dopamine); and the GRM hop target
between two progress values. Both sides are checked against test/fixtures/label-vectors.json.

SARM rule (LeRobot `find_stage_and_tau`): for a span [s, e] (inclusive frames) of stage k,
tau = clip((t - s) / (e - s), 0, 1), and 1 for a one-frame span; before the first span stage 0,
tau 0; after the last span stage K-1, tau 0.999; in a gap the previous span's stage at tau 1. A
frame shared by two touching spans belongs to the first. Repeated names (a regression) are allowed.

    spans = [("reach", 0, 4), ("grasp", 5, 7)]
    frame_labels(spans, 8, ["reach", "grasp"], [0.5, 0.5])["stage"] -> [0, 0, 0, 0, 0, 1, 1, 1]
    hop_target(0.2, 0.6) -> 0.5        hop_target(0.6, 0.3) -> -0.5
"""
from __future__ import annotations

from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

AFTER_LAST_TAU = 0.999
Span = Tuple[str, int, int]  # (stage name, first frame, last frame), inclusive


def _span(s: Union[Span, Mapping]) -> Span:
    if isinstance(s, Mapping):
        return s["name"], s["start"], s["end"]
    return s[0], s[1], s[2]


def validate_spans(spans: Sequence, length: int, stage_names: Sequence[str], label: str = "episode") -> None:
    """Raise ValueError naming `label` and the subtask unless the spans are usable (see datasets/labels.ts)."""
    if not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"{label}: episode length must be a positive integer, got {length!r}")
    if not stage_names:
        raise ValueError(f"{label}: the dataset declares no stage names")
    if not spans:
        raise ValueError(f"{label}: no subtask annotations; labels need at least one span over the "
                         f"stages {', '.join(stage_names)}")
    prev_end = -1
    for i, raw in enumerate(spans):
        name, start, end = _span(raw)
        where = f'{label}: subtask {i} ("{name}")'
        if name not in stage_names:
            raise ValueError(f"{where} is not one of the stages {', '.join(stage_names)}")
        if not all(isinstance(v, (int, np.integer)) for v in (start, end)):
            raise ValueError(f"{where} has non-integer frames [{start}, {end}]")
        if start < 0 or end > length - 1:
            raise ValueError(f"{where} spans [{start}, {end}], outside the episode's frames [0, {length - 1}]")
        if start > end:
            raise ValueError(f"{where} starts after it ends: [{start}, {end}]")
        if start < prev_end:
            raise ValueError(f"{where} starts at frame {start}, before the previous subtask ends ({prev_end})")
        prev_end = end


def sarm_targets(spans: Sequence, length: int, stage_names: Sequence[str],
                 label: str = "episode") -> Tuple[np.ndarray, np.ndarray]:
    """(stage int64 [length], tau float32 [length]) by the SARM rule; validates the spans first."""
    validate_spans(spans, length, stage_names, label)
    spans = [_span(s) for s in spans]
    names = list(stage_names)
    stage = np.zeros(length, dtype=np.int64)
    tau = np.zeros(length, dtype=np.float32)
    first_start, last_end = spans[0][1], spans[-1][2]
    j = 0
    for t in range(length):
        if t < first_start:
            continue
        if t > last_end:
            stage[t], tau[t] = len(names) - 1, AFTER_LAST_TAU
            continue
        while j + 1 < len(spans) and spans[j + 1][1] <= t and t > spans[j][2]:
            j += 1
        name, start, end = spans[j]
        stage[t] = names.index(name)
        if t > end:
            tau[t] = 1.0  # a gap keeps the previous stage at 1
        elif end <= start:
            tau[t] = 1.0  # a one-frame span
        else:
            tau[t] = min(max((t - start) / (end - start), 0.0), 1.0)
    return stage, tau


def sarm_progress(stage: np.ndarray, tau: np.ndarray, priors: Sequence[float]) -> np.ndarray:
    """Phi = P_k + a_k * tau (P_k the sum of the priors before k), capped at 1; float32."""
    p = np.asarray(priors, dtype=np.float64)
    if p.ndim != 1 or len(p) == 0 or (p < 0).any() or abs(p.sum() - 1.0) > 1e-4:
        raise ValueError(f"priors must be non-negative and sum to 1, got {list(priors)}")
    stage = np.asarray(stage, dtype=np.int64)
    if ((stage < 0) | (stage >= len(p))).any():
        raise ValueError(f"stage indices must be in [0, {len(p) - 1}]")
    cum = np.concatenate([[0.0], np.cumsum(p)[:-1]])
    return np.minimum(1.0, cum[stage] + p[stage] * np.asarray(tau, dtype=np.float64)).astype(np.float32)


def step_progress(stage: np.ndarray, tau: np.ndarray, stage_count: int) -> np.ndarray:
    """Step-wise progress (k + tau) / K, capped at 1; float32."""
    if stage_count < 1:
        raise ValueError(f"stage count must be a positive integer, got {stage_count}")
    out = (np.asarray(stage, dtype=np.float64) + np.asarray(tau, dtype=np.float64)) / stage_count
    return np.minimum(1.0, out).astype(np.float32)


def frame_labels(spans: Sequence, length: int, stage_names: Sequence[str], priors: Sequence[float],
                 label: str = "episode") -> Dict[str, np.ndarray]:
    """{"stage", "tau", "progress_sarm", "progress_step"} per frame, as the training bundle holds them."""
    if len(priors) != len(stage_names):
        raise ValueError(f"{label}: {len(priors)} priors for {len(stage_names)} stages")
    stage, tau = sarm_targets(spans, length, stage_names, label)
    return {"stage": stage, "tau": tau, "progress_sarm": sarm_progress(stage, tau, priors),
            "progress_step": step_progress(stage, tau, len(stage_names))}


def hop_target(before, after):
    """Robo-Dopamine hop from progress `before` (p) to `after` (q), elementwise, in [-1, 1].

    q >= p: (q - p) / (1 - p); q < p: (q - p) / p; 0 where that denominator is 0 (or below it).
    Scalars in, float out; arrays in, float32 array out.
    """
    p = np.asarray(before, dtype=np.float64)
    q = np.asarray(after, dtype=np.float64)
    up = q >= p
    denom = np.where(up, 1.0 - p, p)
    safe = np.where(denom > 0, denom, 1.0)
    hop = np.where(denom > 0, (q - p) / safe, 0.0)
    hop = np.clip(hop, -1.0, 1.0)
    if hop.ndim == 0:
        return float(hop)
    return hop.astype(np.float32)
