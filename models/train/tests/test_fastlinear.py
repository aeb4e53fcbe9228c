"""linear_as_conv: nn.Linear through a 1x1 convolution gives the same outputs and gradients, and
F.linear is restored afterwards (the exporter traces the plain graphs)."""
import torch
from torch.nn import functional as F

from stageward_train.fastlinear import _blas_linear, linear_as_conv
from stageward_train.nets import build_modules


def test_same_outputs_and_gradients_and_restored(tiny_cfg):
    torch.manual_seed(0)
    sarm = build_modules(tiny_cfg)["sarm"]
    x = torch.randn(4, 5, 3, 32)
    valid, task = torch.ones(4, 5), torch.tensor([0, 1, 0, 1])

    def run():
        sarm.zero_grad()
        logits, tau = sarm(x, valid, task)
        (logits.sum() + tau.sum()).backward()
        return logits.detach(), tau.detach(), [p.grad.clone() for p in sarm.parameters()]

    a = run()
    with linear_as_conv():
        assert F.linear is not _blas_linear
        b = run()
    assert F.linear is _blas_linear
    torch.testing.assert_close(a[0], b[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a[1], b[1], atol=1e-5, rtol=1e-4)
    for ga, gb in zip(a[2], b[2]):
        torch.testing.assert_close(ga, gb, atol=1e-4, rtol=1e-3)
    with linear_as_conv():
        y = F.linear(torch.randn(0, 3), torch.randn(2, 3))  # empty batches fall back
    assert y.shape == (0, 2)
