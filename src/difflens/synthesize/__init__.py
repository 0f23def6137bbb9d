"""Synthesis methods that probe a model: metamers, eigendistortions and MAD competition.

Their plots are in :mod:`difflens.plot`; plenoptic's spelling
``po.synth.metamer.plot_loss`` works through :mod:`difflens.plenoptic_names`.
"""

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "Metamer": "metamer", "Eigendistortion": "eigendistortion", "MetamerCTF": "metamer_ctf",
    "MADCompetition": "mad_competition",
    "metamer": ".metamer", "eigendistortion": ".eigendistortion", "metamer_ctf": ".metamer_ctf",
    "mad_competition": ".mad_competition",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
