"""difflens.simulate against plenoptic 1.4.0: outputs, gradients, state dicts, caching."""

import copy
import pickle

import pytest
import torch

import difflens as dl
from difflens.simulate import filters as dl_filters

po = pytest.importorskip("plenoptic")
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")

MODELS = ["Gaussian", "CenterSurround", "LinearNonlinear", "LuminanceGainControl",
          "LuminanceContrastGainControl", "OnOff"]
PADS = ["circular", "reflect", "constant"]




def _image(shape, seed=0, dtype=torch.float32):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randomise(model, seed):
    """Random but valid values for every parameter/buffer of a plenoptic front-end model."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("amplitude_ratio"):
            new = 1 + torch.rand(value.shape, generator=g)
        elif key.endswith(("_std", ".std")) or key == "std":
            new = 0.6 + 4 * torch.rand(value.shape, generator=g)
        else:  # gain-control scalars
            new = 10 * torch.rand(value.shape, generator=g)
        state[key] = new.to(value.dtype)
    model.load_state_dict(state)
    return model


def _pair(name, kernel, pad, seed=0, method="auto"):
    p_model = _randomise(getattr(po.simulate, name)(kernel, pad_mode=pad), seed)
    d_model = getattr(dl.simulate, name)(kernel, pad_mode=pad, method=method)
    d_model.load_state_dict(p_model.state_dict())
    return p_model, d_model


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("name", MODELS)
def test_state_dict_keys_and_shapes_match_plenoptic(name):
    for kernel in (31, (7, 8)):
        p_state = getattr(po.simulate, name)(kernel).state_dict()
        d_state = getattr(dl.simulate, name)(kernel).state_dict()
        assert list(d_state) == list(p_state)
        for key in p_state:
            assert d_state[key].shape == p_state[key].shape, key
            assert d_state[key].dtype == p_state[key].dtype, key


@pytest.mark.parametrize("method", ["fft", "direct"])
@pytest.mark.parametrize("kernel", [7, 8])
@pytest.mark.parametrize("pad", PADS)
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_plenoptic_float32(name, pad, kernel, method):
    p_model, d_model = _pair(name, kernel, pad, seed=kernel, method=method)
    x = _image((2, 1, 40, 36), seed=1)
    with torch.no_grad():
        expected = p_model(x)
        got = d_model(x)
    assert got.shape == expected.shape and got.dtype == torch.float32
    assert _rel(got, expected) < 1e-5


@pytest.mark.parametrize("pad", PADS)
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_plenoptic_float64(name, pad):
    p_model, d_model = _pair(name, (9, 10), pad, seed=3)
    p_model, d_model = p_model.double(), d_model.double()
    x = _image((1, 1, 33, 40), seed=2, dtype=torch.float64)
    with torch.no_grad():
        assert _rel(d_model(x), p_model(x)) < 1e-12


def test_tutorial_luminance_gain_control_256():
    """The tutorial's LG model: load_state_dict of 1-element tensors, circular, 256x256."""
    params = {"luminance_scalar": 14.95, "luminance.std": 4.235,
              "center_surround.center_std": 1.962, "center_surround.surround_std": 4.235,
              "center_surround.amplitude_ratio": 1.25}
    state = {k: torch.as_tensor([v]) for k, v in params.items()}
    lg = dl.simulate.LuminanceGainControl((31, 31), pad_mode="circular")
    lg.load_state_dict(state)
    dl.tools.remove_grad(lg)
    lg.eval()
    p_lg = po.simulate.LuminanceGainControl((31, 31), pad_mode="circular")
    p_lg.load_state_dict(state)
    po.tools.remove_grad(p_lg)
    img = _image((1, 1, 256, 256), seed=5)
    x = img.clone().requires_grad_(True)
    xp = img.clone().requires_grad_(True)
    (lg(x) - lg(2 * img)).pow(2).sum().backward()
    (p_lg(xp) - p_lg(2 * img)).pow(2).sum().backward()
    assert _rel(lg(img), p_lg(img)) < 1e-5
    assert _rel(x.grad, xp.grad) < 1e-4
    assert lg.center_surround.amplitude_ratio.shape == torch.Size([])


@pytest.mark.parametrize("name", ["LinearNonlinear", "LuminanceGainControl",
                                  "LuminanceContrastGainControl", "OnOff"])
def test_pretrained_values_and_outputs(name):
    p_model = getattr(po.simulate, name)(31, pretrained=True, cache_filt=True, pad_mode="circular")
    d_model = getattr(dl.simulate, name)(31, pretrained=True, pad_mode="circular")
    p_state, d_state = p_model.state_dict(), d_model.state_dict()
    for key in d_state:
        torch.testing.assert_close(d_state[key], p_state[key])
    x = _image((1, 1, 64, 64), seed=7)
    with torch.no_grad():
        assert _rel(d_model(x), p_model(x)) < 1e-5
    with pytest.raises(ValueError, match="kernel_size"):
        getattr(dl.simulate, name)(15, pretrained=True)


