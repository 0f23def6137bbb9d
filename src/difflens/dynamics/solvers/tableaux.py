"""Butcher tableaux: one short declarative class per Runge-Kutta method.

A tableau gives the nodes ``c``, the stage matrix ``a`` (row ``i`` holds
``a[i][0..]``; explicit methods list only the strictly lower triangle), the
weights ``b`` and, for an embedded pair, ``e = b - b_hat`` (the local error
estimate is ``h * sum_i e_i k_i``). ``order`` is the order used by the step-size
controller (exponent ``1 / order``). ``interp`` names the dense output used
between steps: ``"hermite"`` (cubic Hermite from the step's end points and
derivatives), ``"shampine"`` (Dormand-Prince's 4th-order continuous extension)
or ``"restep"`` (a fresh step of the same method from the step's start to the
output time: the method's own order, at the price of its stages).
``stability`` is the method's real-axis stability limit ``|h lambda|``, used to
recognise a stiff problem (the step size pinned at that limit).

Coefficients are the published ones (Butcher 2016; Hairer, Norsett & Wanner
1993 and Hairer & Wanner 1996; Tsitouras 2011; Bogacki & Shampine 1989;
Fehlberg 1969); Dormand-Prince 8(5,3) is read from SciPy's DOP853 tables.
"""

from __future__ import annotations

import math


class Tableau:
    """Base class: subclasses set the class attributes below."""

    name: str = ""
    c: tuple[float, ...] = ()
    a: tuple[tuple[float, ...], ...] = ()
    b: tuple[float, ...] = ()
    e: tuple[float, ...] | None = None  # b - b_hat; None for a fixed-step method
    order: int = 1
    implicit: bool = False
    interp: str = "hermite"
    stability: float = 2.0

    @classmethod
    def stages(cls) -> int:
        return len(cls.c)

    @classmethod
    def fsal(cls) -> bool:
        """First same as last: the last stage is evaluated at the step's result (its row equals ``b``)."""
        return (not cls.implicit and len(cls.a) == len(cls.c) and cls.c[-1] == 1.0
                and tuple(cls.a[-1][:len(cls.b)]) == tuple(cls.b[:len(cls.a[-1])])
                and all(x == 0 for x in cls.b[len(cls.a[-1]):]))


# ----------------------------------------------------------------------------- explicit, fixed step
class Euler(Tableau):
    name, order = "euler", 1
    c, a, b = (0.0,), ((),), (1.0,)


class Midpoint(Tableau):
    name, order = "midpoint", 2
    c, a, b = (0.0, 0.5), ((), (0.5,)), (0.0, 1.0)


class Heun2(Tableau):
    name, order = "heun2", 2
    c, a, b = (0.0, 1.0), ((), (1.0,)), (0.5, 0.5)


class Heun3(Tableau):
    name, order = "heun3", 3
    c, a, b = (0.0, 1 / 3, 2 / 3), ((), (1 / 3,), (0.0, 2 / 3)), (0.25, 0.0, 0.75)
    stability = 2.51


class RK4(Tableau):
    """The classic fourth-order Runge-Kutta method (Kutta 1901)."""

    name, order, stability = "rk4", 4, 2.78
    c = (0.0, 0.5, 0.5, 1.0)
    a = ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0))
    b = (1 / 6, 1 / 3, 1 / 3, 1 / 6)


class RK4ThreeEighths(Tableau):
    """Kutta's 3/8 rule (torchdiffeq's ``rk4``)."""

    name, order, stability = "rk4_38", 4, 2.78
    c = (0.0, 1 / 3, 2 / 3, 1.0)
    a = ((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0))
    b = (1 / 8, 3 / 8, 3 / 8, 1 / 8)


