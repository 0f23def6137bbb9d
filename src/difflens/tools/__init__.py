"""Small utilities shared across difflens.

Atomic writes load eagerly (the engine and the report use them); everything else
loads on first use: seeding and losses (``set_seed``, ``mse``, ``l2_norm``,
``relative_sse``), ``rescale`` and ``make_disk``, image sequences (``make_straight_line``,
``sample_brownian_bridge``, ``deviation_from_line``, ``translation_sequence``), model and input checks
(``validate_model``, ``validate_input``, ``check_image``, ``remove_grad``), and the
convolution helpers in ``difflens.tools.conv`` (``same_padding``, ``correlate2d``).
"""

from typing import TYPE_CHECKING

from .io import CheckpointError, atomic_torch_save, atomic_write, atomic_write_text, load_file, save_file
from .lazy import lazy_exports

_EXPORTS = {
    "set_seed": "optim", "mse": "optim", "l2_norm": "optim", "relative_sse": "optim",
    "rescale": "signal", "make_disk": "signal",
    "validate_model": "validate", "validate_input": "validate", "check_image": "validate",
    "remove_grad": "validate", "default_generator": "rng",
    "same_padding": "conv", "correlate2d": "conv",
    "make_straight_line": "straightness", "sample_brownian_bridge": "straightness",
    "deviation_from_line": "straightness", "translation_sequence": "straightness",
    "conv": ".conv", "fftconv": ".fftconv", "validate": ".validate", "optim": ".optim",
    "signal": ".signal", "rng": ".rng", "straightness": ".straightness",
}

__all__ = [
    "CheckpointError", "default_generator", "load_file", "rng", "save_file",
    "atomic_torch_save", "atomic_write", "atomic_write_text", "check_image", "conv", "correlate2d",
    "fftconv", "l2_norm", "make_disk", "mse", "optim", "relative_sse", "remove_grad", "rescale",
    "same_padding", "set_seed", "signal", "validate", "validate_input", "validate_model",
    "straightness", "make_straight_line", "sample_brownian_bridge", "deviation_from_line", "translation_sequence",
]
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from . import conv as conv, fftconv as fftconv, optim as optim, rng as rng, signal as signal
    from . import validate as validate
    from .optim import (
        set_seed as set_seed, mse as mse, l2_norm as l2_norm, relative_sse as relative_sse,
    )
    from .signal import rescale as rescale, make_disk as make_disk
    from .validate import (
        validate_model as validate_model, validate_input as validate_input,
        check_image as check_image, remove_grad as remove_grad,
    )
    from .rng import default_generator as default_generator
    from .conv import same_padding as same_padding, correlate2d as correlate2d
    from . import straightness as straightness
    from .straightness import (
        make_straight_line as make_straight_line, sample_brownian_bridge as sample_brownian_bridge,
        deviation_from_line as deviation_from_line, translation_sequence as translation_sequence,
    )
