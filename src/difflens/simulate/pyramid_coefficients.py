"""Coefficient layouts and steering weights of steerable pyramids.

:class:`PyramidCoefficients` is the ordered dict :class:`SteerablePyramidFreq`
returns (plenoptic 1.4's layout, also readable with plenoptic 1.1's
``(scale, orientation)`` keys); :func:`bands_by_orientation` and
:func:`bands_by_scale` convert between the two layouts; :func:`steering_weights`
gives the weights that steer derivative-filter bands to other angles;
:func:`pyr_to_tensor` / :func:`tensor_to_pyr` pack a non-downsampled pyramid into one
tensor and back (plenoptic's ``convert_pyr_to_tensor`` / ``convert_tensor_to_pyr``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


class PyramidCoefficients(OrderedDict):
    """The ordered dict a steerable pyramid returns, also readable with plenoptic 1.1 keys.

    Keys are plenoptic 1.4's (``"residual_highpass"``, scale integers,
    ``"residual_lowpass"``); a ``(scale, orientation)`` tuple returns that single band,
    ``self[scale][:, :, orientation]`` of shape ``(batch, channel, height, width)``.

    Examples
    --------
    >>> import torch
    >>> from difflens.simulate import SteerablePyramidFreq
    >>> pyr = SteerablePyramidFreq((32, 32), height=2)
    >>> coeffs = pyr(torch.rand(1, 1, 32, 32))
    >>> list(coeffs.keys())
    ['residual_highpass', 0, 1, 'residual_lowpass']
    >>> coeffs[1].shape, coeffs[(1, 3)].shape
    (torch.Size([1, 1, 4, 16, 16]), torch.Size([1, 1, 16, 16]))
    """

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and not OrderedDict.__contains__(self, key):
            scale, orientation = key
            if isinstance(scale, int) and OrderedDict.__contains__(self, scale):
                return OrderedDict.__getitem__(self, scale)[:, :, orientation]
        return OrderedDict.__getitem__(self, key)

    def orientation_keyed(self) -> OrderedDict:
        """The same coefficients with plenoptic 1.1's keys: ``(scale, orientation)`` -> 4-D band."""
        return bands_by_orientation(self)


def bands_by_orientation(pyr_coeffs: dict) -> OrderedDict:
    """Convert plenoptic 1.4 coefficients to plenoptic 1.1's ``(scale, orientation)`` keys.

    Parameters
    ----------
    pyr_coeffs
        Dict as returned by :meth:`SteerablePyramidFreq.forward`.

    Returns
    -------
    OrderedDict
        ``"residual_highpass"``, ``(0, 0), (0, 1), ..., (S-1, O-1)``, ``"residual_lowpass"``,
        each value a ``(batch, channel, height, width)`` tensor (views, not copies).
    """
    out = OrderedDict()
    for key, value in pyr_coeffs.items():
        if isinstance(key, str):
            out[key] = value
        else:
            for orientation in range(value.shape[2]):
                out[(key, orientation)] = value[:, :, orientation]
    return out


def bands_by_scale(pyr_coeffs: dict) -> PyramidCoefficients:
    """Inverse of :func:`bands_by_orientation`: stack ``(scale, orientation)`` bands per scale.

    Parameters
    ----------
    pyr_coeffs
        Dict keyed by residual names and ``(scale, orientation)`` tuples (4-D values).

    Returns
    -------
    PyramidCoefficients
        plenoptic 1.4's layout: scale ``s`` holds a ``(batch, channel, orientations, h, w)`` tensor.
    """
    grouped: dict = {}
    order: list = []
    for key, value in pyr_coeffs.items():
        if isinstance(key, tuple):
            if key[0] not in grouped:
                grouped[key[0]] = {}
                order.append(key[0])
            grouped[key[0]][key[1]] = value
        else:
            order.append(key)
            grouped[key] = value
    out = PyramidCoefficients()
    for key in order:
        value = grouped[key]
        out[key] = value if isinstance(key, str) else torch.stack([value[o] for o in sorted(value)], 2)
    return out


def steering_weights(num_orientations: int, angles: Sequence[float] | Tensor,
                     even_phase: bool = True) -> Tensor:
    """Weights that steer ``num_orientations`` derivative-filter responses to ``angles``.

    The filters sit at ``pi * k / num_orientations`` and contain the angular harmonics
    ``num_orientations - 1, num_orientations - 3, ...`` (derivative filters of order
    ``num_orientations - 1``).

    Parameters
    ----------
    num_orientations
        Number of filters in the steerable basis.
    angles
        Target angles in radians.
    even_phase
        Cosine-phase (``True``) or sine-phase harmonics about the filter positions.

    Returns
    -------
    Tensor
        ``(num_orientations, len(angles))`` float64 weights.

    Examples
    --------
    Steering to a filter's own angle picks that filter:

    >>> import torch
    >>> w = steering_weights(4, [0.0, 3.141592653589793 / 4])
    >>> torch.allclose(w, torch.eye(4, 2, dtype=torch.float64), atol=1e-12)
    True
    """
    num = int(num_orientations)
    harmonics = np.arange(1 - num % 2, num, 2)
    positions = np.pi * np.arange(num) / num
    angles = np.asarray(torch.as_tensor(angles, dtype=torch.float64).reshape(-1).cpu())

    def basis(theta: np.ndarray) -> np.ndarray:
        cols = []
        for h in harmonics:
            if h == 0:
                cols.append(np.ones_like(theta))
            elif even_phase:
                cols += [np.cos(h * theta), np.sin(h * theta)]
            else:
                cols += [np.sin(h * theta), -np.cos(h * theta)]
        return np.stack(cols, 1)

    to_harmonics = np.linalg.pinv(basis(positions))
    # the target angle expressed in the harmonics, always cosine-then-sine
    cols = []
    for h in harmonics:
        cols += [np.ones_like(angles)] if h == 0 else [np.cos(h * angles), np.sin(h * angles)]
    weights = np.stack(cols, 1) @ to_harmonics
    return torch.as_tensor(weights.T.copy())


_RESIDUALS = ("residual_highpass", "residual_lowpass")


def pyr_to_tensor(pyr_coeffs: dict, split_complex: bool = False) -> tuple[Tensor, tuple]:
    """Stack the coefficients of a ``downsample=False`` pyramid into one 4-D tensor.

    :meth:`SteerablePyramidFreq.convert_pyr_to_tensor
    <difflens.simulate.SteerablePyramidFreq.convert_pyr_to_tensor>` (plenoptic's), which
    documents the arguments and the result; :func:`tensor_to_pyr` undoes it.

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


def tensor_to_pyr(pyr_tensor: Tensor, num_channels: int, pyr_keys: list, pack_info: list,
                  split_complex_pack_info: list | bool) -> PyramidCoefficients:
    """Undo :func:`pyr_to_tensor` (plenoptic's ``convert_tensor_to_pyr``); residuals come back real."""
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
