"""model.json (models/PACKAGE.md): build the card from a ModelConfig, and check a card read back.

`validate_card` mirrors what the TypeScript loader refuses (minus the ONNX graph checks, which need
a runtime); it raises ValueError naming the field.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from .config import FORMAT, IMAGE_MEAN, IMAGE_STD, ModelConfig

GRAPH_FILES = {"encoder": "encoder.onnx", "sarm": "sarm.onnx", "grm": "grm.onnx"}
CARD_FIELDS = ("format", "name", "version", "views", "image", "normalization", "feature_dim",
               "window", "fps", "tasks", "instructions", "stages", "progress", "missing_views", "grm",
               "graphs", "architecture", "provenance", "metrics")
OPTIONAL_CARD_FIELDS = ("instructions", "missing_views")


def graph_files(cfg: ModelConfig) -> Dict[str, str]:
    """The `graphs` field: role -> file name inside the package."""
    roles = ("encoder", "sarm", "grm") if cfg.grm_present else ("encoder", "sarm")
    return {role: GRAPH_FILES[role] for role in roles}


def build_card(cfg: ModelConfig, provenance: Optional[Mapping[str, Any]] = None,
               metrics: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The complete model.json, keys in PACKAGE.md order."""
    body = cfg.to_dict()
    card: Dict[str, Any] = {"format": FORMAT}
    for key in CARD_FIELDS[1:]:
        if key == "normalization":
            card[key] = {"mean": list(IMAGE_MEAN), "std": list(IMAGE_STD)}
        elif key == "graphs":
            card[key] = graph_files(cfg)
        elif key == "provenance":
            card[key] = dict(provenance or {})
        elif key == "metrics":
            card[key] = dict(metrics or {})
        elif key not in body:  # optional fields (instructions)
            continue
        else:
            card[key] = body[key]
    return card


def validate_card(card: Mapping[str, Any], package_dir: Optional[Path] = None) -> ModelConfig:
    """Check every PACKAGE.md field (and, given the folder, that the graph files exist)."""
    missing = [k for k in CARD_FIELDS if k not in card and k not in OPTIONAL_CARD_FIELDS]
    if missing:
        raise ValueError(f"model.json: missing field(s) {missing}")
    if card["format"] != FORMAT:
        raise ValueError(f"format: expected {FORMAT}, got {card['format']!r}")
    norm = card["normalization"]
    if not isinstance(norm, Mapping) or len(norm.get("mean", ())) != 3 or len(norm.get("std", ())) != 3:
        raise ValueError("normalization: must be {mean: [3], std: [3]}")
    for key in ("architecture", "provenance", "metrics"):
        if not isinstance(card[key], Mapping):
            raise ValueError(f"{key}: must be an object")
    cfg = ModelConfig.from_dict(card)  # checks names, shapes, stages, priors, modes
    expected = graph_files(cfg)
    if dict(card["graphs"]) != expected:
        raise ValueError(f"graphs: expected {expected} for grm.present={cfg.grm_present}, "
                         f"got {card['graphs']!r}")
    if package_dir is not None:
        for role, name in expected.items():
            if not (Path(package_dir) / name).is_file():
                raise ValueError(f"graphs.{role}: file {name} is missing from {package_dir}")
    return cfg
