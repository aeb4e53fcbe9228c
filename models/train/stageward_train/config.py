"""ModelConfig: everything that fixes a reward model's shapes and meaning, checked at construction.

The dict form (`to_dict` / `from_dict`) is the model card of models/PACKAGE.md without the fields
the exporter adds (`format`, `normalization`, `graphs`, `provenance`, `metrics`), so a config file
reads like the card it produces:

    {"name": "tiny", "version": "0.1.0", "views": ["front", "side", "wrist"],
     "image": {"height": 64, "width": 64, "resize": "stretch"}, "feature_dim": 32,
     "window": {"length": 5, "stride_frames": 2, "include_initial": true}, "fps": 10,
     "tasks": ["pick_place"], "stages": {"pick_place": [{"name": "reach", "prior": 1.0}]},
     "progress": {"composition": "argmax"}, "grm": {"present": true, "goal": "client"},
     "architecture": {"encoder_channels": [8, 16], ...}}

Every refusal is a ValueError whose message starts with the offending field's path.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

FORMAT = 1
NAME_PATTERN = re.compile(r"^[a-z0-9_.-]+$")
RESIZE_MODES = ("stretch", "pad", "crop")
COMPOSITIONS = ("argmax", "expected")
GOAL_SOURCES = ("client", "none")
ENCODER_NORMS = ("group", "none")
# architecture.encoder_block: "conv" (every stride-2 layer a full kxk conv) or "separable" (after the
# first conv, each layer a depthwise kxk stride-2 conv then a 1x1 conv: MobileNet's block, about a
# quarter of the time on a CPU; what `stageward distill` trains)
ENCODER_BLOCKS = ("conv", "separable")
# architecture.backbone: "conv" (the small trained CNN) or a frozen torchvision model (nets.BACKBONE_CUTS)
BACKBONES = ("conv", "resnet18", "mobilenet_v3_small", "efficientnet_b0")
BACKBONE_WEIGHTS = ("pretrained", "random")
# a torchvision backbone is cut where it has downsampled 16x; this keeps its last map at least 2x2
BACKBONE_MIN_SIDE = 32
PRIOR_SUM_TOLERANCE = 1e-3
# Card fields that the exporter writes; from_dict accepts and ignores them so a card reads back.
MISSING_VIEW_FILLS = ("black",)
CARD_ONLY_FIELDS = ("format", "normalization", "graphs", "provenance", "metrics")
# ImageNet statistics, applied inside encoder.onnx and reported in the card.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def _fail(path: str, message: str) -> None:
    raise ValueError(f"{path}: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(path: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        _fail(path, f"must be a positive integer, got {value!r}")
    return value


def _one_of(path: str, value: Any, allowed: Tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(path, f"must be one of {list(allowed)}, got {value!r}")
    return value


def _names(path: str, value: Any) -> Tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        _fail(path, f"must be a non-empty list of names, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item:
            _fail(f"{path}[{i}]", f"must be a non-empty string, got {item!r}")
    duplicates = sorted({v for v in value if list(value).count(v) > 1})
    if duplicates:
        _fail(path, f"names must be unique, repeated: {duplicates}")
    return tuple(value)


def _keys(path: str, value: Any, required: Tuple[str, ...], optional: Tuple[str, ...] = ()) -> Mapping:
    if not isinstance(value, Mapping):
        _fail(path, f"must be an object, got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        _fail(path, f"missing field(s) {missing}")
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        _fail(path, f"unknown field(s) {unknown}")
    return value


@dataclass(frozen=True)
class ImageSpec:
    """The encoder's input size; the server resizes client frames to it with `resize`."""

    height: int
    width: int
    resize: str = "stretch"

    def __post_init__(self) -> None:
        _positive_int("image.height", self.height)
        _positive_int("image.width", self.width)
        _one_of("image.resize", self.resize, RESIZE_MODES)


@dataclass(frozen=True)
class WindowSpec:
    """The causal SARM window: `length` slots (T), `stride_frames` between past frames."""

    length: int
    stride_frames: int
    include_initial: bool

    def __post_init__(self) -> None:
        _positive_int("window.length", self.length)
        _positive_int("window.stride_frames", self.stride_frames)
        if not isinstance(self.include_initial, bool):
            _fail("window.include_initial", f"must be true or false, got {self.include_initial!r}")
        if self.include_initial and self.length < 2:
            _fail("window.length", "must be at least 2 when include_initial is true "
                  "(slot 0 holds frame 0, the last slot the current frame)")


