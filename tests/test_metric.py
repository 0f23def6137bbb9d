"""difflens.metric against plenoptic 1.4's plenoptic.metric, exact maths, gradients and bad input.

Tolerances: mse, ms_ssim, nlpd and the normalised pyramid equal plenoptic's float32 values
to 1e-5. SSIM is compared with plenoptic evaluated in float64: plenoptic's own float32 SSIM
is up to ~1.3e-5 away from its float64 value (its window averages cancel E[x^2] - E[x]^2
in float32), ours stays within ~3e-6 (mean-shifted moments), so float32 against float32
is checked at 2.5e-5 and against float64 at 1e-5.
"""

from __future__ import annotations

import warnings

import plenoptic as po
import pytest
import torch

from difflens import data, metric
from difflens.simulate import Gaussian

IMAGES = ("einstein", "curie", "camera")


def load(name: str) -> torch.Tensor:
    return getattr(data, name)()


def noisy(img: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (img + sigma * torch.randn(img.shape, generator=g)).clamp(0, 1)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def pairs():
    imgs = {n: load(n) for n in IMAGES}
    out = [(imgs["einstein"], imgs["curie"]), (imgs["curie"], imgs["camera"])]
    out += [(imgs[n], noisy(imgs[n], s, i)) for i, (n, s) in enumerate(zip(IMAGES, (0.05, 0.1, 0.2)))]
    return out


@pytest.mark.parametrize("name", ["mse", "ms_ssim", "nlpd"])
def test_values_equal_plenoptic_on_bundled_images(pairs, name):
    for a, b in pairs:
        ours, theirs = getattr(metric, name)(a, b), getattr(po.metric, name)(a, b)
        assert ours.shape == theirs.shape == (1, 1)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("weighted,pad", [(False, False), (False, "reflect"), (False, "circular"),
                                          (False, "constant"), (False, "replicate"), (True, False),
                                          (True, "reflect")])
def test_ssim_equals_plenoptic(pairs, weighted, pad):
    for a, b in pairs[1:3]:
        ours = metric.ssim(a, b, weighted=weighted, pad=pad)
        exact = po.metric.ssim(a.double(), b.double(), weighted=weighted, pad=pad)
        torch.testing.assert_close(ours.double(), exact, atol=1e-5, rtol=0)
        torch.testing.assert_close(ours, po.metric.ssim(a, b, weighted=weighted, pad=pad), atol=2.5e-5, rtol=0)
    a, b = pairs[0]  # float64 in: the same maths to rounding of plenoptic's float32-built window
    torch.testing.assert_close(metric.ssim(a.double(), b.double(), weighted, pad),
                               po.metric.ssim(a.double(), b.double(), weighted, pad), atol=1e-5, rtol=0)


def test_ssim_map_and_pyramid_equal_plenoptic(pairs):
    a, b = pairs[2]
    ours, exact = metric.ssim_map(a, b), po.metric.ssim_map(a.double(), b.double())
    assert ours.shape == exact.shape == (1, 1, 246, 246)
    # per pixel, float32 rounding of the local variances (~1e-8) is divided by C2 = 9e-4
    torch.testing.assert_close(ours.double(), exact, atol=5e-4, rtol=0)
    assert float((ours.double() - exact).abs().mean()) < 1e-5
    for x, y in zip(metric.normalized_laplacian_pyramid(a), po.metric.normalized_laplacian_pyramid(a)):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)


def test_exact_values_identical_images_and_known_mse():
    img = load("einstein")
    assert torch.allclose(metric.ssim(img, img), torch.ones(1, 1))
    assert torch.allclose(metric.ms_ssim(img, img), torch.ones(1, 1))
    assert float(metric.nlpd(img, img)) < 1e-4
    shifted = (img * 0.5 + 0.25)
    torch.testing.assert_close(metric.mse(img, shifted), ((img - shifted) ** 2).mean((-1, -2)))
    # SSIM from its definition with one 11x11 window placed by hand (float64)
    a, b = img.double(), noisy(img, 0.1, 3).double()
    x = torch.arange(11, dtype=torch.float64) - 5
    w = torch.exp(-(x[:, None] ** 2 + x[None] ** 2) / (2 * 1.5 ** 2))
    w = w / w.sum()
    pa, pb = a[0, 0, 100:111, 50:61], b[0, 0, 100:111, 50:61]
    ma, mb = (w * pa).sum(), (w * pb).sum()
    va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
    cov = (w * (pa - ma) * (pb - mb)).sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    want = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    torch.testing.assert_close(metric.ssim_map(a, b)[0, 0, 100, 50], want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["mse", "ssim", "ms_ssim", "nlpd"])
