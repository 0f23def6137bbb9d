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

from .portilla_simoncelli_statistics import (
    StatisticsPlan,
    double_phase,
    fourier_shrink,
    reconstruct_lowpass_reference,
    texture_statistics,
)
from .steerable_pyramid import SteerablePyramidFreq

__all__ = [
    "STATISTICS",
    "PortillaSimoncelli",
    "double_phase",
    "fourier_shrink",
    "portilla_simoncelli_loss",
    "reconstruct_lowpass_reference",
]

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
        self._plan = StatisticsPlan(self.pyramid, self.n_scales)
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
    def _reconstruct_lowpass(self, spectrum: Tensor) -> list[Tensor]:
        """Reconstructed lowpass images from the full image spectrum, fine to coarse (``n_scales + 1``)."""
        plan = self._plan.cast(spectrum.real.dtype, spectrum.device, self.spatial_corr_width)
        out = []
        for k in range(self.n_scales + 1):
            part = spectrum
            if k:
                part = spectrum.index_select(-2, plan["rows"][k]).index_select(-1, plan["cols"][k])
            filt = self._plan.filters[k].to(device=spectrum.device, dtype=spectrum.real.dtype)
            out.append(torch.fft.ifft2(part * filt).real)
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
        return texture_statistics(self._plan, image, self.spatial_corr_width)

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
