"""The reward model's three networks, written so that torch.onnx.export (opset 17) gives clean graphs.

FrameEncoder  pixels uint8 [N, H, W, 3] (RGB)                       -> features float32 [N, D]
SarmHead      features float32 [B, T, V, D], valid float32 [B, T],
              task int64 [B] (, stage_hint int64 [B], training only) -> stage_logits float32 [B, K],
                                                                       tau float32 [B] in (0, 1)
                                  (exported with architecture.ensemble > 1, also) uncertainty float32 [B]
GrmHead       start, goal, before, after float32 [B, V, D],
              task int64 [B]                                        -> hop float32 [B] in [-1, 1]

Only the batch axis (N or B) is dynamic: every reshape names its other sizes from the config, so the
exported graphs carry fixed H, W, T, V, D, K. Shapes below: C channels, h x w the last feature map.

With architecture.backbone set to a torchvision model name, FrameEncoder's stride-2 convolutions are
replaced by that model's first layers (`FrozenBackbone`: no gradients, always in eval mode, so its
BatchNorm statistics never move and the export folds them) and a trained 1x1 projection; the
spatial-softmax head and the interface stay the same. Weights come from files already on the
machine (`backbone_weights_file`), never from the network.
"""
from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F

from .config import BACKBONES, IMAGE_MEAN, IMAGE_STD, ModelConfig

MASKED_LOGIT = -1e4
# Real stage logits are clipped to +-LOGIT_LIMIT so a real stage always beats a masked one.
LOGIT_LIMIT = 1e3


def _group_count(channels: int) -> int:
    for groups in (8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


# A file holding the full torchvision model's state dict; overrides the torch hub cache.
WEIGHTS_ENV = "STAGEWARD_BACKBONE_WEIGHTS"
# torchvision model name -> (its weights enum in torchvision.models, where the frozen part ends,
# the frozen part of the built model, its output channels). Every cut is after a 16x downsampling:
# 6x6 at 96x96 (resnet18's layer4 would leave 3x3 and add 8.4M of its 11.7M parameters).
BACKBONE_CUTS: Dict[str, Tuple[str, str, Callable[[nn.Module], nn.Module], int]] = {
    "resnet18": ("ResNet18_Weights", "layer3",
                 lambda m: nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3), 256),
    "mobilenet_v3_small": ("MobileNet_V3_Small_Weights", "features[8]", lambda m: m.features[:9], 48),
    "efficientnet_b0": ("EfficientNet_B0_Weights", "features[5]", lambda m: m.features[:6], 112),
}
assert set(BACKBONE_CUTS) == set(BACKBONES) - {"conv"}


def _torchvision_models():
    try:
        import torchvision.models as models
    except ImportError as err:
        raise ValueError(f"architecture.backbone: a torchvision backbone needs torchvision, which cannot be "
                         f"imported here ({err}); install it (Debian: apt install python3-torchvision, "
                         f"else a torchvision release matching torch {torch.__version__})") from None
    return models


def backbone_weights_name(name: str) -> Tuple[str, str]:
    """(weights enum entry, e.g. "ResNet18_Weights.IMAGENET1K_V1", its file name in the hub cache)."""
    enum = getattr(_torchvision_models(), BACKBONE_CUTS[name][0]).IMAGENET1K_V1
    return f"{BACKBONE_CUTS[name][0]}.IMAGENET1K_V1", os.path.basename(urlparse(enum.url).path)


def backbone_weights_file(name: str) -> Path:
    """Where the pretrained weights are read from: $STAGEWARD_BACKBONE_WEIGHTS when set, else
    torchvision's own cache file, torch.hub.get_dir()/checkpoints/<the weights url's file name>."""
    given = os.environ.get(WEIGHTS_ENV)
    if given:
        return Path(given).expanduser()
    return Path(torch.hub.get_dir()) / "checkpoints" / backbone_weights_name(name)[1]


def _load_pretrained(model: nn.Module, name: str) -> Path:
    """Load the pretrained state dict into the full torchvision model; never downloads."""
    path = backbone_weights_file(name)
    enum_name, file_name = backbone_weights_name(name)
    if not path.is_file():
        where = f"${WEIGHTS_ENV}" if os.environ.get(WEIGHTS_ENV) else "torch.hub.get_dir()/checkpoints"
        raise ValueError(
            f"architecture.backbone_weights: the pretrained {name} weights ({enum_name}) were looked for at "
            f"{path} (from {where}) and are not there; nothing is downloaded. On a machine with network run "
            f"`python3 -c \"import torchvision; torchvision.models.{name}(weights='IMAGENET1K_V1')\"`, then copy "
            f"its torch hub checkpoints/{file_name} to {path}, or set {WEIGHTS_ENV} to that file "
            f"(the full model's state dict); backbone_weights \"random\" builds untrained weights (tests only)")
    try:
        state = load_tensors(path)
    except Exception as err:  # a truncated or foreign file: say which
        raise ValueError(f"architecture.backbone_weights: {path} is not a readable state dict: {err}") from None
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"architecture.backbone_weights: {path} does not hold {name}'s weights: {err}") from None
    return path


