"""stageward's reward-model trainer: networks, window rule, checkpoints and the model-package exporter.

Serving never needs Python; this package only produces the ONNX model packages (models/PACKAGE.md).
"""
from .config import Architecture, ImageSpec, ModelConfig, WindowSpec
from .windows import gather_window, window_indices

__all__ = ["Architecture", "ImageSpec", "ModelConfig", "WindowSpec", "gather_window", "window_indices"]
