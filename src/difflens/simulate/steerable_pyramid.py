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

All masks are computed once at construction and kept as buffers in
"unshifted" FFT order (DC at index 0), so no ``fftshift`` runs per call and
``.to(device)`` / ``.to(torch.float64)`` move them.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from difflens.tools.validate import check_image

from .pyramid_coefficients import (  # noqa: F401  (bands_by_*: part of this module's API too)
    PyramidCoefficients,
    bands_by_orientation,
    bands_by_scale,
    steering_weights,
)

ScaleKey = int | Literal["residual_lowpass", "residual_highpass"]


class LevelMasks(NamedTuple):
    """One scale's masks of a :class:`SteerablePyramidFreq` (see :meth:`~SteerablePyramidFreq.level_masks`)."""

    himask: Tensor
    anglemask: Tensor
    lomask: Tensor
    crop_rows: Tensor | None
    crop_cols: Tensor | None

_RESIDUALS = ("residual_highpass", "residual_lowpass")


# ----------------------------------------------------------------------------------------------
# mask construction (numpy, float64, once per pyramid)

def _radial_table(width: float) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine lookup table in log2-frequency: ``(x, cos(..)**2)``, flat beyond its ends."""
    n = 256
    x = np.pi * np.arange(-n - 1, 2) / (2 * n)
    y = np.cos(x) ** 2
    y[0], y[-1] = y[1], y[-2]
    x = -width / 2.0 + (2.0 * width / np.pi) * (x + np.pi / 4)
    return x, y


def _interp_uniform(x: np.ndarray, x0: float, dx: float, table: np.ndarray) -> np.ndarray:
    """``np.interp(x, x0 + dx * arange(len(table)), table)``, without the binary search.

    Piecewise-linear through the table, constant beyond its ends.
    """
    t = (x - x0) / dx
    i = np.clip(np.floor(t), 0, table.size - 2).astype(np.intp)
    frac = np.clip(t - i, 0.0, 1.0)
    lo = table[i]
    return lo + frac * (table[i + 1] - lo)


def _polar_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Angle and log2-radius of the centred frequency grid of an ``shape`` image (in [-1, 1))."""
    h, w = shape
    xs = np.linspace(-1.0, 1.0, w + 1)[:-1]
    ys = np.linspace(-1.0, 1.0, h + 1)[:-1]
    xx, yy = np.meshgrid(xs, ys)
    angle = np.arctan2(yy, xx)
    radius = np.sqrt(xx ** 2 + yy ** 2)
    ch, cw = (math.ceil((s + 0.5) / 2) - 1 for s in shape)
    radius[ch, cw] = radius[ch, cw - 1]  # avoid log(0) at DC: the value next to it
    return angle, np.log2(radius)