# ----------------------------------------------------------------------------- explicit, embedded pairs
class AdaptiveHeun(Tableau):
    """Heun's method with Euler as the embedded estimate: 2(1)."""

    name, order, stability = "adaptive_heun", 2, 1.2  # its Euler estimate pins the step at h |lambda| ~ 0.8
    c, a, b = (0.0, 1.0), ((), (1.0,)), (0.5, 0.5)
    e = (0.5 - 1.0, 0.5)


class Fehlberg2(Tableau):
    """Runge-Kutta-Fehlberg 2(1) (RKF12): three stages, the last at the step's end."""

    name, order = "fehlberg2", 2
    c = (0.0, 0.5, 1.0)
    a = ((), (0.5,), (1 / 256, 255 / 256))
    b = (1 / 512, 255 / 256, 1 / 512)
    e = (1 / 512 - 1 / 256, 0.0, 1 / 512)


class Bosh3(Tableau):
    """Bogacki-Shampine 3(2), first same as last."""

    name, order, stability = "bosh3", 3, 2.51
    c = (0.0, 0.5, 0.75, 1.0)
    a = ((), (0.5,), (0.0, 0.75), (2 / 9, 1 / 3, 4 / 9))
    b = (2 / 9, 1 / 3, 4 / 9, 0.0)
    e = (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8)


