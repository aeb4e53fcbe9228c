"""Held-out metrics on cached features, computed the way the server serves (models/PACKAGE.md): every
frame of an episode scored through the causal window, the task's own stages only, SARM progress
composed with the card's priors; GRM fused from the incremental, forward and backward perspectives
exactly as models/progress.ts `fuseGrm` does.

    sarm:  stage_accuracy, tau_mae, progress_mae (vs P_k + a_k * tau of the true labels), voc
           (Spearman of progress vs time on successful episodes), final_progress_success/failed
    grm:   grm_progress_mae (fused vs step-wise progress), grm_forward_mae (hop(start -> frame) vs
           its target), grm_voc
All are per frame (means over every held-out frame) except voc and final_progress (per episode).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .config import ModelConfig
from .data import Corpus
from .labels import hop_target
from .sampling import rewound_windows

BATCH = 512


def rankdata(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank."""
    a = np.asarray(a)
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty(len(a), dtype=np.int64)
    inv[sorter] = np.arange(len(a))
    s = a[sorter]
    obs = np.r_[True, s[1:] != s[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation; 0 when either side is constant (GVL's VOC convention)."""
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx ** 2).sum() * (ry ** 2).sum()))


def prior_tables(cfg: ModelConfig):
    """(cum [tasks, K], a [tasks, K], count [tasks]) from the config's stages; padding stages are 0."""
    k = cfg.num_stages
    cum, a = np.zeros((len(cfg.tasks), k)), np.zeros((len(cfg.tasks), k))
    for i, task in enumerate(cfg.tasks):
        priors = np.array([p for _, p in cfg.stages[task]], dtype=np.float64)
        a[i, :len(priors)] = priors
        cum[i, :len(priors)] = np.concatenate([[0.0], np.cumsum(priors)[:-1]])
    return cum, a, np.array(cfg.stage_counts())


def compose_progress(cfg: ModelConfig, logits: np.ndarray, tau: np.ndarray, task: np.ndarray,
                     composition: Optional[str] = None) -> np.ndarray:
    """Phi per row, argmax or expected over the task's own stages (models/progress.ts sarmProgress)."""
    cum, a, _ = prior_tables(cfg)
    composition = composition or cfg.composition
    tau = np.clip(tau, 0.0, 1.0)
    if composition == "argmax":
        k = logits.argmax(axis=1)
        return np.clip(cum[task, k] + a[task, k] * tau, 0.0, 1.0)
    z = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return np.clip((probs * (cum[task] + a[task] * tau[:, None])).sum(axis=1), 0.0, 1.0)


def target_progress(cfg: ModelConfig, stage: np.ndarray, tau: np.ndarray, task: np.ndarray) -> np.ndarray:
    cum, a, _ = prior_tables(cfg)
    return np.minimum(1.0, cum[task, stage] + a[task, stage] * tau)


def gather(features: torch.Tensor, g: np.ndarray) -> torch.Tensor:
    """features [G, V, D] at global indices g (any shape; -1 = zeros)."""
    flat = torch.from_numpy(np.where(g >= 0, g, 0).reshape(-1))
    out = features[flat] * torch.from_numpy((g >= 0).reshape(-1, 1, 1).astype(np.float32))
    return out.reshape(g.shape + features.shape[1:])


def window_globals(cfg: ModelConfig, corpus: Corpus, g: np.ndarray, rewind: Optional[np.ndarray] = None):
    """(global frame per slot [B, T] with -1 padding, valid [B, T]) for frames g of the corpus."""
    t = corpus.t[g]
    pos, valid = rewound_windows(t, np.zeros_like(t) if rewind is None else rewind, cfg.window.length,
                                 cfg.window.stride_frames, cfg.window.include_initial)
    base = corpus.ep_offset[corpus.episode[g]]
    return np.where(pos >= 0, pos + base[:, None], -1), valid


@torch.no_grad()
def sarm_outputs(cfg: ModelConfig, sarm, features: torch.Tensor, corpus: Corpus, g: np.ndarray):
    sarm.eval()
    logits, taus = [], []
    for i in range(0, len(g), BATCH):
        chunk = g[i:i + BATCH]
        slots, valid = window_globals(cfg, corpus, chunk)
        lg, tau = sarm(gather(features, slots), torch.from_numpy(valid), torch.from_numpy(corpus.task[chunk]))
        logits.append(lg.numpy())
        taus.append(tau.numpy())
    return np.concatenate(logits), np.concatenate(taus)