def load_tensors(path: Path) -> Any:
    """torch.load of a file on the CPU, tensors and plain containers only where this torch can
    refuse anything else (weights_only, from torch 1.13 on)."""
    kwargs: Dict[str, object] = {"map_location": "cpu"}
    if "weights_only" in inspect.signature(torch.load).parameters:
        kwargs["weights_only"] = True
    return torch.load(str(path), **kwargs)


class FrozenBackbone(nn.Module):
    """A torchvision model up to BACKBONE_CUTS' cut, never trained: its parameters have requires_grad
    False and it stays in eval mode whatever train() is asked (BatchNorm uses, and keeps, its running
    statistics). float32 [N, 3, H, W] (ImageNet-normalised) -> [N, channels, H/16, W/16] (rounded up).

    weights "pretrained" reads the ImageNet weights (`backbone_weights_file`), "random" keeps the
    architecture's own random initialisation (which also runs before "pretrained" is loaded, so both
    consume the global RNG alike)."""

    def __init__(self, name: str, weights: str):
        super().__init__()
        full = getattr(_torchvision_models(), name)(weights=None)
        self.name, self.weights = name, weights
        self.source: Optional[str] = str(_load_pretrained(full, name)) if weights == "pretrained" else None
        self.body = BACKBONE_CUTS[name][2](full)
        self.channels = BACKBONE_CUTS[name][3]
        self.body.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "FrozenBackbone":
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def backbone_description(cfg: ModelConfig) -> Optional[str]:
    """One line for the card's provenance: which backbone, where cut, which weights (None for "conv")."""
    arch = cfg.architecture
    if arch.backbone == "conv":
        return None
    enum_name, file_name = backbone_weights_name(arch.backbone)
    weights = (f"pretrained ImageNet {enum_name} ({file_name}), read at training from the torch hub cache "
               f"or ${WEIGHTS_ENV}") if arch.backbone_weights == "pretrained" else \
        "random: untrained weights of the same architecture (tests only, not a pretrained model)"
    return (f"torchvision {arch.backbone} up to {BACKBONE_CUTS[arch.backbone][1]}, frozen (eval-mode BatchNorm), "
            f"then a trained 1x1 projection to {arch.encoder_channels[-1]} channels, spatial softmax + average "
            f"pooling and Linear to feature_dim; weights: {weights}")