def _crop_box(dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the centred half-size block of a centred spectrum."""
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    lodims = np.ceil((dims - 0.5) / 2).astype(int)
    loctr = np.ceil((lodims + 0.5) / 2).astype(int)
    start = ctr - loctr
    return start, start + lodims


def _unshifted_crop_index(n_big: int, start: int, n_small: int) -> np.ndarray:
    """Indices into an unshifted length-``n_big`` spectrum giving the unshifted centred crop.

    The centred crop ``fftshift(U)[start:start + n_small]``, ifftshifted again, equals
    ``U[index]``.
    """
    b = np.arange(n_small)
    return (start + (b + n_small // 2) % n_small - n_big // 2) % n_big


def _ifftshift2(a: np.ndarray) -> np.ndarray:
    return np.fft.ifftshift(a, axes=(-2, -1))


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
        xr, yr = _radial_table(self.twidth)
        hi_table = np.sqrt(yr)                      # highpass profile
        lo_table = np.sqrt(1.0 - hi_table ** 2)     # its power complement
        lut = 1024
        xc = np.pi * np.arange(-(2 * lut + 1), lut + 2) / lut
        xc0, dxc = xc[0], np.pi / lut
        xr0, dxr = xr[0], (xr[-1] - xr[0]) / (xr.size - 1)
        n_or = self.num_orientations
        const = (2.0 ** (2 * self.order)) * (math.factorial(self.order) ** 2) / (
            n_or * math.factorial(2 * self.order))
        cos_n = np.sqrt(const) * np.cos(xc) ** self.order
        if self.is_complex:
            wrapped = (xc + np.pi) % (2 * np.pi) - np.pi
            ang_fwd, ang_rec = 2.0 * cos_n * (np.abs(wrapped) < np.pi / 2), cos_n
        else:
            ang_fwd = ang_rec = cos_n

        angle, log_rad = _polar_grid(self.image_shape)
        self.register_buffer("lo0mask", torch.as_tensor(_ifftshift2(_interp_uniform(log_rad, xr0, dxr, lo_table))))
        self.register_buffer("hi0mask", torch.as_tensor(_ifftshift2(_interp_uniform(log_rad, xr0, dxr, hi_table))))

        dims = np.array(self.image_shape)
        self._crop_index: list[tuple[Tensor, Tensor] | None] = []
        self.pyr_size = OrderedDict([("residual_highpass", self.image_shape)])
        for i in range(self.num_scales):
            xr0 = xr0 - 1.0  # one octave down
            self.pyr_size[i] = tuple(int(d) for d in dims)
            himask = _interp_uniform(log_rad, xr0, dxr, hi_table)
            fwd = np.stack([_interp_uniform(angle, xc0 + np.pi * b / n_or, dxc, ang_fwd)
                            for b in range(n_or)])
            rec = fwd if ang_rec is ang_fwd else np.stack(
                [_interp_uniform(angle, xc0 + np.pi * b / n_or, dxc, ang_rec) for b in range(n_or)])
            self.register_buffer(f"_himasks_scale_{i}", torch.as_tensor(_ifftshift2(himask)))
            self.register_buffer(f"_anglemasks_scale_{i}", torch.as_tensor(_ifftshift2(fwd)))
            self.register_buffer(f"_anglemasks_recon_scale_{i}", torch.as_tensor(_ifftshift2(rec)))
            if self.downsample:
                start, end = _crop_box(dims)
                small = end - start
                rows = _unshifted_crop_index(int(dims[0]), int(start[0]), int(small[0]))
                cols = _unshifted_crop_index(int(dims[1]), int(start[1]), int(small[1]))
                self._crop_index.append((torch.as_tensor(rows), torch.as_tensor(cols)))
                log_rad = log_rad[start[0]:end[0], start[1]:end[1]]
                angle = angle[start[0]:end[0], start[1]:end[1]]
                dims = small
            else:
                self._crop_index.append(None)
            self.register_buffer(f"_lomasks_scale_{i}",
                                 torch.as_tensor(_ifftshift2(_interp_uniform(log_rad, xr0, dxr, lo_table))))
        self.pyr_size["residual_lowpass"] = tuple(int(d) for d in dims)

    def _apply(self, fn, *args, **kwargs):  # keep the crop indices on the masks' device
        super()._apply(fn, *args, **kwargs)
        self.__dict__.pop("_gain_cache", None)
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
        # the band constant (-i)**order: a sign and, for odd orders, a factor -i
        sign = 1.0 if self.order % 4 in (0, 1) else -1.0
        odd = self.order % 2 == 1
        for i in range(self.num_scales):
            himask, angmask, _, lomask = self._masks(i)
            if i in scales:
                mask = self._cut(angmask) * (self._cut(himask) * sign)
                if half:  # real bands from the half spectrum: irfft2 of (-i)**order * low * mask
                    out[i] = torch.fft.irfft2(low.unsqueeze(2) * (mask * -1j if odd else mask),
                                              s=self.pyr_size[i], norm=norm)
                elif not self.is_complex:
                    band = torch.fft.ifft2(low.unsqueeze(2) * mask, norm=norm)
                    out[i] = band.imag if odd else band.real  # Re((-i) * z) = Im(z)
                else:
                    # fold (-i) and the tight frame's 1/sqrt(2) into the small mask: one pass
                    # over the bands fewer (multiplying by -i is exact, so the values are too)
                    if odd:
                        mask = mask * (-1j)
                    if self.tight_frame:
                        mask = mask / math.sqrt(2)
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
        keys = list(pyr_coeffs.keys())
        values = [pyr_coeffs[k] for k in keys]
        num_channels = values[0].size(1)
        pack_info = [v.shape[2:-2] for v in values]
        try:
            packed = torch.cat([v.reshape(*v.shape[:2], -1, *v.shape[-2:]) for v in values], 2)
        except RuntimeError:
            raise RuntimeError("feature maps could not be concatenated into tensor. Check that you "
                               "are using coefficients that are not downsampled across scales. This "
                               "is done with the 'downsample=False' argument for the pyramid")
        split_info: list | bool = split_complex
        if split_complex and not all(isinstance(k, str) for k in keys):
            start = 1 if "residual_highpass" in keys else 0
            stop = packed.shape[2] - (1 if "residual_lowpass" in keys else 0)
            bands = packed[:, :, start:stop]
            if not bands.is_complex():
                raise RuntimeError("split_complex=True but coefficient tensors are real-valued! Either "
                                   "set split_complex=False or regenerate the coefficients with a "
                                   "complex pyramid.")
            separated = torch.stack([bands.real, bands.imag], 3).flatten(2, 3)
            pieces = []
            if "residual_highpass" in keys:
                pieces.append(packed[:, :, :1].real)
            pieces.append(separated)
            if "residual_lowpass" in keys:
                pieces.append(packed[:, :, -1:].real)
            split_info = [torch.Size([]) if p is not separated else torch.Size([p.shape[2]])
                          for p in pieces]
            packed = torch.cat(pieces, 2)
        b, c, k, h, w = packed.shape
        return packed.reshape(b, c * k, h, w), (num_channels, keys, pack_info, split_info)

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
        b, _, h, w = pyr_tensor.shape
        unpacked = pyr_tensor.reshape(b, num_channels, -1, h, w)
        if not isinstance(split_complex_pack_info, bool):
            parts = _unpack(unpacked, split_complex_pack_info)
            complex_info = list(pack_info)
            i_bands = 0
            if "residual_highpass" in pyr_keys:
                i_bands, complex_info = 1, complex_info[1:]
            if "residual_lowpass" in pyr_keys:
                complex_info = complex_info[:-1]
            pairs = parts[i_bands]
            pairs = pairs.reshape(b, num_channels, -1, 2, h, w).movedim(3, -1).contiguous()
            bands = _unpack(torch.view_as_complex(pairs), complex_info)
            coeffs = ([parts[0]] if "residual_highpass" in pyr_keys else []) + bands
            if "residual_lowpass" in pyr_keys:
                coeffs.append(parts[-1])
        else:
            coeffs = _unpack(unpacked, pack_info)
        out = PyramidCoefficients(zip(pyr_keys, coeffs))
        for k in _RESIDUALS:
            if k in out:
                out[k] = out[k].real
        return out


def _unpack(t: Tensor, shapes: Sequence[torch.Size]) -> list[Tensor]:
    sizes = [int(np.prod(s)) if len(s) else 1 for s in shapes]
    chunks = t.split(sizes, dim=2)
    return [c.reshape(*c.shape[:2], *s, *c.shape[-2:]) for c, s in zip(chunks, shapes)]
