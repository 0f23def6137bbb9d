"""difflens.tools: padding, correlation paths, spectrum cache, seeding, losses, validation."""

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import difflens as dl
from difflens.tools import conv, fftconv
from difflens.tools.validate import check_image

po = pytest.importorskip("plenoptic")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")




def _rand(shape, seed=0, dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _frozen(model):
    dl.tools.remove_grad(model)
    return model.eval()


def test_exports():
    from difflens import tools

    assert po is not None
    for name in ["atomic_write", "atomic_write_text", "atomic_torch_save", "set_seed", "remove_grad",
                 "rescale", "l2_norm", "mse", "relative_sse", "validate_model", "check_image",
                 "validate_input", "make_disk", "same_padding"]:
        assert name in tools.__all__ and callable(getattr(tools, name)), name
    assert dl.tools.conv.same_padding is conv.same_padding
    assert dl.tools.validate.check_image is check_image


@pytest.mark.parametrize("pad_mode", ["circular", "reflect", "replicate", "constant"])
def test_same_padding_matches_plenoptic(pad_mode):
    x = _rand((2, 3, 17, 20))
    for ks in [(31, 31), (3, 3), (4, 4), (5, 8), (1, 1), (16, 2)]:
        for stride in [(1, 1), (2, 3)]:
            if pad_mode in ("circular", "reflect") and max(ks) > 17:
                continue
            expected = po.tools.conv.same_padding(x, ks, stride=stride, pad_mode=pad_mode)
            got = conv.same_padding(x, ks, stride=stride, pad_mode=pad_mode)
            assert torch.equal(got, expected), (ks, stride)
    y = _rand((1, 1, 40, 40))
    assert torch.equal(conv.same_padding(y, 31, pad_mode=pad_mode),
                       po.tools.conv.same_padding(y, (31, 31), pad_mode=pad_mode))
    assert torch.equal(conv.same_padding(y, torch.tensor([7, 9]), pad_mode=pad_mode),
                       po.tools.conv.same_padding(y, (7, 9), pad_mode=pad_mode))


def test_same_padding_errors():
    with pytest.raises(ValueError, match="pad_mode"):
        conv.same_padding(_rand((1, 1, 8, 8)), 3, pad_mode="wrap")
    with pytest.raises(ValueError, match="at least 2"):
        conv.same_padding(_rand((8,)), 3)
    with pytest.raises(TypeError, match="torch.Tensor"):
        conv.same_padding(np.zeros((8, 8)), 3)
    with pytest.raises(ValueError, match="kernel_size"):
        conv.same_padding(_rand((1, 1, 8, 8)), (3, 3, 3))


CASES = [  # (C, O, groups)
    (1, 1, 1), (1, 3, 1), (2, 4, 1), (3, 2, 1), (4, 4, 4), (4, 2, 2), (6, 6, 3),
]


@pytest.mark.parametrize("pad_mode", ["circular", "reflect", "replicate", "constant"])
@pytest.mark.parametrize("c,o,groups", CASES)
def test_fft_and_direct_equal_conv2d(pad_mode, c, o, groups):
    x = _rand((2, c, 19, 22), seed=c + o, dtype=torch.float64)
    for ks in [(5, 5), (6, 9), (19, 3)]:
        if pad_mode == "reflect" and max(ks) > 19:
            continue
        w = _rand((o, c // groups, *ks), seed=o, dtype=torch.float64) - 0.5
        expected = F.conv2d(po.tools.conv.same_padding(x, ks, pad_mode=pad_mode), w, groups=groups)
        for method in ["fft", "direct", "auto"]:
            got = conv.correlate2d(x, w, pad_mode, groups=groups, method=method)
            torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-11)


def test_fft_float32_accuracy_and_cache():
    x = _rand((1, 1, 64, 64), seed=3)
    w = _rand((2, 1, 31, 31), seed=4)
    cache = conv.SpectrumCache(max_entries=2)
    expected = F.conv2d(conv.same_padding(x.double(), 31, pad_mode="reflect"), w.double())
    for _ in range(3):
        got = conv.correlate2d(x, w, "reflect", method="fft", cache=cache)
        assert ((got - expected).abs().max() / expected.abs().max()) < 1e-6
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 1)
    w2 = w.clone()
    w2[0, 0, 3, 3] += 1e-3  # a change of one kernel value must be seen
    got2 = conv.correlate2d(x, w2, "reflect", method="fft", cache=cache)
    expected2 = conv.correlate2d(x.double(), w2.double(), "reflect", method="direct")
    assert ((got2 - expected2).abs().max() / expected2.abs().max()) < 1e-6
    assert not torch.equal(got2, got) and cache.misses == 2
    for size in (32, 48):  # LRU: at most max_entries layouts
        conv.correlate2d(_rand((1, 1, size, size)), w, "circular", method="fft", cache=cache)
    assert len(cache) == 2
    wg = w.clone().requires_grad_(True)  # a kernel with a gradient bypasses the cache
    conv.correlate2d(x, wg, "circular", method="fft", cache=cache).sum().backward()
    assert wg.grad is not None and cache.misses == 4
    assert len(copy.deepcopy(cache)) == 0


def test_gradcheck_correlate2d_fft():
    x = _rand((1, 2, 6, 5), seed=5, dtype=torch.float64).requires_grad_(True)
    w = (_rand((4, 1, 4, 3), seed=6, dtype=torch.float64) - 0.5).requires_grad_(True)
    wc = w.detach()
    for pad_mode in ["circular", "reflect", "constant"]:
        # kernel differentiated too: plain autograd through rfft2 / irfft2
        assert torch.autograd.gradcheck(
            lambda a, b, pad_mode=pad_mode: conv.correlate2d(a, b, pad_mode, groups=2, method="fft"),
            (x, w))
        # fixed kernel: the exact-adjoint autograd.Function, its double backward and jvp
        fixed = lambda a, pad_mode=pad_mode: conv.correlate2d(a, wc, pad_mode, groups=2, method="fft")
        assert torch.autograd.gradcheck(fixed, (x,), check_forward_ad=True)
        assert torch.autograd.gradgradcheck(fixed, (x,))
    mixed = _rand((3, 2, 1, 5), seed=7, dtype=torch.float64)  # Cg > 1 path
    assert torch.autograd.gradcheck(lambda a: conv.correlate2d(a, mixed, "reflect", method="fft"),
                                    (x,), check_forward_ad=True)
    jac = torch.func.jacrev(lambda a: conv.correlate2d(a, wc, "constant", groups=2, method="fft"))(x)
    torch.testing.assert_close(jac, torch.autograd.functional.jacobian(
        lambda a: conv.correlate2d(a, wc, "constant", groups=2, method="direct"), x))


def test_correlate2d_errors_and_choice():
    x = _rand((1, 2, 16, 16))
    with pytest.raises(ValueError, match="4-D"):
        conv.correlate2d(x[0], _rand((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="input channels"):
        conv.correlate2d(x, _rand((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="groups"):
        conv.correlate2d(x, _rand((3, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="method"):
        conv.correlate2d(x, _rand((1, 2, 3, 3)), method="fastest")
    with pytest.raises(TypeError, match="float32 or float64"):
        conv.correlate2d(x.half(), _rand((1, 2, 3, 3)).half(), method="fft")
    with pytest.raises(ValueError, match="no larger than the image"):
        conv.correlate2d(_rand((1, 1, 8, 8)), _rand((1, 1, 9, 9)), "circular", method="fft")
    choose = conv.choose_method
    assert choose((256, 256), (31, 31), torch.float32, "reflect") == "fft"
    assert choose((64, 64), (5, 5), torch.float32, "circular") == "fft"
    assert choose((64, 64), (5, 5), torch.float32, "reflect") == "direct"
    assert choose((256, 256), (3, 3), torch.float32, "circular") == "direct"
    assert choose((8, 8), (7, 7), torch.float32, "circular") == "direct"
    assert choose((256, 256), (31, 31), torch.float16, "circular") == "direct"


def test_next_fast_len():
    def smooth(n):
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for n in range(1, 400):
        m = fftconv.next_fast_len(n)
        assert m >= n and smooth(m) and not any(smooth(k) for k in range(n, m))


def test_set_seed_matches_plenoptic():
    dl.tools.set_seed(3)
    a = (torch.rand(4), np.random.rand(3))
    po.tools.set_seed(3)
    b = (torch.rand(4), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    state = torch.get_rng_state()
    dl.tools.set_seed(None)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(TypeError):
        dl.tools.set_seed(1.5)
    with pytest.raises(ValueError):
        dl.tools.set_seed(-1)


def test_rescale_l2_norm_losses_match_plenoptic():
    x = _rand((2, 1, 5, 6), seed=7) * 7 - 3
    y = _rand((2, 1, 5, 6), seed=8)
    torch.testing.assert_close(dl.tools.rescale(x), po.tools.rescale(x))
    torch.testing.assert_close(dl.tools.rescale(x, a=-2, b=5), po.tools.rescale(x, a=-2, b=5))
    const = torch.full((3, 3), 4.0)
    torch.testing.assert_close(dl.tools.rescale(const, 1, 2), po.tools.rescale(const, 1, 2))
    for name in ["l2_norm", "mse", "relative_sse"]:
        got, expected = getattr(dl.tools, name)(x, y), getattr(po.tools, name)(x, y)
        assert got.ndim == 0
        torch.testing.assert_close(got, expected)
    torch.testing.assert_close(dl.tools.l2_norm(x, y), ((x - y) ** 2).sum().sqrt())
    xg = x.clone().requires_grad_(True)
    dl.tools.rescale(xg).sum().backward()
    assert torch.isfinite(xg.grad).all()


def test_make_disk_matches_plenoptic():
    for args in [((16, 16),), ((15, 20),), ((32, 32), 10, 4), (9,)]:
        torch.testing.assert_close(dl.tools.make_disk(*args), po.tools.make_disk(*args))


def test_remove_grad():
    model = dl.simulate.OnOff(5)
    model.register_buffer("extra", torch.ones(2, requires_grad=True))
    assert dl.tools.remove_grad(model) is None
    assert not any(t.requires_grad for t in (*model.parameters(), *model.buffers()))
    with pytest.raises(TypeError):
        dl.tools.remove_grad(lambda x: x)


def test_check_image():
    x = _rand((1, 1, 4, 4))
    assert check_image(x) is x
    with pytest.raises(TypeError, match="img must be a torch.Tensor"):
        check_image(np.zeros((1, 1, 4, 4)), "img")
    with pytest.raises(TypeError, match="floating-point"):
        check_image(torch.zeros(1, 1, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"4-D .*x\[None, None\]"):
        check_image(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="batch size 1"):
        check_image(torch.zeros(2, 1, 4, 4), batch_size=1)
    with pytest.raises(ValueError, match="empty"):
        check_image(torch.zeros(1, 1, 0, 4))
    check_image(torch.zeros(1, 1, 4, 4, dtype=torch.complex64), allow_complex=True)
    with pytest.warns(UserWarning, match="range"):
        dl.tools.validate_input(x * 3)
    with pytest.raises(ValueError, match="batch"):
        dl.tools.validate_input(torch.zeros(2, 1, 4, 4), no_batch=True)


class _Numpy(torch.nn.Module):
    def forward(self, x):
        return x.detach().numpy()


class _Detach(torch.nn.Module):
    def forward(self, x):
        return torch.as_tensor(x.detach().numpy() * 2)


class _Noisy(torch.nn.Module):
    def forward(self, x):
        return x + torch.randn_like(x)


class _Lambda(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_validate_model_accepts_good_models():
    state = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in [dl.simulate.LuminanceGainControl(7), dl.simulate.OnOff(7, apply_mask=True),
                      _Lambda(lambda x: x.sum(dim=(2, 3))), _Lambda(lambda x: torch.fft.fft2(x))]:
            dl.tools.validate_model(_frozen(model))
        dl.tools.validate_model(_frozen(dl.simulate.Gaussian(5)).double(), image_dtype=torch.float64,
                                image_shape=(2, 1, 20, 20))
    assert torch.equal(torch.get_rng_state(), state), "validate_model drew from the global RNG"


def test_validate_model_catches_each_problem():
    cases = [
        (dl.simulate.Gaussian(5), ValueError, "learnable.*std.*remove_grad"),
        (_Numpy(), ValueError, "must return a torch.Tensor"),
        (_Detach(), ValueError, "strips the gradient"),
        (_Lambda(lambda x: torch.ones(3)), ValueError, "strips the gradient"),
        (_Lambda(lambda x: x.double()), TypeError, "precision"),
        (_Lambda(lambda x: x.to("meta")), RuntimeError, "device"),
        (_Noisy(), ValueError, "not deterministic"),
        (_Lambda(lambda x: torch.log(x - 2)), ValueError, "NaN"),
        (_Lambda(lambda x: torch.sqrt(x - x.min())), ValueError, "gradient.*not finite"),
        (_Lambda(lambda x: x.reshape(-1)[1000]), ValueError, "raised IndexError"),
    ]
    for model, err, match in cases:
        if model is not cases[0][0]:
            _frozen(model)
        with pytest.raises(err, match=match):
            dl.tools.validate_model(model)
    dropout = _Lambda(torch.nn.Dropout(0.5))
    with pytest.raises(ValueError, match="not deterministic"):
        dl.tools.validate_model(dropout)
    with pytest.warns(UserWarning, match="training mode"):
        dl.tools.validate_model(_Lambda(lambda x: 2 * x))
    with pytest.raises(TypeError, match="callable"):
        dl.tools.validate_model("model")
    with pytest.raises(TypeError, match="image_dtype"):
        dl.tools.validate_model(_frozen(_Lambda(lambda x: x)), image_dtype=torch.int64)
