"""Export a model package (models/PACKAGE.md): encoder.onnx, sarm.onnx[, grm.onnx] and model.json.

Usage (from models/train):
    python3 -m stageward_train.export --config configs/default.json --random-seed 0 --out /tmp/model
    python3 -m stageward_train.export --weights runs/x/ckpt.pt --out ../zoo/pick-place \
        [--config configs/default.json] [--metrics metrics.json]

The package is written into a sibling temporary folder and renamed over --out only once complete;
an existing package is removed only after the new one is in place, so a failed export leaves it.
ONNX opset 17; only the batch axes (N, B) are dynamic.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

import torch
from torch import nn

from .card import build_card, graph_files, validate_card
from .checkpoint import load_checkpoint, modules_from_checkpoint
from .config import ModelConfig
from .nets import SarmExport, backbone_description, build_modules

OPSET = 17
TRACE_BATCH = 2  # >1 so nothing specialises on a batch of one


def seeded_modules(cfg: ModelConfig, seed: int) -> Dict[str, nn.Module]:
    """Random weights, the same for the same seed and config."""
    torch.manual_seed(seed)
    return build_modules(cfg)


def _graph_specs(cfg: ModelConfig):
    """role -> (example inputs, input names, output names, dynamic axes)."""
    b, t, v, d = TRACE_BATCH, cfg.window.length, cfg.num_views, cfg.feature_dim
    gen = torch.Generator().manual_seed(0)
    task = torch.zeros(b, dtype=torch.int64)
    sarm_extra = ["uncertainty"] if cfg.architecture.ensemble > 1 else []
    pair = [torch.randn(b, v, d, generator=gen) for _ in range(4)]
    specs = {
        "encoder": ((torch.zeros(b, cfg.image.height, cfg.image.width, 3, dtype=torch.uint8),),
                    ["pixels"], ["features"], {"pixels": {0: "N"}, "features": {0: "N"}}),
        "sarm": ((torch.randn(b, t, v, d, generator=gen), torch.ones(b, t), task),
                 ["features", "valid", "task"], ["stage_logits", "tau"] + sarm_extra,
                 {"features": {0: "B"}, "valid": {0: "B"}, "task": {0: "B"},
                  "stage_logits": {0: "B"}, "tau": {0: "B"}, **{n: {0: "B"} for n in sarm_extra}}),
        "grm": ((*pair, task), ["start", "goal", "before", "after", "task"], ["hop"],
                {**{n: {0: "B"} for n in ("start", "goal", "before", "after", "task")},
                 "hop": {0: "B"}}),
    }
    return specs


def export_graphs(cfg: ModelConfig, modules: Mapping[str, nn.Module], folder: Path,
                  roles: Optional[Sequence[str]] = None) -> None:
    """Write the ONNX graphs named in graph_files(cfg) into folder (modules in eval mode); only
    those of `roles` when given (a distilled package copies its head graphs instead)."""
    specs = _graph_specs(cfg)
    for role, file_name in graph_files(cfg).items():
        if roles is not None and role not in roles:
            continue
        if role not in modules:
            raise ValueError(f"modules: '{role}' is required by the config but was not given")
        module = SarmExport(modules[role]) if role == "sarm" else modules[role]
        was_training = module.training
        module.eval()
        try:
            args, inputs, outputs, axes = specs[role]
            with torch.no_grad(), warnings.catch_warnings():
                # GroupNorm's batch-size check traces as a constant; it does not affect the graph
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                torch.onnx.export(module, args, str(folder / file_name), input_names=inputs,
                                  output_names=outputs, dynamic_axes=axes, opset_version=OPSET,
                                  do_constant_folding=True)
        finally:
            module.train(was_training)


def _replace_dir(new: Path, target: Path) -> None:
    """Rename new over target; an existing target is moved aside first and deleted last."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=str(target.parent)))
        os.rmdir(old)
        os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old)


UNCERTAINTY_METHOD = ("sarm.onnx output `uncertainty`: sqrt(population variance over the {e} SARM members of each "
                      "member's own progress P_k + a_k * tau_m + variance of the stage midpoints P_k + a_k / 2 under "
                      "softmax(stage_logits)), in progress units (models/PACKAGE.md, Ensemble packages)")