def test_onoff_apply_mask_matches_plenoptic():
    p_model, d_model = _pair("OnOff", 9, "reflect", seed=4)
    p_model.apply_mask = d_model.apply_mask = True
    x = _image((2, 1, 30, 34), seed=8)
    with torch.no_grad():
        assert _rel(d_model(x), p_model(x)) < 1e-5


@pytest.mark.parametrize("pad", PADS)
def test_gradcheck_fft_path_float64(pad):
    """Gradients in the image and in the parameters through the FFT path, float64."""
    model = dl.simulate.LuminanceContrastGainControl(4, pad_mode=pad, method="fft").double()
    _randomise(model, 11)
    x = _image((2, 1, 7, 6), seed=9, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-6, atol=1e-7)  # trainable model
    frozen = copy.deepcopy(model)
    dl.tools.remove_grad(frozen)  # fixed kernels: the exact-adjoint path
    assert torch.autograd.gradcheck(frozen, (x,), eps=1e-6, atol=1e-7, check_forward_ad=True)
    names = ["center_surround.center_std", "luminance.std", "contrast.std", "luminance_scalar"]
    x0 = x.detach()

    def f(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x0,))

    state = model.state_dict()
    assert torch.autograd.gradcheck(f, [state[n].clone().requires_grad_(True) for n in names],
                                    eps=1e-6, atol=1e-7, fast_mode=True)


