"""Lorenz-63: difflens ``integrate``/``odeint`` vs torchdiffeq's ``odeint`` vs a vectorised NumPy RK4.

Three parts (``--parts``):

- ``rk4``: the RK4 race below.
- ``methods``: every method difflens and torchdiffeq both have, ``odeint`` vs
  ``odeint`` on the same problem (``--method-batch`` trajectories over 2 time
  units; fixed grids with step 0.01, adaptive ones at rtol 1e-6, atol 1e-8,
  21 output times), one row per method with the ratio.
- ``adjoint``: the memory autograd keeps for the backward pass of
  ``odeint`` (backpropagation through the steps) and ``odeint_adjoint``
  against the number of RK4 steps (bytes of the tensors saved for backward,
  counted with ``torch.autograd.graph.saved_tensors_hooks``; the adjoint's
  backward pass builds one field evaluation's graph at a time, its peak is
  printed too), and the adjoint's gradient against backpropagation.

The same work for everyone: ``B`` trajectories (default 1,024) x ``N`` steps
(default 10,000) of dt = 0.01, float64, on CPU, no gradients, every state kept
(output ``(N + 1, B, 3)``), the same ``Lorenz63`` module for the two torch
solvers. Rows:

- difflens: ``integrate(Lorenz63(), x0, t, method="rk4")`` - the default path,
  which runs the loop compiled by TorchScript (f is an nn.Module, no grad).
- difflens eager: the same with ``script=False`` (one Python call per operation).
- torchdiffeq: ``odeint(f, x0, t, method="rk4")`` (its 3/8-rule RK4; same order).
- numpy: classic RK4 on ``(B, 3)`` arrays, the vector field written with column ops.

Agreement is checked against the NumPy result at step 1,000 (chaos amplifies
round-off after that). Torch runs on one thread by default, like NumPy
(``--threads`` to change). Timings on a shared machine are noisy; run it alone.

    python benchmarks/integrate.py
    python benchmarks/integrate.py --batch 1024 --steps 10000 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch


def numpy_rk4(x0: np.ndarray, n: int, h: float, sigma=10.0, rho=28.0, beta=8.0 / 3.0) -> np.ndarray:
    def f(x):
        out = np.empty_like(x)
        out[:, 0] = sigma * (x[:, 1] - x[:, 0])
        out[:, 1] = x[:, 0] * (rho - x[:, 2]) - x[:, 1]
        out[:, 2] = x[:, 0] * x[:, 1] - beta * x[:, 2]
        return out

    out = np.empty((n + 1,) + x0.shape)
    out[0] = x = x0
    for i in range(n):
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = x + (h / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4)
        out[i + 1] = x
    return out


def timed(fn, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--repeat", type=int, default=3, help="best of this many interleaved runs")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--peers", nargs="*", default=["compile", "odeint", "eager", "torchdiffeq", "numpy"])
    p.add_argument("--parts", nargs="*", default=["rk4", "methods", "adjoint"])
    p.add_argument("--method-batch", type=int, default=64)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("load average (1, 5, 15 min) at start: %.1f %.1f %.1f" % os.getloadavg())

    from difflens.dynamics import Lorenz63, integrate

    if "rk4" in args.parts:
        rk4_race(args, Lorenz63, integrate)
    if "methods" in args.parts:
        methods_table(args)
    if "adjoint" in args.parts:
        adjoint_memory(args)
    print("load average (1, 5, 15 min) at end: %.1f %.1f %.1f" % os.getloadavg())


def rk4_race(args, Lorenz63, integrate) -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(args.batch, 3, generator=g, dtype=torch.float64) * 5 + torch.tensor([0.0, 0.0, 25.0],
                                                                                        dtype=torch.float64)
    t = torch.arange(args.steps + 1, dtype=torch.float64) * 0.01
    f = Lorenz63()
    solvers = {"difflens integrate rk4": lambda: integrate(f, x0, t, method="rk4")}
    if "compile" in args.peers:
        t0 = time.perf_counter()
        with torch.no_grad():
            integrate(f, x0, t[:12], method="rk4", compile=True)
        print(f"torch.compile of the RK4 chunk: {time.perf_counter() - t0:.1f} s (once per field type, shape and "
              "dtype in a process; inductor's disk cache shortens it in the next)")
        solvers["difflens integrate compile=True"] = lambda: integrate(f, x0, t, method="rk4", compile=True)
    if "odeint" in args.peers:
        from difflens.dynamics import odeint as dl_odeint

        solvers["difflens odeint rk4"] = lambda: dl_odeint(f, x0, t, method="rk4")
    if "eager" in args.peers:
        solvers["difflens eager (script=False)"] = lambda: integrate(f, x0, t, method="rk4", script=False)
    if "torchdiffeq" in args.peers:
        from torchdiffeq import odeint

        solvers["torchdiffeq odeint rk4"] = lambda: odeint(f, x0, t, method="rk4")
    if "numpy" in args.peers:
        solvers["numpy vectorised rk4"] = lambda: torch.from_numpy(numpy_rk4(x0.numpy(), args.steps, 0.01))
    best = {name: float("inf") for name in solvers}
    results = {}
    with torch.no_grad():
        integrate(f, x0, t[:201])  # build the TorchScript loop once (cached per module; ~0.1 s)
        for _ in range(args.repeat):  # interleaved, so a busy spell on a shared machine hits everyone
            for name, fn in solvers.items():
                sec, results[name] = timed(fn, 1)
                best[name] = min(best[name], sec)
    rows = [(name, best[name], results[name]) for name in solvers]
    ours = rows[0][2]
    ref = rows[-1][2] if "numpy" in args.peers else ours
    k = min(1000, args.steps)
    base = rows[0][1]
    print(f"\nLorenz-63 RK4, {args.batch} trajectories x {args.steps} steps (dt = 0.01, float64, "
          f"{args.threads} torch thread(s))\n")
    print(f"{'solver':32s} {'seconds':>9s} {'vs difflens':>12s} {'max |x - numpy| @ step ' + str(k):>26s}")
    for name, sec, res in rows:
        diff = float((res[k] - ref[k]).abs().max())
        print(f"{name:32s} {sec:9.3f} {sec / base:11.2f}x {diff:26.2e}")
    print("\n'vs difflens' = that solver's time / difflens's time (> 1: difflens is faster).")
    if "numpy" in args.peers:
        npt = best["numpy vectorised rk4"]
        for name in solvers:
            if name.startswith("difflens"):
                print(f"numpy / {name}: {npt / best[name]:.2f}x")


# torchdiffeq's name for each shared method (its "rk4" is the 3/8 rule, difflens's "rk4_38")
SHARED = {"euler": "euler", "midpoint": "midpoint", "heun2": "heun2", "heun3": "heun3", "rk4_38": "rk4",
          "explicit_adams": "explicit_adams", "implicit_adams": "implicit_adams",
          "adaptive_heun": "adaptive_heun", "fehlberg2": "fehlberg2", "bosh3": "bosh3", "dopri5": "dopri5",
          "tsit5": "tsit5", "dopri8": "dopri8"}


def methods_table(args) -> None:
    import torchdiffeq

    from difflens.dynamics import Lorenz63, odeint

    from torchdiffeq._impl.odeint import SOLVERS as td_solvers

    td_methods = set(td_solvers)
    f = Lorenz63()
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(args.method_batch, 3, generator=g, dtype=torch.float64) * 5 + torch.tensor(
        [0.0, 0.0, 25.0], dtype=torch.float64)
    t = torch.linspace(0, 2, 21, dtype=torch.float64)
    print(f"\nodeint vs torchdiffeq.odeint, Lorenz-63, {args.method_batch} trajectories, t in [0, 2] (21 outputs); "
          "fixed grids: step 0.01; adaptive: rtol 1e-6, atol 1e-8 (orders 2-3: 1e-4, 1e-6); best of "
          f"{args.repeat}\n")
    print(f"{'method':16s} {'difflens s':>11s} {'torchdiffeq s':>14s} {'ratio':>7s} {'max |diff|':>11s}")
    for ours, theirs in SHARED.items():
        if theirs not in td_methods:
            print(f"{ours:16s} {'':>11s} {'(not in torchdiffeq ' + torchdiffeq.__version__ + ')':>26s}")
            continue
        fixed = ours in ("euler", "midpoint", "heun2", "heun3", "rk4_38", "explicit_adams", "implicit_adams")
        low = ours in ("adaptive_heun", "fehlberg2", "bosh3")  # orders 2-3: looser, or they take 1e5+ steps
        kw = (dict(options=dict(step_size=0.01)) if fixed else dict(rtol=1e-4, atol=1e-6) if low
              else dict(rtol=1e-6, atol=1e-8))
        best = [float("inf"), float("inf")]
        res = [None, None]
        with torch.no_grad():
            for _ in range(args.repeat):
                for j, fn in enumerate((lambda: odeint(f, x0, t, method=ours, **kw),
                                        lambda: torchdiffeq.odeint(f, x0, t, method=theirs, **kw))):
                    sec, res[j] = timed(fn, 1)
                    best[j] = min(best[j], sec)
        diff = float((res[0][5] - res[1][5]).abs().max())  # t = 0.5: before chaos amplifies the differences
        print(f"{ours:16s} {best[0]:11.3f} {best[1]:14.3f} {best[1] / best[0]:6.2f}x {diff:11.2e}")
    print("\nratio = torchdiffeq's time / difflens's (> 1: difflens is faster); |diff| at t = 0.5.")


def adjoint_memory(args) -> None:
    from difflens.dynamics import Lorenz63, odeint, odeint_adjoint

    class Counted(Lorenz63):
        calls = 0

        def forward(self, t, x):
            Counted.calls += 1
            return super().forward(t, x)

    f = Counted()
    x0 = torch.tensor([[1.0, 2.0, 20.0]] * 16, dtype=torch.float64, requires_grad=True)
    print("\nMemory kept for backward (MB; bytes of the tensors autograd saves), 16 Lorenz-63 trajectories, "
          "RK4 step 0.001, outputs at [0, T]; gradients with outputs every 0.1")
    print(f"{'steps':>8s} {'odeint (backprop)':>18s} {'odeint_adjoint':>15s} {'adjoint bwd MB/eval':>22s} "
          f"{'grad rel. diff':>16s}")

    class Count:
        def __init__(self):
            self.live = self.peak = self.total = 0

        def pack(self, x):
            n = x.numel() * x.element_size() if isinstance(x, torch.Tensor) else 0
            self.total += n
            return (x, n)

        def unpack(self, packed):
            return packed[0]

    for steps in (100, 1000, 10000):
        t_end = torch.tensor([0.0, steps * 1e-3], dtype=torch.float64)
        # gradients with output times every 0.1: the adjoint resets its backward state there (over
        # [0, 10] in one interval the backward integration of Lorenz-63 overflows; odeint_adjoint
        # raises, torchdiffeq returns NaN)
        t_grid = torch.linspace(0.0, steps * 1e-3, steps // 100 + 1, dtype=torch.float64)
        out = {}
        for name, solve in (("direct", odeint), ("adjoint", odeint_adjoint)):
            c = Count()
            with torch.autograd.graph.saved_tensors_hooks(c.pack, c.unpack):
                solve(f, x0, t_end, method="rk4", options=dict(step_size=1e-3))
            saved = c.total
            ys = solve(f, x0, t_grid, method="rk4", options=dict(step_size=1e-3))
            b = Count()
            Counted.calls = 0
            with torch.autograd.graph.saved_tensors_hooks(b.pack, b.unpack):
                grads = torch.autograd.grad(ys[-1].sum(), (x0, *f.parameters()))
            out[name] = (saved, grads, b.total / max(1, Counted.calls))
        diff = max(float((a - b).abs().max() / a.abs().max()) for a, b in zip(out["direct"][1], out["adjoint"][1]))
        print(f"{steps:8d} {out['direct'][0] / 1e6:18.3f} {out['adjoint'][0] / 1e6:15.3f} "
              f"{out['adjoint'][2] / 1e6:22.6f} {diff:16.2e}")
    print("adjoint bwd MB/eval = bytes saved per field evaluation in the adjoint's backward pass: each "
          "evaluation's graph is built and freed before the next, so this is its peak. grad rel. diff = "
          "max |adjoint - backprop| / max |backprop| over y0 and the parameters (the fixed-step adjoint "
          "is the continuous adjoint, equal to backpropagation up to the RK4 error).")


if __name__ == "__main__":
    main()
