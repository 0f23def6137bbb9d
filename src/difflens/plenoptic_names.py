"""plenoptic's spelling of difflens: ``import difflens.plenoptic_names as po`` runs its tutorials.

plenoptic keeps a synthesis method's plots in the method's module
(``po.synthesize.metamer.plot_loss``). difflens keeps models and plots in
separate layers (``difflens.synthesize`` never imports ``difflens.plot``); this
module, above both, puts them together under plenoptic's names:

- ``synthesize`` and ``synth``: :mod:`difflens.synthesize` whose ``metamer`` and
  ``eigendistortion`` also carry the plotting functions of
  :mod:`difflens.plot.metamer` and :mod:`difflens.plot.eigendistortion`;
- ``synth.mad_competition``: :mod:`difflens.synthesize.mad_competition` with the plots of
  :mod:`difflens.plot.mad`; ``synth.geodesic`` likewise with :mod:`difflens.plot.geodesic`; ``synth.MetamerCTF``; ``plot_ps_representation`` and
  ``update_ps_representation`` (plenoptic's ``PortillaSimoncelli.plot_representation`` / ``update_plot``);
- ``simulate`` and ``simul``, ``data``, ``metric``, ``tools``, ``imshow``, ``animshow``, ``pyrshow``,
  ``to_numpy``, ``load_images``: difflens's own.

``import difflens as po`` gives the same ``po.synth`` and ``po.simul``, but its
``po.synthesize`` is the plain subpackage.
"""

from __future__ import annotations

import types

from difflens import data, metric, simulate, tools  # noqa: F401  (plenoptic's names)
from difflens.data.images import load_images  # noqa: F401
from difflens.plot import animshow, imshow, pyrshow  # noqa: F401
from difflens.plot.textures import plot_ps_representation, update_ps_representation  # noqa: F401
from difflens.plot import eigendistortion as _plot_eig
from difflens.plot import geodesic as _plot_geo
from difflens.plot import mad as _plot_mad
from difflens.plot import metamer as _plot_met
from difflens.synthesize import eigendistortion as _eig
from difflens.synthesize import geodesic as _geo
from difflens.synthesize import mad_competition as _mad
from difflens.synthesize import metamer as _met
from difflens.synthesize.metamer_ctf import MetamerCTF as _MetamerCTF

from difflens.tools.signal import to_numpy  # noqa: F401

__all__ = ["synthesize", "synth", "simulate", "simul", "data", "metric", "tools", "imshow", "animshow", "pyrshow",
           "to_numpy", "plot_ps_representation", "update_ps_representation",
           "load_images"]


def _merged(name: str, *modules: types.ModuleType) -> types.ModuleType:
    merged = types.ModuleType(name, modules[0].__doc__)
    for module in modules:
        for attr in getattr(module, "__all__", ()):
            setattr(merged, attr, getattr(module, attr))
    return merged


synth = types.ModuleType("difflens.synth", "difflens.synthesize under plenoptic's name, with its plots.")
synth.metamer = _merged("difflens.synth.metamer", _met, _plot_met)
synth.eigendistortion = _merged("difflens.synth.eigendistortion", _eig, _plot_eig)
synth.Metamer = _met.Metamer
synth.MetamerCTF = synth.metamer.MetamerCTF = _MetamerCTF
synth.Eigendistortion = _eig.Eigendistortion
synth.mad_competition = _merged("difflens.synth.mad_competition", _mad, _plot_mad)
synth.MADCompetition = _mad.MADCompetition
synth.geodesic = _merged("difflens.synth.geodesic", _geo, _plot_geo)
synth.Geodesic = _geo.Geodesic
synthesize = synth
simul = simulate
