"""Bundled images and datasets, noise images and file loaders.

Everything here works offline: photographs and the small digits set ship with
the package; MNIST/EMNIST are read from IDX files in a folder the user names.
"""

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