def test_gradgradcheck_fft_path():
    model = dl.simulate.OnOff(3, pad_mode="circular", method="fft").double()
    dl.tools.remove_grad(model)
    x = _image((1, 1, 5, 4), seed=10, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradgradcheck(model, (x,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_parameter_gradients_match_plenoptic():
    p_model, d_model = _pair("LuminanceGainControl", 11, "reflect", seed=12)
    p_model, d_model = p_model.double(), d_model.double()
    x = _image((2, 1, 32, 32), seed=11, dtype=torch.float64)
    p_model(x).pow(2).sum().backward()
    d_model(x).pow(2).sum().backward()
    for (name, p), (_, d) in zip(p_model.named_parameters(), d_model.named_parameters()):
        assert _rel(d.grad, p.grad) < 1e-10, name


@pytest.mark.parametrize("name", MODELS)
def test_fft_path_equals_direct_path(name):
    for pad in PADS:
        _, fft_model = _pair(name, 13, pad, seed=13, method="fft")
        direct_model = copy.deepcopy(fft_model)
        direct_model.apply(lambda m: setattr(m, "method", "direct") if hasattr(m, "method") else None)
        x = _image((1, 1, 31, 34), seed=14, dtype=torch.float64)
        with torch.no_grad():
            assert _rel(fft_model.double()(x), direct_model.double()(x)) < 1e-12


def test_circular_gaussian2d_matches_plenoptic():
    from plenoptic.simulate.canonical_computations.filters import circular_gaussian2d as p_gauss
    for ks, std, oc in [(31, 3.0, None), ((8, 11), 1.5, None), (5, [1.0, 2.0], None),
                        ((6, 6), 2, 3), (1, 0.7, None), (torch.tensor([4, 7]), torch.tensor(2.5), 2)]:
        expected = p_gauss(ks, std, out_channels=oc)
        got = dl.simulate.circular_gaussian2d(ks, std, out_channels=oc)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(got.sum(dim=(1, 2, 3)), torch.ones(got.shape[0]))
    from difflens.simulate.canonical_computations.filters import circular_gaussian2d
    assert circular_gaussian2d is dl.simulate.circular_gaussian2d
    for bad in [(0, 1.0, None), (3.5, 1.0, None), (3, -1.0, None), (3, [1.0, 2.0], 3),
                ((3, 3, 3), 1.0, None), (3, 1.0, 0)]:
        with pytest.raises(ValueError):
            dl_filters.circular_gaussian2d(*bad)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="amplitude_ratio"):
        dl.simulate.CenterSurround(7, amplitude_ratio=0.5)
    with pytest.raises(ValueError, match="pad_mode"):
        dl.simulate.Gaussian(7, pad_mode="wrap")
    with pytest.raises(ValueError, match="method"):
        dl.simulate.Gaussian(7, method="fast")
    with pytest.raises(ValueError, match="on_center"):
        dl.simulate.CenterSurround(7, on_center=[True, False], out_channels=3)
    with pytest.raises(ValueError, match="surround_std"):
        dl.simulate.CenterSurround(7, center_std=[1.0, 2.0], surround_std=[3.0, 4.0, 5.0])


def test_parameter_changes_invalidate_caches():
    model = dl.simulate.LuminanceGainControl(9, pad_mode="circular", method="fft")
    dl.tools.remove_grad(model)
    x = _image((1, 1, 24, 24), seed=15)

    def fresh():
        m = dl.simulate.LuminanceGainControl(9, pad_mode="circular", method="fft")
        m.load_state_dict(model.state_dict())
        m.center_surround.on_center = model.center_surround.on_center
        return m(x)

    out0 = model(x)
    assert torch.equal(model(x), out0) and model._spectrum_cache.hits >= 1
    edits = [
        lambda: model.load_state_dict({**model.state_dict(), "luminance.std": torch.tensor([2.0])}),
        lambda: model.center_surround.center_std.data.fill_(0.8),
        lambda: setattr(model.luminance.std, "data", torch.tensor([5.0])),
        lambda: model.center_surround.amplitude_ratio.mul_(1.5),
        lambda: setattr(model.center_surround, "on_center", torch.tensor([False])),
    ]
    previous = out0
    for edit in edits:
        with torch.no_grad():
            edit()
        out = model(x)
        assert not torch.allclose(out, previous)
        torch.testing.assert_close(out, fresh(), rtol=0, atol=0)
        previous = out


def test_cache_filt_semantics_match_plenoptic():
    p_model, d_model = _pair("Gaussian", 7, "reflect", seed=16)
    p_model.cache_filt = True
    d_model.cache_filt = True
    x = _image((1, 1, 20, 20), seed=16)
    with torch.no_grad():
        torch.testing.assert_close(d_model(x), p_model(x))
    assert list(d_model.state_dict()) == list(p_model.state_dict()) == ["std", "_filt"]
    with torch.no_grad():
        d_model.std.fill_(1.0)
        p_model.std.fill_(1.0)
        torch.testing.assert_close(d_model(x), p_model(x))  # frozen kernel, as in plenoptic


def test_batch_and_channel_handling():
    gauss = dl.simulate.Gaussian(9, std=2.0, pad_mode="reflect")
    x = _image((3, 2, 20, 24), seed=17)
    y = gauss(x)
    assert y.shape == x.shape
    for c in range(2):
        torch.testing.assert_close(y[:, c:c + 1], gauss(x[:, c:c + 1]))
    lg = dl.simulate.LuminanceGainControl(9)
    torch.testing.assert_close(lg(x)[:, 1:], lg(x[:, 1:]))
    with pytest.raises(ValueError, match="single-channel"):
        dl.simulate.OnOff(9)(x)
    with pytest.raises(ValueError, match="4-D"):
        gauss(x[0])
    with pytest.raises(TypeError, match="floating-point"):
        gauss((x * 255).to(torch.uint8))
    two = dl.simulate.Gaussian(9, std=[1.0, 3.0])
    torch.testing.assert_close(two(x, groups=2)[:, 1:], dl.simulate.Gaussian(9, std=3.0)(x[:, 1:]))


def test_dtype_and_device_preserved():
    model = dl.simulate.OnOff(7, pad_mode="circular")
    dl.tools.remove_grad(model)
    x64 = _image((2, 1, 24, 24), seed=18, dtype=torch.float64)
    y64 = model(x64)
    assert y64.dtype == torch.float64 and y64.device == x64.device
    torch.testing.assert_close(y64, copy.deepcopy(model).double()(x64), rtol=1e-12, atol=1e-12)
    assert model(x64.float()).dtype == torch.float32
    dl.tools.validate_model(model.eval(), image_shape=(1, 1, 24, 24), image_dtype=torch.float64)


def test_linear_and_identity_match_plenoptic():
    x = _image((2, 1, 20, 20), seed=19)
    for kernel in [(3, 3), (8, 8)]:
        p_lin = po.simulate.Linear(kernel)
        d_lin = dl.simulate.Linear(kernel)
        assert list(d_lin.state_dict()) == list(p_lin.state_dict()) == ["conv.weight"]
        torch.testing.assert_close(d_lin.state_dict()["conv.weight"], p_lin.state_dict()["conv.weight"])
        with torch.no_grad():
            assert _rel(d_lin(x), p_lin(x)) < 1e-5
    torch.testing.assert_close(dl.simulate.Identity()(x), x)


def test_constructors_leave_global_rng_alone():
    state = torch.get_rng_state()
    a = dl.simulate.OnOff(7)
    dl.simulate.Linear(5, default_filters=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = dl.simulate.OnOff(7)
    torch.testing.assert_close(a.luminance_scalar, b.luminance_scalar)  # seeded default
    c = dl.simulate.OnOff(7, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(a.luminance_scalar, c.luminance_scalar)
    assert ((c.luminance_scalar >= 0) & (c.luminance_scalar < 10)).all()


def test_copy_pickle_and_functorch():
    model = dl.simulate.LuminanceGainControl(7, pad_mode="circular", method="fft")
    dl.tools.remove_grad(model)
    x = _image((1, 1, 8, 8), seed=20)
    y = model(x)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(clone(x), y)
        assert len(clone._spectrum_cache) in (0, 1)
    jac = torch.func.jacrev(model)(x)
    ref = torch.autograd.functional.jacobian(model, x)
    torch.testing.assert_close(jac, ref)
    _, tangent = torch.func.jvp(model, (x,), (torch.ones_like(x),))
    torch.testing.assert_close(tangent, (ref.reshape(y.numel(), -1).sum(1)).reshape(y.shape),
                               rtol=1e-4, atol=1e-5)


def test_display_filters_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = dl.plot.display_filters(dl.simulate.OnOff(9, pretrained=False), col_wrap=2)
    assert len(fig.axes) == 6
    plt.close(fig)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    for name in MODELS:
        _, cpu_model = _pair(name, 31, "reflect", seed=21)
        dl.tools.remove_grad(cpu_model)
        gpu_model = copy.deepcopy(cpu_model).to("cuda")
        x = _image((2, 1, 64, 64), seed=21)
        xg = x.to("cuda").requires_grad_(True)
        y = gpu_model(xg)
        y.sum().backward()
        assert y.device.type == "cuda" and xg.grad.device.type == "cuda"
        assert _rel(y.cpu(), cpu_model(x)) < 1e-5


BAD_STDS = [(float("nan"), "finite"), (float("inf"), "finite"), (1e-30, "too small")]  # <= 0: see above


@pytest.mark.parametrize("std, why", BAD_STDS)
def test_bad_std_at_construction_names_the_parameter(std, why):
    with pytest.raises(ValueError, match=f"std.*{why}|{why}.*std"):
        dl.simulate.circular_gaussian2d(5, std)
    with pytest.raises(ValueError, match=f"^std.*{why}"):
        dl.simulate.Gaussian(5, std=std)
    with pytest.raises(ValueError, match=f"^center_std.*{why}"):
        dl.simulate.CenterSurround(5, center_std=std)
    with pytest.raises(ValueError, match=f"^surround_std.*{why}"):
        dl.simulate.CenterSurround(5, surround_std=[1.0, std], on_center=[True, False])


def test_underflowing_std_of_an_even_kernel_is_caught():
    # between-pixel centre: exp(-0.5 / (2 std^2)) underflows in float32 near std = 0.049
    assert torch.isfinite(dl.simulate.circular_gaussian2d(4, 0.05)).all()
    with pytest.raises(ValueError, match="too small for a 4x4 kernel"):
        dl.simulate.circular_gaussian2d(4, 0.04)
    torch.testing.assert_close(dl.simulate.circular_gaussian2d(4, torch.tensor(0.04, dtype=torch.float64)).sum(),
                               torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("name, param", [
    ("Gaussian", "std"), ("CenterSurround", "surround_std"), ("LinearNonlinear", "center_surround.center_std"),
    ("LuminanceGainControl", "luminance.std"), ("LuminanceContrastGainControl", "contrast.std"),
    ("OnOff", "center_surround.surround_std"),
])
@pytest.mark.parametrize("value, why", [(float("nan"), "finite"), (float("inf"), "finite"),
                                        (0.0, "too small"), (1e-30, "too small")])
def test_bad_learned_std_in_forward_names_the_parameter(name, param, value, why):
    model = getattr(dl.simulate, name)(7)
    x = _image((1, 1, 12, 12))
    model(x)  # fine before
    with torch.no_grad():
        model.get_parameter(param)[-1] = value
    with pytest.raises(ValueError, match=rf"^{param}\b.*{why}"):
        model(x)
    with torch.no_grad():  # sign does not matter (only std**2 enters), as plenoptic
        model.get_parameter(param)[-1] = -2.0
    assert torch.isfinite(model(x)).all()


@pytest.mark.parametrize("name", ["LinearNonlinear", "LuminanceGainControl", "LuminanceContrastGainControl",
                                  "OnOff"])
def test_subclass_of_a_pretrained_model_gets_its_values(name):
    parent = getattr(dl.simulate, name)
    child = type(f"My{name}", (parent,), {})
    grandchild = type(f"MyMy{name}", (child,), {})
    expected = parent(31, pretrained=True).state_dict()
    for cls in (child, grandchild):
        got = cls(31, pretrained=True).state_dict()
        assert list(got) == list(expected)
        for key in expected:
            assert torch.equal(got[key], expected[key]), key
