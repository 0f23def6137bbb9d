"""Vision front-end models and their filters (plenoptic 1.4.0 parameterisation, fast convolution).

Models: :class:`Gaussian`, :class:`CenterSurround`, :class:`LinearNonlinear`,
:class:`LuminanceGainControl`, :class:`LuminanceContrastGainControl`, :class:`OnOff`,
:class:`Linear`, :class:`Identity`. Filter: :func:`circular_gaussian2d`.
Pyramids: :class:`SteerablePyramidFreq`, :class:`LaplacianPyramid`.
Textures: :class:`PortillaSimoncelli` and its loss :func:`portilla_simoncelli_loss`.
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
