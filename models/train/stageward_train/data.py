"""Training bundles (datasets/bundle.ts; datasets/DATASETS.md) read for a ModelConfig, joined into one corpus, split by episode.

    bundle/frames.npy  uint8 [N, V, H, W, 3] (memory-mapped, never read whole)
    bundle/{episode_index,frame_index,task_index,stage}.npy int64 [N], {tau,progress_sarm,progress_step}.npy
    float32 [N], success.npy uint8 [E], bundle.json (views, task, stages [{name, prior}], fps, image,
    episodes [{index, length, success, offset}], source {path, total_episodes})

A bundle is one task family: it maps to the config task whose ordered stage names equal the bundle's
(or the one named with --task). The corpus numbers every frame of every bundle globally ("g") and
keeps, per frame, the labels the trainer needs; frames are fetched per batch from the memory maps.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .config import ModelConfig

BUNDLE_FORMAT = 1
LABEL_ARRAYS = ("episode_index", "frame_index", "stage", "tau", "progress_sarm", "progress_step")


@dataclass
class Bundle:
    path: Path
    header: dict
    task: int                      # index into cfg.tasks
    frames: np.ndarray             # memmap uint8 [N, V_bundle, H, W, 3]
    view_order: List[int]          # bundle view index per config view
    labels: Dict[str, np.ndarray]  # LABEL_ARRAYS, each [N]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def priors(self) -> List[float]:
        return [float(s["prior"]) for s in self.header["stages"]]


def _fail(path: Path, message: str) -> None:
    raise ValueError(f"bundle {path}: {message}")


def resolve_task(header: dict, cfg: ModelConfig, task: Optional[str], path: Path) -> int:
    """The config task index for a bundle: `task` if given, else the task with the same stage names."""
    names = [s["name"] for s in header["stages"]]
    if task is not None:
        if task not in cfg.tasks:
            _fail(path, f"--task {task!r} is not one of the config's tasks {list(cfg.tasks)}")
        want = [n for n, _ in cfg.stages[task]]
        if names != want:
            _fail(path, f"stages {names} differ from the config's stages for {task!r}: {want}")
        return cfg.tasks.index(task)
    matches = [i for i, t in enumerate(cfg.tasks) if [n for n, _ in cfg.stages[t]] == names]
    if len(matches) != 1:
        _fail(path, f"stages {names} (task {header.get('task')!r}) match {len(matches)} of the config's "
                    f"tasks {list(cfg.tasks)} by stage names; name the task with --task")
    return matches[0]


def open_bundle(path: Path, cfg: ModelConfig, task: Optional[str] = None) -> Bundle:
    """Read bundle.json and memory-map the arrays; refuse a bundle that does not fit `cfg`."""
    path = Path(path).resolve()
    meta = path / "bundle.json"
    if not meta.is_file():
        _fail(path, "no bundle.json (export one with `stageward dataset export`)")
    header = json.loads(meta.read_text(encoding="utf-8"))
    if header.get("format") != BUNDLE_FORMAT:
        _fail(path, f"format {header.get('format')!r}, this trainer reads format {BUNDLE_FORMAT}")
    img = header["image"]
    if (img["height"], img["width"]) != (cfg.image.height, cfg.image.width) or img["resize"] != cfg.image.resize:
        _fail(path, f"image {img['height']}x{img['width']} {img['resize']}, the config wants "
                    f"{cfg.image.height}x{cfg.image.width} {cfg.image.resize}; re-export with --size")
    if abs(float(header["fps"]) - float(cfg.fps)) > 1e-6:
        _fail(path, f"fps {header['fps']}, the config's window strides assume fps {cfg.fps}")
    missing = [v for v in cfg.views if v not in header["views"]]
    if missing:
        _fail(path, f"views {header['views']} lack the config's {missing}")
    task_index = resolve_task(header, cfg, task, path)
    frames = np.load(path / "frames.npy", mmap_mode="r")
    n = int(header["frames"])
    if frames.dtype != np.uint8 or frames.shape != (n, len(header["views"]), img["height"], img["width"], 3):
        _fail(path, f"frames.npy is {frames.dtype} {frames.shape}, bundle.json says uint8 "
                    f"[{n}, {len(header['views'])}, {img['height']}, {img['width']}, 3]")
    labels = {}
    for name in LABEL_ARRAYS:
        arr = np.load(path / f"{name}.npy")
        if arr.shape != (n,):
            _fail(path, f"{name}.npy has shape {arr.shape}, expected [{n}]")
        labels[name] = arr
    k = len(header["stages"])
    stage, tau = labels["stage"], labels["tau"]
    if ((stage < 0) | (stage >= k)).any() or ((tau < 0) | (tau > 1)).any():
        _fail(path, "stage or tau out of range")
    if np.abs((stage + tau) / k - labels["progress_step"]).max(initial=0) > 1e-4:
        _fail(path, "progress_step.npy disagrees with (stage + tau) / K")
    for ep in header["episodes"]:
        o, length = ep["offset"], ep["length"]
        if o < 0 or o + length > n or not (labels["frame_index"][o:o + length] == np.arange(length)).all():
            _fail(path, f"episode {ep['index']}: frames [{o}, {o + length}) are not 0..{length - 1}")
    return Bundle(path, header, task_index, frames, [header["views"].index(v) for v in cfg.views], labels)


@dataclass
class Corpus:
    """Every frame of every bundle, numbered globally; per-frame labels; per-episode tables."""

    bundles: List[Bundle]
    bundle_of: np.ndarray      # int64 [G] bundle id per global frame
    local: np.ndarray          # int64 [G] row inside that bundle
    stage: np.ndarray          # int64 [G]
    tau: np.ndarray            # float32 [G]
    progress_step: np.ndarray  # float32 [G]
    task: np.ndarray           # int64 [G] config task index
    episode: np.ndarray        # int64 [G] global episode id
    t: np.ndarray              # int64 [G] frame within its episode
    ep_offset: np.ndarray      # int64 [E] first global frame
    ep_length: np.ndarray      # int64 [E]
    ep_success: np.ndarray     # bool [E]
    ep_task: np.ndarray        # int64 [E]
    ep_bundle: np.ndarray      # int64 [E]
    ep_key: List[str]          # "bundle-name:episode-index"

    @property
    def num_frames(self) -> int:
        return len(self.stage)

    def frames(self, g: np.ndarray) -> np.ndarray:
        """uint8 [len(g), V, H, W, 3] in config view order, read from the memory maps."""
        g = np.asarray(g, dtype=np.int64)
        b0 = self.bundles[0]
        out = np.empty((len(g), len(b0.view_order)) + b0.frames.shape[2:], dtype=np.uint8)
        for b, bundle in enumerate(self.bundles):
            sel = np.nonzero(self.bundle_of[g] == b)[0]
            if len(sel) == 0:
                continue
            rows = self.local[g[sel]]
            order = np.argsort(rows, kind="stable")  # sorted reads are kinder to the page cache
            block = bundle.frames[rows[order]][:, bundle.view_order]
            out[sel[order]] = block
        return out

    def frames_of(self, episodes: Sequence[int]) -> np.ndarray:
        """Global frame indices of the given episodes, in order."""
        parts = [np.arange(self.ep_offset[e], self.ep_offset[e] + self.ep_length[e]) for e in episodes]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def build_corpus(bundles: Sequence[Bundle]) -> Corpus:
    cols: Dict[str, list] = {k: [] for k in ("bundle_of", "local", "stage", "tau", "progress_step", "task",
                                            "episode", "t")}
    eps: Dict[str, list] = {k: [] for k in ("offset", "length", "success", "task", "bundle", "key")}
    base = 0
    for b, bundle in enumerate(bundles):
        success = np.load(bundle.path / "success.npy")
        for i, ep in enumerate(bundle.header["episodes"]):
            o, length = ep["offset"], ep["length"]
            e = len(eps["offset"])
            eps["offset"].append(base)
            eps["length"].append(length)
            eps["success"].append(bool(success[i]))
            eps["task"].append(bundle.task)
            eps["bundle"].append(b)
            eps["key"].append(f"{bundle.name}:{ep['index']}")
            rows = np.arange(o, o + length)
            cols["bundle_of"].append(np.full(length, b))
            cols["local"].append(rows)
            cols["stage"].append(bundle.labels["stage"][rows])
            cols["tau"].append(bundle.labels["tau"][rows])
            cols["progress_step"].append(bundle.labels["progress_step"][rows])
            cols["task"].append(np.full(length, bundle.task))
            cols["episode"].append(np.full(length, e))
            cols["t"].append(np.arange(length))
            base += length
    cat = {k: np.concatenate(v) for k, v in cols.items()}
    return Corpus(
        bundles=list(bundles), bundle_of=cat["bundle_of"].astype(np.int64), local=cat["local"].astype(np.int64),
        stage=cat["stage"].astype(np.int64), tau=cat["tau"].astype(np.float32),
        progress_step=cat["progress_step"].astype(np.float32), task=cat["task"].astype(np.int64),
        episode=cat["episode"].astype(np.int64), t=cat["t"].astype(np.int64),
        ep_offset=np.asarray(eps["offset"], dtype=np.int64), ep_length=np.asarray(eps["length"], dtype=np.int64),
        ep_success=np.asarray(eps["success"], dtype=bool), ep_task=np.asarray(eps["task"], dtype=np.int64),
        ep_bundle=np.asarray(eps["bundle"], dtype=np.int64), ep_key=eps["key"])


def split_episodes(ep_bundle: np.ndarray, ep_success: np.ndarray, heldout_frac: float,
                   seed: int) -> np.ndarray:
    """Boolean [E], True = held out. Seeded; per (bundle, success) group round(frac * size) episodes,
    so failures are held out too; at least one episode always stays for training."""
    if not 0.0 <= heldout_frac < 1.0:
        raise ValueError(f"heldout_frac: must be in [0, 1), got {heldout_frac}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(ep_bundle), dtype=bool)
    for b in np.unique(ep_bundle):
        for s in (True, False):
            group = np.nonzero((ep_bundle == b) & (ep_success == s))[0]
            n = int(round(heldout_frac * len(group)))
            if n > 0:
                held[rng.permutation(group)[:n]] = True
    if held.all():
        held[0] = False
    return held


def merged_priors(bundles: Sequence[Bundle], task: int) -> List[float]:
    """The task's stage priors from its bundles: episode-weighted mean, renormalised to sum to 1."""
    mine = [b for b in bundles if b.task == task]
    weights = np.array([len(b.header["episodes"]) for b in mine], dtype=np.float64)
    priors = np.array([b.priors for b in mine], dtype=np.float64)
    mean = (priors * weights[:, None]).sum(0) / weights.sum()
    mean = np.maximum(mean, 1e-6)
    return [float(x) for x in mean / mean.sum()]