@dataclass(frozen=True)
class Architecture:
    """Network hyper-parameters; read by the trainer only (the card carries them as `architecture`)."""

    encoder_channels: Tuple[int, ...] = (32, 64, 64, 128)
    encoder_kernel: int = 3
    encoder_norm: str = "group"
    encoder_block: str = "conv"
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    grm_hidden: int = 128
    dropout: float = 0.0
    # SARM stage + tau heads over the shared trunk; > 1 adds the `uncertainty` output (nets.SarmHead)
    ensemble: int = 1
    # "conv": the trained CNN above; else a frozen torchvision model whose map feeds a trained 1x1
    # projection of encoder_channels[-1] channels (nets.FrameEncoder); both written only when not "conv"
    backbone: str = "conv"
    # "pretrained" (ImageNet weights from the local torch hub cache or STAGEWARD_BACKBONE_WEIGHTS, never
    # downloaded) or "random" (the same architecture, untrained: for tests)
    backbone_weights: str = "pretrained"

    def __post_init__(self) -> None:
        chans = self.encoder_channels
        if not isinstance(chans, (list, tuple)) or len(chans) == 0:
            _fail("architecture.encoder_channels", f"must be a non-empty list, got {chans!r}")
        for i, c in enumerate(chans):
            _positive_int(f"architecture.encoder_channels[{i}]", c)
        object.__setattr__(self, "encoder_channels", tuple(chans))
        if self.encoder_kernel not in (3, 5):
            _fail("architecture.encoder_kernel", f"must be 3 or 5, got {self.encoder_kernel!r}")
        _one_of("architecture.encoder_norm", self.encoder_norm, ENCODER_NORMS)
        _one_of("architecture.encoder_block", self.encoder_block, ENCODER_BLOCKS)
        if self.encoder_block != "conv" and self.backbone != "conv":
            _fail("architecture.encoder_block", f"applies only to the trained CNN, got {self.encoder_block!r} "
                  f"with backbone {self.backbone!r}")
        _positive_int("architecture.d_model", self.d_model)
        _positive_int("architecture.layers", self.layers)
        _positive_int("architecture.heads", self.heads)
        _positive_int("architecture.mlp_ratio", self.mlp_ratio)
        _positive_int("architecture.grm_hidden", self.grm_hidden)
        _positive_int("architecture.ensemble", self.ensemble)
        _one_of("architecture.backbone", self.backbone, BACKBONES)
        _one_of("architecture.backbone_weights", self.backbone_weights, BACKBONE_WEIGHTS)
        if self.backbone == "conv" and self.backbone_weights != "pretrained":
            _fail("architecture.backbone_weights", f"applies only with a torchvision architecture.backbone, "
                  f"got {self.backbone_weights!r} with \"conv\"")
        if self.d_model % self.heads != 0:
            _fail("architecture.heads", f"d_model {self.d_model} is not divisible by heads {self.heads}")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) \
                or not 0.0 <= self.dropout < 1.0:
            _fail("architecture.dropout", f"must be a number in [0, 1), got {self.dropout!r}")


