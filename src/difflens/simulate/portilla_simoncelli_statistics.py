"""How :class:`~difflens.simulate.PortillaSimoncelli` computes its statistics fast.

plenoptic 1.4 runs a complex steerable pyramid, reconstructs the lowpass image at each
scale with ``n_scales + 1`` full-size pyramid reconstructions, upsamples each coarser
scale's bands with an FFT pair, and computes each statistic with its own chain of small
tensor operations. The numbers here are the same (float64 rounding), computed in fewer,
bigger operations:

- **One spectrum, independent scales.** The bands of scale ``k`` are
  ``ifft2(crop_k(fft2(image)) * F_k)``: the cumulative lowpass masks, the radial and
  angular masks and the band constant ``(-i)**order`` are folded, once, into one complex
  mask ``F_k`` per band on the scale's own (cropped) grid, so no scale waits for the one
  above it and no mask is multiplied per call.
- **Upsampled coarser bands for free.** The phase-doubled cross-scale statistics need the
  bands of scale ``k + 1`` upsampled to the grid of scale ``k``. Their spectra vanish on
  their Nyquist row and column, so plenoptic's Fourier upsampling is zero-padding: the
  band masks of scale ``k + 1``, zero-padded onto grid ``k``, join ``F_k``, and one batched
  inverse FFT per scale gives both (no forward FFT of the coarse bands).
- **Lowpass images as filters.** The reconstructed lowpass image of scale ``k`` is a linear
  shift-invariant map of the image, measured once (:func:`lowpass_filters`) and applied as
  one more mask in the same batch.
- **One backward pass per scale for the nonlinearities.** Magnitudes, real parts, phase
  doubling and demeaning are one autograd function (:class:`BandFeatures`) with a
  hand-written backward, instead of a dozen views of the band tensor each allocating a
  full-size gradient.
- **Correlations as matrix products**, the highpass variance by Parseval (no inverse FFT).

:class:`StatisticsPlan` holds the float64 masks, cast per dtype and device on first use.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from .steerable_pyramid import SteerablePyramidFreq

__all__ = ["AutocorrelationWindow", "ScaleStatistics", "StatisticsPlan", "autocorrelation_tables", "double_phase",
           "fourier_shrink", "lowpass_filters",
           "pixel_statistics", "reconstruct_lowpass_reference", "texture_statistics"]

#: (-i) ** order for order % 4
_BAND_PHASE = (1.0 + 0j, -1j, -1.0 + 0j, 1j)


class StatisticsPlan:
    """The masks of a Portilla-Simoncelli model, folded per scale (float64 masters, cast per use).

    Parameters
    ----------
    pyramid
        The model's complex, downsampling, non-tight steerable pyramid (its masks as they are,
        float32-rounded, are used, so the bands equal the pyramid's).
    n_scales
        Number of scales.

    Attributes
    ----------
    masks : list of Tensor
        Scale ``k``: complex ``(K, h_k, w_k)`` masks on that scale's grid: its ``o`` bands,
        then (``k < n_scales - 1``) the ``o`` bands of scale ``k + 1`` zero-padded onto it,
        then the lowpass-image filter of scale ``k``.
    half_masks, half_conj_masks : list of Tensor
        Scale ``k``: ``(2K - 1, h_k, w_k // 2 + 1)`` half-spectrum masks giving, from the
        image's ``rfft2``, the real parts of the ``K`` maps and the imaginary parts of the
        first ``K - 1`` by one ``irfft2``; and their conjugates with ``irfft2``'s adjoint
        weights (for the backward).
    rows, cols : list of Tensor or None
        Indices of grid ``k`` in the full-size unshifted spectrum (``None`` for ``k = 0``),
        ``k = 0 .. n_scales``.
    filters : list of Tensor
        The real lowpass-image filters of grids ``k = 0 .. n_scales`` (:func:`lowpass_filters`).
    residual_filter : Tensor
        ``filters[n_scales]`` on the half spectrum.
    highpass_power : Tensor
        Squared highpass mask on the half spectrum, with the conjugate-pair weights and
        ``1 / (h w)**2`` (the highpass variance by Parseval).
    """

    def __init__(self, pyramid: SteerablePyramidFreq, n_scales: int) -> None:
        if not pyramid.is_complex or pyramid.tight_frame or not pyramid.downsample:
            raise ValueError("StatisticsPlan needs a complex, downsampling, non-tight-frame pyramid")
        pyr = SteerablePyramidFreq(pyramid.image_shape, height=n_scales, order=pyramid.order,
                                   is_complex=True).to(torch.float64)
        pyr.load_state_dict(pyramid.state_dict())  # the float32-rounded masks, as used
        filters = lowpass_filters(pyr, n_scales)
        cumulative = pyr.lo0mask
        self._cumulative, crops = [], []
        for k in range(n_scales):
            level = pyr.level_masks(k)
            self._cumulative.append(cumulative)
            crops.append((level.crop_rows, level.crop_cols))
            cumulative = cumulative.index_select(0, level.crop_rows).index_select(1, level.crop_cols) * level.lomask
        self._crops = crops
        self._pyramid = pyramid
        self.filters = filters
        self.rows: list[Tensor | None] = [None]
        self.cols: list[Tensor | None] = [None]
        for rows, cols in crops:
            self.rows.append(rows if self.rows[-1] is None else self.rows[-1][rows])
            self.cols.append(cols if self.cols[-1] is None else self.cols[-1][cols])
        self._fold(pyramid.lo0mask.dtype)
        self.residual_filter = filters[n_scales][..., : filters[n_scales].shape[-1] // 2 + 1]
        h, w = pyr.image_shape
        self.highpass_power = (pyr.hi0mask.square()[..., : w // 2 + 1] * _pair_weights(w)) / (h * w) ** 2
        self.n_scales = n_scales
        self.n_orientations = pyr.num_orientations
        self._cache: dict = {}

    def _fold(self, product_dtype: torch.dtype) -> None:
        """Build :attr:`masks`, :attr:`half_masks`, :attr:`half_conj_masks` (float64 / complex128).

        Each band mask is the cumulative lowpass mask times the angular and highpass masks, whose
        product is rounded to ``product_dtype`` first, as the pyramid forms it from its buffers
        (so a float32 model given float64 images gives its own pyramid's bands exactly).
        """
        pyr, n_scales = self._pyramid, len(self._cumulative)
        phase = _BAND_PHASE[pyr.order % 4]
        bands = []
        for k in range(n_scales):
            level = pyr.level_masks(k)
            product = (level.anglemask.cpu().to(product_dtype) * level.himask.cpu().to(product_dtype)).double()
            bands.append(self._cumulative[k] * product * phase)  # complex (o, h_k, w_k)
        self.masks: list[Tensor] = []
        for k in range(n_scales):
            parts = [bands[k]]
            if k < n_scales - 1:
                rows, cols = self._crops[k]
                up = bands[k].new_zeros(bands[k].shape)
                up[:, rows[:, None], cols[None, :]] = bands[k + 1]
                parts.append(up)
            parts.append(self.filters[k].unsqueeze(0).to(bands[k].dtype))
            self.masks.append(torch.cat(parts))
        # the real and imaginary parts of each map from half spectra: Re ifft2(C M) = irfft2(C M_h) and
        # Im ifft2(C M) = irfft2(C (-i M_a)) for a real image's spectrum C, with M_h, M_a the Hermitian
        # and anti-Hermitian parts of M; the lowpass image (last map) is real (M_a = 0)
        self.half_masks: list[Tensor] = []
        self.half_conj_masks: list[Tensor] = []
        for m in self.masks:
            mirrored = torch.roll(torch.flip(m, (-2, -1)), (1, 1), (-2, -1)).conj()
            half = m.shape[-1] // 2 + 1
            both = torch.cat([(m + mirrored)[..., :half] / 2, (-0.5j * (m - mirrored))[:-1, :, :half]])
            self.half_masks.append(both)
            # irfft2's adjoint: rfft2 / (h w), twice for the columns standing for a conjugate pair
            self.half_conj_masks.append(both.conj() * _pair_weights(m.shape[-1]) / (m.shape[-2] * m.shape[-1]))
        self._product_dtype = product_dtype

    def cast(self, dtype: torch.dtype, device: torch.device, width: int) -> dict:
        """The masks in ``dtype`` (real; complex for the band masks) on ``device``, cached.

        Also the auto-correlation tables (:func:`autocorrelation_tables`) of each grid for
        windows of ``width``.
        """
        product_dtype = self._pyramid.lo0mask.dtype  # the model may have moved to another dtype
        if product_dtype != self._product_dtype:
            self._fold(product_dtype)
            self._cache.clear()
        key = (dtype, torch.device(device), width)
        if key not in self._cache:
            cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
            move = lambda t, dt=dtype: None if t is None else t.to(device=device, dtype=dt)
            self._cache[key] = {
                "masks": [move(m, cdtype) for m in self.masks],
                "half_conj_masks": [move(m.resolve_conj(), cdtype) for m in self.half_conj_masks],
                "rows": [None if r is None else r.to(device) for r in self.rows],
                "cols": [None if c is None else c.to(device) for c in self.cols],
                "residual_filter": move(self.residual_filter),
                "highpass_power": move(self.highpass_power),
                "autocorrelation": [autocorrelation_tables(tuple(f.shape), width, dtype, device)
                                    for f in self.filters],
            }
        return self._cache[key]


def _pair_weights(width: int) -> Tensor:
    """``(width // 2 + 1,)`` weights of rfft columns: 2 where a column stands for a conjugate pair, else 1."""
    weight = torch.full((width // 2 + 1,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    return weight


def lowpass_filters(pyramid: SteerablePyramidFreq, n_scales: int) -> list[Tensor]:
    """The filters giving plenoptic's reconstructed lowpass images, fine to coarse (float64).

    plenoptic reconstructs, for each scale ``k``, the image from the demeaned residual lowpass
    and the bands of scales ``>= k`` at full size, shrinks it by ``2**k`` in the Fourier domain
    and multiplies it by ``4**k``. That map is linear, shift-invariant and keeps only the
    frequencies of grid ``k``, so it is a real filter ``G_k`` on the cropped image spectrum:
    ``image_k = ifft2(G_k * crop_k(fft2(image))).real``. ``G_k`` is measured by running
    plenoptic's procedure (:func:`reconstruct_lowpass_reference`) on a unit impulse.

    Parameters
    ----------
    pyramid
        A float64 complex pyramid with the model's masks.
    n_scales
        Number of scales.

    Returns
    -------
    list of Tensor
        ``n_scales + 1`` real ``(h / 2**k, w / 2**k)`` filters in unshifted FFT order.
    """
    h, w = pyramid.image_shape
    delta = torch.zeros(1, 1, h, w, dtype=torch.float64, device=pyramid.lo0mask.device)
    delta[..., 0, 0] = 1.0
    with torch.no_grad():
        images = reconstruct_lowpass_reference(pyramid, pyramid(delta), n_scales)
    return [torch.fft.fft2(img[0, 0]).real.clone() for img in images]


def autocorrelation_tables(size: tuple[int, int], width: int, dtype: torch.dtype,
                           device: torch.device | str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Cosine and sine tables of :class:`AutocorrelationWindow` for ``(h, w_x)`` maps.

    With ``Cy[k, t] = cos(2 pi k t / h)``, ``Sy`` the sines, ``Cx``, ``Sx`` the same over the
    ``w_x // 2 + 1`` half-spectrum columns, returns ``rows`` ``(2h, w)`` = ``[Cy; -Sy]``,
    ``rows_t`` ``(h, 2w)`` = ``[Cy, -Sy]``, ``cols`` ``(w, 2 (w_x // 2 + 1))`` = ``[Cx^T, Sx^T]``
    and ``weighted_cols`` ``(w_x // 2 + 1, 2w)`` = ``[Cx', Sx']``: the column tables with the
    half-spectrum weights (2 for a column standing for a conjugate pair) and ``1 / (h w_x)**2``.
    """
    h, wx = size
    lags = torch.arange(width, dtype=torch.float64) - width // 2
    ky = torch.arange(h, dtype=torch.float64)
    kx = torch.arange(wx // 2 + 1, dtype=torch.float64)
    ay = 2 * torch.pi * torch.outer(ky, lags) / h
    ax = 2 * torch.pi * torch.outer(kx, lags) / wx
    cy, sy, cx, sx = ay.cos(), ay.sin(), ax.cos(), ax.sin()
    weight = torch.full((wx // 2 + 1, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if wx % 2 == 0:
        weight[-1] = 1.0
    weight = weight / (h * wx) ** 2  # rfft2 is unnormalised: sum_u x(u) x(u + t) = sum_k P(k) cos(..) / (h w)
    tables = (torch.cat([cy, -sy], 0), torch.cat([cy, -sy], 1), torch.cat([cx.T, sx.T], 1),
              torch.cat([cx * weight, sx * weight], 1))
    return tuple(t.to(device=device, dtype=dtype).contiguous() for t in tables)


def _window_forward(x: Tensor, rows: Tensor, weighted_cols: Tensor) -> tuple[Tensor, Tensor]:
    """Auto-correlation windows of ``x`` and its ``rfft2`` (see :class:`AutocorrelationWindow`)."""
    spectrum = torch.fft.rfft2(x)
    v = torch.view_as_real(spectrum)
    power = torch.addcmul(v[..., 0] * v[..., 0], v[..., 1], v[..., 1])   # (..., h, w_x // 2 + 1)
    half = power @ weighted_cols                                          # (..., h, 2w): [P Cx', P Sx']
    width = weighted_cols.shape[-1] // 2
    stacked = torch.cat([half[..., :width], half[..., width:]], -2)       # (..., 2h, w)
    return rows.transpose(-1, -2) @ stacked, spectrum                     # Cy^T P Cx' - Sy^T P Sx'


def _window_backward(grad: Tensor, spectrum: Tensor, rows_t: Tensor, cols: Tensor,
                     size: tuple[int, int]) -> Tensor:
    """Gradient of :func:`_window_forward` with respect to its input: one inverse FFT."""
    width, n = rows_t.shape[-1] // 2, cols.shape[-1] // 2
    mixed = grad @ cols                                                   # (..., w, 2n): [g Cx^T, g Sx^T]
    gain = rows_t[:, :width] @ mixed[..., :n] + rows_t[:, width:] @ mixed[..., n:]  # Cy g Cx^T - Sy g Sx^T
    product = torch.view_as_real(spectrum) * (gain * (2.0 / (size[0] * size[1]))).unsqueeze(-1)
    return torch.fft.irfft2(torch.view_as_complex(product), s=size)


class AutocorrelationWindow(torch.autograd.Function):
    """Central ``w x w`` window of the circular auto-correlation (mean of products) of real maps.

    ``ac(t) = mean_u x(u) x(u + t)`` for lags ``t = -(w // 2) .. (w - 1) // 2`` in each axis,
    from the power spectrum ``P = |rfft2(x)|**2``: ``ac(t) = sum_k P(k) cos(2 pi k . t) / (h w)**2``,
    whose ``w x w`` window is two small matrix products with cosine and sine tables
    (``cos(a + b) = cos a cos b - sin a sin b``) instead of a full-size inverse FFT. The
    backward is one inverse FFT: ``grad_x = 2 irfft2(H * rfft2(x)) / (h w)`` with
    ``H(k) = sum_t g(t) cos(2 pi k . t)``.

    Inputs: ``x`` ``(..., h, w_x)``, and the four tables of :func:`autocorrelation_tables`.
    Output: ``(..., w, w)``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, rows: Tensor, rows_t: Tensor, cols: Tensor,  # type: ignore[override]
                weighted_cols: Tensor):
        window, spectrum = _window_forward(x, rows, weighted_cols)
        ctx.save_for_backward(spectrum, rows_t, cols)
        ctx.size = tuple(x.shape[-2:])
        return window

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        spectrum, rows_t, cols = ctx.saved_tensors
        return _window_backward(grad, spectrum, rows_t, cols, ctx.size), None, None, None, None


class ScaleStatistics(torch.autograd.Function):
    """The raw statistics of one scale, from its cropped image spectrum, with a hand-written backward.

    Forward: ``maps = ifft2(crop(fft2(image)) * masks)`` (the scale's ``o`` bands, with ``upsampled`` the
    ``o`` upsampled bands of the next coarser scale, and the lowpass image; see
    :class:`StatisticsPlan`); the demeaned band magnitudes ``m``, the lowpass image ``r``, and
    with ``upsampled`` the bands' real parts ``x``, the upsampled bands' demeaned magnitudes
    ``u`` and phase-doubled parts ``d = z**2 / |z|`` (real and imaginary, 0 where ``z == 0``).

    Returns ``(windows, cov_mm, mean_r3, mean_r4)`` and, with ``upsampled``,
    ``(cov_mu, cov_xd, var_u, var_x, var_d)``: the auto-correlation windows of ``[m, r]``
    ``(b, c, o + 1, w, w)``; the mean products ``mean(m_i m_j)`` ``(b, c, o, o)``,
    ``mean(m_i u_j)`` ``(b, c, o, o)``, ``mean(x_i d_j)`` ``(b, c, o, 2o)``; ``mean(r**3)``,
    ``mean(r**4)`` ``(b, c)``; the mean squares of ``u``, ``x``, ``d``.

    ``full_spectrum`` is the scale's crop of the image's ``fft2`` (no gradient flows through
    it) and ``masks`` the complex :attr:`StatisticsPlan.masks`; ``spectrum`` is the same crop
    of the image's ``rfft2``, which the gradient flows to: the real and imaginary parts of
    the maps are ``irfft2`` of ``spectrum`` times :attr:`StatisticsPlan.half_masks`, so the
    backward writes the gradient of every part into one real buffer and returns
    ``sum_j conj_mask_j rfft2(grad_j)`` (``conj_masks``: :attr:`StatisticsPlan.half_conj_masks`):
    one real FFT, no complex interleaving.
    """

    @staticmethod
    def forward(ctx, spectrum: Tensor, full_spectrum: Tensor, masks: Tensor,  # type: ignore[override]
                conj_masks: Tensor, rows: Tensor, rows_t: Tensor, cols: Tensor, weighted_cols: Tensor, o: int,
                upsampled: bool):
        b, c, h, w = full_spectrum.shape
        size = h * w
        nb = 2 * o if upsampled else o
        maps = torch.view_as_real(torch.fft.ifft2(full_spectrum.unsqueeze(2) * masks))  # (b, c, nb + 1, h, w, 2)
        x, y = maps[:, :, :nb, ..., 0].contiguous(), maps[:, :, :nb, ..., 1].contiguous()
        mag = torch.addcmul(x * x, y, y).sqrt_()
        inv = mag.clamp_min(torch.finfo(mag.dtype).tiny ** 0.45).reciprocal_()  # z == 0: finite, times 0
        mean = mag.mean((-2, -1), keepdim=True)
        first = torch.empty(b, c, o + 1, h, w, dtype=mag.dtype, device=mag.device)
        torch.sub(mag[:, :, :o], mean[:, :, :o], out=first[:, :, :o])
        first[:, :, o] = maps[:, :, nb, ..., 0]
        windows, first_spectrum = _window_forward(first, rows, weighted_cols)
        bands = first[:, :, :o].flatten(-2)
        cov_mm = bands @ bands.transpose(-1, -2) / size
        rec = first[:, :, o]
        rec2 = rec * rec
        mean_r3, mean_r4 = (rec2 * rec).mean((-2, -1)), (rec2 * rec2).mean((-2, -1))
        ctx.set_materialize_grads(False)
        ctx.o, ctx.upsampled, ctx.size = o, upsampled, (h, w)
        if not upsampled:
            ctx.save_for_backward(x, y, inv, first, first_spectrum, conj_masks, rows_t, cols)
            return windows, cov_mm, mean_r3, mean_r4
        xu, yu, iu = x[:, :, o:], y[:, :, o:], inv[:, :, o:]
        up = (mag[:, :, o:] - mean[:, :, o:]).flatten(-2)
        doubled = torch.empty(b, c, 2 * o, h, w, dtype=mag.dtype, device=mag.device)
        torch.mul((xu - yu) * (xu + yu), iu, out=doubled[:, :, :o])
        torch.mul(2.0 * xu * yu, iu, out=doubled[:, :, o:])
        doubled = doubled.flatten(-2)
        real = x[:, :, :o].flatten(-2)
        cov_mu = bands @ up.transpose(-1, -2) / size
        cov_xd = real @ doubled.transpose(-1, -2) / size
        var_u, var_x, var_d = (torch.linalg.vector_norm(t, dim=-1).square() / size for t in (up, real, doubled))
        ctx.save_for_backward(x, y, inv, first, first_spectrum, conj_masks, rows_t, cols, up, doubled)
        return windows, cov_mm, mean_r3, mean_r4, cov_mu, cov_xd, var_u, var_x, var_d

    @staticmethod
    def backward(ctx, g_windows, g_mm, g_r3, g_r4, g_mu=None, g_xd=None, g_u=None,  # type: ignore[override]
                 g_x=None, g_d=None):
        o, (h, w) = ctx.o, ctx.size
        size = h * w
        x, y, inv, first, first_spectrum, conj_masks, rows_t, cols = ctx.saved_tensors[:8]
        b, c = first.shape[:2]
        lead = (b * c, -1, size)
        if g_windows is not None:
            g_first = _window_backward(g_windows, first_spectrum, rows_t, cols, (h, w))
        else:
            g_first = torch.zeros_like(first)
        bands = first[:, :, :o].flatten(-2)
        product = None  # sum of g_cov @ other for the band magnitudes (then / size)
        if g_mm is not None:
            product = (g_mm + g_mm.transpose(-1, -2)) @ bands
        rec, g_rec = first[:, :, o], g_first[:, :, o]
        if g_r3 is not None or g_r4 is not None:
            r3 = 0.0 if g_r3 is None else 3.0 * g_r3[..., None, None]
            r4 = 0.0 if g_r4 is None else 4.0 * g_r4[..., None, None] * rec
            g_rec += (r3 + r4) * rec * rec / size
        nb = x.shape[2]
        g_maps = torch.empty(b, c, 2 * nb + 1, h, w, dtype=x.dtype, device=x.device)
        gx, gy = g_maps[:, :, :nb + 1], g_maps[:, :, nb + 1:]
        gx[:, :, nb] = g_rec
        if ctx.upsampled:
            up, doubled = ctx.saved_tensors[8:]
            real = x[:, :, :o].flatten(-2)
            # each gradient: 2 g_var t / size + (g_cov @ other) / size, accumulated in place
            g_up, g_real, g_dbl = _scaled(up, g_u, size), _scaled(real, g_x, size), _scaled(doubled, g_d, size)
            if g_mu is not None:
                mu = g_mu @ up
                product = mu if product is None else product.add_(mu)
                g_up.view(lead).baddbmm_(g_mu.transpose(-1, -2).reshape(b * c, o, o), bands.reshape(lead),
                                         alpha=1.0 / size)
            if g_xd is not None:
                g_real.view(lead).baddbmm_(g_xd.reshape(b * c, o, 2 * o), doubled.view(lead), alpha=1.0 / size)
                g_dbl.view(lead).baddbmm_(g_xd.transpose(-1, -2).reshape(b * c, 2 * o, o), real.reshape(lead),
                                          alpha=1.0 / size)
            # upsampled bands: with m = |z|, s = z**2 / m = s1 + i s2,
            # grad_z = a z + 2 / m (g_s1 + i g_s2) conj(z), a = (g_m - (g_s1 s1 + g_s2 s2) / m) / m
            xu, yu, iu = x[:, :, o:], y[:, :, o:], inv[:, :, o:]
            g_up = g_up.view(b, c, o, h, w)
            a = g_up - g_up.mean((-2, -1), keepdim=True)
            g1, g2 = g_dbl.view(b, c, 2 * o, h, w).split(o, 2)
            s1, s2 = doubled.view(b, c, 2 * o, h, w).split(o, 2)
            a = (a - (g1 * s1 + g2 * s2) * iu) * iu
            two_inv = 2.0 * iu
            torch.addcmul((g1 * xu + g2 * yu) * two_inv, a, xu, out=gx[:, :, o:nb])
            torch.addcmul((g2 * xu - g1 * yu) * two_inv, a, yu, out=gy[:, :, o:nb])
        # band magnitudes (demeaned) and, with upsampled, the real parts
        gm = g_first[:, :, :o]
        if product is not None:
            gm = gm + product.view(gm.shape) / size
        gm = (gm - gm.mean((-2, -1), keepdim=True)).mul_(inv[:, :, :o])
        if ctx.upsampled:
            torch.addcmul(g_real.view(b, c, o, h, w), gm, x[:, :, :o], out=gx[:, :, :o])
        else:
            torch.mul(gm, x[:, :, :o], out=gx[:, :, :o])
        torch.mul(gm, y[:, :, :o], out=gy[:, :, :o])
        g_spectrum = torch.fft.rfft2(g_maps).mul_(conj_masks).sum(2)
        return g_spectrum, None, None, None, None, None, None, None, None, None


def _scaled(t: Tensor, g_var: Tensor | None, size: int) -> Tensor:
    """The gradient of ``mean(t**2)`` times ``g_var``: ``2 g_var t / size`` (zeros without ``g_var``)."""
    if g_var is None:
        return torch.zeros_like(t)
    return t * (2.0 / size * g_var).unsqueeze(-1)


def _correlation(cov: Tensor, var_x: Tensor, var_y: Tensor) -> Tensor:
    """``cov_ij / sqrt(var_x_i var_y_j)``."""
    return cov / (var_x.unsqueeze(-1) * var_y.unsqueeze(-2)).sqrt()


def pixel_statistics(image: Tensor) -> Tensor:
    """Mean, (unbiased) variance, skew, kurtosis, min, max of each image: ``(b, c, 6)``."""
    flat = image.flatten(-2)
    mean = flat.mean(-1, keepdim=True)
    var = flat.var(-1)
    centred = flat - mean
    c2 = centred.square()
    skew = (c2 * centred).mean(-1) / var.pow(1.5)
    kurt = c2.square().mean(-1) / var.square()
    return torch.stack([mean[..., 0], var, skew, kurt, flat.amin(-1), flat.amax(-1)], -1)


def texture_statistics(plan: StatisticsPlan, image: Tensor, spatial_corr_width: int) -> Tensor:
    """Every Portilla-Simoncelli statistic, redundant ones included: ``(b, c, n)``.

    The groups of :attr:`PortillaSimoncelli.statistic_shapes`, in order, each flattened.

    Parameters
    ----------
    plan
        The model's :class:`StatisticsPlan`.
    image
        ``(b, c, h, w)`` float32 or float64 images of the plan's size.
    spatial_corr_width
        Width of the auto-correlation windows, in pixels.
    """
    n, o, width = plan.n_scales, plan.n_orientations, spatial_corr_width
    centre = width // 2
    p = plan.cast(image.dtype, image.device, width)
    b, c = image.shape[:2]
    spectrum = torch.fft.rfft2(image)
    with torch.no_grad():
        full = torch.fft.fft2(image)
    power = torch.view_as_real(spectrum)
    var_highpass = (power.square() * p["highpass_power"].unsqueeze(-1)).sum((-3, -2, -1))
    pixel = pixel_statistics(image)

    ac_mags, ac_recon, r3, r4, cross_ori, cs_mag, cs_real = [], [], [], [], [], [], []
    for k in range(n):
        grid = tuple(plan.filters[k].shape)
        part, part_full = spectrum, full
        if k:
            part = spectrum.index_select(-2, p["rows"][k])[..., : grid[1] // 2 + 1]
            part_full = full.index_select(-2, p["rows"][k]).index_select(-1, p["cols"][k])
        out = ScaleStatistics.apply(part, part_full, p["masks"][k], p["half_conj_masks"][k], *p["autocorrelation"][k],
                                    o, k < n - 1)
        windows, cov_mm, mean_r3, mean_r4 = out[:4]
        ac_mags.append(windows[:, :, :o])
        ac_recon.append(windows[:, :, o])
        r3.append(mean_r3)
        r4.append(mean_r4)
        var = windows[:, :, :o, centre, centre]
        cross_ori.append(_correlation(cov_mm, var, var))
        if k < n - 1:
            cov_mu, cov_xd, var_u, var_x, var_d = out[4:]
            cs_mag.append(_correlation(cov_mu, var, var_u))
            cs_real.append(_correlation(cov_xd, var_x, var_d))
    grid = tuple(plan.filters[n].shape)
    part = spectrum.index_select(-2, p["rows"][n])[..., : grid[1] // 2 + 1]
    residual = torch.fft.irfft2(part * p["residual_filter"], s=grid)
    ac_recon.append(AutocorrelationWindow.apply(residual, *p["autocorrelation"][n]))
    residual2 = residual * residual
    r3.append((residual2 * residual).mean((-2, -1)))
    r4.append((residual2 * residual2).mean((-2, -1)))

    ac_mags = torch.stack(ac_mags, -1)                                 # (b, c, o, w, w, s)
    var_mags = ac_mags[:, :, :, centre, centre]                        # (b, c, o, s)
    ac_mags = (ac_mags / var_mags.unsqueeze(3).unsqueeze(3)).permute(0, 1, 3, 4, 2, 5)
    ac_recon = torch.stack(ac_recon, -1)                               # (b, c, w, w, s + 1)
    var_recon = ac_recon[:, :, centre, centre]
    ac_recon = ac_recon / var_recon.unsqueeze(2).unsqueeze(2)
    skew, kurt = _recon_moments(torch.stack(r3, -1), torch.stack(r4, -1), var_recon, pixel[..., 1])
    stats = [pixel, ac_mags, skew, kurt, ac_recon, var_recon.sqrt(), torch.stack(cross_ori, -1), var_mags.sqrt()]
    if n > 1:
        stats += [torch.stack(cs_mag, -1), torch.stack(cs_real, -1)]
    stats.append(var_highpass.unsqueeze(-1))
    return torch.cat([s.reshape(b, c, -1) for s in stats], -1)


def _recon_moments(mean_r3: Tensor, mean_r4: Tensor, var: Tensor, image_var: Tensor) -> tuple[Tensor, Tensor]:
    """Skew and kurtosis about 0 of each reconstructed lowpass image, ``(b, c, s+1)`` each.

    From the means of the cubes and fourth powers. Where a lowpass image's mean square is
    below ``finfo.resolution`` times the image variance, the moments are unstable and set
    to 0 and 3 (a Gaussian's), as in plenoptic.
    """
    skew = mean_r3 / var.pow(1.5)
    kurt = mean_r4 / var.square()
    unstable = var / image_var.unsqueeze(-1) < torch.finfo(image_var.dtype).resolution
    skew = torch.where(unstable, torch.zeros_like(skew), skew)
    kurt = torch.where(unstable, torch.full_like(kurt, 3.0), kurt)
    return skew, kurt


# ---------------------------------------------------------------------------------------------
# plenoptic's procedures, used to build and check the fast path

def double_phase(bands: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Upsample each coarser scale by 2 (Fourier) and double its phase (plenoptic's procedure).

    Returns the demeaned magnitudes ``(b, c, o, h, w)`` and the real and imaginary parts
    stacked on the orientation axis ``(b, c, 2o, h, w)``, for scales 1 .. s-1 (at the
    size of scales 0 .. s-2). ``z**2 / |z|`` has the magnitude of ``z`` and twice its phase.
    """
    mags, seps = [], []
    for z in bands[1:]:
        up = _upsample2(z)  # plenoptic's expand(z, 2) / 4 (the factors 4 cancel exactly)
        re, im = up.real, up.imag
        mag = up.abs()
        inv = 1.0 / mag.clamp_min(torch.finfo(mag.dtype).tiny ** 0.45)  # z == 0 gives 0, not NaN
        mags.append(mag - mag.mean((-2, -1), keepdim=True))
        seps.append(torch.cat([(re - im) * (re + im) * inv, 2.0 * re * im * inv], 2))
    return mags, seps


def _upsample2(z: Tensor) -> Tensor:
    """Fourier upsampling by 2 of a complex tensor with even sizes (plenoptic's ``expand(z, 2) / 4``).

    The centred spectrum is placed in the middle of a spectrum twice the size. The small
    grid's Nyquist row (frequency ``-h/2``) is split in halves: one at ``-h/2`` of the big
    grid, one at ``+h/2`` mirrored in the other frequency; likewise the Nyquist column; the
    corner goes in quarters to the four corners.
    """
    h, w = z.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"upsampling needs even sizes, got {h}x{w}")
    spec = torch.fft.fftshift(torch.fft.fft2(z), dim=(-2, -1))
    big = spec.new_zeros(*spec.shape[:-2], 2 * h, 2 * w)
    r0, r1, c0, c1 = h // 2, 3 * h // 2, w // 2, 3 * w // 2
    big[..., r0 + 1:r1, c0 + 1:c1] = spec[..., 1:, 1:]
    nyq_row, nyq_col = spec[..., 0, 1:] / 2, spec[..., 1:, 0] / 2
    big[..., r0, c0 + 1:c1] = nyq_row
    big[..., r1, c0 + 1:c1] = nyq_row.flip(-1)
    big[..., r0 + 1:r1, c0] = nyq_col
    big[..., r0 + 1:r1, c1] = nyq_col.flip(-1)
    corner = spec[..., 0, 0] / 4
    for r in (r0, r1):
        for c in (c0, c1):
            big[..., r, c] = corner
    return torch.fft.ifft2(torch.fft.ifftshift(big, dim=(-2, -1)))


def reconstruct_lowpass_reference(pyramid: SteerablePyramidFreq, coeffs: Mapping, n_scales: int) -> list[Tensor]:
    """plenoptic's reconstructed lowpass images, fine to coarse (slow; for building and checking).

    The residual lowpass is demeaned; image ``k`` is the reconstruction from it and the bands of
    scales ``>= k``, shrunk by ``2**k`` in the Fourier domain and multiplied by ``4**k``.

    Parameters
    ----------
    pyramid
        The complex pyramid the coefficients came from.
    coeffs
        Its output (all scales).
    n_scales
        Number of scales.

    Returns
    -------
    list of Tensor
        ``n_scales + 1`` real images ``(b, c, h / 2**k, w / 2**k)``.
    """
    coeffs = type(coeffs)(coeffs)
    low = coeffs["residual_lowpass"]
    coeffs["residual_lowpass"] = low - low.mean((-2, -1), keepdim=True)
    images = [pyramid.recon_pyr(coeffs, levels=["residual_lowpass"])]
    for lev in range(n_scales - 1, -1, -1):
        images.append(images[-1] + pyramid.recon_pyr(coeffs, levels=[lev]))
    images = images[::-1]  # fine to coarse: images[k] holds scales >= k
    return [images[0]] + [fourier_shrink(img, 2 ** k) * 4 ** k for k, img in enumerate(images[1:], 1)]


def fourier_shrink(x: Tensor, factor: int) -> Tensor:
    """Downsample a real image by ``factor`` in the Fourier domain (plenoptic's ``shrink``).

    The centred ``(h / factor, w / factor)`` block of the spectrum is kept; the Nyquist row
    and column of the small grid average the big spectrum at ``-n/2`` and ``+n/2``; the
    result is divided by ``factor ** 2`` (the mean is kept).

    Raises
    ------
    ValueError
        ``factor <= 1`` or sizes not divisible by ``factor``.
    """
    h, w = x.shape[-2:]
    if factor <= 1 or h % factor or w % factor:
        raise ValueError(f"factor must be > 1 and divide the image size {h}x{w}, got {factor}")
    mh, mw = h // factor, w // factor
    spec = torch.fft.fftshift(torch.fft.fft2(x), dim=(-2, -1)) / factor ** 2
    y1, y2 = int(np.ceil(h / 2 + 1 - mh / 2)), int(np.ceil(h / 2 + mh / 2))
    x1, x2 = int(np.ceil(w / 2 + 1 - mw / 2)), int(np.ceil(w / 2 + mw / 2))
    small = spec.new_zeros(*spec.shape[:-2], mh, mw)
    small[..., 1:, 1:] = spec[..., y1:y2, x1:x2]
    small[..., 0, 1:] = (spec[..., y1 - 1, x1:x2] + spec[..., y2, x1:x2]) / 2
    small[..., 1:, 0] = (spec[..., y1:y2, x1 - 1] + spec[..., y1:y2, x2]) / 2
    small[..., 0, 0] = (spec[..., y1 - 1, x1 - 1] + spec[..., y1 - 1, x2] + spec[..., y2, x1 - 1]
                        + spec[..., y2, x2]) / 4
    return torch.fft.ifft2(torch.fft.ifftshift(small, dim=(-2, -1))).real