class Dopri5(Tableau):
    """Dormand-Prince 5(4), first same as last, with Shampine's dense output."""

    name, order, interp, stability = "dopri5", 5, "shampine", 3.3
    c = (0.0, 0.2, 0.3, 0.8, 8 / 9, 1.0, 1.0)
    a = ((), (0.2,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
         (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
    b = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
    e = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
    # y(t0 + s h) = y0 + h sum_i k_i (P_i . [s, s^2, s^3, s^4]) (Shampine 1986; the rows of stages 1..7)
    dense = ((1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
             (0.0, 0.0, 0.0, 0.0),
             (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
             (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
             (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
             (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
             (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423))


class Tsit5(Tableau):
    """Tsitouras 5(4) (2011), first same as last."""

    name, order, interp, stability = "tsit5", 5, "restep", 3.5
    c = (0.0, 0.161, 0.327, 0.9, 0.9800255409045097, 1.0, 1.0)
    a = ((), (0.161,), (-0.008480655492356989, 0.335480655492357),
         (2.897153057105493, -6.359448489975075, 4.3622954328695815),
         (5.325864828439257, -11.748883564062828, 7.4955393428898365, -0.09249506636175525),
         (5.86145544294642, -12.92096931784711, 8.159367898576159, -0.071584973281401, -0.028269050394068383),
         (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
          2.324710524099774))
    b = (0.09646076681806523, 0.01, 0.4798896504144996, 1.379008574103742, -3.290069515436081,
         2.324710524099774, 0.0)
    e = (0.001780011052226, 0.000816434459657, -0.007880878010262, 0.144711007173263,
         -0.582357165452555, 0.458082105929187, -1 / 66)


def _dop853() -> dict:
    from scipy.integrate._ivp import dop853_coefficients as d  # the published DOP853 tables

    s = d.N_STAGES
    return {"c": tuple(float(x) for x in d.C[:s]),
            "a": tuple(tuple(float(x) for x in d.A[i, :i]) for i in range(s)),
            "b": tuple(float(x) for x in d.B),
            "e5": tuple(float(x) for x in d.E5), "e3": tuple(float(x) for x in d.E3)}


class Dopri8(Tableau):
    """Dormand-Prince 8(5,3) (Hairer's DOP853): two embedded estimates, combined as in DOP853.

    The error estimates use a 13th derivative, ``f(t + h, y1)`` (the next
    step's first stage).
    """

    name, order, interp, stability = "dopri8", 8, "restep", 6.0
    _d = _dop853()
    c, a, b = _d["c"], _d["a"], _d["b"]
    e = _d["e5"]  # over the 12 stages plus f(t + h, y1)
    e3 = _d["e3"]
    del _d


# ----------------------------------------------------------------------------- implicit (fixed step, Newton)
_S3, _S6, _S15 = math.sqrt(3.0), math.sqrt(6.0), math.sqrt(15.0)


class ImplicitEuler(Tableau):
    name, order, implicit = "implicit_euler", 1, True
    c, a, b = (1.0,), ((1.0,),), (1.0,)


class ImplicitMidpoint(Tableau):
    name, order, implicit = "implicit_midpoint", 2, True
    c, a, b = (0.5,), ((0.5,),), (1.0,)


class Trapezoid(Tableau):
    name, order, implicit = "trapezoid", 2, True
    c, a, b = (0.0, 1.0), ((0.0, 0.0), (0.5, 0.5)), (0.5, 0.5)


class RadauIIA3(Tableau):
    name, order, implicit = "radauIIA3", 3, True
    c, a, b = (1 / 3, 1.0), ((5 / 12, -1 / 12), (3 / 4, 1 / 4)), (3 / 4, 1 / 4)


class GaussLegendre4(Tableau):
    name, order, implicit = "gl4", 4, True
    c = (0.5 - _S3 / 6, 0.5 + _S3 / 6)
    a = ((0.25, 0.25 - _S3 / 6), (0.25 + _S3 / 6, 0.25))
    b = (0.5, 0.5)


class RadauIIA5(Tableau):
    name, order, implicit = "radauIIA5", 5, True
    c = ((4 - _S6) / 10, (4 + _S6) / 10, 1.0)
    a = (((88 - 7 * _S6) / 360, (296 - 169 * _S6) / 1800, (-2 + 3 * _S6) / 225),
         ((296 + 169 * _S6) / 1800, (88 + 7 * _S6) / 360, (-2 - 3 * _S6) / 225),
         ((16 - _S6) / 36, (16 + _S6) / 36, 1 / 9))
    b = ((16 - _S6) / 36, (16 + _S6) / 36, 1 / 9)


class GaussLegendre6(Tableau):
    name, order, implicit = "gl6", 6, True
    c = (0.5 - _S15 / 10, 0.5, 0.5 + _S15 / 10)
    a = ((5 / 36, 2 / 9 - _S15 / 15, 5 / 36 - _S15 / 30),
         (5 / 36 + _S15 / 24, 2 / 9, 5 / 36 - _S15 / 24),
         (5 / 36 + _S15 / 30, 2 / 9 + _S15 / 15, 5 / 36))
    b = (5 / 18, 4 / 9, 5 / 18)


_G = 1 - math.sqrt(2) / 2


class SDIRK2(Tableau):
    """Alexander's two-stage L-stable SDIRK of order 2 (gamma = 1 - 1/sqrt 2)."""

    name, order, implicit = "sdirk2", 2, True
    c, a, b = (_G, 1.0), ((_G, 0.0), (1 - _G, _G)), (1 - _G, _G)


class TRBDF2(Tableau):
    """TR-BDF2 (Bank et al. 1985) as an ESDIRK: trapezoid to gamma = 2 - sqrt 2, then BDF2; L-stable."""

    name, order, implicit = "trbdf2", 2, True
    c = (0.0, 2 - math.sqrt(2), 1.0)
    a = ((0.0, 0.0, 0.0), (_G, _G, 0.0), (math.sqrt(2) / 4, math.sqrt(2) / 4, _G))
    b = (math.sqrt(2) / 4, math.sqrt(2) / 4, _G)


EXPLICIT_FIXED = {t.name: t for t in (Euler, Midpoint, Heun2, Heun3, RK4, RK4ThreeEighths)}
EXPLICIT_ADAPTIVE = {t.name: t for t in (AdaptiveHeun, Fehlberg2, Bosh3, Dopri5, Tsit5, Dopri8)}
IMPLICIT_FIXED = {t.name: t for t in (ImplicitEuler, ImplicitMidpoint, Trapezoid, RadauIIA3, GaussLegendre4,
                                      RadauIIA5, GaussLegendre6, SDIRK2, TRBDF2)}
