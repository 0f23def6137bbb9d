"""RK4 on Lorenz-63: difflens ``integrate`` vs torchdiffeq's ``rk4`` vs a vectorised NumPy RK4.

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
    p.add_argument("--peers", nargs="*", default=["eager", "torchdiffeq", "numpy"])
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from difflens.dynamics import Lorenz63, integrate

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(args.batch, 3, generator=g, dtype=torch.float64) * 5 + torch.tensor([0.0, 0.0, 25.0],
                                                                                        dtype=torch.float64)
    t = torch.arange(args.steps + 1, dtype=torch.float64) * 0.01
    f = Lorenz63()
    solvers = {"difflens integrate rk4": lambda: integrate(f, x0, t, method="rk4")}
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


if __name__ == "__main__":
    main()