def test_batches_and_broadcasting_equal_one_by_one(name):
    fn = getattr(metric, name)
    imgs = torch.cat([load(n) for n in IMAGES])
    other = torch.cat([noisy(load(n), 0.1, i) for i, n in enumerate(IMAGES)])
    batched = fn(imgs, other)
    assert batched.shape == (3, 1)
    for i in range(3):
        torch.testing.assert_close(batched[i], fn(imgs[i:i + 1], other[i:i + 1])[0], atol=1e-6, rtol=0)
    one_to_many = fn(imgs[:1], other)  # batch 1 broadcasts
    torch.testing.assert_close(one_to_many[1], fn(imgs[:1], other[1:2])[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(quiet(fn, imgs.repeat(1, 2, 1, 1), other.repeat(1, 2, 1, 1)),
                               batched.repeat(1, 2), atol=1e-6, rtol=0)  # channels computed separately
    torch.testing.assert_close(quiet(fn, imgs, other), quiet(getattr(po.metric, name), imgs, other),
                               atol=2.5e-5, rtol=0)


def gradcheck(fn, inputs):
    """Full gradcheck for small inputs, fast mode (random projections) for the pyramid-sized ones."""
    return torch.autograd.gradcheck(fn, inputs, fast_mode=sum(x.numel() for x in inputs) > 500)


def test_gradients_pass_gradcheck_on_tiny_images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 14, 13, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 1, 14, 13, generator=g, dtype=torch.float64)
    assert gradcheck(lambda x: metric.ssim(y, x), (x,))
    assert gradcheck(lambda x: metric.ssim(x, y, weighted=True, pad="reflect"), (x,))
    z = x.detach().clone().requires_grad_(True)  # both images carrying a gradient (the other path)
    assert gradcheck(lambda x, z: metric.ssim(x, z), (x, z))
    assert gradcheck(lambda x: metric.mse(x, y), (x,))
    big = torch.rand(1, 1, 40, 36, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.rand(1, 1, 40, 36, generator=g, dtype=torch.float64)
    assert gradcheck(lambda x: metric.nlpd(ref, x), (big,))
    assert gradcheck(lambda x: quiet(metric.ms_ssim, ref, x, power_factors=[0.5, 0.3, 0.2]), (big,))
    assert gradcheck(lambda x: metric.model_metric(ref, x, lambda im: im ** 2), (big,))


def test_gradients_equal_plenoptic():
    a, b = load("einstein").double(), noisy(load("curie"), 0.05, 1).double()
    for name in ("ssim", "ms_ssim", "nlpd"):
        xo, xp = b.clone().requires_grad_(True), b.clone().requires_grad_(True)
        getattr(metric, name)(a, xo).sum().backward()
        getattr(po.metric, name)(a, xp).sum().backward()
        scale = float(xp.grad.abs().max())
        # plenoptic builds its SSIM window in float32 (sum 1 +- 1e-7) even for float64 images
        torch.testing.assert_close(xo.grad, xp.grad, atol=3e-5 * scale, rtol=0)


def test_fixed_image_memo_never_returns_stale_values():
    a, b = load("einstein"), load("curie").requires_grad_(True)
    first = metric.ssim(a, b)
    a_changed = a.clone()
    for _ in range(2):
        metric.ssim(a_changed, b)
        with torch.no_grad():
            a_changed.mul_(0.5)  # in place: the version counter changes
        fresh = metric.ssim(a_changed.clone(), b.detach())
        torch.testing.assert_close(metric.ssim(a_changed, b), fresh, atol=1e-6, rtol=0)
    torch.testing.assert_close(metric.ssim(a, b), first)
    torch.testing.assert_close(metric.ssim(b, a), first, atol=1e-6, rtol=0)  # fixed image second


def test_model_metric_equals_plenoptic_factory_and_nlp():
    a, b = load("einstein"), load("curie")
    model = Gaussian(30)
    ours = metric.model_metric(a, b, model)
    torch.testing.assert_close(ours, po.metric.model_metric_factory(po.simul.Gaussian(30))(a, b), atol=1e-6,
                               rtol=1e-5)
    torch.testing.assert_close(metric.model_metric_factory(model)(a, b), ours)
    rep = metric.NLP()(a)
    assert rep.shape == (1, 1, sum(p.numel() for p in metric.normalized_laplacian_pyramid(a)))
    with pytest.raises(ValueError, match="one image of one channel"):
        metric.NLP()(torch.cat([a, b]))


@pytest.mark.parametrize("name", ["ssim", "ms_ssim", "nlpd", "mse"])
def test_bad_input_names_the_problem(name):
    fn = getattr(metric, name)
    img = load("einstein")
    with pytest.raises(ValueError, match="same height and width"):
        fn(img, img[..., :128])
    with pytest.raises(ValueError, match="Either img1 and img2 should have the same number"):
        fn(img.repeat(2, 1, 1, 1), img.repeat(3, 1, 1, 1))
    with pytest.raises(ValueError, match="must have same dtype"):
        fn(img, img.double())
    with pytest.raises(TypeError, match="floating-point"):
        fn((img * 255).to(torch.uint8), img)
    with pytest.raises(TypeError, match="torch.Tensor"):
        fn(img.numpy(), img)
    if name != "mse":  # mse accepts (..., H, W) as plenoptic's does
        with pytest.raises(ValueError, match="four dimensions"):
            fn(img[0], img[0])
        with pytest.warns(UserWarning, match="outside \\[0, 1\\]"):
            fn(img * 2, img)
        with pytest.warns(UserWarning, match="computed separately for each channel"):
            fn(img.repeat(1, 2, 1, 1), img)
    else:
        with pytest.raises(ValueError, match="at least 2 dimensions"):
            fn(img[0, 0, 0], img[0, 0, 0])


def test_small_images_warn_or_raise():
    x = torch.rand(1, 1, 8, 8)
    with pytest.warns(UserWarning, match="smaller than 11"):
        metric.ssim(x, x)
    with pytest.raises(ValueError, match="too small for n_scales=6"):
        metric.nlpd(x, x)
    with pytest.raises(ValueError, match="power_factors"):
        metric.ms_ssim(x, x, power_factors=[])
