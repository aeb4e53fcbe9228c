"""Training checkpoints: one torch.save'd dict of plain data and tensors, never arbitrary objects.

    {"config": JSON text of ModelConfig.to_dict(), "encoder": state_dict, "sarm": state_dict,
     "grm": state_dict, "provenance": JSON text (optional), "metrics": JSON text (optional)}

Loaded with weights_only=True (torch >= 1.13), so a checkpoint cannot run code when read. The
non-tensor parts are JSON text because torch 1.13's safe unpickler rejects Python floats (priors,
fps); a plain dict there is read too (torch >= 2 can load one safely).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn

from .config import ModelConfig
from .nets import build_modules, load_tensors

# Fields a checkpoint's config may differ in from the export config: they do not change the nets.
RELABEL_FIELDS = ("name", "version", "progress")


def save_checkpoint(path: Path, cfg: ModelConfig, modules: Mapping[str, nn.Module],
                    provenance: Optional[Mapping[str, Any]] = None,
                    metrics: Optional[Mapping[str, Any]] = None) -> None:
    data: Dict[str, Any] = {"config": json.dumps(cfg.to_dict())}
    for role, module in modules.items():
        data[role] = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
    if provenance:
        data["provenance"] = json.dumps(dict(provenance))
    if metrics:
        data["metrics"] = json.dumps(dict(metrics))
    torch.save(data, str(path))


def load_checkpoint(path: Path) -> Dict[str, Any]:
    data = load_tensors(path)
    if not isinstance(data, dict) or "config" not in data:
        raise ValueError(f"checkpoint {path}: expected a dict with 'config' and state dicts")
    for key in ("config", "provenance", "metrics"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
        if key in data and not isinstance(data[key], dict):
            raise ValueError(f"checkpoint.{key}: expected a JSON object")
    return data


def check_same_networks(cfg: ModelConfig, other: Mapping[str, Any]) -> None:
    """Refuse a checkpoint config that differs from cfg in anything but RELABEL_FIELDS."""
    mine = cfg.to_dict()
    theirs = ModelConfig.from_dict(other).to_dict()
    differing = [k for k in mine if k not in RELABEL_FIELDS and mine[k] != theirs[k]]
    if differing:
        raise ValueError(f"{differing[0]}: the checkpoint was trained with {theirs[differing[0]]!r}, "
                         f"the config says {mine[differing[0]]!r} (differing fields: {differing})")


def modules_from_checkpoint(cfg: ModelConfig, data: Mapping[str, Any]) -> Dict[str, nn.Module]:
    """Build cfg's nets and load the checkpoint's weights into them (strict)."""
    check_same_networks(cfg, data["config"])
    modules = build_modules(cfg)
    for role, module in modules.items():
        if role not in data:
            raise ValueError(f"checkpoint: no weights for '{role}'")
        try:
            module.load_state_dict(data[role], strict=True)
        except RuntimeError as err:
            raise ValueError(f"checkpoint.{role}: weights do not fit the config: {err}") from None
    return modules
