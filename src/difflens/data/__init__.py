"""Bundled images and datasets, noise images and file loaders.

Everything here works offline: photographs and the small digits set ship with
the package; MNIST/EMNIST are read from IDX files in a folder the user names.

>>> import torch
>>> from difflens.data import einstein, pink_noise
>>> image = einstein()  # (1, 1, 256, 256), float32 in [0, 1]
>>> image.shape, image.dtype, bool(image.min() >= 0 and image.max() <= 1)
(torch.Size([1, 1, 256, 256]), torch.float32, True)
>>> noise = pink_noise(64, generator=torch.Generator().manual_seed(0))  # unit variance
>>> noise.shape, round(float(noise.std()), 4)
(torch.Size([1, 1, 64, 64]), 1.0)
"""

from typing import TYPE_CHECKING

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    # bundled photographs and image files (images.py)
    "einstein": "images", "curie": "images", "load_images": "images", "list_images": "images",
    "load_image": "images", "camera": "images", "astronaut": "images", "brick": "images",
    "gravel": "images", "grass": "images", "reptile_skin": "images", "textures": "images",
    # noise images (noise.py)
    "pink_noise": "noise", "white_noise": "noise", "add_noise": "noise",
    # digits and IDX datasets (digits.py, idx.py)
    "load_digits": "digits", "mnist": "idx", "emnist": "idx", "read_idx": "idx", "write_idx": "idx",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .images import (
        einstein as einstein, curie as curie, load_images as load_images,
        list_images as list_images, load_image as load_image, camera as camera,
        astronaut as astronaut, brick as brick, gravel as gravel, grass as grass,
        reptile_skin as reptile_skin, textures as textures,
    )
    from .noise import add_noise as add_noise, pink_noise as pink_noise, white_noise as white_noise
    from .digits import load_digits as load_digits
    from .idx import mnist as mnist, emnist as emnist, read_idx as read_idx, write_idx as write_idx