class FrameEncoder(nn.Module):
    """uint8 [N, H, W, 3] -> float32 [N, D].

    Cast, /255, ImageNet (x - mean) / std, NHWC -> NCHW, stride-2 convs (+ GroupNorm) + ReLU to
    [N, C, h, w] (with architecture.encoder_block "separable", every conv after the first is a
    depthwise stride-2 conv followed by a 1x1 conv); spatial-softmax keypoints (expected x, y per
    channel, [N, 2C]) joined with global
    average pooling ([N, C]); Linear(3C -> D).

    With architecture.backbone (a torchvision name): the normalised image goes through the
    FrozenBackbone (`backbone`), then `convs` is a trained 1x1 conv to C = encoder_channels[-1]
    (+ GroupNorm) + ReLU; the head above is unchanged. load_backbone False builds the backbone with
    random weights whatever backbone_weights says (for weights that a checkpoint will replace).
    """

    def __init__(self, cfg: ModelConfig, load_backbone: bool = True):
        super().__init__()
        arch = cfg.architecture
        self.height, self.width = cfg.image.height, cfg.image.width
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGE_STD).reshape(1, 3, 1, 1))
        h, w = self.height, self.width
        k = arch.encoder_kernel
        self.backbone: Optional[FrozenBackbone] = None
        # (in channels, out channels, kernel, stride, padding) of each conv (+ GroupNorm) + ReLU
        if arch.backbone != "conv":
            self.backbone = FrozenBackbone(arch.backbone, arch.backbone_weights if load_backbone else "random")
            with torch.no_grad():
                h, w = self.backbone(torch.zeros(1, 3, h, w)).shape[-2:]
            convs = [(self.backbone.channels, arch.encoder_channels[-1], 1, 1, 0)]
        else:
            ins = [3, *arch.encoder_channels[:-1]]
            convs = [(c_in, c_out, k, 2, k // 2) for c_in, c_out in zip(ins, arch.encoder_channels)]
        layers = []
        for i, (c_in, c_out, size, stride, pad) in enumerate(convs):
            if arch.encoder_block == "separable" and i > 0:  # depthwise kxk, then 1x1 across channels
                layers.append(nn.Conv2d(c_in, c_in, size, stride=stride, padding=pad, groups=c_in))
                layers.append(nn.Conv2d(c_in, c_out, 1))
            else:
                layers.append(nn.Conv2d(c_in, c_out, size, stride=stride, padding=pad))
            if arch.encoder_norm == "group":
                layers.append(nn.GroupNorm(_group_count(c_out), c_out))
            layers.append(nn.ReLU())
            h, w = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
        in_ch = convs[-1][1]
        self.convs = nn.Sequential(*layers)
        self.channels, self.map_h, self.map_w = in_ch, h, w
        ys = torch.linspace(-1.0, 1.0, h) if h > 1 else torch.zeros(1)
        xs = torch.linspace(-1.0, 1.0, w) if w > 1 else torch.zeros(1)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        # [h*w, 2]: (x, y) of each cell, row-major like the flattened feature map
        self.register_buffer("grid", torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1))
        self.log_temperature = nn.Parameter(torch.zeros(1))
        self.out = nn.Linear(3 * in_ch, cfg.feature_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.float() / 255.0                                      # [N, H, W, 3]
        x = x.permute(0, 3, 1, 2)                                       # [N, 3, H, W]
        x = (x - self.mean) / self.std
        if self.backbone is not None:
            x = self.backbone(x)                                        # frozen: [N, C_b, H/16, W/16]
        x = self.convs(x)                                               # [N, C, h, w]
        flat = x.reshape(-1, self.channels, self.map_h * self.map_w)    # [N, C, h*w]
        attn = torch.softmax(flat * torch.exp(self.log_temperature), dim=-1)
        keypoints = torch.matmul(attn, self.grid).reshape(-1, 2 * self.channels)  # [N, 2C]
        pooled = flat.mean(dim=-1)                                      # [N, C]
        return self.out(torch.cat([keypoints, pooled], dim=-1))         # [N, D]


class MaskedSelfAttention(nn.Module):
    """Multi-head self-attention over T tokens; keys with valid 0 get -1e4 before the softmax."""

    def __init__(self, d_model: int, heads: int, tokens: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim, self.tokens = heads, d_model // heads, tokens
        self.q = nn.Linear(d_model, d_model)
        self.k = nn.Linear(d_model, d_model)
        self.v = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        # [B, T, d] -> [B, heads, T, head_dim]
        return x.reshape(-1, self.tokens, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        """x [B, T, d], key_bias [B, 1, 1, T] (0 or -1e4) -> [B, T, d]."""
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim)) + key_bias
        weights = self.drop(torch.softmax(scores, dim=-1))             # [B, heads, T, T]
        out = torch.matmul(weights, v).transpose(1, 2)                 # [B, T, heads, head_dim]
        return self.proj(out.reshape(-1, self.tokens, self.heads * self.head_dim))


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, heads: int, tokens: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = MaskedSelfAttention(d_model, heads, tokens, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(),
                                 nn.Dropout(dropout), nn.Linear(mlp_ratio * d_model, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), key_bias))
        return x + self.drop(self.mlp(self.norm2(x)))


class SarmHead(nn.Module):
    """SARM temporal head: stage logits and in-stage progress for the window's last slot.

    features [B, T, V, D] -> views joined, Linear(V*D -> d) + slot embedding [T, d] (slot 0 marks
    the initial frame when include_initial) + task embedding -> L pre-norm layers (padded keys
    masked) -> final LayerNorm -> last slot h [B, d].
    stage_logits [B, K] = clip(Linear(h), +-1e3), with stages past the task's own count set to -1e4
    (constant table [tasks, K] gathered by task).
    tau [B] = sigmoid(MLP([h, one_hot(stage)])), stage = argmax(stage_logits); in training,
    stage_hint [B] (entries >= 0) replaces the argmax (teacher forcing; -1 keeps the prediction).

    Ensemble (architecture.ensemble = E > 1): E (stage Linear, tau MLP) members over the shared h,
    each initialised and (in training) bootstrapped on its own. stage_logits is the members' mean,
    tau the members' mean tau at that consensus stage. uncertainty [B] is a standard deviation of
    progress with two parts: between members (the population variance of each member's own progress
    P_k + a_k * tau_m, k its own argmax) and between stages (the variance of the stage midpoints
    P_k + a_k / 2 under the consensus softmax); priors from the config. It is large where the members
    disagree, and where the stage itself is in doubt.
    Member 0 keeps the names `stage` and `tau`; the others live in `members`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        arch = cfg.architecture
        d = arch.d_model
        self.tokens, self.views, self.dim = cfg.window.length, cfg.num_views, cfg.feature_dim
        self.num_stages = cfg.num_stages
        self.embed = nn.Linear(self.views * self.dim, d)
        self.slot = nn.Parameter(torch.randn(self.tokens, d) * 0.02)
        self.task = nn.Embedding(len(cfg.tasks), d)
        nn.init.normal_(self.task.weight, std=0.02)
        self.layers = nn.ModuleList(
            EncoderLayer(d, arch.heads, self.tokens, arch.mlp_ratio, arch.dropout)
            for _ in range(arch.layers))
        self.norm = nn.LayerNorm(d)
        self.stage = nn.Linear(d, self.num_stages)
        self.tau = nn.Sequential(nn.Linear(d + self.num_stages, d), nn.GELU(), nn.Linear(d, 1))
        self.ensemble = arch.ensemble
        self.members = nn.ModuleList(
            nn.ModuleDict({"stage": nn.Linear(d, self.num_stages),
                           "tau": nn.Sequential(nn.Linear(d + self.num_stages, d), nn.GELU(), nn.Linear(d, 1))})
            for _ in range(arch.ensemble - 1))
        keep = torch.zeros(len(cfg.tasks), self.num_stages)
        cum = torch.zeros(len(cfg.tasks), self.num_stages)
        share = torch.zeros(len(cfg.tasks), self.num_stages)
        for i, count in enumerate(cfg.stage_counts()):
            keep[i, :count] = 1.0
            priors = [p for _, p in cfg.stages[cfg.tasks[i]]]
            for k, p in enumerate(priors):
                share[i, k] = p
                cum[i, k] = sum(priors[:k])
        self.register_buffer("stage_keep", keep)                        # [tasks, K], 1 = real stage
        self.register_buffer("stage_ids", torch.arange(self.num_stages))
        self.register_buffer("prior_cum", cum)                          # [tasks, K], P_k
        self.register_buffer("prior_share", share)                      # [tasks, K], a_k

    def trunk(self, features: torch.Tensor, valid: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """The shared part: h [B, d] of the window's last slot."""
        x = self.embed(features.reshape(-1, self.tokens, self.views * self.dim))  # [B, T, d]
        x = x + self.slot + self.task(task).unsqueeze(1)
        key_bias = ((1.0 - valid) * MASKED_LOGIT).reshape(-1, 1, 1, self.tokens)
        for layer in self.layers:
            x = layer(x, key_bias)
        return self.norm(x)[:, self.tokens - 1]                         # [B, d]

    def _heads(self):
        return [(self.stage, self.tau)] + [(m["stage"], m["tau"]) for m in self.members]

    def _logits(self, stage_head: nn.Module, h: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        keep = self.stage_keep[task]                                    # [B, K]
        logits = torch.clamp(stage_head(h), -LOGIT_LIMIT, LOGIT_LIMIT)
        return logits * keep + (1.0 - keep) * MASKED_LOGIT

    def _tau(self, tau_head: nn.Module, h: torch.Tensor, stage: torch.Tensor) -> torch.Tensor:
        one_hot = (stage.unsqueeze(1) == self.stage_ids).float()        # [B, K]
        return torch.sigmoid(tau_head(torch.cat([h, one_hot], dim=-1))).reshape(-1)

    def member_outputs(self, features: torch.Tensor, valid: torch.Tensor, task: torch.Tensor,
                       stage_hint: Optional[torch.Tensor] = None):
        """[(stage_logits [B, K], tau [B])] per member, each tau at the hint or the member's own argmax."""
        h = self.trunk(features, valid, task)
        out = []
        for stage_head, tau_head in self._heads():
            logits = self._logits(stage_head, h, task)
            stage = torch.argmax(logits, dim=-1)
            if stage_hint is not None:
                stage = torch.where(stage_hint >= 0, stage_hint, stage)
            out.append((logits, self._tau(tau_head, h, stage)))
        return out

    def forward(self, features: torch.Tensor, valid: torch.Tensor, task: torch.Tensor,
                stage_hint: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        logits, tau, _ = self.predict(features, valid, task, stage_hint)
        return logits, tau

    def predict(self, features: torch.Tensor, valid: torch.Tensor, task: torch.Tensor,
                stage_hint: Optional[torch.Tensor] = None):
        """(stage_logits [B, K], tau [B], uncertainty [B] or None with one member)."""
        h = self.trunk(features, valid, task)
        heads = self._heads()
        member_logits = [self._logits(sh, h, task) for sh, _ in heads]
        logits = member_logits[0] if len(heads) == 1 else _elementwise_mean(member_logits)
        stage = torch.argmax(logits, dim=-1)                            # [B]
        if stage_hint is not None:
            stage = torch.where(stage_hint >= 0, stage_hint, stage)
        taus = [self._tau(th, h, stage) for _, th in heads]
        tau = taus[0] if len(heads) == 1 else _elementwise_mean(taus)
        if len(heads) == 1:
            return logits, tau, None
        cum, share = self.prior_cum[task], self.prior_share[task]       # [B, K]
        progress = []
        for (_, th), ml in zip(heads, member_logits):
            own = torch.argmax(ml, dim=-1).unsqueeze(1)                 # [B, 1]
            tau_m = self._tau(th, h, own.squeeze(1))
            # gathers, not a masked sum over K: no reduction whose order could depend on the batch
            progress.append(torch.gather(cum, 1, own).squeeze(1) + torch.gather(share, 1, own).squeeze(1) * tau_m)
        # Elementwise sums over members and stages, never a ReduceMean/ReduceSum or Pow: ONNX Runtime
        # may reduce a batch of one in another order, and the server must give a window the same bits
        # alone as inside a dynamic batch.
        mean = _elementwise_mean(progress)
        between_members = _elementwise_mean([(p - mean) * (p - mean) for p in progress])
        # the stage's own ambiguity, in progress units: the variance of the stage midpoints
        # P_k + a_k / 2 under the consensus stage distribution (padding stages have probability 0)
        probs = torch.softmax(logits, dim=-1)                           # [B, K]
        mid = cum + 0.5 * share
        cols = range(self.num_stages)
        mu = _elementwise_sum([probs[:, k] * mid[:, k] for k in cols])
        between_stages = _elementwise_sum([probs[:, k] * (mid[:, k] - mu) * (mid[:, k] - mu) for k in cols])
        return logits, tau, torch.sqrt(between_members + between_stages + 1e-12)


def _elementwise_sum(xs):
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


def _elementwise_mean(xs):
    return _elementwise_sum(xs) * (1.0 / len(xs))


class SarmExport(nn.Module):
    """What sarm.onnx runs: SarmHead.predict, with the `uncertainty` output when it has one."""

    def __init__(self, sarm: SarmHead):
        super().__init__()
        self.sarm = sarm

    def forward(self, features: torch.Tensor, valid: torch.Tensor, task: torch.Tensor):
        logits, tau, spread = self.sarm.predict(features, valid, task)
        return (logits, tau) if spread is None else (logits, tau, spread)


class GrmHead(nn.Module):
    """GRM pairwise head: hop from `before` to `after`, normalised by what remained, in [-1, 1].

    Each of start, goal, before, after [B, V, D] -> shared Linear(V*D -> d) + LayerNorm; concat
    [start, goal, before, after, after - before, task embedding] [B, 6d] -> MLP -> tanh -> [B].
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        arch = cfg.architecture
        d, hidden = arch.d_model, arch.grm_hidden
        self.views, self.dim = cfg.num_views, cfg.feature_dim
        self.project = nn.Sequential(nn.Linear(self.views * self.dim, d), nn.LayerNorm(d))
        self.task = nn.Embedding(len(cfg.tasks), d)
        nn.init.normal_(self.task.weight, std=0.02)
        self.mlp = nn.Sequential(nn.Linear(6 * d, hidden), nn.GELU(), nn.Dropout(arch.dropout),
                                 nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, start: torch.Tensor, goal: torch.Tensor, before: torch.Tensor,
                after: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        def proj(x: torch.Tensor) -> torch.Tensor:
            return self.project(x.reshape(-1, self.views * self.dim))
        s, g, b, a = proj(start), proj(goal), proj(before), proj(after)
        x = torch.cat([s, g, b, a, a - b, self.task(task)], dim=-1)
        return torch.tanh(self.mlp(x)).reshape(-1)


def build_modules(cfg: ModelConfig, load_backbone: bool = True) -> dict:
    """{"encoder", "sarm"[, "grm"]} freshly initialised, in a fixed order (seed before calling).
    load_backbone False: a torchvision backbone keeps random weights (a checkpoint will replace them)."""
    modules = {"encoder": FrameEncoder(cfg, load_backbone), "sarm": SarmHead(cfg)}
    if cfg.grm_present:
        modules["grm"] = GrmHead(cfg)
    return modules
