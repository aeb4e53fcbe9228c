"""Training-time speed-up for torch builds whose BLAS is the slow reference one (Debian's python3-torch
reports BLAS_INFO=generic: a [576, 384] x [384, 128] matmul takes ~12 ms there, ~0.4 ms as a oneDNN
1x1 convolution). Inside `linear_as_conv()`, F.linear (every nn.Linear) runs as a 1x1 convolution,
forward and backward, same maths to float rounding. Export runs outside it, so the ONNX graphs keep
their Gemm/MatMul nodes. Off when STAGEWARD_TRAIN_LINEAR=blas, or when torch has no oneDNN.

    with linear_as_conv():
        loss = model(x).sum(); loss.backward()
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, Optional

import torch
from torch.nn import functional as F

_blas_linear = F.linear


def _conv_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    if x.dtype != torch.float32 or weight.dim() != 2 or x.dim() < 1 or x.numel() == 0 or x.is_sparse:
        return _blas_linear(x, weight, bias)
    out_f, in_f = weight.shape
    lead = x.shape[:-1]
    y = F.conv2d(x.reshape(-1, in_f, 1, 1), weight.reshape(out_f, in_f, 1, 1), bias)
    return y.reshape(*lead, out_f)


def enabled() -> bool:
    return os.environ.get("STAGEWARD_TRAIN_LINEAR", "conv") != "blas" and torch.backends.mkldnn.is_available()


@contextlib.contextmanager
def linear_as_conv() -> Iterator[None]:
    if not enabled() or F.linear is _conv_linear:
        yield
        return
    F.linear = _conv_linear
    try:
        yield
    finally:
        F.linear = _blas_linear
