"""Front-end models of early vision (Berardino et al., NeurIPS 2017): LN, LG, LGG, OnOff.

Same constructor arguments, defaults, parameters, ``state_dict`` keys and
pretrained values as plenoptic 1.4.0 (``plenoptic.simulate.models.frontend``). Filters
applied to the same input are fused into one FFT correlation.

Two deliberate differences: the random initial values of the gain-control scalars
(uniform on [0, 10), as in plenoptic) come from an explicit ``generator`` (default
:func:`difflens.tools.rng.default_generator`) instead of the global RNG, and ``cache_filt=False`` needs
no warning since kernel spectra are cached automatically while parameters are unchanged.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tools.conv import SpectrumCache, correlate2d
from ..tools.rng import default_generator
from ..tools.signal import make_disk
from ..tools.validate import check_image
from .filters import validate_filter_args
from .naive import CenterSurround, FilterModule, Gaussian

__all__ = ["LinearNonlinear", "LuminanceContrastGainControl", "LuminanceGainControl", "OnOff"]

_PRETRAINED = {
    "LinearNonlinear": [("center_surround.center_std", [0.5339]),
                        ("center_surround.surround_std", [6.148]),
                        ("center_surround.amplitude_ratio", [1.25])],
    "LuminanceGainControl": [("luminance_scalar", [14.95]), ("center_surround.center_std", [1.962]),
                             ("center_surround.surround_std", [4.235]),
                             ("center_surround.amplitude_ratio", [1.25]), ("luminance.std", [4.235])],
    "LuminanceContrastGainControl": [
        ("luminance_scalar", [2.94]), ("contrast_scalar", [34.03]),
        ("center_surround.center_std", [0.7363]), ("center_surround.surround_std", [48.37]),
        ("center_surround.amplitude_ratio", [1.25]), ("luminance.std", [170.99]),
        ("contrast.std", [2.658])],
    "OnOff": [("luminance_scalar", [3.2637, 14.3961]), ("contrast_scalar", [7.3405, 16.7423]),
              ("center_surround.center_std", [1.237, 0.3233]),
              ("center_surround.surround_std", [30.12, 2.184]),
              ("center_surround.amplitude_ratio", [1.25]), ("luminance.std", [76.4, 2.184]),
              ("contrast.std", [7.49, 2.43])],
}


class _FrontEnd(nn.Module):
    """Shared machinery: pretrained checks, random scalars, fused filtering, display."""

    _filter_names: tuple[str, ...] = ()

    def _begin(self, kernel_size: int | tuple[int, int], pretrained: bool, on_center: bool | None,
               generator: torch.Generator | None) -> torch.Generator:
        ks, _, _ = validate_filter_args(kernel_size, 1.0, 1)
        if pretrained and ks != (31, 31):
            raise ValueError(f"pretrained model has kernel_size (31, 31), got {kernel_size!r}")
        if pretrained and on_center is False:
            warnings.warn("pretrained model had on_center=True, so on_center=False might not "
                          "make sense", stacklevel=3)
        self._spectrum_cache = SpectrumCache()
        return default_generator(generator)

    @staticmethod
    def _scalar(n: int, gen: torch.Generator) -> nn.Parameter:
        return nn.Parameter(torch.rand(n, generator=gen) * 10)

    @classmethod
    def _pretrained_state_dict(cls) -> OrderedDict:
        """Parameters fit to human distortion judgements (Table 2 of Berardino, 2018).

        Found through the method resolution order, so a subclass of a pretrained model
        gets its parent's values.
        """
        for klass in cls.__mro__:
            if klass.__module__ == __name__ and klass.__name__ in _PRETRAINED:
                return OrderedDict((k, torch.as_tensor(v)) for k, v in _PRETRAINED[klass.__name__])
        raise ValueError(f"{cls.__name__} has no pretrained values: pretrained=True needs a subclass of "
                         f"one of {', '.join(_PRETRAINED)}")

    def _finish(self, pretrained: bool, activation: Callable[[Tensor], Tensor]) -> None:
        for name in self._filter_names:  # name the parameters in error messages, e.g. "luminance.std"
            getattr(self, name).name_prefix = f"{name}."
        if pretrained:
            self.load_state_dict(self._pretrained_state_dict())
        self.activation = activation

    def _filter_many(self, x: Tensor, modules: list[nn.Module]) -> list[Tensor]:
        """``[m(x) for m in modules]``, computed with one shared FFT of ``x`` when possible."""
        settings = {(getattr(m, "pad_mode", None), getattr(m, "kernel_size", None),
                     getattr(m, "method", None)) for m in modules}
        fusable = len(settings) == 1 and all(
            isinstance(m, FilterModule) and type(m).forward is FilterModule.forward
            and not m._forward_hooks and not m._forward_pre_hooks for m in modules)
        if not fusable:
            return [m(x) for m in modules]
        check_image(x, "x")
        b, c, h, w = x.shape
        outs = [m.out_channels for m in modules]
        if c > 1 and max(outs) > 1:
            raise ValueError(f"{type(self).__name__} has multi-channel filters and needs a "
                             f"single-channel input, got {c} channels")
        weight = torch.cat([m.weights(x.dtype) for m in modules])
        y = correlate2d(x.reshape(b * c, 1, h, w), weight, modules[0].pad_mode, 1,
                        modules[0].method, self._spectrum_cache)
        return [p.reshape(b, c, h, w) if c > 1 else p for p in y.split(outs, dim=1)]

    def filter_weights(self) -> tuple[torch.Tensor, list[str]]:
        """The model's kernels stacked as ``(K, 1, kh, kw)`` and a title for each.

        :func:`difflens.plot.display_filters` shows them (plenoptic's
        ``model.display_filters()``; plotting lives in :mod:`difflens.plot`).
        """
        weights = torch.cat([getattr(self, n).filt for n in self._filter_names]).detach()
        titles = [f"{n} filt {i}" for n in self._filter_names for i in range(getattr(self, n).out_channels)]
        return weights, titles


_DOC_ARGS = """
    Parameters
    ----------
    kernel_size
        Kernel size of every filter, ``(kh, kw)`` or one int (31 when ``pretrained``).
    on_center
        On-centre (``True``) or off-centre difference of Gaussians.
    amplitude_ratio
        Centre/surround amplitude ratio (>= 1).
    pad_mode
        ``"reflect"`` (default), ``"circular"``, ``"replicate"`` or ``"constant"``.
    pretrained
        Load the values of Table 2 of Berardino (2018); requires ``kernel_size=31``.
    activation
        Output nonlinearity (default softplus).
    cache_filt
        Freeze kernels after their first computation (plenoptic semantics).
    generator
        Generator for the random initial gain-control scalars (default
        :func:`difflens.tools.rng.default_generator`).
    method
        Convolution path: ``"auto"`` (default), ``"fft"`` or ``"direct"``.

    Input ``(B, C, H, W)`` float; output same height and width.
