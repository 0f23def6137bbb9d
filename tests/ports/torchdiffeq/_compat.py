"""The mapping layer: torchdiffeq's public names resolved to difflens's, for the ported tests.

Only names differ: torchdiffeq's ``"rk4"`` is Kutta's 3/8 rule, difflens's
``"rk4"`` is the classic method and the 3/8 rule is ``"rk4_38"``.
"""

from difflens.dynamics import odeint as _odeint
from difflens.dynamics import odeint_adjoint as _odeint_adjoint
from difflens.dynamics import odeint_event as _odeint_event

METHODS = {"rk4": "rk4_38"}


def _m(method):
    return METHODS.get(method, method)


def odeint(func, y0, t, *, method=None, **kwargs):
    return _odeint(func, y0, t, method=_m(method), **kwargs)


def odeint_adjoint(func, y0, t, *, method=None, adjoint_method=None, **kwargs):
    return _odeint_adjoint(func, y0, t, method=_m(method), adjoint_method=_m(adjoint_method), **kwargs)


def odeint_event(func, y0, t0, *, event_fn, reverse_time=False, odeint_interface=odeint, **kwargs):
    return _odeint_event(func, y0, t0, event_fn=event_fn, reverse_time=reverse_time,
                         odeint_interface=odeint_interface, **kwargs)
