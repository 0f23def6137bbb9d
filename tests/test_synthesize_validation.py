"""Metamer and Eigendistortion validate through difflens.tools.validate, with one named error per bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import difflens.synthesize.eigendistortion as eig_module
import difflens.synthesize.metamer as metamer_module
from difflens.synthesize import Eigendistortion, Metamer
from difflens.tools import validate


class Blur(torch.nn.Module):
    def forward(self, x):
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="circular"), 3, stride=1)


class Detaching(torch.nn.Module):
    def forward(self, x):
        return Blur()(x).detach()


class NoGrad(torch.nn.Module):
    def forward(self, x):
        with torch.no_grad():
            return Blur()(x)


class ReturnsNaN(torch.nn.Module):
    def forward(self, x):
        return Blur()(x) * float("nan")


class ReturnsInf(torch.nn.Module):
    def forward(self, x):
        return Blur()(x) + float("inf")


class Log(torch.nn.Module):
    def forward(self, x):
        return torch.log(x)


def images(dtype=torch.float32):
    return torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)


BUILDERS = {"Metamer": lambda img, model: Metamer(img, model),
            "Eigendistortion": lambda img, model: Eigendistortion(img, model)}


def test_one_validation_module():
    for name in ("_check_image", "_check_range", "_check_model"):
        assert not hasattr(metamer_module, name)
    for module in (metamer_module, eig_module):
        assert module.validate_model is validate.validate_model
        assert module.check_synthesis_image is validate.check_synthesis_image
    with pytest.raises(ValueError, match="first dimension must be the batch"):  # Metamer's batch rule, shared
        validate.validate_model(lambda x: Blur()(x).sum(0), image_shape=(2, 1, 8, 8), same_batch=True)


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS)
@pytest.mark.parametrize("model", [Detaching(), NoGrad()], ids=["detach", "no_grad"])
def test_a_model_that_detaches_its_output_is_named(build, model):
    with pytest.raises(ValueError, match="model detaches its output"):
        build(images(), model)


@pytest.mark.parametrize("what, model", [("Metamer", ReturnsNaN()), ("Metamer", ReturnsInf()),
                                         ("Eigendistortion", ReturnsNaN())])
def test_a_model_returning_nan_or_inf_is_named_not_called_nondeterministic(what, model):
    with pytest.raises(ValueError, match="model returns NaN or inf"):
        BUILDERS[what](images(), model)


@pytest.mark.parametrize("what", ["Metamer", "Eigendistortion"])
def test_a_model_nonfinite_on_the_image_itself_is_named(what):
    img = images().clamp_min(0.05)
    img[..., 0, 0] = 0.0  # log(0) = -inf: finite on the random test image, not on this one
    with pytest.raises(ValueError, match=r"model\(image\).*1 inf"):
        obj = BUILDERS[what](img, Log())
        if what == "Eigendistortion":
            obj.synthesize("exact")


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_images_get_a_dtype_error(build, dtype):
    with pytest.raises(TypeError, match=rf"{dtype}.*float32 or float64"):
        build(images().to(dtype), Blur())
    with pytest.raises(TypeError, match="initial_image.*float32 or float64"):
        Metamer(images(), Blur(), initial_image=images().to(dtype))


def test_nan_never_passes_a_range_check():
    x = images()
    x[0, 0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        validate.check_in_range(x, (0.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        validate.validate_input(x)
    with pytest.raises(ValueError, match="1 NaN"):
        validate.check_synthesis_image(x, allowed_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="initial_image contains 1 NaN"):
        Metamer(images(), Blur(), initial_image=x)
    validate.check_in_range(images(), (0.0, 1.0))  # a clean image passes
    with pytest.raises(ValueError, match="outside allowed_range"):
        validate.check_in_range(images() + 1, (0.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        validate.check_range((0.0, float("inf")))


@pytest.mark.parametrize("build", BUILDERS.values(), ids=BUILDERS)
def test_an_image_without_batch_and_channel_dimensions_is_named(build):
    with pytest.raises(ValueError, match=r"4-D \(batch, channel, height, width\).*image\[None, None\]"):
        build(images()[0, 0], Blur())