def export_package(cfg: ModelConfig, modules: Mapping[str, nn.Module], out_dir: Path,
                   provenance: Optional[Mapping[str, Any]] = None,
                   metrics: Optional[Mapping[str, Any]] = None,
                   copied_graphs: Optional[Mapping[str, Path]] = None) -> Path:
    """Write the complete package to out_dir atomically; returns out_dir. `copied_graphs` (role ->
    ONNX file) are copied as they are instead of exported from `modules` (a distilled package keeps
    its teacher's heads)."""
    if cfg.architecture.ensemble > 1:  # the card says how its uncertainty is made
        provenance = {**(provenance or {}), "uncertainty": UNCERTAINTY_METHOD.format(e=cfg.architecture.ensemble)}
    if cfg.architecture.backbone != "conv":  # and which frozen backbone, with which weights
        provenance = {**(provenance or {}), "backbone": backbone_description(cfg)}
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=str(out_dir.parent)))
    try:
        copied = dict(copied_graphs or {})
        export_graphs(cfg, modules, tmp, roles=[r for r in graph_files(cfg) if r not in copied])
        for role, source in copied.items():
            shutil.copyfile(source, tmp / graph_files(cfg)[role])
        card = build_card(cfg, provenance, metrics)
        text = json.dumps(card, indent=2) + "\n"
        (tmp / "model.json").write_text(text, encoding="utf-8")
        validate_card(json.loads(text), tmp)
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def code_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=str(Path(__file__).parent),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def file_sha256(path: Path) -> str:
    """The file's sha256 in hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m stageward_train.export",
                                     description="Export a stageward model package.")
    parser.add_argument("--config", type=Path, help="config JSON (default: the checkpoint's own)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="checkpoint .pt written by the trainer")
    source.add_argument("--random-seed", type=int, help="random weights from this seed")
    parser.add_argument("--metrics", type=Path, help="JSON object of held-out metrics for the card")
    parser.add_argument("--out", type=Path, required=True, help="package folder to (re)write")
    args = parser.parse_args(argv)
    if args.config is None and args.weights is None:
        parser.error("--config is required with --random-seed")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parse_args(argv)
    try:
        return _run(args, argv)
    except (ValueError, OSError) as err:  # config/checkpoint refusals: the message names the field
        print(f"export: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, argv: Optional[Sequence[str]]) -> int:
    command = shlex.join(["python3", "-m", "stageward_train.export",
                          *(sys.argv[1:] if argv is None else argv)])
    provenance: Dict[str, Any] = {"code_revision": code_revision(), "command": command}
    metrics: Dict[str, Any] = {}
    if args.weights is not None:
        data = load_checkpoint(args.weights)
        cfg_dict = data["config"]
        if args.config is not None:
            cfg_dict = json.loads(args.config.read_text(encoding="utf-8"))
        cfg = ModelConfig.from_dict(cfg_dict)
        modules = modules_from_checkpoint(cfg, data)
        provenance.update(data.get("provenance") or {})
        provenance["seed"] = provenance.get("seed")
        provenance["weights"] = {"file": args.weights.name, "sha256": file_sha256(args.weights)}
        metrics.update(data.get("metrics") or {})
    else:
        cfg = ModelConfig.from_dict(json.loads(args.config.read_text(encoding="utf-8")))
        modules = seeded_modules(cfg, args.random_seed)
        provenance["seed"] = args.random_seed
        provenance["weights"] = "random (untrained)"
    provenance["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if args.metrics is not None:
        extra = json.loads(args.metrics.read_text(encoding="utf-8"))
        if not isinstance(extra, dict):
            raise SystemExit(f"--metrics: {args.metrics} must hold a JSON object")
        metrics.update(extra)
    out = export_package(cfg, modules, args.out, provenance, metrics)
    sizes = {p.name: p.stat().st_size for p in sorted(out.iterdir())}
    print(json.dumps({"package": str(out), "bytes": sizes, "total_bytes": sum(sizes.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
