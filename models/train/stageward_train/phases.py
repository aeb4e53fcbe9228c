"""The two training phases' steps, sized for a 2-core CPU.

Phase 1 (pixels, expensive): the frame encoder and a temporary per-frame head (`FrameHead`: all
views' features -> stage logits and one tau per stage) learn stage and tau from single augmented
frames. Phase 2 (features, cheap): the encoder is frozen, every frame is encoded once per feature
copy (copy 0 clean, copies 1.. with one augmentation per episode view, like a domain-randomised
episode), and the SARM and GRM heads train on cached features for many epochs.

    phase1_loss(...)  uint8 frames -> augment -> encoder -> FrameHead -> CE(stage) + w * MSE(tau)
    encode_corpus(...) -> float32 [copies, G, V, D]
    sarm_loss(...)    causal windows (rewind p, stage_hint p, wrong task p) -> CE + w * MSE
    grm_loss(...)     PairSampler batch -> MSE(hop)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .augment import AugmentSpec, augment, random_augment, sample_params
from .config import ModelConfig
from .data import Corpus
from .evaluate import gather, prior_tables, window_globals
from .nets import MASKED_LOGIT
from .sampling import PairSampler, sample_rewind


@dataclass(frozen=True)
class Settings:
    """Training hyper-parameters (not part of the model card; recorded in its provenance)."""

    frames_per_batch: int = 32        # phase 1: frames (x V images) per step
    lr_encoder: float = 1e-3
    wd_encoder: float = 1e-4
    warmup_encoder: int = 50
    windows_per_batch: int = 64       # phase 2: SARM windows and GRM pairs per step
    lr_heads: float = 5e-4
    wd_heads: float = 1e-3
    warmup_heads: int = 100
    tau_weight: float = 2.0
    rewind_p: float = 0.8
    rewind_max_slots: int = 4
    stage_hint_p: float = 0.75
    wrong_task_p: float = 0.05        # only with two or more trained tasks
    feature_copies: int = 2           # 1 clean + augmented copies for phase 2
    phase1_share: float = 0.75        # of the time left after reserving caching, eval and export
    warm_phase1_share: float = 0.25   # phase1_share when the encoder is warm-started (train --from)
    reserve_s: float = 45.0           # final evaluation and export
    phase2_min_share: float = 0.1     # of the budget, always left to phase 2 (cheap, and essential)
    phase2_min_epochs: int = 3
    max_epochs_encoder: int = 40
    max_epochs_heads: int = 300
    eval_frames_phase1: int = 1500


class FrameHead(nn.Module):
    """Phase 1 only, never exported: features [B, V, D], task [B] -> stage logits [B, K] (masked to
    the task's stages), tau [B, K] (one per stage, sigmoid)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d = cfg.architecture.d_model
        self.views, self.dim, k = cfg.num_views, cfg.feature_dim, cfg.num_stages
        self.body = nn.Sequential(nn.Linear(self.views * self.dim, d), nn.LayerNorm(d), nn.GELU(),
                                  nn.Linear(d, d), nn.GELU())
        self.task = nn.Embedding(len(cfg.tasks), d)
        nn.init.normal_(self.task.weight, std=0.02)
        self.stage = nn.Linear(d, k)
        self.tau = nn.Linear(d, k)
        keep = torch.zeros(len(cfg.tasks), k)
        for i, count in enumerate(cfg.stage_counts()):
            keep[i, :count] = 1.0
        self.register_buffer("keep", keep)

    def forward(self, features: torch.Tensor, task: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.body(features.reshape(-1, self.views * self.dim)) + self.task(task)
        keep = self.keep[task]
        logits = self.stage(h) * keep + (1 - keep) * MASKED_LOGIT
        return logits, torch.sigmoid(self.tau(h))


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5% of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * progress))


