"""Bundled photographs and an image-file loader, all returning (N, C, H, W) tensors in [0, 1].

The photographs ship inside the package (``difflens/data/files``; sources and
licences in ``files/README.md``), so nothing is downloaded at run time.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "astronaut",
    "brick",
    "camera",
    "curie",
    "einstein",
    "grass",
    "gravel",
    "list_images",
    "load_image",
    "load_images",
    "reptile_skin",
    "textures",
]

PathLike = str | os.PathLike

#: file suffixes treated as images when a folder is given to :func:`load_images`
IMAGE_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".pgm",
    ".ppm",
    ".pbm",
    ".pnm",
    ".tif",
    ".tiff",
    ".bmp",
    ".gif",
)

#: bundled image name -> file name inside ``difflens/data/files``
_BUNDLED = {
    "einstein": "einstein.png",
    "curie": "curie.png",
    "camera": "camera.png",
    "astronaut": "astronaut.png",
    "brick": "brick.png",
    "gravel": "gravel.png",
    "grass": "grass.png",
    "reptile_skin": "reptile_skin.png",
}

#: the bundled textures by kind, as Portilla & Simoncelli (2000) group their examples
_TEXTURES = {"brick": "regular", "gravel": "stochastic", "grass": "stochastic", "reptile_skin": "mixed"}

# Rec. 709 luma weights, as skimage.color.rgb2gray (and so plenoptic.load_images) uses.
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def _read_pixels(path: Path) -> np.ndarray:
    """Read one image with Pillow as a float64 array in [0, 1]: (H, W), (H, W, 2|3|4).

    8-bit images are divided by 255 and 16-bit ones by 65535 (Pillow rescales a
    PGM/PPM with any ``maxval`` to the full 8- or 16-bit range). 32-bit float
    images keep their values. Multi-frame files give their first frame.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode, fmt = im.mode, im.format
            if mode == "1":
                return np.asarray(im, dtype=np.float64)
            if mode.startswith("I;16"):
                return np.asarray(im).astype(np.float64) / 65535.0
            if mode == "I":
                bits = 16 if fmt in ("PNG", "PPM") else None
                tags = getattr(im, "tag_v2", None)
                if tags is not None and tags.get(258) is not None:
                    bits = int(np.max(tags.get(258)))
                if bits != 16:
                    raise ValueError(
                        f"{path}: 32-bit integer images are not supported (mode 'I', "
                        f"format {fmt}); save the image as 8- or 16-bit"
                    )
                return np.asarray(im).astype(np.float64) / 65535.0
            if mode == "F":
                return np.asarray(im).astype(np.float64)
            if mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            elif mode not in ("L", "LA", "RGB", "RGBA"):
                im = im.convert("RGB")
            return np.asarray(im).astype(np.float64) / 255.0
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"could not read {path} as an image: {err}") from err


def _to_channels(pix: np.ndarray, as_gray: bool) -> np.ndarray:
    """(H, W[, k]) array in [0, 1] -> (C, H, W) with C = 1 (``as_gray``) or 3.

    Alpha is composited onto a white background (as ``skimage.color.rgba2rgb``).
    """
    if pix.ndim == 3:
        if pix.shape[-1] in (2, 4):  # LA / RGBA
            alpha = pix[..., -1:]
            pix = pix[..., :-1] * alpha + (1.0 - alpha)
        if pix.shape[-1] == 1:
            pix = pix[..., 0]
    if pix.ndim == 2:
        return pix[None] if as_gray else np.repeat(pix[None], 3, axis=0)
    if as_gray:
        return (pix @ _GRAY_WEIGHTS)[None]
    return np.moveaxis(pix, -1, 0)


def _resolve_paths(paths: PathLike | Iterable[PathLike], sorted_key: Callable[[Path], Any] | None = None
                   ) -> list[Path]:
    if sorted_key is not None and not (isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir()):
        raise ValueError("sorted_key only goes with a folder; a file or a list of files keeps its order")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    try:
        items = [Path(p) for p in paths]  # type: ignore[union-attr]
    except TypeError as err:
        raise TypeError(
            f"paths must be a path, a folder or an iterable of paths; got {type(paths).__name__}"
        ) from err
    files: list[Path] = []
    for p in items:
        if p.is_dir():
            found = builtins.sorted(
                (q for q in p.iterdir()
                 if q.is_file() and not q.name.startswith(".") and q.suffix.lower() in IMAGE_SUFFIXES),
                key=sorted_key,
            )
            if not found:
                raise ValueError(
                    f"folder {p} contains no image files (looked for {', '.join(IMAGE_SUFFIXES)})"
                )
            files.extend(found)
        elif not p.exists():
            raise FileNotFoundError(f"image file {p} does not exist")
        else:
            files.append(p)
    if not files:
        raise ValueError("no image paths given")
    return files


