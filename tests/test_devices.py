"""Device moves: every optimising object runs on any device and moves with .to(), optimizer state included.

CUDA cases run where a GPU exists and are skipped elsewhere.
"""

import pytest
import torch

from difflens.engine import Optimization
from difflens.synthesize import Eigendistortion, Metamer

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


class Blur(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("k", torch.full((1, 1, 3, 3), 1 / 9))

    def forward(self, x):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="circular"), self.k)


def _images(seed):
    return torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("device", DEVICES)
def test_engine_save_on_device_load_on_cpu_and_back(device, tmp_path):
    x = torch.zeros(4, device=device, requires_grad=True)
    t = torch.arange(4.0, device=device)
    opt = Optimization([x], lambda: ((x - t) ** 2).sum())
    opt.run(10)
    opt.save(tmp_path / "e.pt")
    y = torch.zeros(4, requires_grad=True)
    cpu = Optimization([y], lambda: ((y - t.cpu()) ** 2).sum())
    cpu.load(tmp_path / "e.pt", map_location="cpu")
    torch.testing.assert_close(y.detach(), x.detach().cpu())
    assert cpu.history.loss.device.type == "cpu"
    cpu.to(device)
    assert y.device.type == device
    for st in cpu.optimizer.state.values():
        assert st["exp_avg"].device.type == device and st["exp_avg_sq"].device.type == device
    cpu.loss_fn = lambda: ((y - t) ** 2).sum()
    cpu.run(5)
    opt.run(5)
    torch.testing.assert_close(y.detach(), x.detach())


@pytest.mark.parametrize("device", DEVICES)
def test_metamer_on_device_matches_cpu_and_moves(device):
    img, init = _images(0), _images(1)
    cpu = Metamer(img, Blur(), initial_image=init)
    cpu.synthesize(20, stop_criterion=0.0, progress=False)
    dev = Metamer(img.to(device), Blur().to(device), initial_image=init.to(device))
    dev.synthesize(10, stop_criterion=0.0, progress=False)
    dev.to("cpu").to(device)  # a round trip mid-synthesis keeps optimizer state
    dev.synthesize(10, stop_criterion=0.0, progress=False)
    assert dev.metamer.device.type == device
    torch.testing.assert_close(dev.metamer.detach().cpu(), cpu.metamer.detach(), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_eigendistortion_on_device_matches_cpu(device):
    img = _images(2)
    a = Eigendistortion(img, Blur().eval())
    a.synthesize(method="exact")
    b = Eigendistortion(img.to(device), Blur().eval().to(device))
    b.synthesize(k=1)
    assert b.eigendistortions.device.type == device
    torch.testing.assert_close(b.eigenvalues[0].cpu(), a.eigenvalues[0], rtol=1e-3, atol=0)