@dataclass(frozen=True)
class ModelConfig:
    """A reward model's contract (views, image, window, tasks, stages) and its architecture."""

    name: str
    version: str
    views: Tuple[str, ...]
    image: ImageSpec
    feature_dim: int
    window: WindowSpec
    fps: float
    tasks: Tuple[str, ...]
    # task -> ordered ((stage name, temporal-proportion prior), ...)
    stages: Dict[str, Tuple[Tuple[str, float], ...]]
    composition: str = "argmax"
    grm_present: bool = True
    grm_goal: str = "client"
    architecture: Architecture = field(default_factory=Architecture)
    # task -> (instruction, *aliases): the natural-language prompts that name it (optional)
    instructions: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    # how a server may fill a camera the client lacks ("black"), or None: it may not (optional)
    missing_view_fill: Optional[str] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            _fail("name", f"must match [a-z0-9_.-]+, got {self.name!r}")
        if not isinstance(self.version, str) or not self.version:
            _fail("version", f"must be a non-empty string, got {self.version!r}")
        object.__setattr__(self, "views", _names("views", self.views))
        _positive_int("feature_dim", self.feature_dim)
        if not isinstance(self.fps, (int, float)) or isinstance(self.fps, bool) \
                or not math.isfinite(self.fps) or self.fps <= 0:
            _fail("fps", f"must be a positive number, got {self.fps!r}")
        object.__setattr__(self, "tasks", _names("tasks", self.tasks))
        object.__setattr__(self, "stages", self._checked_stages())
        object.__setattr__(self, "instructions", self._checked_instructions())
        if self.missing_view_fill is not None:
            _one_of("missing_views.fill", self.missing_view_fill, MISSING_VIEW_FILLS)
        _one_of("progress.composition", self.composition, COMPOSITIONS)
        if not isinstance(self.grm_present, bool):
            _fail("grm.present", f"must be true or false, got {self.grm_present!r}")
        _one_of("grm.goal", self.grm_goal, GOAL_SOURCES)
        if not self.grm_present and self.grm_goal != "none":
            _fail("grm.goal", "must be \"none\" when grm.present is false")
        size = min(self.image.height, self.image.width)
        if self.architecture.backbone != "conv":
            if size < BACKBONE_MIN_SIDE:
                _fail("architecture.backbone", f"{self.architecture.backbone} is cut after a 16x downsampling and "
                      f"needs an image side of at least {BACKBONE_MIN_SIDE}, got {size}")
        elif size < 2 ** len(self.architecture.encoder_channels):
            _fail("architecture.encoder_channels",
                  f"{len(self.architecture.encoder_channels)} stride-2 convolutions need an image "
                  f"side of at least {2 ** len(self.architecture.encoder_channels)}, got {size}")

    def _checked_instructions(self) -> Dict[str, Tuple[str, ...]]:
        given = self.instructions
        if not isinstance(given, Mapping):
            _fail("instructions", f"must be an object keyed by task, got {type(given).__name__}")
        out: Dict[str, Tuple[str, ...]] = {}
        for task, texts in given.items():
            if task not in self.tasks:
                _fail(f"instructions.{task}", "names a task that is not in `tasks`")
            out[task] = _names(f"instructions.{task}", texts)
        return out

    def _checked_stages(self) -> Dict[str, Tuple[Tuple[str, float], ...]]:
        stages = self.stages
        if not isinstance(stages, Mapping):
            _fail("stages", f"must be an object keyed by task, got {type(stages).__name__}")
        missing = [t for t in self.tasks if t not in stages]
        if missing:
            _fail("stages", f"no stages for task(s) {missing}")
        unknown = sorted(set(stages) - set(self.tasks))
        if unknown:
            _fail("stages", f"stages for unknown task(s) {unknown} (not in tasks)")
        checked: Dict[str, Tuple[Tuple[str, float], ...]] = {}
        for task in self.tasks:
            path = f"stages.{task}"
            entries = stages[task]
            if not isinstance(entries, (list, tuple)) or len(entries) == 0:
                _fail(path, "must be a non-empty list of (name, prior)")
            pairs = []
            for i, entry in enumerate(entries):
                if not isinstance(entry, (list, tuple)) or len(entry) != 2:
                    _fail(f"{path}[{i}]", f"must be a (name, prior) pair, got {entry!r}")
                name, prior = entry
                if not isinstance(prior, (int, float)) or isinstance(prior, bool) \
                        or not math.isfinite(prior) or not 0.0 < prior <= 1.0:
                    _fail(f"{path}[{i}].prior", f"must be in (0, 1], got {prior!r}")
                pairs.append((name, float(prior)))
            _names(f"{path}[*].name", [n for n, _ in pairs])
            total = sum(p for _, p in pairs)
            if abs(total - 1.0) > PRIOR_SUM_TOLERANCE:
                _fail(f"{path}[*].prior", f"priors must sum to 1 within {PRIOR_SUM_TOLERANCE}, "
                      f"they sum to {total:.6f}")
            checked[task] = tuple(pairs)
        return checked

    # ---- derived shapes --------------------------------------------------------------------

    @property
    def num_views(self) -> int:
        """V."""
        return len(self.views)

    @property
    def num_stages(self) -> int:
        """K: the largest stage count over the tasks (width of stage_logits)."""
        return max(len(s) for s in self.stages.values())

    def stage_counts(self) -> List[int]:
        """Per task index, that task's own stage count."""
        return [len(self.stages[t]) for t in self.tasks]

    # ---- dict form ---------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        arch = self.architecture
        return {
            "name": self.name,
            "version": self.version,
            "views": list(self.views),
            "image": {"height": self.image.height, "width": self.image.width,
                      "resize": self.image.resize},
            "feature_dim": self.feature_dim,
            "window": {"length": self.window.length, "stride_frames": self.window.stride_frames,
                       "include_initial": self.window.include_initial},
            "fps": self.fps,
            "tasks": list(self.tasks),
            # written only when given, so configs and cards without instructions read as before
            **({"instructions": {t: list(v) for t, v in self.instructions.items() if t in self.tasks}}
               if self.instructions else {}),
            "stages": {t: [{"name": n, "prior": p} for n, p in self.stages[t]] for t in self.tasks},
            "progress": {"composition": self.composition},
            **({"missing_views": {"fill": self.missing_view_fill}} if self.missing_view_fill is not None else {}),
            "grm": {"present": self.grm_present, "goal": self.grm_goal},
            "architecture": {
                "encoder_channels": list(arch.encoder_channels),
                "encoder_kernel": arch.encoder_kernel,
                "encoder_norm": arch.encoder_norm,
                # written only when not "conv", so cards of full-conv encoders read as before
                **({"encoder_block": arch.encoder_block} if arch.encoder_block != "conv" else {}),
                "d_model": arch.d_model,
                "layers": arch.layers,
                "heads": arch.heads,
                "mlp_ratio": arch.mlp_ratio,
                "grm_hidden": arch.grm_hidden,
                "dropout": arch.dropout,
                # written only when it is not the default, so one-head configs and cards read as before
                **({"ensemble": arch.ensemble} if arch.ensemble != 1 else {}),
                # likewise only with a torchvision backbone: "conv" configs and cards read as before
                **({"backbone": arch.backbone, "backbone_weights": arch.backbone_weights}
                   if arch.backbone != "conv" else {}),
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Build from a config file's dict or a model card (card-only fields are ignored)."""
        required = ("name", "version", "views", "image", "feature_dim", "window", "fps", "tasks",
                    "stages", "progress", "grm")
        _keys("config", data, required, ("architecture", "instructions", "missing_views") + CARD_ONLY_FIELDS)
        image = _keys("image", data["image"], ("height", "width", "resize"))
        window = _keys("window", data["window"], ("length", "stride_frames", "include_initial"))
        progress = _keys("progress", data["progress"], ("composition",))
        grm = _keys("grm", data["grm"], ("present", "goal"))
        arch_fields = tuple(Architecture.__dataclass_fields__)
        arch = _keys("architecture", data.get("architecture", {}), (), arch_fields)
        stages_in = data["stages"]
        if not isinstance(stages_in, Mapping):
            _fail("stages", f"must be an object keyed by task, got {type(stages_in).__name__}")
        stages: Dict[str, Tuple[Tuple[str, float], ...]] = {}
        for task, entries in stages_in.items():
            if not isinstance(entries, list):
                _fail(f"stages.{task}", "must be a list of {name, prior}")
            stages[task] = tuple(
                (e["name"], e["prior"]) for e in
                (_keys(f"stages.{task}[{i}]", e, ("name", "prior")) for i, e in enumerate(entries)))
        return cls(
            name=data["name"], version=data["version"], views=data["views"],
            image=ImageSpec(image["height"], image["width"], image["resize"]),
            feature_dim=data["feature_dim"],
            window=WindowSpec(window["length"], window["stride_frames"], window["include_initial"]),
            fps=data["fps"], tasks=data["tasks"], stages=stages,
            composition=progress["composition"], grm_present=grm["present"], grm_goal=grm["goal"],
            architecture=Architecture(**arch),
            instructions=data.get("instructions", {}),
            missing_view_fill=_keys("missing_views", data["missing_views"], ("fill",))["fill"]
            if "missing_views" in data else None,
        )
