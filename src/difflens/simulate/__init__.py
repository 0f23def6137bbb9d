"""Vision front-end models and their filters (plenoptic 1.4.0 parameterisation, fast convolution).

Models: :class:`Gaussian`, :class:`CenterSurround`, :class:`LinearNonlinear`,
:class:`LuminanceGainControl`, :class:`LuminanceContrastGainControl`, :class:`OnOff`,
:class:`Linear`, :class:`Identity`. Filter: :func:`circular_gaussian2d`.
"""

from .filters import circular_gaussian2d
from .frontend import LinearNonlinear, LuminanceContrastGainControl, LuminanceGainControl, OnOff
from .naive import CenterSurround, Gaussian, Identity, Linear

__all__ = [
           "CenterSurround",
           "Gaussian",
           "Identity",
           "Linear",
           "LinearNonlinear",
           "LuminanceContrastGainControl",
           "LuminanceGainControl",
           "OnOff",
           "circular_gaussian2d",
]
