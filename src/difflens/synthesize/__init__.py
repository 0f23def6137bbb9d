"""Synthesis methods that probe a model: metamers, eigendistortions, MAD competition and geodesics.

Their plots are in :mod:`difflens.plot`; plenoptic's spelling
``po.synth.metamer.plot_loss`` works through :mod:`difflens.plenoptic_names`.
"""

from typing import TYPE_CHECKING

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "Metamer": "metamer", "Eigendistortion": "eigendistortion", "MetamerCTF": "metamer_ctf",
    "MADCompetition": "mad_competition", "Synthesis": "synthesis", "Geodesic": "geodesic",
    "metamer": ".metamer", "eigendistortion": ".eigendistortion", "metamer_ctf": ".metamer_ctf",
    "mad_competition": ".mad_competition", "geodesic": ".geodesic",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from . import metamer as metamer, eigendistortion as eigendistortion, mad_competition as mad_competition
    from . import metamer_ctf as metamer_ctf
    from .metamer_ctf import MetamerCTF as MetamerCTF
    from .mad_competition import MADCompetition as MADCompetition
    from .metamer import Metamer as Metamer
    from .eigendistortion import Eigendistortion as Eigendistortion
    from .synthesis import Synthesis as Synthesis
    from . import geodesic as geodesic
    from .geodesic import Geodesic as Geodesic
