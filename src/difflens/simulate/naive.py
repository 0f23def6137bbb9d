"""Very simple convolutional models: identity, a fixed linear pair, a Gaussian, a DoG.

Parameterisation, defaults and ``state_dict`` keys follow plenoptic 1.4.0
(``plenoptic.simulate.models.naive``); the convolution runs through
:func:`difflens.tools.conv.correlate2d`, which picks an FFT or a direct path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..tools.conv import PAD_MODES, SpectrumCache, correlate2d, same_padding
from ..tools.fftconv import is_functorch_wrapped
from ..tools.rng import default_generator
from ..tools.validate import check_image
from .filters import StdLike, check_std, circular_gaussian2d, gaussian_bank, validate_filter_args

__all__ = ["CenterSurround", "FilterModule", "Gaussian", "Identity", "Linear", "filter_image"]

METHODS = ("auto", "fft", "direct")


def _check_mode(pad_mode: str, method: str) -> None:
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def filter_image(x: Tensor, weight: Tensor, pad_mode: str, method: str = "auto", groups: int = 1,
                 cache: SpectrumCache | None = None) -> Tensor:
    """Same-size correlation of images ``x`` ``(B, C, H, W)`` with kernels ``weight``.

    ``weight`` is ``(O, C / groups, kh, kw)`` as in :func:`torch.nn.functional.conv2d`,
    with one extension: a single kernel ``(1, 1, kh, kw)`` applied to a ``C > 1``
    channel image filters every channel independently, returning ``(B, C, H, W)``.
    """
    check_image(x, "x")
    b, c, h, w = x.shape
    if groups == 1 and c > 1 and weight.shape[1] == 1:
        if weight.shape[0] != 1:
            raise ValueError(f"{weight.shape[0]} single-channel kernels cannot be applied to a "
                             f"{c}-channel input; pass one channel (or groups={c} with "
                             f"{c} kernels)")
        y = correlate2d(x.reshape(b * c, 1, h, w), weight, pad_mode, 1, method, cache)
        return y.reshape(b, c, h, w)
    return correlate2d(x, weight, pad_mode, groups, method, cache)


class FilterModule(nn.Module):
    """Base of :class:`Gaussian` and :class:`CenterSurround`: a bank of same-size filters.

    Subclasses implement ``_build(dtype)``, returning the ``(O, 1, kh, kw)`` kernels
    computed in ``dtype`` from the current parameters. Kernel spectra are cached
    (see :class:`~difflens.tools.conv.SpectrumCache`) and recomputed whenever the
    kernel values change.
    """

    kernel_size: tuple[int, int]
    out_channels: int
    #: prefix of this module's parameter names in error messages (a front-end model sets
    #: e.g. ``"luminance."`` so a bad value is named ``luminance.std``)
    name_prefix: str = ""

    def _setup(self, pad_mode: str, cache_filt: bool, method: str) -> None:
        _check_mode(pad_mode, method)
        self.pad_mode = pad_mode
        self.method = method
        self.cache_filt = cache_filt
        self.register_buffer("_filt", None)
        self._spectrum_cache = SpectrumCache()

    def _build(self, dtype: torch.dtype) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _checked_std(self, name: str, dtype: torch.dtype) -> Tensor:
        """Parameter ``name`` in ``dtype``, after :func:`check_std` where that costs no device sync.

        Checked on CPU only (a GPU check would wait for the device on every kernel
        build) and not inside functorch transforms of the parameters.
        """
        std = getattr(self, name).to(dtype)
        if std.device.type == "cpu" and not is_functorch_wrapped(std):
            check_std(std, f"{self.name_prefix}{name}", self.kernel_size)
        return std

    @property
    def filt(self) -> Tensor:
        """The ``(out_channels, 1, kh, kw)`` kernels in the parameters' dtype.

        With ``cache_filt=True`` the first value is stored as the buffer ``_filt``
        (detached, and from then on part of ``state_dict``, as in plenoptic) and reused
        even if the parameters change afterwards.
        """
        if self._filt is not None:
            return self._filt
        filt = self._build(self._param_dtype())
        if self.cache_filt:
            self.register_buffer("_filt", filt.detach())
        return filt

    def _param_dtype(self) -> torch.dtype:
        return next(iter(self.parameters())).dtype

    def _extra_key(self) -> tuple:
        """Non-tensor state the kernels depend on, besides kernel_size and out_channels."""
        return ()

    def weights(self, dtype: torch.dtype) -> Tensor:
        """The kernels in ``dtype`` (differentiable in the parameters unless cached).

        While no gradient is needed, the kernels are reused for as long as every
        parameter and buffer keeps the same *values* (checked on each call; CPU only).
        """
        if self.cache_filt:
            return self.filt.to(dtype)
        # a filter module has no children: its own parameters and buffers are all there is
        tensors = [t for t in (*self._parameters.values(), *self._buffers.values()) if t is not None]
        if (any(t.device.type != "cpu" or is_functorch_wrapped(t) for t in tensors)
                or (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))):
            return self._build(dtype)
        key = (dtype, self.kernel_size, self.out_channels, self._extra_key(),
               tuple((t.dtype, tuple(t.shape), tuple(t.reshape(-1).tolist())) for t in tensors))
        cached = self.__dict__.get("_weights_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.inference_mode(False), torch.no_grad():
            built = self._build(dtype)
        self.__dict__["_weights_cache"] = (key, built)
        return built

    def forward(self, x: Tensor, **conv2d_kwargs: Any) -> Tensor:
        """Correlate ``x`` ``(B, C, H, W)`` with the kernels, same-padded: ``(B, O, H, W)``.

        ``groups`` works as in :func:`torch.nn.functional.conv2d`. A single kernel
        filters each of several input channels independently. Other
        ``conv2d_kwargs`` (stride, dilation, ...) go to ``F.conv2d`` on the padded image.
        """
        groups = conv2d_kwargs.pop("groups", 1)
        weight = self.weights(x.dtype)
        if conv2d_kwargs:
            check_image(x, "x")
            xp = same_padding(x, self.kernel_size, pad_mode=self.pad_mode)
            return nn.functional.conv2d(xp, weight, groups=groups, **conv2d_kwargs)
        return filter_image(x, weight, self.pad_mode, self.method, groups, self._spectrum_cache)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, out_channels={self.out_channels}, "
                f"pad_mode={self.pad_mode!r}, method={self.method!r}")


class Gaussian(FilterModule):
    """Isotropic Gaussian filter(s), each kernel summing to one.

    Parameters
    ----------
    kernel_size
        Kernel size ``(kh, kw)`` or one int.
    std
        Standard deviation in pixels (scalar or one per output channel); learnable
        parameter ``std`` of shape ``(out_channels,)``. Only ``std**2`` enters the
        kernel, so its sign does not matter (plenoptic takes ``abs`` in place during
        forward; difflens does not mutate parameters in forward).
    pad_mode
        ``"reflect"`` (default), ``"circular"``, ``"replicate"`` or ``"constant"``.
    out_channels
        Number of kernels; inferred from ``std`` when ``None``.
    cache_filt
        Freeze the kernel after its first computation (plenoptic semantics). Not needed
        for speed in difflens: kernel spectra are cached automatically.
    method
        ``"auto"`` (default), ``"fft"`` or ``"direct"`` convolution.
    """

    def __init__(self, kernel_size: int | tuple[int, int], std: StdLike = 3.0,
                 pad_mode: str = "reflect", out_channels: int | None = None,
                 cache_filt: bool = False, method: str = "auto") -> None:
        super().__init__()
        self.kernel_size, std, self.out_channels = validate_filter_args(kernel_size, std, out_channels)
        self.std = nn.Parameter(std)
        self._setup(pad_mode, cache_filt, method)

    def _build(self, dtype: torch.dtype) -> Tensor:
        return gaussian_bank(self.kernel_size, self._checked_std("std", dtype))


class CenterSurround(FilterModule):
    """Difference-of-Gaussians filter(s): ``amplitude_ratio * sign * (center - surround)``.

    ``center`` and ``surround`` are :func:`circular_gaussian2d` kernels (each summing to
    one) and ``sign`` is +1 for on-centre, -1 for off-centre channels (plenoptic's
    formula; the kernel sums to zero).

    Parameters
    ----------
    kernel_size
        Kernel size ``(kh, kw)`` or one int.
    on_center
        One bool for all channels or one per channel.
    amplitude_ratio
        Scalar >= 1, stored as the 0-d buffer ``amplitude_ratio``.
    center_std, surround_std
        Learnable standard deviations in pixels, parameters of shape ``(out_channels,)``.
    out_channels
        Number of kernels; inferred from ``on_center`` / ``center_std`` when ``None``.
    pad_mode, cache_filt, method
        As in :class:`Gaussian`.
    """

    def __init__(self, kernel_size: int | tuple[int, int], on_center: bool | Sequence[bool] = True,
                 amplitude_ratio: float = 1.25, center_std: StdLike = 1.0,
                 surround_std: StdLike = 4.0, out_channels: int | None = None,
                 pad_mode: str = "reflect", cache_filt: bool = False, method: str = "auto") -> None:
        super().__init__()
        on_center = torch.as_tensor(on_center, dtype=torch.bool)
        if out_channels is None and on_center.numel() != 1:
            out_channels = len(on_center)
        self.kernel_size, center_std, out_channels = validate_filter_args(
            kernel_size, center_std, out_channels, "center_std")
        _, surround_std, _ = validate_filter_args(kernel_size, surround_std, out_channels,
                                                  "surround_std", "len(center_std)")
        self.center_std = nn.Parameter(center_std)
        self.surround_std = nn.Parameter(surround_std)
        if on_center.numel() == 1:
            on_center = on_center.reshape(1).repeat(out_channels)
        if len(on_center) != out_channels:
            raise ValueError(f"len(on_center) must equal out_channels ({len(on_center)} != "
                             f"{out_channels})")
        self.on_center = on_center
        ratio = torch.as_tensor(amplitude_ratio)
        if not ratio.is_floating_point():
            ratio = ratio.to(torch.float32)
        if ratio.numel() > 1:
            raise ValueError(f"amplitude_ratio must be a scalar, got shape {tuple(ratio.shape)}")
        if ratio < 1.0:
            raise ValueError(f"amplitude_ratio must at least be 1, got {ratio.item()}")
        self.register_buffer("amplitude_ratio", ratio.reshape(()))
        self.out_channels = out_channels
        self._setup(pad_mode, cache_filt, method)

    def _build(self, dtype: torch.dtype) -> Tensor:
        center = gaussian_bank(self.kernel_size, self._checked_std("center_std", dtype))
        surround = gaussian_bank(self.kernel_size, self._checked_std("surround_std", dtype))
        sign = torch.tensor([1.0 if on else -1.0 for on in self.on_center.tolist()],
                            dtype=dtype, device=center.device).view(-1, 1, 1, 1)
        return self.amplitude_ratio.to(dtype) * (sign * (center - surround))

    def _extra_key(self) -> tuple:
        return tuple(self.on_center.tolist())


class Identity(nn.Module):
    """Returns ``1 * x`` (a copy): a stand-in model for pixel-space comparisons."""

    def forward(self, x: Tensor) -> Tensor:
        """A copy of ``x`` (any shape)."""
        return 1 * x


class Linear(nn.Module):
    """Two fixed or learnable linear filters: a lowpass and a bandpass (plenoptic's ``Linear``).

    Parameters
    ----------
    kernel_size
        Kernel size (default ``(3, 3)``).
    pad_mode
        Boundary handling (default ``"circular"``).
    default_filters
        If ``True``, ``conv.weight[0]`` is a Gaussian of variance 3 and
        ``conv.weight[1]`` the normalised difference between a Gaussian of variance 1
        and it; otherwise Kaiming-uniform random, drawn from ``generator``.
    generator
        Generator for the random filters (default :func:`difflens.tools.rng.default_generator`).
    method
        ``"auto"``, ``"fft"`` or ``"direct"``.

    Notes
    -----
    The parameter is ``conv.weight`` of shape ``(2, 1, kh, kw)``; input must have one channel.
    """

    def __init__(self, kernel_size: int | tuple[int, int] = (3, 3), pad_mode: str = "circular",
                 default_filters: bool = True, generator: torch.Generator | None = None,
                 method: str = "auto") -> None:
        super().__init__()
        _check_mode(pad_mode, method)
        self.pad_mode = pad_mode
        self.method = method
        self.kernel_size, _, _ = validate_filter_args(kernel_size, 1, 1)
        self.conv = nn.Conv2d(1, 2, self.kernel_size, bias=False, device="meta")
        if default_filters:
            var = torch.as_tensor(3.0)
            f1 = circular_gaussian2d(self.kernel_size, std=torch.sqrt(var))
            f2 = circular_gaussian2d(self.kernel_size, std=torch.sqrt(var / 3)) - f1
            weight = torch.cat([f1, f2 / f2.sum()], dim=0)
        else:
            weight = torch.empty(2, 1, *self.kernel_size)
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=default_generator(generator))
        self.conv.weight = nn.Parameter(weight)
        self._spectrum_cache = SpectrumCache()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 1, H, W)`` -> ``(B, 2, H, W)`` same-size correlation."""
        return filter_image(x, self.conv.weight, self.pad_mode, self.method, 1, self._spectrum_cache)
