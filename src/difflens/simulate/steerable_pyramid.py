"""Steerable pyramid built in the Fourier domain (plenoptic 1.4.0's ``SteerablePyramidFreq``).

The transform of Simoncelli & Freeman (1995): the image spectrum is split by a
radial highpass / lowpass pair, then the lowpass part is repeatedly split into
``order + 1`` oriented bandpass bands and a lowpass band that is cropped in the
Fourier domain (downsampled by 2). Radial profiles are raised cosines in
log-frequency, angular profiles ``cos(theta - pi k / (order + 1)) ** order``,
both read from the lookup tables matlabPyrTools, pyrtools and plenoptic use, so
the coefficients equal theirs.

Coefficient layout (plenoptic 1.4): an ordered dict with keys
``"residual_highpass"``, ``0 .. num_scales - 1``, ``"residual_lowpass"``; the
residuals are ``(batch, channel, height, width)`` tensors, each scale a
``(batch, channel, num_orientations, height, width)`` tensor. plenoptic 1.1's
``(scale, orientation)`` keys read single bands: ``coeffs[(1, 2)]`` is
``coeffs[1][:, :, 2]`` (see :class:`PyramidCoefficients`).

All masks are computed once at construction (:mod:`.steerable_pyramid_masks`) and
kept as buffers in "unshifted" FFT order (DC at index 0), so no ``fftshift`` runs per
call and ``.to(device)`` / ``.to(torch.float64)`` move them; each scale's band mask,
with the band constant folded in, is built on first use and kept until the next move.
The coefficient layouts and the tensor packing are in :mod:`.pyramid_coefficients`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from difflens.tools.validate import check_image

from .pyramid_coefficients import (  # noqa: F401  (bands_by_*: part of this module's API too)
    PyramidCoefficients,
    bands_by_orientation,
    bands_by_scale,
    pyr_to_tensor,
    steering_weights,
    tensor_to_pyr,
)
from .steerable_pyramid_masks import LevelMasks, pyramid_masks

ScaleKey = int | Literal["residual_lowpass", "residual_highpass"]


_RESIDUALS = ("residual_highpass", "residual_lowpass")


class SteerablePyramidFreq(nn.Module):
    r"""Steerable pyramid in the Fourier domain: plenoptic 1.4.0's ``SteerablePyramidFreq``.

    Circular boundary handling; reconstruction is exact for even image sizes (odd
    sizes reconstruct only approximately, as in plenoptic, and warn).

    Parameters
    ----------
    image_shape
        ``(height, width)`` of the images it will analyse, in pixels.
    height
        Number of bandpass scales, or ``"auto"`` (default): ``floor(log2(min(image_shape))) - 2``,
        the most the image supports. ``0`` gives only the two residuals.
    order
        Order of the angular derivative filters, in ``[0, 15]`` (default 3); there are
        ``order + 1`` orientations. A complex pyramid needs ``order >= 1``.
    twidth
        Width of the radial transition region, in octaves (default 1).
    is_complex
        Return complex (analytic) bands: real part as the real pyramid's, imaginary part
        its quadrature pair (default ``False``).
    downsample
        Halve each scale (default ``True``); with ``False`` every band keeps ``image_shape``.
    tight_frame
        Orthonormal FFTs, so the energy of the coefficients equals the image's (default
        ``False``, which matches matlabPyrTools / pyrtools).

    Attributes
    ----------
    image_shape : tuple of int
    num_scales : int
        Number of bandpass scales (the resolved ``height``).
    num_orientations : int
        ``order + 1``.
    order, is_complex, downsample, tight_frame
        The constructor arguments.
    fft_norm : str
        ``"ortho"`` for a tight frame, ``"backward"`` otherwise.
    scales : list
        Coarse to fine: ``["residual_lowpass", num_scales - 1, ..., 0, "residual_highpass"]``.
    pyr_size : OrderedDict
        ``(height, width)`` of each key of the output, fine to coarse.

    Raises
    ------
    ValueError
        Image shape not two positive integers, image smaller than 4 pixels a side,
        ``height`` negative or more than the image supports (the message names the
        allowed heights and the image sizes a requested height needs), ``order`` outside
        ``[0, 15]``, ``order=0`` with ``is_complex=True``, ``twidth <= 0``.

    Examples
    --------
    >>> import torch
    >>> from difflens.simulate import SteerablePyramidFreq
    >>> pyr = SteerablePyramidFreq((64, 64), height=3, order=1)
    >>> x = torch.rand(2, 1, 64, 64)
    >>> coeffs = pyr(x)
    >>> [tuple(v.shape) for v in coeffs.values()]
    [(2, 1, 64, 64), (2, 1, 2, 64, 64), (2, 1, 2, 32, 32), (2, 1, 2, 16, 16), (2, 1, 8, 8)]
    >>> bool((pyr.recon_pyr(coeffs) - x).abs().max() < 1e-5)
    True
    """

    def __init__(self, image_shape: Sequence[int], height: Literal["auto"] | int = "auto",
                 order: int = 3, twidth: float = 1, is_complex: bool = False,
                 downsample: bool = True, tight_frame: bool = False) -> None:
        super().__init__()
        self.image_shape = self._check_shape(image_shape)
        self.order = self._check_order(order, is_complex)
        if not (isinstance(twidth, (int, float)) and twidth > 0):
            raise ValueError(f"twidth must be positive, got {twidth!r}")
        self.twidth = int(twidth)
        self.num_scales = self._check_height(height, self.image_shape)
        self.num_orientations = self.order + 1
        self.is_complex = bool(is_complex)
        self.downsample = bool(downsample)
        self.tight_frame = bool(tight_frame)
        self.fft_norm = "ortho" if self.tight_frame else "backward"
        if self.image_shape[0] % 2 or self.image_shape[1] % 2:
            warnings.warn("Reconstruction will not be perfect with odd-sized images "
                          f"(image_shape={self.image_shape})", stacklevel=2)
        self.scales: list[ScaleKey] = (["residual_lowpass"] + list(range(self.num_scales))[::-1]
                                       + ["residual_highpass"])
        self._build_masks()
        self.to(torch.float32)
        self.eval()

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_shape(image_shape: Sequence[int]) -> tuple[int, int]:
        try:
            shape = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError):
            raise ValueError(f"image_shape must be two integers (height, width), got {image_shape!r}")
        if len(shape) != 2 or shape != tuple(image_shape):
            raise ValueError(f"image_shape must be two integers (height, width), got {image_shape!r}")
        if min(shape) < 4:
            raise ValueError(f"image_shape {shape} is too small: a steerable pyramid needs at least "
                             "4 pixels a side (height=0), and 2**(height + 2) pixels a side for "
                             "`height` scales")
        return shape

    @staticmethod
    def _check_order(order: int, is_complex: bool) -> int:
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= 15:
            raise ValueError(f"order must be an integer in the range [0, 15], got {order!r}")
        if order == 0 and is_complex:
            raise ValueError("Complex pyramid cannot have order=0 (its quadrature pair is not "
                             "steerable; plenoptic issue 326): use order >= 1 or is_complex=False")
        return int(order)

    @staticmethod
    def _check_height(height: Literal["auto"] | int, shape: tuple[int, int]) -> int:
        max_height = math.floor(math.log2(min(shape))) - 2
        if isinstance(height, str):
            if height != "auto":
                raise ValueError(f"height must be 'auto' or a non-negative integer, got {height!r}")
            return max_height
        if isinstance(height, bool) or not isinstance(height, (int, np.integer)) or height < 0:
            raise ValueError(f"Height must be a non-negative integer or 'auto', got {height!r}")
        if height > max_height:
            need = 2 ** (int(height) + 2)
            raise ValueError(f"Cannot build pyramid higher than {max_height} levels for image_shape "
                             f"{shape}: allowed heights are 0..{max_height} ('auto' = {max_height}); "
                             f"height={height} needs images of at least {need} x {need} pixels")
        return int(height)

    # ------------------------------------------------------------------ masks
    def _build_masks(self) -> None:
        masks = pyramid_masks(self.image_shape, self.num_scales, self.order, self.twidth, self.is_complex,
                              self.downsample)
        self.register_buffer("lo0mask", torch.as_tensor(masks.lo0mask))
        self.register_buffer("hi0mask", torch.as_tensor(masks.hi0mask))
        self._crop_index: list[tuple[Tensor, Tensor] | None] = []
        for i, level in enumerate(masks.levels):
            self.register_buffer(f"_himasks_scale_{i}", torch.as_tensor(level.himask))
            self.register_buffer(f"_anglemasks_scale_{i}", torch.as_tensor(level.anglemask))
            self.register_buffer(f"_anglemasks_recon_scale_{i}", torch.as_tensor(level.anglemask_recon))
            self.register_buffer(f"_lomasks_scale_{i}", torch.as_tensor(level.lomask))
            self._crop_index.append(None if level.crop_rows is None else
                                    (torch.as_tensor(level.crop_rows), torch.as_tensor(level.crop_cols)))
        self.pyr_size = masks.sizes

    def _apply(self, fn, *args, **kwargs):  # keep the crop indices on the masks' device
        super()._apply(fn, *args, **kwargs)
        self.__dict__.pop("_gain_cache", None)
        self.__dict__.pop("_band_mask_cache", None)
        device = self.lo0mask.device
        self._crop_index = [None if ix is None else (ix[0].to(device), ix[1].to(device))
                            for ix in self._crop_index]
        return self

    # ------------------------------------------------------------------ helpers
    def level_masks(self, i: int) -> LevelMasks:
        """The masks of scale ``i`` in unshifted FFT order, and the crop to the next grid.

        Parameters
        ----------
        i
            Scale, ``0 .. num_scales - 1``.

        Returns
        -------
        LevelMasks
            ``himask`` ``(H_i, W_i)``, ``anglemask`` ``(num_orientations, H_i, W_i)`` (the
            forward's), ``lomask`` (on the next grid), and ``crop_rows`` / ``crop_cols``: the
            indices of the next grid in this one (``None`` without downsampling).
        """
        himask, angmask, _, lomask = self._masks(i)
        index = self._crop_index[i]
        rows, cols = (None, None) if index is None else index
        return LevelMasks(himask, angmask, lomask, rows, cols)

    def _masks(self, i: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (getattr(self, f"_himasks_scale_{i}"), getattr(self, f"_anglemasks_scale_{i}"),
                getattr(self, f"_anglemasks_recon_scale_{i}"), getattr(self, f"_lomasks_scale_{i}"))

    @property
    def _half_spectrum(self) -> bool:
        """Real pyramid of an even-sized image: work on rfft2 half spectra (half the FFT work).

        Valid because every band's spectrum is Hermitian there and the Nyquist row and column
        of every level are exactly zero in the bands and the lowpass (the masks vanish there).
        """
        return not self.is_complex and self.image_shape[0] % 2 == 0 and self.image_shape[1] % 2 == 0

    def _cut(self, mask: Tensor) -> Tensor:
        """The half-spectrum columns ``0 .. W // 2`` of a full unshifted mask (when in use)."""
        return mask[..., : mask.shape[-1] // 2 + 1] if self._half_spectrum else mask

    def _to_space(self, spectrum: Tensor, shape: tuple[int, int]) -> Tensor:
        if self._half_spectrum:
            return torch.fft.irfft2(spectrum, s=shape, norm=self.fft_norm)
        return torch.fft.ifft2(spectrum, norm=self.fft_norm).real

    def _crop(self, spectrum: Tensor, i: int) -> Tensor:
        index = self._crop_index[i]
        if index is None:
            return spectrum
        rows = spectrum.index_select(-2, index[0])
        if self._half_spectrum:
            return rows[..., : index[1].numel() // 2 + 1]
        return rows.index_select(-1, index[1])

    def _uncrop(self, spectrum: Tensor, i: int, big_shape: tuple[int, int], half: bool) -> Tensor:
        """Zero-pad a level's spectrum (full, or rfft2 half when ``half``) to the level above."""
        index = self._crop_index[i]
        if index is None:
            return spectrum
        if half:
            out = spectrum.new_zeros(*spectrum.shape[:-2], big_shape[0], big_shape[1] // 2 + 1)
            out[..., index[0], : spectrum.shape[-1]] = spectrum
            return out
        out = spectrum.new_zeros(*spectrum.shape[:-2], *big_shape)
        out[..., index[0][:, None], index[1][None, :]] = spectrum
        return out

    def _band_mask(self, i: int) -> Tensor:
        """Scale ``i``'s forward mask with the band constant folded in, built once per dtype and device.

        ``angmask * himask`` times ``(-i)**order``: a sign, and for odd orders a factor ``-i``
        (folded in for the half-spectrum real and the complex pyramid; the full-spectrum real
        pyramid takes the imaginary part instead), and the complex tight frame's
        ``1/sqrt(2)``. Multiplying by ``-i`` and signs is exact, so the values are the same as
        applying them to the bands.
        """
        himask, angmask = self._masks(i)[:2]
        # the buffers' identity and version: load_state_dict (an in-place copy) rebuilds it too
        version = (himask.data_ptr(), himask._version, angmask.data_ptr(), angmask._version)
        cache = self.__dict__.setdefault("_band_mask_cache", {})
        if i not in cache or cache[i][0] != version:
            sign = 1.0 if self.order % 4 in (0, 1) else -1.0
            mask = self._cut(angmask) * (self._cut(himask) * sign)
            if self.order % 2 == 1 and (self._half_spectrum or self.is_complex):
                mask = mask * -1j
            if self.is_complex and self.tight_frame:
                mask = mask / math.sqrt(2)
            cache[i] = (version, mask)
        return cache[i][1]

    def _check_input(self, image: Tensor) -> None:
        check_image(image, "image", ndim=4)
        if image.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"image must be float32 or float64 (the FFTs need one of them), got "
                            f"{image.dtype}; convert it with image.float()")
        if tuple(image.shape[-2:]) != self.image_shape:
            raise ValueError(f"Input tensor height/width {tuple(image.shape[-2:])} does not match "
                             f"image_shape set at initialization {self.image_shape}. Either resize "
                             "the input or re-initialize this model.")

    def _check_scales(self, scales: Sequence[ScaleKey] | None) -> list[ScaleKey]:
        if scales is None:
            return list(self.scales)
        if isinstance(scales, (int, str)):
            scales = [scales]
        for s in scales:
            if isinstance(s, str):
                if s not in _RESIDUALS:
                    raise ValueError(f"unknown scale {s!r}: scales are ints in [0, "
                                     f"{self.num_scales - 1}] and {list(_RESIDUALS)}")
            elif isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not (
                    0 <= s < self.num_scales):
                raise ValueError(f"Scales must be within 0 and num_scales-1 ({self.num_scales - 1}) "
                                 f"or one of {list(_RESIDUALS)}, got {s!r}")
        return list(scales)

    # ------------------------------------------------------------------ forward
    def forward(self, image: Tensor, scales: Sequence[ScaleKey] | None = None) -> PyramidCoefficients:
        """Pyramid coefficients of ``image``, fine to coarse.

        Parameters
        ----------
        image
            ``(batch, channel, height, width)`` real tensor with ``(height, width) == image_shape``.
        scales
            Subset of :attr:`scales` to return (default: all). Reconstruction needs all.

        Returns
        -------
        PyramidCoefficients
            ``"residual_highpass"`` ``(B, C, H, W)``; scale ``s``: ``(B, C, num_orientations,
            H_s, W_s)`` (``H_s = H / 2**s`` rounded up when downsampling, else ``H``), complex
            when ``is_complex``; ``"residual_lowpass"`` ``(B, C, H_S, W_S)``.

        Raises
        ------
        TypeError, ValueError
            Not a 4-D floating-point tensor, wrong height/width, unknown scales.
        """
        self._check_input(image)
        scales = self._check_scales(scales)
        out = PyramidCoefficients()
        norm, half = self.fft_norm, self._half_spectrum
        spectrum = torch.fft.rfft2(image, norm=norm) if half else torch.fft.fft2(image, norm=norm)
        if "residual_highpass" in scales:
            out["residual_highpass"] = self._to_space(spectrum * self._cut(self.hi0mask), self.image_shape)
        low = spectrum * self._cut(self.lo0mask)
        odd = self.order % 2 == 1
        for i in range(self.num_scales):
            lomask = self._masks(i)[3]
            if i in scales:
                mask = self._band_mask(i)
                if half:  # real bands from the half spectrum: irfft2 of (-i)**order * low * mask
                    out[i] = torch.fft.irfft2(low.unsqueeze(2) * mask, s=self.pyr_size[i], norm=norm)
                elif not self.is_complex:
                    band = torch.fft.ifft2(low.unsqueeze(2) * mask, norm=norm)
                    out[i] = band.imag if odd else band.real  # Re((-i) * z) = Im(z)
                else:
                    out[i] = torch.fft.ifft2(low.unsqueeze(2) * mask, norm=norm)
            if self.downsample:
                low = self._crop(low, i) * self._cut(lomask)
            else:
                low = low * self._cut(lomask)
                if not self.tight_frame:
                    low = low * 2
        if "residual_lowpass" in scales:
            out["residual_lowpass"] = self._to_space(low, self.pyr_size["residual_lowpass"])
        # plenoptic's order: highpass, 0..S-1, lowpass, whatever order `scales` came in
        ordered = PyramidCoefficients()
        for key in ["residual_highpass", *range(self.num_scales), "residual_lowpass"]:
            if key in out:
                ordered[key] = out[key]
        return ordered

    # ------------------------------------------------------------------ reconstruction
    def _recon_levels_check(self, levels: Literal["all"] | Sequence[ScaleKey]) -> list[ScaleKey]:
        if isinstance(levels, str):
            if levels != "all":
                raise TypeError(f"levels must be a list of levels or the string 'all' but got {levels}")
            return ["residual_highpass", *range(self.num_scales), "residual_lowpass"]
        if not hasattr(levels, "__iter__"):
            raise TypeError(f"levels must be a list of levels or the string 'all' but got {levels}")
        ints = []
        for lev in levels:
            if isinstance(lev, str):
                if lev not in _RESIDUALS:
                    raise ValueError(f"unknown level {lev!r}: levels are ints in "
                                     f"[0, {self.num_scales - 1}] and {list(_RESIDUALS)}")
            elif not 0 <= int(lev) < self.num_scales:
                raise ValueError(f"Level numbers must be in the range [0, {self.num_scales - 1:d}], "
                                 f"got {lev}")
            else:
                ints.append(int(lev))
        out: list[ScaleKey] = sorted(ints)
        if "residual_highpass" in levels:
            out = ["residual_highpass", *out]
        if "residual_lowpass" in levels:
            out = [*out, "residual_lowpass"]
        return out

    def _recon_bands_check(self, bands: Literal["all"] | Sequence[int]) -> list[int] | None:
        if isinstance(bands, str):
            if bands != "all":
                raise TypeError(f"bands must be a list of ints or the string 'all' but got {bands}")
            return None
        if not hasattr(bands, "__iter__"):
            raise TypeError(f"bands must be a list of ints or the string 'all' but got {bands}")
        bands = [int(b) for b in np.array(bands, ndmin=1)]
        if any(b < 0 or b >= self.num_orientations for b in bands):
            raise ValueError(f"band numbers must be in the range [0, {self.num_orientations - 1:d}], "
                             f"got {bands}")
        return bands

    def recon_pyr(self, pyr_coeffs: dict, levels: Literal["all"] | Sequence[ScaleKey] = "all",
                  bands: Literal["all"] | Sequence[int] = "all", exact: bool = False) -> Tensor:
        """Reconstruct the image from its coefficients, optionally from a subset.

        With the default ``exact=False`` this is plenoptic's (and pyrtools') reconstruction:
        the masks come from lookup tables whose linear interpolation breaks the
        power-complementarity by about 5e-6, so even in float64 an image comes back only to
        about 5e-6. ``exact=True`` divides by the frame's transfer function (one real
        number per frequency, computed once per dtype and device from the masks), which makes
        the full reconstruction exact to float rounding (about 1e-15 in float64).

        Parameters
        ----------
        pyr_coeffs
            Coefficients from :meth:`forward` called with ``scales=None`` (all keys present).
        levels
            ``"all"`` or a list of scale integers and residual names to include.
        bands
            ``"all"`` or a list of orientations in ``[0, num_orientations - 1]`` to include.
        exact
            Apply the dual frame (see above). Needs even image sizes.

        Returns
        -------
        Tensor
            ``(batch, channel, height, width)`` real image.

        Raises
        ------
        ValueError
            Coefficients missing a scale, levels or bands out of range, ``exact=True`` with an
            odd image size.
        TypeError
            ``levels`` / ``bands`` neither ``"all"`` nor a list.
        """
        for s in self.scales:
            if s not in pyr_coeffs:
                raise ValueError(f"scale {s} not in pyr_coeffs! pyr_coeffs must include all scales, "
                                 "so make sure forward() was called with arg scales=None")
        levels = self._recon_levels_check(levels)
        bands = self._recon_bands_check(bands)
        norm = self.fft_norm
        half = self._half_spectrum and not any(v.is_complex() for v in pyr_coeffs.values())
        fft = torch.fft.rfft2 if half else torch.fft.fft2

        def cut(mask: Tensor) -> Tensor:
            return mask[..., : mask.shape[-1] // 2 + 1] if half else mask

        low = fft(pyr_coeffs["residual_lowpass"], norm=norm)
        if "residual_lowpass" not in levels:
            low = torch.zeros_like(low)
        sign = 1.0 if self.order % 4 in (0, 1) else -1.0
        odd = self.order % 2 == 1
        for i in reversed(range(self.num_scales)):
            himask, _, recmask, lomask = self._masks(i)
            if not self.downsample and not self.tight_frame:
                low = low / 2
            low = self._uncrop(low * cut(lomask), i, self.pyr_size[i], half)
            if i in levels:
                coeffs = pyr_coeffs[i]
                mask = cut(recmask) * (cut(himask) * sign)
                if bands is not None:
                    coeffs, mask = coeffs[:, :, bands], mask[bands]
                if self.tight_frame and self.is_complex:
                    mask = mask * math.sqrt(2)  # undoes the forward's 1/sqrt(2)
                oriented = (fft(coeffs, norm=norm) * mask).sum(2)
                low = low + (oriented * 1j if odd else oriented)
        out = low * cut(self.lo0mask)
        if "residual_highpass" in levels:
            out = out + fft(pyr_coeffs["residual_highpass"], norm=norm) * cut(self.hi0mask)
        if exact:
            out = out / cut(self._frame_gain(out.real.dtype, out.device))
        if half:
            return torch.fft.irfft2(out, s=self.image_shape, norm=norm)
        return torch.fft.ifft2(out, norm=norm).real

    def _frame_gain(self, dtype: torch.dtype, device: torch.device) -> Tensor:
        """Transfer function of forward + (plain) reconstruction, unshifted FFT order."""
        if self.image_shape[0] % 2 or self.image_shape[1] % 2:
            raise ValueError(f"exact reconstruction needs even image sizes, got {self.image_shape}: "
                             "with odd sizes the pyramid is not shift-invariant")
        key = (dtype, device, self.lo0mask.dtype)
        cache = self.__dict__.setdefault("_gain_cache", {})
        if key not in cache:
            with torch.no_grad():
                delta = torch.zeros(1, 1, *self.image_shape, dtype=self.lo0mask.dtype, device=device)
                delta[..., 0, 0] = 1
                response = self.recon_pyr(self.forward(delta))
                cache[key] = torch.fft.fft2(response)[0, 0].real.to(dtype)
        return cache[key]

    # ------------------------------------------------------------------ steering
    def steer_coeffs(self, pyr_coeffs: dict, angles: Sequence[float] | Tensor,
                     even_phase: bool = True) -> tuple[dict, dict]:
        """Steer each scale's bands to arbitrary ``angles`` (radians).

        Parameters
        ----------
        pyr_coeffs
            Real coefficients from :meth:`forward`.
        angles
            Angles to steer to, in radians.
        even_phase
            Whether the angular harmonics are cosine (``True``) or sine phase about the
            filter positions.

        Returns
        -------
        resteered_coeffs : dict
            Scale ``s`` -> ``(batch, channel, len(angles), H_s, W_s)`` tensor.
        resteering_weights : dict
            Scale ``s`` -> ``(num_orientations, len(angles))`` weights: ``resteered =
            sum_o coeffs[:, :, o] * weights[o, a]``.

        Raises
        ------
        ValueError
            Complex coefficients (steering is defined for the real pyramid).
        """
        if pyr_coeffs[0].is_complex():
            raise ValueError("steering only implemented for real coefficients "
                             "(build the pyramid with is_complex=False)")
        weights = steering_weights(self.num_orientations, angles, even_phase)
        resteered, resteering = {}, {}
        for i in range(self.num_scales):
            coeffs = pyr_coeffs[i]
            w = weights.to(device=coeffs.device, dtype=coeffs.dtype)
            resteered[i] = torch.einsum("bcohw,oa->bcahw", coeffs, w)
            resteering[i] = w
        return resteered, resteering

    # ------------------------------------------------------------------ tensor packing
    @staticmethod
    def convert_pyr_to_tensor(pyr_coeffs: dict, split_complex: bool = False) -> tuple[Tensor, tuple]:
        """Stack the coefficients of a ``downsample=False`` pyramid into one 4-D tensor.

        Parameters
        ----------
        pyr_coeffs
            Coefficients from :meth:`forward` (all bands the same height and width).
        split_complex
            Give complex bands two real channels each (real, imaginary), interleaved.

        Returns
        -------
        pyr_tensor : Tensor
            ``(batch, channel * n_bands, height, width)``: for each input channel, the
            highpass residual, scale 0's orientations, ..., the lowpass residual.
        pyr_info : tuple
            ``(num_channels, pyr_keys, pack_info, split_complex_pack_info)``, the arguments
            :meth:`convert_tensor_to_pyr` needs after the tensor.

        Raises
        ------
        RuntimeError
            Bands of different sizes (a downsampled pyramid), or ``split_complex`` on real bands.
        """
        return pyr_to_tensor(pyr_coeffs, split_complex)

    @staticmethod
    def convert_tensor_to_pyr(pyr_tensor: Tensor, num_channels: int, pyr_keys: list,
                              pack_info: list, split_complex_pack_info: list | bool) -> PyramidCoefficients:
        """Undo :meth:`convert_pyr_to_tensor`; pass its ``pyr_info`` as ``*pyr_info``.

        Parameters
        ----------
        pyr_tensor
            ``(batch, channel * n_bands, height, width)`` tensor.
        num_channels, pyr_keys, pack_info, split_complex_pack_info
            The entries of the ``pyr_info`` tuple.

        Returns
        -------
        PyramidCoefficients
            The coefficients as :meth:`forward` returns them (residuals real).
        """
        return tensor_to_pyr(pyr_tensor, num_channels, pyr_keys, pack_info, split_complex_pack_info)