def load_images(
    paths: PathLike | Iterable[PathLike],
    as_gray: bool = True,
    sorted_key: Callable[[Path], Any] | None = None,
    *,
    sorted: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Load image files into one ``(N, C, H, W)`` tensor with values in [0, 1] (plenoptic's signature).

    Parameters
    ----------
    paths: a file, a folder (every image file in it, by name, not recursive;
        other files are skipped) or an iterable of files and folders.
        PNG, JPEG, PGM/PPM, TIFF, BMP and GIF are read with Pillow.
    as_gray: ``True`` gives ``C = 1`` (colour converted with Rec. 709 weights,
        as ``skimage.color.rgb2gray``); ``False`` gives ``C = 3`` (gray images
        repeated). Alpha is composited onto white in both cases.
    sorted_key: with a folder, the key ``Path -> sortable`` ordering its files
        (default: by name); with a file or a list it must be ``None`` (plenoptic's rule).
    sorted: sort all the files by path before loading (folders are always read
        in name order; a list keeps its given order unless this is set).
    device, dtype: of the returned tensor (default CPU, float32).

    Notes
    -----
    8-bit values are divided by 255, 16-bit values by 65535. 32-bit float TIFFs
    keep their values (they are not clipped to [0, 1]).

    Raises
    ------
    FileNotFoundError: a named file does not exist.
    ValueError: a file is not a readable image, a folder holds no images, or
        the images differ in size (the message names every file and its size).
    """
    files = _resolve_paths(paths, sorted_key)
    if sorted:
        files = builtins.sorted(files)
    arrays = [_to_channels(_read_pixels(f), as_gray) for f in files]
    sizes = {a.shape[-2:] for a in arrays}
    if len(sizes) > 1:
        listing = ", ".join(f"{f} ({a.shape[-2]}x{a.shape[-1]})" for f, a in zip(files, arrays))
        raise ValueError(
            f"images must all have the same height x width to be stacked; got {listing}"
        )
    stacked = np.stack(arrays).astype(np.float64)
    return torch.as_tensor(stacked).to(device=device, dtype=dtype)


def textures() -> dict[str, str]:
    """The bundled texture photographs and their kind (``"regular"``, ``"stochastic"``, ``"mixed"``).

    Each name is also a loader (``difflens.data.brick()``) and a :func:`load_image` name.

    Examples
    --------
    >>> from difflens import data
    >>> data.textures()
    {'brick': 'regular', 'gravel': 'stochastic', 'grass': 'stochastic', 'reptile_skin': 'mixed'}
    >>> data.load_image("grass").shape
    torch.Size([1, 1, 256, 256])
    """
    return dict(_TEXTURES)


def list_images() -> list[str]:
    """Names of the bundled photographs, for :func:`load_image`."""
    return builtins.sorted(_BUNDLED)


def load_image(
    name: str,
    as_gray: bool = True,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Load the bundled photograph ``name`` as a ``(1, 1, 256, 256)`` tensor in [0, 1].

    ``as_gray=False`` gives ``(1, 3, 256, 256)`` (the gray channel repeated), as
    in plenoptic. See :func:`list_images` for the names.
    """
    if name not in _BUNDLED:
        raise ValueError(f"unknown bundled image {name!r}; available: {', '.join(list_images())}")
    ref = resources.files("difflens.data").joinpath("files", _BUNDLED[name])
    with resources.as_file(ref) as path:
        if not path.exists():
            raise FileNotFoundError(
                f"bundled image file {path} is missing: the package data was not installed "
                "(check that pyproject's package-data includes data/files/*)"
            )
        return load_images(path, as_gray=as_gray, device=device, dtype=dtype)


def _make_loader(name: str, description: str) -> Callable[..., torch.Tensor]:
    def loader(
        as_gray: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        return load_image(name, as_gray=as_gray, device=device, dtype=dtype)

    loader.__name__ = loader.__qualname__ = name
    loader.__doc__ = (
        f"{description}: a ``(1, 1, 256, 256)`` tensor in [0, 1] "
        "(``as_gray=False``: 3 channels).\n\n"
        "``device`` and ``dtype`` set where and how it is returned (default CPU, float32). "
        "Source and licence: ``difflens/data/files/README.md``."
    )
    return loader


# The loaders build their docstrings at run time; the string after each one is what
# static readers (the API reference, type checkers' hovers) show.
einstein = _make_loader(
    "einstein", "Photograph of Albert Einstein (public domain, as in plenoptic)"
)
"""Photograph of Albert Einstein (public domain): ``(as_gray=True, *, device=None,
dtype=torch.float32) -> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
curie = _make_loader("curie", "Photograph of Marie Curie (public domain, as in plenoptic)")
"""Photograph of Marie Curie (public domain): ``(as_gray=True, *, device=None, dtype=torch.float32)
-> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
camera = _make_loader(
    "camera", "The scikit-image 'camera' photograph (CC0), 2x2-averaged to 256 px"
)
"""The scikit-image 'camera' photograph (CC0), 2x2-averaged: ``(as_gray=True, *, device=None,
dtype=torch.float32) -> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
astronaut = _make_loader(
    "astronaut", "NASA photograph of Eileen Collins (public domain), grayscale, 256 px"
)
"""NASA photograph of Eileen Collins (public domain): ``(as_gray=True, *, device=None,
dtype=torch.float32) -> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
brick = _make_loader("brick", "Brick-wall texture (CC0, from scikit-image), 256 px")
"""Brick-wall texture (CC0, from scikit-image): ``(as_gray=True, *, device=None,
dtype=torch.float32) -> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
gravel = _make_loader("gravel", "Gravel texture (CC0, from scikit-image), 256 px")
"""Gravel texture (CC0, from scikit-image): ``(as_gray=True, *, device=None, dtype=torch.float32) ->
(1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
grass = _make_loader("grass", "Grass texture (CC0, from scikit-image), 256 px")
"""Grass texture (CC0, from scikit-image): ``(as_gray=True, *, device=None, dtype=torch.float32) ->
(1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
reptile_skin = _make_loader(
    "reptile_skin", "Reptile-skin texture (plenoptic's example texture), 256 px"
)
"""Reptile-skin texture (plenoptic's example texture): ``(as_gray=True, *, device=None,
dtype=torch.float32) -> (1, C, 256, 256)`` tensor in [0, 1], C = 1 (3 with ``as_gray=False``)."""
