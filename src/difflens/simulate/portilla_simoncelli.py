"""Portilla–Simoncelli texture statistics (plenoptic 1.4.0's ``PortillaSimoncelli``).

Portilla & Simoncelli (2000) describe a texture by joint statistics of a complex
steerable pyramid: pixel moments, auto-correlations of the lowpass images and of
the coefficient magnitudes, cross-orientation and cross-scale correlations of the
magnitudes and of the real parts, and the highpass residual's variance. Two images
with equal statistics look like the same texture; a metamer of these statistics
started from noise is a new sample of the texture.

This module computes exactly plenoptic 1.4's statistics in plenoptic's order (equal
to about 1e-7 relative in float64), on :class:`~difflens.simulate.SteerablePyramidFreq`.
Where plenoptic reconstructs the lowpass image at each scale by a full-size pyramid
reconstruction followed by a Fourier-domain shrink (``n_scales + 1`` reconstructions
and as many full-size FFT pairs per call), difflens applies the same linear,
diagonal-in-frequency map as one precomputed filter per scale on the cropped image
spectrum; phase doubling uses ``z**2 / |z|`` instead of ``atan2``/``cos``/``sin``.

Groups of statistics are removed or weighted in the loss with
:func:`portilla_simoncelli_loss` (plenoptic's ``portilla_simoncelli_loss_factory``);
plots are :func:`difflens.plot.plot_ps_representation` (models never import plotting).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor, nn

from difflens.tools.validate import check_image

from .steerable_pyramid import SteerablePyramidFreq

__all__ = ["PortillaSimoncelli", "portilla_simoncelli_loss", "STATISTICS", "double_phase", "fourier_shrink",
           "reconstruct_lowpass_reference"]

ScaleName = Union[int, str]

#: the statistic groups, in the order of the representation vector
STATISTICS = (
    "pixel_statistics",
    "auto_correlation_magnitude",
    "skew_reconstructed",
    "kurtosis_reconstructed",
    "auto_correlation_reconstructed",
    "std_reconstructed",
    "cross_orientation_correlation_magnitude",
    "magnitude_std",
    "cross_scale_correlation_magnitude",
    "cross_scale_correlation_real",
    "var_highpass_residual",
)


class PortillaSimoncelli(nn.Module):
    r"""Portilla–Simoncelli texture statistics of ``(batch, channel, height, width)`` images.

    Parameters
    ----------
    image_shape
        ``(height, width)`` of the images, in pixels; both must be divisible by
        ``2 ** n_scales`` (the model compares neighbouring scales at equal sizes).
    n_scales
        Pyramid scales (default 4).
    n_orientations
        Orientations per scale (default 4; the pyramid has order ``n_orientations - 1``,
        so at least 2).
    spatial_corr_width
        Width of the central window of the auto-correlations, in pixels (default 9; odd
        or even as in plenoptic), at most the size of the coarsest lowpass image.

    Attributes
    ----------
    scales : list
        ``["pixel_statistics", "residual_lowpass", n_scales - 1, ..., 0, "residual_highpass"]``:
        the scale names :meth:`forward` and :meth:`remove_scales` accept, coarse to fine
        (coarse-to-fine synthesis, :class:`~difflens.synthesize.MetamerCTF`, walks them).
    n_statistics : int
        Length of the representation (1046 for the defaults).

    Raises
    ------
    ValueError
        Image sizes not divisible by ``2 ** n_scales``, more scales than the image supports,
        fewer than 2 orientations, a ``spatial_corr_width`` below 1 or above the coarsest
        image size.

    Examples
    --------
    >>> import torch
    >>> from difflens import data
    >>> from difflens.simulate import PortillaSimoncelli
    >>> model = PortillaSimoncelli((256, 256))
    >>> rep = model(data.brick())
    >>> rep.shape
    torch.Size([1, 1, 1046])
    >>> stats = model.convert_to_dict(rep)
    >>> stats["auto_correlation_magnitude"].shape  # (b, c, width, width, orientations, scales)
    torch.Size([1, 1, 9, 9, 4, 4])
    >>> torch.equal(model.convert_to_tensor(stats), rep)
    True
    >>> model(data.brick(), scales=["residual_lowpass"]).shape
    torch.Size([1, 1, 43])
    """

    def __init__(self, image_shape: Sequence[int], n_scales: int = 4, n_orientations: int = 4,
                 spatial_corr_width: int = 9) -> None:
        super().__init__()
        shape = _check_arguments(image_shape, n_scales, n_orientations, spatial_corr_width)
        self.image_shape = shape
        self.n_scales = int(n_scales)
        self.n_orientations = int(n_orientations)
        self.spatial_corr_width = int(spatial_corr_width)
        self.pyramid = SteerablePyramidFreq(shape, height=self.n_scales, order=self.n_orientations - 1,
                                            is_complex=True, tight_frame=False)
        self.scales: list[ScaleName] = (["pixel_statistics", "residual_lowpass"]
                                        + list(range(self.n_scales - 1, -1, -1)) + ["residual_highpass"])
        self.statistic_shapes = self._statistic_shapes()
        masks, scale_labels = self._necessary_masks()
        self.necessary = masks  # name -> bool array: which entries are kept (not redundant)
        flat = np.concatenate([m.ravel() for m in masks.values()])
        self.register_buffer("necessary_index", torch.as_tensor(np.flatnonzero(flat)), persistent=False)
        labels = np.concatenate([lab.ravel() for lab in scale_labels.values()])[flat]
        self.representation_scales = labels  # object array: the scale of each kept statistic
        self.n_statistics = int(flat.sum())
        self._build_recon_filters()
        self.to(torch.float32)
        self.eval()

    # ------------------------------------------------------------------ layout
    def _statistic_shapes(self) -> OrderedDict:
        s, o, w = self.n_scales, self.n_orientations, self.spatial_corr_width
        return OrderedDict([
            ("pixel_statistics", (6,)),
            ("auto_correlation_magnitude", (w, w, o, s)),
            ("skew_reconstructed", (s + 1,)),
            ("kurtosis_reconstructed", (s + 1,)),
            ("auto_correlation_reconstructed", (w, w, s + 1)),
            ("std_reconstructed", (s + 1,)),
            ("cross_orientation_correlation_magnitude", (o, o, s)),
            ("magnitude_std", (o, s)),
            ("cross_scale_correlation_magnitude", (o, o, s - 1)),
            ("cross_scale_correlation_real", (o, 2 * o, s - 1)),
            ("var_highpass_residual", (1,)),
        ])

    def _necessary_masks(self) -> tuple[OrderedDict, OrderedDict]:
        """Which entries of each statistic are kept, and the scale each belongs to.

        Auto-correlations are point-symmetric (``A[i, j] = A[-i, -j]``) with a centre of 1,
        so only the lower triangle without the repeated half of the diagonal is kept (and,
        for an even width, also the first row, which has no mirror). Cross-orientation
        correlations are symmetric with a unit diagonal: the strict lower triangle is kept.
        """
        w, s = self.spatial_corr_width, self.n_scales
        with_low: list = [*range(s), "residual_lowpass"]
        masks, labels = OrderedDict(), OrderedDict()
        auto = np.tril(np.ones((w, w), dtype=bool))
        if w % 2 == 0:
            auto[0] = True
        centre = np.arange(w // 2, w)
        auto[centre, centre] = False
        for name, shp in self.statistic_shapes.items():
            if name.startswith("auto_correlation"):
                mask = np.broadcast_to(auto.reshape(w, w, *([1] * (len(shp) - 2))), shp)
            elif name == "cross_orientation_correlation_magnitude":
                mask = np.broadcast_to(np.tril(np.ones(shp[:2], dtype=bool), -1)[..., None], shp)
            else:
                mask = np.ones(shp, dtype=bool)
            masks[name] = np.ascontiguousarray(mask)
            if name == "pixel_statistics":
                lab = np.full(shp, "pixel_statistics", dtype=object)
            elif name == "var_highpass_residual":
                lab = np.full(shp, "residual_highpass", dtype=object)
            elif name in ("skew_reconstructed", "kurtosis_reconstructed", "std_reconstructed",
                          "auto_correlation_reconstructed"):
                lab = np.empty(shp, dtype=object)
                lab[...] = np.array(with_low, dtype=object)
            else:  # the last axis runs over scales 0.. (cross-scale: 0..s-2)
                lab = np.empty(shp, dtype=object)
                lab[...] = np.arange(shp[-1])
            labels[name] = lab
        return masks, labels

    # ------------------------------------------------------- lowpass reconstructions
    def _build_recon_filters(self) -> None:
        """Precompute, per scale k, the filter that gives plenoptic's reconstructed lowpass image.

        plenoptic reconstructs, for each k, the image from the residual lowpass (demeaned)
        and the bands of scales >= k at full size, shrinks it by ``2**k`` in the Fourier
        domain and multiplies by ``4**k``. That map is linear, shift-invariant and keeps
        only the frequencies of the scale-k grid, so it is a filter ``G_k`` on the cropped
        image spectrum: ``image_k = ifft2(G_k * crop_k(fft2(image))).real``. ``G_k`` is
        measured once here by running plenoptic's procedure (:meth:`reconstruct_lowpass_reference`)
        on a unit impulse in float64 (tests check the filters against that procedure on random
        images to 1e-12).
        """
        h, w = self.image_shape
        pyr = SteerablePyramidFreq(self.image_shape, height=self.n_scales, order=self.n_orientations - 1,
                                   is_complex=True, tight_frame=False).to(torch.float64)
        pyr.load_state_dict(self.pyramid.state_dict())  # identical masks (float32-rounded, as used)
        delta = torch.zeros(1, 1, h, w, dtype=torch.float64)
        delta[..., 0, 0] = 1.0
        with torch.no_grad():
            images = reconstruct_lowpass_reference(pyr, pyr(delta), self.n_scales)
        self._crop_rows, self._crop_cols = [], []
        # float64 masters, cast (and cached) per dtype and device at use: a model moved to
        # float32 and back keeps full precision
        self._recon_filters = []
        self._filter_cache: dict = {}
        for img in images:
            self._crop_rows.append(_crop_index(h, img.shape[-2]))
            self._crop_cols.append(_crop_index(w, img.shape[-1]))
            self._recon_filters.append(torch.fft.fft2(img[0, 0]).real.clone())

    def _reconstruct_lowpass(self, spectrum: Tensor, dtype: torch.dtype | None = None) -> list[Tensor]:
        """Reconstructed lowpass images, fine to coarse: ``n_scales + 1`` tensors ``(b, c, h_k, w_k)``."""
        key = (dtype or spectrum.real.dtype, spectrum.device)
        if key not in self._filter_cache:
            self._filter_cache[key] = [(g.to(device=key[1], dtype=key[0]), r.to(key[1]), c.to(key[1]))
                                       for g, r, c in zip(self._recon_filters, self._crop_rows, self._crop_cols)]
        out = []
        for k, (gain, rows, cols) in enumerate(self._filter_cache[key]):
            part = spectrum if k == 0 else spectrum.index_select(-2, rows).index_select(-1, cols)
            out.append(torch.fft.ifft2(part * gain).real)
        return out

    # ------------------------------------------------------------------ forward
    def forward(self, image: Tensor, scales: Sequence[ScaleName] | None = None) -> Tensor:
        """Texture statistics of ``image``: ``(batch, channel, n_statistics)``.

        Parameters
        ----------
        image
            ``(batch, channel, height, width)`` real tensor with ``(height, width) == image_shape``;
            batches and channels are analysed independently.
        scales
            Keep only the statistics of these scales (names from :attr:`scales`); default all.

        Returns
        -------
        Tensor
            Statistics in plenoptic's order (see :meth:`convert_to_dict`).
        """
        rep = self.all_statistics(image).index_select(-1, self.necessary_index)
        if scales is not None:
            rep = self.remove_scales(rep, scales)
        return rep

    def all_statistics(self, image: Tensor) -> Tensor:
        """Every statistic, redundant ones included: ``(batch, channel, sum of the group sizes)``.

        The groups in :attr:`statistic_shapes` order, each flattened (for one scale the
        cross-scale groups are empty). :meth:`forward` keeps the entries of :attr:`necessary`.
        """
        check_image(image, "image")
        if tuple(image.shape[-2:]) != self.image_shape:
            raise ValueError(f"image has height/width {tuple(image.shape[-2:])}, this model was built for "
                             f"{self.image_shape}")
        coeffs = self.pyramid(image)
        bands = [coeffs[i] for i in range(self.n_scales)]  # complex (b, c, o, h_s, w_s)
        highpass = coeffs["residual_highpass"]
        spectrum = torch.fft.fft2(image)
        recon = self._reconstruct_lowpass(spectrum)

        pixel = _pixel_statistics(image)
        mags = [z.abs() for z in bands]
        mags = [m - m.mean((-2, -1), keepdim=True) for m in mags]
        reals = [z.real for z in bands]
        n, o = self.n_scales, self.n_orientations

        # auto-correlations: the magnitudes of scale k and the lowpass image k have one size,
        # so one FFT pair per scale serves both
        wins = self._autocorr_windows([torch.cat([m, r.unsqueeze(2)], 2) for m, r in zip(mags, recon[:n])]
                                      + [recon[n].unsqueeze(2)])
        ac_mag, var_mag = _normalise([win[:, :, :o] for win in wins[:n]])           # (b,c,w,w,o,s), (b,c,o,s)
        ac_rec, var_rec = _normalise([win[:, :, -1] for win in wins])                # (b,c,w,w,s+1), (b,c,s+1)
        skew_rec, kurt_rec = _recon_moments(recon, var_rec, pixel[..., 1])
        cross_ori, cs_mag, cs_real = [], [], []
        dmag, dsep = double_phase(bands) if n > 1 else ([], [])
        for k in range(n):
            # all correlations of scale k from one product: [mags, reals] x [mags, doubled mags, doubled parts]
            x = torch.cat([mags[k], reals[k]], 2).flatten(-2) if k < n - 1 else mags[k].flatten(-2)
            y = torch.cat([mags[k], dmag[k], dsep[k]], 2).flatten(-2) if k < n - 1 else mags[k].flatten(-2)
            cov = x @ y.transpose(-1, -2) / x.shape[-1]
            vm = var_mag[..., k]
            cross_ori.append(cov[..., :o, :o] / (vm.unsqueeze(-1) * vm.unsqueeze(-2)).sqrt())
            if k < n - 1:
                vy = y[:, :, o:].square().mean(-1)
                vr = x[:, :, o:].square().mean(-1)
                cs_mag.append(cov[..., :o, o:2 * o] / (vm.unsqueeze(-1) * vy[..., :o].unsqueeze(-2)).sqrt())
                cs_real.append(cov[..., o:, 2 * o:] / (vr.unsqueeze(-1) * vy[..., o:].unsqueeze(-2)).sqrt())
        stats = [pixel, ac_mag, skew_rec, kurt_rec, ac_rec, var_rec.sqrt(), torch.stack(cross_ori, -1),
                 var_mag.sqrt()]
        if n > 1:
            stats += [torch.stack(cs_mag, -1), torch.stack(cs_real, -1)]
        stats.append(highpass.pow(2).mean((-2, -1)).unsqueeze(-1))
        b, c = image.shape[:2]
        return torch.cat([s.reshape(b, c, -1) for s in stats], -1)

    def _autocorr_windows(self, tensors: list[Tensor]) -> list[Tensor]:
        """Central ``w x w`` window of the circular auto-correlation (mean of products) of each tensor."""
        w = self.spatial_corr_width
        out = []
        for x in tensors:
            h, wd = x.shape[-2:]
            power = torch.fft.rfft2(x)
            power = power.real.square() + power.imag.square()
            ac = torch.fft.irfft2(power, s=(h, wd))
            rows = (torch.arange(w, device=x.device) - w // 2) % h
            cols = (torch.arange(w, device=x.device) - w // 2) % wd
            out.append(ac.index_select(-2, rows).index_select(-1, cols) / (h * wd))
        return out

    # ------------------------------------------------------------------ layout tools
    def remove_scales(self, representation: Tensor, scales_to_keep: Sequence[ScaleName]) -> Tensor:
        """Keep only the statistics of ``scales_to_keep`` (names from :attr:`scales`).

        Raises
        ------
        ValueError
            An unknown scale name.
        """
        unknown = [s for s in scales_to_keep if s not in self.scales]
        if unknown:
            raise ValueError(f"unknown scale(s) {unknown}; this model's scales are {self.scales}")
        keep = np.flatnonzero(np.isin(self.representation_scales, np.array(list(scales_to_keep), dtype=object)))
        return representation.index_select(-1, torch.as_tensor(keep, device=representation.device))

    def convert_to_dict(self, representation: Tensor) -> OrderedDict:
        """Split a ``(batch, channel, n_statistics)`` representation into named statistics.

        Redundant entries (symmetric halves of correlation matrices) are NaN. Shapes (after
        batch and channel): ``pixel_statistics`` (6,) [mean, variance, skew, kurtosis, min,
        max]; ``auto_correlation_magnitude`` (w, w, o, s); ``skew_reconstructed``,
        ``kurtosis_reconstructed``, ``std_reconstructed`` (s+1,); ``auto_correlation_reconstructed``
        (w, w, s+1); ``cross_orientation_correlation_magnitude`` (o, o, s); ``magnitude_std``
        (o, s); ``cross_scale_correlation_magnitude`` (o, o, s-1);
        ``cross_scale_correlation_real`` (o, 2o, s-1); ``var_highpass_residual`` (1,).

        Raises
        ------
        ValueError
            The last dimension is not :attr:`n_statistics` long (a representation of another
            model, or one with scales removed).
        """
        if representation.shape[-1] != self.n_statistics:
            raise ValueError(f"representation tensor is the wrong length (expected {self.n_statistics} but got "
                             f"{representation.shape[-1]}): was it computed with scales=..., trimmed, or by a "
                             "model with other n_scales / n_orientations / spatial_corr_width? convert_to_dict "
                             "needs the full representation of this model")
        out, start = OrderedDict(), 0
        lead = representation.shape[:-1]
        for name, mask in self.necessary.items():
            m = torch.as_tensor(mask, device=representation.device)
            n = int(mask.sum())
            full = torch.full((*lead, *mask.shape), float("nan"), dtype=representation.dtype,
                              device=representation.device)
            full[..., m] = representation[..., start:start + n]
            out[name] = full
            start += n
        return out

    def convert_to_tensor(self, representation_dict: Mapping[str, Tensor]) -> Tensor:
        """Inverse of :meth:`convert_to_dict`: ``(batch, channel, n_statistics)``.

        Raises
        ------
        ValueError
            Missing or extra statistic names, or a statistic of the wrong shape.
        """
        if list(representation_dict) != list(self.necessary):
            raise ValueError(f"representation_dict must have exactly the keys {list(self.necessary)} in this "
                             f"order, got {list(representation_dict)}")
        parts = []
        for name, mask in self.necessary.items():
            v = representation_dict[name]
            if tuple(v.shape[-mask.ndim:]) != mask.shape:
                raise ValueError(f"{name} has shape {tuple(v.shape)}; expected (..., {', '.join(map(str, mask.shape))})")
            parts.append(v[..., torch.as_tensor(mask, device=v.device)])
        return torch.cat(parts, -1)

    def statistic_weights(self, weights: Mapping[str, float | Tensor] | None = None,
                          like: Tensor | None = None) -> Tensor:
        """A ``(n_statistics,)`` tensor of per-statistic weights from per-group weights.

        Parameters
        ----------
        weights
            Statistic group name (see :data:`STATISTICS`) -> a number, or a tensor that
            broadcasts to the group's shape (e.g. one weight per scale on its last axis).
            Groups not named get weight 1; weight 0 removes a group.
        like
            Take dtype and device from this tensor (default float32 on the model's device).

        Raises
        ------
        ValueError
            A name that is not a statistic group of this model.
        """
        weights = dict(weights or {})
        unknown = set(weights) - set(self.necessary)
        if unknown:
            raise ValueError(f"unknown statistic group(s) {sorted(unknown)}; groups are {list(self.necessary)}")
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else self.necessary_index.device
        ones = OrderedDict()
        for name, mask in self.necessary.items():
            value = torch.ones((1, 1, *mask.shape), dtype=dtype, device=device)
            if name in weights:
                value = value * torch.as_tensor(weights[name], dtype=dtype, device=device)
            ones[name] = value
        return self.convert_to_tensor(ones)[0, 0]

    def extra_repr(self) -> str:
        return (f"image_shape={self.image_shape}, n_scales={self.n_scales}, n_orientations={self.n_orientations}, "
                f"spatial_corr_width={self.spatial_corr_width}")


# ---------------------------------------------------------------------------------------------
# the statistics

def _normalise(windows: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack auto-correlation windows on a last scale axis and divide by their centres.

    ``windows``: tensors ``(b, c, [o,] w, w)``. Returns ``(b, c, w, w, [o,] s)`` and the centres
    (mean squares) ``(b, c, [o,] s)``.
    """
    ac = torch.stack(windows, -1)
    w = ac.shape[-2]
    centre = ac[..., w // 2, w // 2, :]
    ac = ac / centre.unsqueeze(-2).unsqueeze(-2)
    if ac.ndim == 6:  # (b, c, o, w, w, s) -> (b, c, w, w, o, s)
        ac = ac.permute(0, 1, 3, 4, 2, 5)
    return ac, centre


def _pixel_statistics(image: Tensor) -> Tensor:
    """Mean, (unbiased) variance, skew, kurtosis, min, max: ``(b, c, 6)``."""
    flat = image.flatten(-2)
    mean = flat.mean(-1, keepdim=True)
    var = flat.var(-1)
    centred = flat - mean
    c2 = centred.square()
    skew = (c2 * centred).mean(-1) / var.pow(1.5)
    kurt = c2.square().mean(-1) / var.square()
    return torch.stack([mean[..., 0], var, skew, kurt, flat.amin(-1), flat.amax(-1)], -1)


def _recon_moments(recon: list[Tensor], var: Tensor, image_var: Tensor) -> tuple[Tensor, Tensor]:
    """Skew and kurtosis about 0 of each reconstructed lowpass image, ``(b, c, s+1)`` each.

    Where a lowpass image's mean square is below ``finfo.resolution`` times the image
    variance, the moments are unstable and set to 0 and 3 (a Gaussian's), as in plenoptic.
    """
    skew = torch.stack([x.pow(3).mean((-2, -1)) for x in recon], -1) / var.pow(1.5)
    kurt = torch.stack([x.square().square().mean((-2, -1)) for x in recon], -1) / var.square()
    unstable = var / image_var.unsqueeze(-1) < torch.finfo(image_var.dtype).resolution
    skew = torch.where(unstable, torch.zeros_like(skew), skew)
    kurt = torch.where(unstable, torch.full_like(kurt, 3.0), kurt)
    return skew, kurt


def double_phase(bands: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Upsample each coarser scale by 2 (Fourier) and double its phase.

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
    """Fourier upsampling by 2 of a complex tensor with even sizes (plenoptic's ``expand(z, 2)``).

    The centred spectrum, times 4, is placed in the middle of a spectrum twice the size. The
    small grid's Nyquist row (frequency ``-h/2``) is split in halves: one at ``-h/2`` of the
    big grid, one at ``+h/2`` mirrored in the other frequency; likewise the Nyquist column;
    the corner goes in quarters to the four corners. The result is the interpolated image
    (plenoptic's ``expand`` returns 4 times it).
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


def _crop_index(n_big: int, n_small: int) -> Tensor:
    """Unshifted indices into a length-``n_big`` spectrum of the ``n_small`` central frequencies."""
    f = np.arange(n_small)
    f = np.where(f < n_small - n_small // 2, f, f - n_small)
    return torch.as_tensor(f % n_big)


# ---------------------------------------------------------------------------------------------
# reference path (plenoptic's procedure), used to build and check the fast filters

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


# ---------------------------------------------------------------------------------------------
# loss

def portilla_simoncelli_loss(model: PortillaSimoncelli, image: Tensor,
                             weights: Mapping[str, float | Tensor] | None = None
                             ) -> Callable[[Tensor, Tensor], Tensor]:
    """The texture-metamer loss: ``||w * (rep_x - rep_target)||_2`` with per-group weights.

    plenoptic's ``portilla_simoncelli_loss_factory``: by default the pixel min and max get
    weight 0 (the range penalty keeps pixels in range) and ``var_highpass_residual`` weight
    100 (it is tiny next to the correlations). ``weights`` overrides or adds groups; a
    weight of 0 removes a group of statistics from the loss, which is how the texture
    literature asks what each group contributes.

    Parameters
    ----------
    model
        The Portilla–Simoncelli model.
    image
        The target texture (only used to find the representation's dtype and device).
    weights
        Statistic group (see :data:`STATISTICS`) -> number, or tensor broadcasting to the
        group's shape (``pixel_statistics`` has 6 entries: mean, var, skew, kurtosis, min, max).

    Returns
    -------
    callable
        ``loss(rep_x, rep_target) -> 0-d tensor``.

    Raises
    ------
    ValueError
        An unknown statistic group.

    Examples
    --------
    >>> from difflens import data
    >>> from difflens.simulate import PortillaSimoncelli, portilla_simoncelli_loss
    >>> model = PortillaSimoncelli((256, 256), n_scales=2)
    >>> img = data.gravel()
    >>> loss = portilla_simoncelli_loss(model, img, weights={"kurtosis_reconstructed": 0})
    >>> float(loss(model(img), model(img)))
    0.0
    """
    weights = dict(weights or {})
    pixel = torch.ones(6)
    pixel[4:] = 0
    weights.setdefault("pixel_statistics", pixel)
    weights.setdefault("var_highpass_residual", 100.0)
    like = torch.empty(0, dtype=image.dtype, device=image.device)
    w = model.statistic_weights(weights, like=like)

    def loss(synth_rep: Tensor, ref_rep: Tensor) -> Tensor:
        return torch.linalg.vector_norm(w * (synth_rep - ref_rep))

    loss.weights = w  # type: ignore[attr-defined]
    return loss


def _check_arguments(image_shape: Sequence[int], n_scales: int, n_orientations: int,
                     spatial_corr_width: int) -> tuple[int, int]:
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (height, width), got {image_shape!r}") from None
    if len(shape) != 2 or any(s < 1 for s in shape):
        raise ValueError(f"image_shape must be two positive integers (height, width), got {image_shape!r}")
    for name, value, low in (("n_scales", n_scales, 1), ("n_orientations", n_orientations, 2),
                             ("spatial_corr_width", spatial_corr_width, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    max_scales = int(np.floor(np.log2(min(shape)))) - 2
    if n_scales > max_scales:
        raise ValueError(f"n_scales={n_scales} is more than an image of {shape[0]}x{shape[1]} supports: at most "
                         f"{max(max_scales, 0)} scales (each scale needs the image to be 2**(n_scales + 2) "
                         "pixels a side)")
    bad = [s for s in shape if s % (2 ** n_scales)]
    if bad:
        ok = sorted({(s // 2 ** n_scales) * 2 ** n_scales for s in shape} | {(s // 2 ** n_scales + 1) * 2 ** n_scales
                                                                          for s in shape})
        raise ValueError("Because of how the Portilla-Simoncelli model handles multiscale representations, it "
                         f"only works with images whose shape can be divided by 2 `n_scales` times: {shape[0]}x"
                         f"{shape[1]} is not divisible by 2**{n_scales} = {2 ** n_scales} (nearby allowed sizes: "
                         f"{', '.join(map(str, ok))})")
    coarsest = min(s // 2 ** n_scales for s in shape)
    if spatial_corr_width > coarsest:
        raise ValueError(f"spatial_corr_width={spatial_corr_width} is larger than the coarsest lowpass image "
                         f"({shape[0] // 2 ** n_scales}x{shape[1] // 2 ** n_scales} for a {shape[0]}x{shape[1]} "
                         f"image with n_scales={n_scales}): use at most {coarsest}, fewer scales or a bigger image")
    return shape
