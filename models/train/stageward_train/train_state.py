"""The trainer's resumable state: the time budget clock, and checkpoints that carry everything needed
to continue (weights, optimiser, RNG states, plan, history) in checkpoint.py's safe format.

    {"config": JSON, "encoder"/"sarm"/"grm"/"frame_head": state dicts,
     "optimizer_state": {param index: {tensors}} | absent, "optimizer_groups": JSON,
     "state": JSON (phase, epoch, step, plan, history, commands, RNG states of python and numpy),
     "torch_rng": ByteTensor, "augment_rng": ByteTensor, "provenance": JSON, "metrics": JSON}

It loads with weights_only=True like every checkpoint, and `stageward_train.export --weights` reads it.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import ModelConfig


class Clock:
    """Elapsed training time across resumed runs, against a budget in seconds."""

    def __init__(self, budget_s: float, spent_s: float):
        self.budget_s, self.spent_s, self.t0 = budget_s, spent_s, time.perf_counter()

    def elapsed(self) -> float:
        return self.spent_s + time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget_s - self.elapsed()


def save_state(path: Path, cfg: ModelConfig, modules: Mapping[str, nn.Module],
               optimizer: Optional[torch.optim.Optimizer], state: Dict[str, Any], rng: np.random.Generator,
               gen: torch.Generator, provenance: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
    """Write atomically (temporary file, then rename)."""
    state = dict(state)
    py = random.getstate()
    state["rng"] = {"numpy": rng.bit_generator.state, "python": [py[0], list(py[1]), py[2]]}
    data: Dict[str, Any] = {"config": json.dumps(cfg.to_dict())}
    for role, module in modules.items():
        data[role] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    if optimizer is not None:
        sd = optimizer.state_dict()
        data["optimizer_state"] = sd["state"]
        data["optimizer_groups"] = json.dumps(sd["param_groups"])
    data["state"] = json.dumps(state)
    data["torch_rng"] = torch.get_rng_state()
    data["augment_rng"] = gen.get_state()
    data["provenance"] = json.dumps(dict(provenance))
    data["metrics"] = json.dumps(dict(metrics))
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, str(tmp))
    os.replace(tmp, path)


def load_state(path: Path, rng: np.random.Generator, gen: torch.Generator) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(checkpoint data with "optimizer" = a loadable optimiser state dict or None, trainer state);
    restores the python, numpy, torch and augmentation RNGs in place."""
    data = load_checkpoint(Path(path))
    if "state" not in data:
        raise ValueError(f"checkpoint {path}: no trainer state (was it written by stageward_train.train?)")
    state = json.loads(data["state"])
    rs = state.pop("rng")
    rng.bit_generator.state = rs["numpy"]
    random.setstate((rs["python"][0], tuple(rs["python"][1]), rs["python"][2]))
    torch.set_rng_state(data["torch_rng"])
    gen.set_state(data["augment_rng"])
    data["optimizer"] = None
    if "optimizer_state" in data:
        data["optimizer"] = {"state": data["optimizer_state"], "param_groups": json.loads(data["optimizer_groups"])}
    return data, state
