"""Synthesis methods that probe a model: metamers and eigendistortions.

``difflens.synthesize.metamer`` also holds ``plot_loss`` and ``animate`` (the
tutorial calls them as ``synthesize.metamer.plot_loss``).
"""

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "Metamer": "metamer", "Eigendistortion": "eigendistortion",
    "metamer": ".metamer", "eigendistortion": ".eigendistortion",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