def encode_images(encoder: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """[B, V, H, W, 3] (uint8 or float) -> [B, V, D]."""
    b, v = frames.shape[:2]
    return encoder(frames.reshape((b * v,) + frames.shape[2:])).reshape(b, v, -1)


def phase1_loss(cfg: ModelConfig, s: Settings, encoder: nn.Module, head: FrameHead, corpus: Corpus,
                g: np.ndarray, gen: torch.Generator, spec: AugmentSpec) -> torch.Tensor:
    frames = torch.from_numpy(corpus.frames(g))
    b, v = frames.shape[:2]
    pixels = random_augment(frames.reshape((b * v,) + frames.shape[2:]), gen, spec)
    feats = encoder(pixels).reshape(b, v, -1)
    task = torch.from_numpy(corpus.task[g])
    stage = torch.from_numpy(corpus.stage[g])
    logits, taus = head(feats, task)
    tau = taus.gather(1, stage.unsqueeze(1)).squeeze(1)
    return F.cross_entropy(logits, stage) + s.tau_weight * F.mse_loss(tau, torch.from_numpy(corpus.tau[g]))


@torch.no_grad()
def frame_head_metrics(cfg: ModelConfig, encoder: nn.Module, head: FrameHead, corpus: Corpus,
                       g: np.ndarray) -> Dict[str, float]:
    """Per-frame stage accuracy and progress MAE of the phase-1 head on clean frames g."""
    encoder.eval()
    head.eval()
    preds, taus = [], []
    for i in range(0, len(g), 128):
        chunk = g[i:i + 128]
        logits, tau = head(encode_images(encoder, torch.from_numpy(corpus.frames(chunk))),
                           torch.from_numpy(corpus.task[chunk]))
        k = logits.argmax(1)
        preds.append(k.numpy())
        taus.append(tau.gather(1, k.unsqueeze(1)).squeeze(1).numpy())
    encoder.train()
    head.train()
    k, tau, task = np.concatenate(preds), np.concatenate(taus), corpus.task[g]
    cum, a, _ = prior_tables(cfg)
    phi = np.clip(cum[task, k] + a[task, k] * tau, 0, 1)
    want = cum[task, corpus.stage[g]] + a[task, corpus.stage[g]] * corpus.tau[g]
    return {"stage_accuracy": round(float((k == corpus.stage[g]).mean()), 5),
            "progress_mae": round(float(np.abs(phi - want).mean()), 5)}


@torch.no_grad()
def encode_corpus(encoder: nn.Module, corpus: Corpus, copies: int, seed: int, spec: AugmentSpec,
                  report: Optional[Callable[[int], None]] = None) -> torch.Tensor:
    """float32 [copies, G, V, D]; copy 0 clean, copy c > 0 one augmentation per (episode, view),
    seeded by (seed, c) so a resumed run recomputes the same features."""
    encoder.eval()
    v = corpus.frames(np.array([0])).shape[1]
    out = None
    done = 0
    for c in range(copies):
        gen = torch.Generator().manual_seed(seed * 1000 + c)
        for e in range(len(corpus.ep_offset)):
            o, n = int(corpus.ep_offset[e]), int(corpus.ep_length[e])
            params = sample_params(gen, v, spec) if c > 0 else None
            for i in range(o, o + n, 96):
                g = np.arange(i, min(i + 96, o + n))
                frames = torch.from_numpy(corpus.frames(g))
                if params is not None:
                    b = len(g)
                    tiled = {k: p.repeat((b,) + (1,) * (p.dim() - 1)) for k, p in params.items()}
                    frames = augment(frames.reshape((b * v,) + frames.shape[2:]), tiled, gen)
                    frames = frames.reshape((b, v) + frames.shape[1:])
                feats = encode_images(encoder, frames)
                if out is None:
                    out = torch.zeros((copies, corpus.num_frames) + feats.shape[1:])
                out[c, g] = feats
                done += len(g) * v
                if report is not None:
                    report(done)
    encoder.train()
    return out


def sarm_loss(cfg: ModelConfig, s: Settings, sarm: nn.Module, features: torch.Tensor, corpus: Corpus,
              train_frames: np.ndarray, rng: np.random.Generator, tasks_trained: np.ndarray) -> torch.Tensor:
    b = s.windows_per_batch
    g = train_frames[rng.integers(len(train_frames), size=b)]
    rewind = sample_rewind(rng, corpus.t[g], cfg.window.stride_frames, s.rewind_p, s.rewind_max_slots)
    slots, valid = window_globals(cfg, corpus, g, rewind)
    target = slots[:, -1]
    stage, tau, task = corpus.stage[target].copy(), corpus.tau[target].copy(), corpus.task[g].copy()
    if len(tasks_trained) > 1 and s.wrong_task_p > 0:
        wrong = rng.random(b) < s.wrong_task_p
        shift = rng.integers(1, len(tasks_trained), size=b)
        pos = np.searchsorted(tasks_trained, task)
        task = np.where(wrong, tasks_trained[(pos + shift) % len(tasks_trained)], task)
        stage, tau = np.where(wrong, 0, stage), np.where(wrong, 0.0, tau).astype(np.float32)
    hint = np.where(rng.random(b) < s.stage_hint_p, stage, -1)
    copy = rng.integers(features.shape[0], size=b)
    x = gather(features[0], slots) if features.shape[0] == 1 else _gather_copies(features, copy, slots)
    args = (x, torch.from_numpy(valid), torch.from_numpy(task), torch.from_numpy(hint))
    stage_t, tau_t = torch.from_numpy(stage), torch.from_numpy(tau)
    if getattr(sarm, "ensemble", 1) == 1:
        logits, tau_pred = sarm(*args)
        return F.cross_entropy(logits, stage_t) + s.tau_weight * F.mse_loss(tau_pred, tau_t)
    # an ensemble: every member on its own bootstrap resample of the batch (Poisson(1) weights per window)
    outs = sarm.member_outputs(*args)
    weights = torch.from_numpy(rng.poisson(1.0, size=(len(outs), b)).astype(np.float32))
    total = torch.zeros(())
    for (logits, tau_pred), w in zip(outs, weights):
        per = F.cross_entropy(logits, stage_t, reduction="none") + s.tau_weight * (tau_pred - tau_t) ** 2
        total = total + (w * per).sum() / w.sum().clamp(min=1.0)
    return total / len(outs)


def _gather_copies(features: torch.Tensor, copy: np.ndarray, g: np.ndarray) -> torch.Tensor:
    """features [C, G, V, D] at (copy per row, global frames g [B, ...]); -1 = zeros."""
    c = np.broadcast_to(copy.reshape((-1,) + (1,) * (g.ndim - 1)), g.shape).copy()
    flat = features[torch.from_numpy(c.reshape(-1)), torch.from_numpy(np.where(g >= 0, g, 0).reshape(-1))]
    flat = flat * torch.from_numpy((g >= 0).reshape(-1, 1, 1).astype(np.float32))
    return flat.reshape(g.shape + features.shape[2:])


def grm_loss(grm: nn.Module, features: torch.Tensor, sampler: PairSampler, rng: np.random.Generator,
             batch: int) -> torch.Tensor:
    pb = sampler.sample(rng, batch)
    copy = rng.integers(features.shape[0], size=batch)
    goal_copy = rng.integers(features.shape[0], size=batch)
    pick = lambda c, g: _gather_copies(features, c, g)  # noqa: E731
    before_copy = np.where(pb.kind == 3, goal_copy, copy)  # backward-anchored: before is the goal image
    hop = grm(pick(copy, pb.start), pick(goal_copy, pb.goal), pick(before_copy, pb.before),
              pick(copy, pb.after), torch.from_numpy(pb.task))
    return F.mse_loss(hop, torch.from_numpy(pb.hop))
