"""Noise images: white Gaussian/uniform noise, pink (power-law spectrum) noise, noise of a given MSE.

Every draw uses an explicit ``torch.Generator``. With ``generator=None`` a fresh
generator from :func:`~difflens.tools.rng.default_generator` (seed 0) is used, so
results are reproducible and the global torch RNG is never drawn from or
reseeded; pass your own generator for other noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from difflens.tools.rng import default_generator

__all__ = ["add_noise", "pink_noise", "power_law_filter", "shape_spectrum", "white_noise"]

Shape = int | Sequence[int]


def _full_shape(shape: Shape) -> tuple[int, int, int, int]:
    if isinstance(shape, int):
        shape = (shape, shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        shape = (1, 1) + shape
    if len(shape) != 4 or any(s < 1 for s in shape):
        raise ValueError(
            f"shape must be an int, (H, W) or (B, C, H, W) of positive sizes; got {shape}"
        )
    return shape  # type: ignore[return-value]


def white_noise(
    shape: Shape,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    distribution: str = "normal",
) -> torch.Tensor:
    """White noise of ``shape`` (int -> square, (H, W) -> (1, 1, H, W), or (B, C, H, W)).

    ``distribution="normal"`` draws i.i.d. N(0, 1); ``"uniform"`` draws U[0, 1).
    Draws are made on the generator's device and then moved to ``device``, so a
    CPU generator gives the same numbers whatever ``device`` is. ``generator``
    default: :func:`~difflens.tools.rng.default_generator` (seed 0, the same
    noise at every call).
    """
    full = _full_shape(shape)
    g = default_generator(generator)
    if distribution == "normal":
        x = torch.randn(full, generator=g, device=g.device, dtype=torch.float64)
    elif distribution == "uniform":
        x = torch.rand(full, generator=g, device=g.device, dtype=torch.float64)
    else:
        raise ValueError(f"distribution must be 'normal' or 'uniform'; got {distribution!r}")
    return x.to(device=device or g.device, dtype=dtype)


def power_law_filter(
    height: int,
    width: int,
    exponent: float,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(H, W) FFT-ordered amplitude filter ``|k| ** -exponent``, with ``|k|`` in cycles per image.

    The DC entry is 1 (the mean of the filtered noise is kept, as in pyrtools).
    """
    ky = torch.fft.fftfreq(height, d=1.0 / height, dtype=dtype, device=device)
    kx = torch.fft.fftfreq(width, d=1.0 / width, dtype=dtype, device=device)
    r2 = ky[:, None] ** 2 + kx[None, :] ** 2
    filt = torch.where(r2 > 0, r2.clamp_min(1.0) ** (-exponent / 2.0), torch.ones_like(r2))
    return filt


def shape_spectrum(white: torch.Tensor, exponent: float) -> torch.Tensor:
    """Filter ``white`` (..., H, W) by ``|k|**-exponent`` and scale each image to unit variance.

    The variance is the unbiased sample variance over each (H, W) image, as in
    ``pyrtools.synthetic_images.pink_noise`` (which applies this to ``randn``).
    """
    h, w = white.shape[-2:]
    work = white.to(torch.float64)
    filt = power_law_filter(h, w, exponent, dtype=torch.float64, device=work.device)
    res = torch.fft.ifft2(torch.fft.fft2(work) * filt).real
    std = res.flatten(-2).std(dim=-1, unbiased=True)[..., None, None]
    return res / std.clamp_min(torch.finfo(torch.float64).tiny)


def pink_noise(
    shape: Shape,
    fract_dim: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    *,
    amplitude_exponent: float | None = None,
) -> torch.Tensor:
    """Power-law ("pink" / fractal) noise, matching ``pyrtools.synthetic_images.pink_noise``.

    Gaussian white noise is filtered in the Fourier domain so that its amplitude
    spectrum falls as ``1 / f ** a`` (power ``1 / f ** (2 a)``, f in cycles per
    image, DC left untouched), then each image is scaled to unit sample variance
    (its mean is not removed, as in pyrtools).

    Parameters
    ----------
    shape: int (square), (H, W) -> (1, 1, H, W), or (B, C, H, W) for a batch.
    fract_dim: fractal dimension D as pyrtools defines it: ``a = 2.5 - D``, so
        the default D = 1 gives amplitude ``1/f**1.5`` (power ``1/f**3``) like
        ``pt.synthetic_images.pink_noise(size)``.
    amplitude_exponent: give ``a`` directly instead (``a = 1`` is the classic
        1/f amplitude spectrum of natural images); overrides ``fract_dim``.
    generator, device, dtype: see :func:`white_noise`.

    Rescale to [0, 1] for display or as a synthesis start, e.g.
    ``(x - x.min()) / (x.max() - x.min())``.
    """
    a = 2.5 - float(fract_dim) if amplitude_exponent is None else float(amplitude_exponent)
    white = white_noise(shape, generator=generator, device=None, dtype=torch.float64)
    return shape_spectrum(white, a).to(device=device or white.device, dtype=dtype)


def add_noise(
    image: torch.Tensor,
    noise_mse: float | Sequence[float] | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``image`` plus Gaussian noise scaled so each noisy image's MSE to ``image`` is exactly ``noise_mse``.

    plenoptic 1.1's ``tools.add_noise``, with an explicit generator. Each noise image is drawn
    i.i.d. normal, made zero-mean, then scaled so that its mean square over height and width
    equals its ``noise_mse``: ``difflens.metric.mse(image, noisy) == noise_mse``.

    Parameters
    ----------
    image : Tensor
        ``(batch, channel, height, width)`` floating-point image(s).
    noise_mse : float, sequence of float or Tensor
        One MSE, or N of them: the noisy images then run along the batch dimension (``image``
        must have batch 1 or N). Values >= 0.
    generator : torch.Generator, optional
        Draws the noise (default :func:`~difflens.tools.rng.default_generator`: seed 0).

    Returns
    -------
    Tensor
        ``(max(batch, N), channel, height, width)``, the dtype and device of ``image``.

    Examples
    --------
    >>> import torch
    >>> from difflens.data import add_noise
    >>> img = torch.zeros(1, 1, 8, 8)
    >>> noisy = add_noise(img, [0.01, 0.04], generator=torch.Generator().manual_seed(0))
    >>> noisy.shape, [round(float(v), 6) for v in noisy.pow(2).mean((-1, -2)).flatten()]
    (torch.Size([2, 1, 8, 8]), [0.01, 0.04])
    """
    from difflens.tools.validate import check_image

    check_image(image, "image", ndim=4)
    mse = torch.as_tensor(noise_mse, dtype=torch.float64).flatten()
    if mse.numel() == 0 or not bool(torch.isfinite(mse).all()) or bool((mse < 0).any()):
        raise ValueError(f"noise_mse must hold one or more finite values >= 0, got {noise_mse!r}")
    n, b = mse.numel(), image.shape[0]
    if n > 1 and b > 1 and n != b:
        raise ValueError(f"noise_mse has {n} values but image has batch {b}: give one value, or one per image "
                         "(or an image of batch 1)")
    g = default_generator(generator)
    noise = torch.randn((max(n, b), *image.shape[1:]), generator=g, device=g.device, dtype=torch.float64)
    noise = noise - noise.mean((-1, -2), keepdim=True)
    noise = noise * torch.sqrt(mse.view(-1, 1, 1, 1) / noise.pow(2).mean((-1, -2), keepdim=True))
    return image + noise.to(device=image.device, dtype=image.dtype)
