"""IDX files (the MNIST/EMNIST format): read, write, and load the datasets from a folder.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type,
``NN`` the number of dimensions), ``NN`` big-endian int32 sizes, then the data
in big-endian C order. Files may be gzip-compressed (detected from the content,
not the name). Nothing is downloaded: :func:`mnist` and :func:`emnist` read the
standard files from a folder the user names.
"""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from difflens.tools.io import atomic_write

__all__ = ["EMNIST_SUBSETS", "check_limit", "emnist", "mnist", "read_idx", "write_idx"]

# IDX type code -> big-endian NumPy dtype
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
EMNIST_SUBSETS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a NumPy array of its stored shape and type.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the
    file for a bad magic number, an unknown type, or a size that does not match
    the header (truncated or trailing bytes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (the magic number must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02X}; expected one of "
                         + ", ".join(f"0x{k:02X}" for k in _TYPES))
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {header} needed)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: IDX file {what}: header says shape {shape} of {dtype.name} "
                         f"({expected} bytes), file has {len(raw)} bytes")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray | Tensor, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (atomically); gzip when ``compress`` or the name ends in ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (other integer
    types are rejected rather than silently cast). Returns the written path.
    """
    if isinstance(array, Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=")
    if key not in _CODES:
        raise TypeError(f"write_idx supports {sorted(str(d) for d in _CODES)}, got dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx needs an array with 1..255 dimensions, got {array.ndim}")
    path = Path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    header = bytes([0, 0, _CODES[key], array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=key.newbyteorder(">")).tobytes()
    if compress:
        payload = gzip.compress(payload, mtime=0)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(payload)

    return atomic_write(path, write)


def _find(root: Path, stems: Sequence[str], subdirs: Sequence[str]) -> Path:
    tried = []
    for sub in subdirs:
        for stem in stems:
            for suffix in ("", ".gz"):
                candidate = root / sub / f"{stem}{suffix}"
                tried.append(candidate)
                if candidate.is_file():
                    return candidate
    names = ", ".join(sorted({p.name for p in tried}))
    raise FileNotFoundError(f"no IDX file found in {root} (also looked in {', '.join(s for s in subdirs if s)}); "
                            f"expected one of: {names}")


def check_limit(limit: object) -> int | None:
    """``limit`` itself when it is None or an int >= 1; otherwise ``TypeError``/``ValueError`` naming it.

    (A negative ``limit`` used as a slice end would silently drop samples from
    the end, and 0 would return nothing.)
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
        raise TypeError(f"limit must be None or an int >= 1 (the number of samples to keep), got "
                        f"{type(limit).__name__} {limit!r}")
    if limit < 1:
        raise ValueError(f"limit must be None or an int >= 1 (the number of samples to keep), got {limit}")
    return int(limit)


def _images_labels(images_path: Path, labels_path: Path, size: int, transpose: bool,
                   limit: int | None, device, dtype) -> tuple[Tensor, Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected images of shape (N, H, W), got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels of shape (N,), got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
                         f"{labels.shape[0]} labels; the counts must match")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    if images.dtype == np.uint8:
        x = x / 255.0
    elif x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{images_path}: non-uint8 images must hold values in [0, 1]")
    if transpose:
        x = x.transpose(-1, -2)
    x = x[:, None]
    if tuple(x.shape[-2:]) != (size, size):
        warnings.warn(f"{images_path}: images are {tuple(x.shape[-2:])}, resizing to ({size}, {size})",
                      stacklevel=3)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        x = x.clamp(0.0, 1.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x.to(device=device, dtype=dtype), y.to(device)


def mnist(root: str | os.PathLike, split: str = "train", size: int = 28, limit: int | None = None,
          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """MNIST (or Fashion-MNIST, or any set with the same file names) from IDX files in ``root``.

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (split
    ``"train"``) or ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``
    (``"test"``), plain or ``.gz``, also spelled ``...images.idx3-ubyte``, in
    ``root``, ``root/MNIST/raw`` (torchvision's layout) or ``root/raw``.

    Returns images ``(N, 1, size, size)`` float in [0, 1] and labels ``(N,)``
    int64; images of another size are resized with a warning. ``limit`` (None
    or an int >= 1) keeps the first ``limit`` samples.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    limit = check_limit(limit)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {root}")
    prefix = "train" if split == "train" else "t10k"
    subdirs = ("", "MNIST/raw", "raw")
    img = _find(root, [f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"], subdirs)
    lab = _find(root, [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"], subdirs)
    return _images_labels(img, lab, size, False, limit, device, dtype)


def emnist(root: str | os.PathLike, subset: str = "balanced", split: str = "train", size: int = 28,
           transpose: bool = True, limit: int | None = None, device: torch.device | str = "cpu",
           dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """EMNIST from the IDX files of its "binary" release in ``root``.

    Reads ``emnist-{subset}-{split}-images-idx3-ubyte[.gz]`` and
    ``emnist-{subset}-{split}-labels-idx1-ubyte[.gz]`` from ``root``,
    ``root/gzip`` (the official archive's folder) or ``root/EMNIST/raw``
    (torchvision's layout). ``subset`` is one of byclass, bymerge, balanced,
    letters, digits, mnist.

    EMNIST stores each image transposed (rows and columns swapped) relative to
    MNIST. torchvision's ``EMNIST`` returns them as stored, so characters look
    mirrored and rotated; here ``transpose=True`` (default) swaps the last two
    axes so characters are upright as in MNIST, and ``transpose=False`` gives
    the stored (torchvision) orientation.

    Labels are returned as stored (``letters`` uses 1..26, the others start at
    0). Returns images ``(N, 1, size, size)`` float in [0, 1] and labels ``(N,)``
    int64. ``limit`` (None or an int >= 1) keeps the first ``limit`` samples.
    """
    if subset not in EMNIST_SUBSETS:
        raise ValueError(f"subset must be one of {EMNIST_SUBSETS}, got {subset!r}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    limit = check_limit(limit)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"EMNIST folder not found: {root}")
    subdirs = ("", "gzip", "EMNIST/raw")
    img = _find(root, [f"emnist-{subset}-{split}-images-idx3-ubyte"], subdirs)
    lab = _find(root, [f"emnist-{subset}-{split}-labels-idx1-ubyte"], subdirs)
    return _images_labels(img, lab, size, transpose, limit, device, dtype)