"""


class LinearNonlinear(_FrontEnd):
    """Difference of Gaussians then ``activation`` ("LN"). Output ``(B, C, H, W)``."""

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _filter_names = ("center_surround",)

    def __init__(self, kernel_size: int | tuple[int, int], on_center: bool = True,
                 amplitude_ratio: float = 1.25, pad_mode: str = "reflect", pretrained: bool = False,
                 activation: Callable[[Tensor], Tensor] = F.softplus, cache_filt: bool = False,
                 generator: torch.Generator | None = None, method: str = "auto") -> None:
        super().__init__()
        self._begin(kernel_size, pretrained, on_center, generator)
        self.center_surround = CenterSurround(kernel_size, on_center, amplitude_ratio,
                                              pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self._finish(pretrained, activation)

    def forward(self, x: Tensor) -> Tensor:
        """``activation(DoG * x)``: ``(B, C, H, W)`` from images ``(B, C, H, W)``."""
        return self.activation(self.center_surround(x))


class LuminanceGainControl(_FrontEnd):
    """DoG divided by ``1 + luminance_scalar * (Gaussian * x)``, then ``activation`` ("LG").

    Parameters: ``center_surround.{center_std, surround_std}``, buffer
    ``center_surround.amplitude_ratio``, ``luminance.std`` and ``luminance_scalar`` (1,).
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _filter_names = ("center_surround", "luminance")

    def __init__(self, kernel_size: int | tuple[int, int], on_center: bool = True,
                 amplitude_ratio: float = 1.25, pad_mode: str = "reflect", pretrained: bool = False,
                 activation: Callable[[Tensor], Tensor] = F.softplus, cache_filt: bool = False,
                 generator: torch.Generator | None = None, method: str = "auto") -> None:
        super().__init__()
        gen = self._begin(kernel_size, pretrained, on_center, generator)
        self.center_surround = CenterSurround(kernel_size, on_center, amplitude_ratio,
                                              pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self.luminance = Gaussian(kernel_size, pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self.luminance_scalar = self._scalar(1, gen)
        self._finish(pretrained, activation)

    def forward(self, x: Tensor) -> Tensor:
        """``activation(DoG * x / (1 + luminance_scalar * (G * x)))``, ``(B, C, H, W)``."""
        linear, lum = self._filter_many(x, [self.center_surround, self.luminance])
        return self.activation(linear / (1 + self.luminance_scalar.to(lum.dtype) * lum))


class LuminanceContrastGainControl(_FrontEnd):
    """LG followed by division by local contrast ``1 + contrast_scalar * sqrt(G * lg^2)`` ("LGG").

    Parameters as :class:`LuminanceGainControl` plus ``contrast.std`` and
    ``contrast_scalar`` (1,).
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _filter_names = ("center_surround", "luminance", "contrast")

    def __init__(self, kernel_size: int | tuple[int, int], on_center: bool = True,
                 amplitude_ratio: float = 1.25, pad_mode: str = "reflect", pretrained: bool = False,
                 activation: Callable[[Tensor], Tensor] = F.softplus, cache_filt: bool = False,
                 generator: torch.Generator | None = None, method: str = "auto") -> None:
        super().__init__()
        gen = self._begin(kernel_size, pretrained, on_center, generator)
        self.center_surround = CenterSurround(kernel_size, on_center, amplitude_ratio,
                                              pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self.luminance = Gaussian(kernel_size, pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self.contrast = Gaussian(kernel_size, pad_mode=pad_mode, cache_filt=cache_filt, method=method)
        self.luminance_scalar = self._scalar(1, gen)
        self.contrast_scalar = self._scalar(1, gen)
        self._finish(pretrained, activation)

    def forward(self, x: Tensor) -> Tensor:
        """The luminance-normalised response ``lg`` divided by ``1 + contrast_scalar * sqrt(G *
        lg^2)``, then ``activation``; ``(B, C, H, W)``.
        """
        linear, lum = self._filter_many(x, [self.center_surround, self.luminance])
        lum_normed = linear / (1 + self.luminance_scalar.to(lum.dtype) * lum)
        # clamp: FFT rounding can leave tiny negatives where the true value is >= 0
        con = self.contrast(lum_normed.pow(2)).clamp_min(0).sqrt() + 1e-6
        return self.activation(lum_normed / (1 + self.contrast_scalar.to(con.dtype) * con))


class OnOff(_FrontEnd):
    """On-off and off-on DoG channels with luminance and contrast gain control ("OnOff").

    Output ``(B, 2, H, W)`` for a single-channel input. Parameters:
    ``center_surround.{center_std, surround_std}`` (2,), ``luminance.std`` (2,),
    ``contrast.std`` (2,), ``luminance_scalar`` (2,), ``contrast_scalar`` (2,) and the
    buffer ``center_surround.amplitude_ratio``. ``apply_mask=True`` multiplies the output
    by :func:`difflens.tools.make_disk` of the image size.
    """

    __doc__ = (__doc__ or "") + _DOC_ARGS
    _filter_names = ("center_surround", "luminance", "contrast")

    def __init__(self, kernel_size: int | tuple[int, int], amplitude_ratio: float = 1.25,
                 pad_mode: str = "reflect", pretrained: bool = False,
                 activation: Callable[[Tensor], Tensor] = F.softplus, apply_mask: bool = False,
                 cache_filt: bool = False, generator: torch.Generator | None = None,
                 method: str = "auto") -> None:
        super().__init__()
        gen = self._begin(kernel_size, pretrained, None, generator)
        self.center_surround = CenterSurround(kernel_size, on_center=[True, False],
                                              amplitude_ratio=amplitude_ratio, pad_mode=pad_mode,
                                              cache_filt=cache_filt, method=method)
        self.luminance = Gaussian(kernel_size, out_channels=2, pad_mode=pad_mode,
                                  cache_filt=cache_filt, method=method)
        self.contrast = Gaussian(kernel_size, out_channels=2, pad_mode=pad_mode,
                                 cache_filt=cache_filt, method=method)
        self.luminance_scalar = self._scalar(2, gen)
        self.contrast_scalar = self._scalar(2, gen)
        self._finish(pretrained, activation)
        self.apply_mask = apply_mask
        self._disk: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        """On and off channels ``(B, 2, H, W)`` from one-channel images ``(B, 1, H, W)``.

        With ``apply_mask`` the output is masked to a disk.
        """
        linear, lum = self._filter_many(x, [self.center_surround, self.luminance])
        lum_normed = linear / (1 + self.luminance_scalar.to(lum.dtype).view(1, 2, 1, 1) * lum)
        con = self.contrast(lum_normed.pow(2), groups=2).clamp_min(0).sqrt() + 1e-6
        y = self.activation(lum_normed / (1 + self.contrast_scalar.to(con.dtype).view(1, 2, 1, 1) * con))
        if self.apply_mask:
            disk = self._disk
            if disk is None or disk.shape != x.shape[-2:] or disk.device != x.device or disk.dtype != y.dtype:
                disk = self._disk = make_disk(tuple(x.shape[-2:]), dtype=y.dtype, device=x.device)
            y = disk * y
        return y
