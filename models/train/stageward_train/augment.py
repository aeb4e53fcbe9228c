"""Image augmentation for the frame encoder, in torch, on float pixels in [0, 255] (NHWC, as the
encoder takes them; its forward casts with .float(), a no-op on float input).

What a deployment can throw at the model that the simulator data never showed: camera jitter (small
shift, scale, rotation), light changes (brightness, contrast, colour cast, saturation), sensor noise,
distractors (random boxes). Hue is left alone: the task names colours ("the red cube").

`sample_params(gen, n)` draws one set per image; `augment(pixels, params, gen)` applies them. Giving
the same params to every frame of an episode view reproduces a per-episode domain randomisation
(used for the augmented feature copies of phase 2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class AugmentSpec:
    shift: float = 0.06        # max translation, fraction of the image side
    scale: float = 0.06        # max relative zoom in/out
    rotate_deg: float = 3.0
    brightness: float = 0.3    # multiplicative, 1 +- brightness
    contrast: float = 0.3
    saturation: float = 0.3
    channel_gain: float = 0.12  # per-channel gain 1 +- channel_gain (colour of the light)
    noise_std: float = 4.0     # max additive Gaussian noise, in pixel units
    box_p: float = 0.3         # probability of one random box (a distractor)
    box_max: float = 0.25      # its max side, fraction of the image side


def _uniform(gen: torch.Generator, n: int, low: float, high: float, *shape: int) -> torch.Tensor:
    return torch.rand((n,) + shape, generator=gen) * (high - low) + low


def sample_params(gen: torch.Generator, n: int, spec: AugmentSpec = AugmentSpec()) -> Dict[str, torch.Tensor]:
    """One random augmentation per image, as tensors with leading axis n."""
    return {
        "tx": _uniform(gen, n, -spec.shift, spec.shift) * 2,   # affine_grid units: the side is 2
        "ty": _uniform(gen, n, -spec.shift, spec.shift) * 2,
        "scale": _uniform(gen, n, 1 - spec.scale, 1 + spec.scale),
        "angle": _uniform(gen, n, -spec.rotate_deg, spec.rotate_deg) * (math.pi / 180),
        "brightness": _uniform(gen, n, 1 - spec.brightness, 1 + spec.brightness),
        "contrast": _uniform(gen, n, 1 - spec.contrast, 1 + spec.contrast),
        "saturation": _uniform(gen, n, 1 - spec.saturation, 1 + spec.saturation),
        "gain": _uniform(gen, n, 1 - spec.channel_gain, 1 + spec.channel_gain, 3),
        "noise": _uniform(gen, n, 0.0, spec.noise_std),
        "box_on": (torch.rand(n, generator=gen) < spec.box_p).float(),
        "box_xywh": torch.rand(n, 4, generator=gen) * torch.tensor([1.0, 1.0, spec.box_max, spec.box_max]),
        "box_rgb": torch.rand(n, 3, generator=gen) * 255,
    }


def augment(pixels: torch.Tensor, params: Dict[str, torch.Tensor], gen: torch.Generator) -> torch.Tensor:
    """uint8 or float [n, H, W, 3] -> float32 [n, H, W, 3] in [0, 255]."""
    x = pixels.float().permute(0, 3, 1, 2)                               # [n, 3, H, W]
    n, _, h, w = x.shape
    # camera: rotate, zoom and shift; the sampling grid is built elementwise (no BLAS on this torch)
    cos = (torch.cos(params["angle"]) / params["scale"]).reshape(n, 1, 1)
    sin = (torch.sin(params["angle"]) / params["scale"]).reshape(n, 1, 1)
    gy, gx = torch.meshgrid(torch.linspace(-1 + 1 / h, 1 - 1 / h, h), torch.linspace(-1 + 1 / w, 1 - 1 / w, w),
                            indexing="ij")
    grid = torch.stack([cos * gx - sin * gy + params["tx"].reshape(n, 1, 1),
                        sin * gx + cos * gy + params["ty"].reshape(n, 1, 1)], dim=-1)  # [n, H, W, 2]
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # distractor box, drawn before the light changes so it is lit like the scene
    ys = torch.arange(h, dtype=torch.float32).reshape(1, h, 1) / h
    xs = torch.arange(w, dtype=torch.float32).reshape(1, 1, w) / w
    bx, by, bw, bh = (params["box_xywh"][:, i].reshape(n, 1, 1) for i in range(4))
    inside = (xs >= bx) & (xs < bx + bw) & (ys >= by) & (ys < by + bh)
    mask = (inside.float() * params["box_on"].reshape(n, 1, 1)).unsqueeze(1)  # [n, 1, H, W]
    x = torch.lerp(x, params["box_rgb"].reshape(n, 3, 1, 1).expand_as(x), mask)
    # light: contrast around the image mean, saturation around the grey level, then brightness times
    # a per-channel colour cast (uniform scaling commutes with both), then grey sensor noise
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = torch.lerp(mean, x, params["contrast"].reshape(n, 1, 1, 1))
    grey = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    x = torch.lerp(grey, x, params["saturation"].reshape(n, 1, 1, 1))
    x = x * (params["brightness"].reshape(n, 1) * params["gain"]).reshape(n, 3, 1, 1)
    x = x + torch.randn((n, 1, h, w), generator=gen) * params["noise"].reshape(n, 1, 1, 1)
    return x.clamp_(0, 255).permute(0, 2, 3, 1).contiguous()


def random_augment(pixels: torch.Tensor, gen: torch.Generator, spec: AugmentSpec = AugmentSpec()) -> torch.Tensor:
    """Independent augmentation per image."""
    return augment(pixels, sample_params(gen, pixels.shape[0], spec), gen)
