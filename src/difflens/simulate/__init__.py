"""Vision front-end models and their filters (plenoptic 1.4.0 parameterisation, fast convolution).

Models: :class:`Gaussian`, :class:`CenterSurround`, :class:`LinearNonlinear`,
:class:`LuminanceGainControl`, :class:`LuminanceContrastGainControl`, :class:`OnOff`,
:class:`Linear`, :class:`Identity`. Filter: :func:`circular_gaussian2d`.
Pyramids: :class:`SteerablePyramidFreq`, :class:`LaplacianPyramid`.
Textures: :class:`PortillaSimoncelli` and its loss :func:`portilla_simoncelli_loss`.

Each model maps a ``(B, C, H, W)`` image batch to its ``(B, C', H, W)`` representation:

>>> import torch
>>> from difflens.simulate import CenterSurround, Gaussian, OnOff
>>> image = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
>>> Gaussian(5)(image).shape
torch.Size([1, 1, 32, 32])
>>> CenterSurround(5)(image).shape
torch.Size([1, 1, 32, 32])
>>> OnOff(31, pretrained=True)(image).shape  # plenoptic's fitted parameters: on and off channels
torch.Size([1, 2, 32, 32])
"""

from .filters import circular_gaussian2d
from .frontend import LinearNonlinear, LuminanceContrastGainControl, LuminanceGainControl, OnOff
from .laplacian_pyramid import LaplacianPyramid
from .naive import CenterSurround, Gaussian, Identity, Linear
from .portilla_simoncelli import PortillaSimoncelli, portilla_simoncelli_loss
from .steerable_pyramid import SteerablePyramidFreq

__all__ = [
           "CenterSurround",
           "Gaussian",
           "Identity",
           "LaplacianPyramid",
           "Linear",
           "LinearNonlinear",
           "LuminanceContrastGainControl",
           "LuminanceGainControl",
           "OnOff",
           "PortillaSimoncelli",
           "SteerablePyramidFreq",
           "circular_gaussian2d",
           "portilla_simoncelli_loss",
]
