"""Figures and animations shared by every capability; per-capability figures live in submodules."""

from typing import TYPE_CHECKING

from difflens.tools.lazy import lazy_exports

from .animation import ffmpeg_available, save_animation

_EXPORTS = {"imshow": "display", "animshow": "display", "display_filters": "display", "pyrshow": "display",
            "plot_ps_representation": "textures", "update_ps_representation": "textures"}
__all__ = ["save_animation", "ffmpeg_available", *_EXPORTS]
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .display import imshow as imshow, animshow as animshow, display_filters as display_filters
    from .display import pyrshow as pyrshow
    from .textures import plot_ps_representation as plot_ps_representation
    from .textures import update_ps_representation as update_ps_representation