@torch.no_grad()
def grm_hops(grm, features: torch.Tensor, start, goal, before, after, task) -> np.ndarray:
    grm.eval()
    out = []
    for i in range(0, len(after), BATCH):
        sl = slice(i, i + BATCH)
        out.append(grm(gather(features, start[sl]), gather(features, goal[sl]), gather(features, before[sl]),
                       gather(features, after[sl]), torch.from_numpy(task[sl])).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def apply_hop(previous: np.ndarray, hop: np.ndarray) -> np.ndarray:
    p = np.clip(previous, 0, 1)
    h = np.clip(hop, -1, 1)
    return np.clip(np.where(h >= 0, p + (1 - p) * h, p + p * h), 0, 1)


def evaluate(cfg: ModelConfig, modules, features: torch.Tensor, corpus: Corpus, episodes: Sequence[int],
             goal_features: Dict[int, torch.Tensor]) -> Dict[str, float]:
    """Metrics over `episodes` (global ids of `corpus`, whose clean features [G, V, D] are `features`);
    goal_features: task -> [V, D], the goal image the GRM perspectives use (as a client sends one)."""
    episodes = [int(e) for e in episodes]
    if not episodes:
        return {}
    tasks = sorted(goal_features)
    goals = {t: features.shape[0] + i for i, t in enumerate(tasks)}
    if tasks:
        features = torch.cat([features, torch.stack([goal_features[t] for t in tasks])])
    g = corpus.frames_of(episodes)
    task = corpus.task[g]
    logits, tau = sarm_outputs(cfg, modules["sarm"], features, corpus, g)
    _, _, counts = prior_tables(cfg)
    own = np.arange(logits.shape[1])[None, :] < counts[task][:, None]
    logits = np.where(own, logits, -np.inf)
    pred_stage = logits.argmax(axis=1)
    phi = compose_progress(cfg, logits, tau, task)
    want = target_progress(cfg, corpus.stage[g], corpus.tau[g], task)
    m: Dict[str, float] = {
        "episodes": len(episodes), "frames": int(len(g)),
        "stage_accuracy": float((pred_stage == corpus.stage[g]).mean()),
        "tau_mae": float(np.abs(tau - corpus.tau[g]).mean()),
        "progress_mae": float(np.abs(phi - want).mean()),
    }
    voc, finals = [], {True: [], False: []}
    for e in episodes:
        sel = corpus.episode[g] == e
        if corpus.ep_success[e]:
            voc.append(spearman(phi[sel], np.arange(sel.sum())))
        finals[bool(corpus.ep_success[e])].append(float(phi[sel][-1]))
    if voc:
        m["voc"] = float(np.mean(voc))
    for ok, name in ((True, "final_progress_success"), (False, "final_progress_failed")):
        if finals[ok]:
            m[name] = float(np.mean(finals[ok]))
    if modules.get("grm") is not None and all(int(t) in goals for t in np.unique(task)):
        m.update(_grm_metrics(modules["grm"], features, corpus, episodes, g, goals))
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in m.items()}


def _grm_metrics(grm, features, corpus: Corpus, episodes: List[int], g: np.ndarray,
                 goals: Dict[int, int]) -> Dict[str, float]:
    ep = corpus.episode[g]
    start = corpus.ep_offset[ep]
    goal = np.array([goals[int(k)] for k in corpus.task[g]], dtype=np.int64)
    prev = np.where(corpus.t[g] > 0, g - 1, g)
    task = corpus.task[g]
    inc = grm_hops(grm, features, start, goal, prev, g, task)
    fwd = grm_hops(grm, features, start, goal, start, g, task)
    bwd = grm_hops(grm, features, start, goal, goal, g, task)
    fused = np.zeros(len(g))
    running = 0.0
    for i in range(len(g)):
        running = float(apply_hop(np.array(0.0 if corpus.t[g[i]] == 0 else running), np.array(inc[i])))
        fused[i] = np.clip((running + fwd[i] + 1 + bwd[i]) / 3.0, 0, 1)
    ps = corpus.progress_step
    voc = [spearman(fused[ep == e], np.arange((ep == e).sum())) for e in episodes if corpus.ep_success[e]]
    out = {
        "grm_progress_mae": float(np.abs(fused - ps[g]).mean()),
        "grm_forward_mae": float(np.abs(fwd - hop_target(ps[start], ps[g])).mean()),
    }
    if voc:
        out["grm_voc"] = float(np.mean(voc))
    return out
