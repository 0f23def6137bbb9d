"""Control benchmarks: MPC on the engine vs SciPy SLSQP; truck docking over 200 starts; Lorenz lobe holding.

    python benchmarks/control.py mpc   --batch 64 --horizon 20 --threads 1
    python benchmarks/control.py truck --seeds 0 1 2 --threads 1
    python benchmarks/control.py lorenz --starts 100 --seeds 0 1 2 3 4 5 6 7 8 9 --threads 1

``mpc``: the car-with-obstacle planning problem (same cost, horizon and action bounds on both sides),
solved for a batch of start states at once by difflens (L-BFGS through the unrolled model, on the
engine) and one start at a time by SciPy's SLSQP (bounds as box constraints, exact gradients from
torch); prints the cost ratio per start and the wall time of each.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch


def bench_mpc(batch: int, horizon: int, iters: int, seed: int, restarts: int = 1, slsqp_iters: int = 500) -> None:
    from scipy.optimize import minimize

    from difflens.control import Car, TrajectoryOptimizer
    from difflens.control.mpc import rollout

    e = Car()
    s0 = e.sample_starts(batch, torch.Generator().manual_seed(seed))
    terminal = lambda s: 10 * e.terminal_cost(s)
    # the same initial plans on both sides: straight (zero actions), then constant curvature left and right
    curvatures = [0.0, 0.5, -0.5, 1.0, -1.0][:restarts]
    inits = [torch.zeros(horizon, 2, dtype=torch.float64) for _ in curvatures]
    for init, k in zip(inits, curvatures):
        init[:, 1] = k * float(e.high[1])
    # difflens: all K initial plans of all starts in one batched solve (a batch of K * B plans), each
    # start keeping its cheapest; SciPy: one SLSQP solve per start and initial plan, the cheapest kept
    tr = TrajectoryOptimizer(e.step, e.cost, s0, horizon, e.low, e.high, terminal=terminal, tol=1e-10,
                             init=torch.stack([init.expand(batch, horizon, 2) for init in inits]))
    c0 = time.process_time()
    tr.solve(iters)
    c_ours = time.process_time() - c0
    per_init = tr.plan_costs().numpy()  # (K, B)
    ours, t_ours = per_init.min(0), tr.optimization.history.seconds

    def objective(x, s):
        a = torch.tensor(x, dtype=torch.float64).reshape(1, horizon, 2).requires_grad_(True)
        st = rollout(e.step, s[None], a)
        c = e.cost(st[:, :-1], a).sum() + terminal(st[:, -1]).sum()
        (g,) = torch.autograd.grad(c, a)
        return float(c.detach()), g.numpy().ravel()

    bounds = [(float(e.low[i % 2]), float(e.high[i % 2])) for i in range(horizon * 2)]
    ref_per_init = np.full((len(inits), batch), np.inf)
    nits, capped = [], 0
    t0, c0 = time.perf_counter(), time.process_time()  # SciPy's own solves; difflens's wall time: the engine's history
    for b in range(batch):
        for k, init in enumerate(inits):
            res = minimize(objective, init.numpy().ravel(), args=(s0[b],), jac=True, method="SLSQP", bounds=bounds,
                           options={"maxiter": slsqp_iters, "ftol": 1e-12})
            ref_per_init[k, b] = res.fun
            nits.append(res.nit)
            capped += int(res.nit >= slsqp_iters)
    t_ref, c_ref = time.perf_counter() - t0, time.process_time() - c0
    ref = ref_per_init.min(0)
    for k in range(len(inits)):
        r = per_init[k] / ref_per_init[k]
        print(f"initial plan {k} (curvature {curvatures[k]:+.1f} of full lock) alone: difflens/SLSQP cost ratio mean "
              f"{r.mean():.4f}, within 1%: {int((r <= 1.01).sum())} of {batch}; each solver's best initial plan here on "
              f"{int((per_init.argmin(0) == k).sum())} / {int((ref_per_init.argmin(0) == k).sum())} starts")
    ratio = ours / ref
    print(f"car with obstacle, horizon {horizon}, batch {batch}, {len(inits)} initial plan(s) per start on both sides, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"difflens: {tr.optimization.iteration} L-BFGS steps (of {iters}, each up to 20 inner iterations), stop "
          f"{tr.optimization.stop_reason}; SLSQP: median {int(np.median(nits))} iterations (max {max(nits)}), "
          f"{capped} of {len(nits)} solves stopped at the cap {slsqp_iters}")
    print("solver            wall s     CPU s  cost ratio to SLSQP (mean / max / min)")
    print(f"difflens L-BFGS {t_ours:8.2f}  {c_ours:8.2f}  {ratio.mean():.5f} / {ratio.max():.5f} / {ratio.min():.5f}")
    print(f"scipy SLSQP     {t_ref:8.2f}  {c_ref:8.2f}  1")
    print(f"speed-up {t_ref / t_ours:.1f}x wall, {c_ref / c_ours:.1f}x CPU; starts within 1% of SLSQP's cost: {(ratio <= 1.01).mean():.3f} "
          f"({int((ratio <= 1.01).sum())} of {batch}); ratios above 1.01: {np.round(ratio[ratio > 1.01], 4).tolist()}")


def bench_truck(seeds: list[int], fit_steps: int, train_steps: int) -> None:
    from difflens.studies.control import train_truck

    rows = []
    for seed in seeds:
        c0, w0 = time.process_time(), time.perf_counter()
        r = train_truck(seed, fit_steps=fit_steps, train_steps=train_steps, n_eval=200)
        rows.append((seed, r["success_train"], r["success_outside"], r["emulator_error"]))
        a = r["after"]
        print(f"seed {seed}: success inside {r['success_train']:.3f}, outside {r['success_outside']:.3f}, "
              f"median position error {float(a['position_error'].median()):.4f}, median angle error "
              f"{float(a['angle_error_deg'].median()):.2f} deg, jack-knifes {float(a['jackknifed'].double().mean()):.3f}, "
              f"emulator held-out error {r['emulator_error']:.4f}; CPU {time.process_time() - c0:.0f} s, "
              f"wall {time.perf_counter() - w0:.0f} s", flush=True)
    s = np.array([r[1] for r in rows])
    o = np.array([r[2] for r in rows])
    print(f"success inside the training region over {len(seeds)} seed(s): mean {s.mean():.3f}, std {s.std():.3f}, "
          f"min {s.min():.3f}, max {s.max():.3f}; outside: mean {o.mean():.3f}, std {o.std():.3f}")


def bench_lorenz(starts: int, seeds: list[int], model: str, time_units: float, horizon: int, iters: int,
                 margin: float) -> None:
    from difflens.studies.control import lorenz_hold

    rates = []
    for seed in seeds:
        c0 = time.process_time()
        r = lorenz_hold(starts, seed, model=model, time_units=time_units, horizon=horizon, iterations=iters,
                        margin=margin)
        S, settle = r["states"], int(round(1.0 / r["dt"]))
        held = (S[:, settle:, 0] > 0).all(1)
        lost = (~held).nonzero()[:, 0].tolist()
        first = [round((int((S[b, settle:, 0] <= 0).nonzero()[0, 0]) + settle) * r["dt"], 2) for b in lost]
        rates.append(r["success"])
        print(f"Lorenz lobe holding, seed {seed}, {starts} starts, {time_units} time units, model {model}, horizon "
              f"{horizon}, {iters} L-BFGS step(s) per plan, margin {margin}: success {r['success']:.3f}, mean control "
              f"energy {r['energy']:.3f}; lost starts {lost} (first off the lobe at t = {first}, their x(0) "
              f"{[round(float(S[b, 0, 0]), 2) for b in lost]}); CPU {time.process_time() - c0:.0f} s", flush=True)
    s = np.array(rates)
    print(f"success over {len(seeds)} seed(s) (start sets and emulators): mean {s.mean():.4f}, std {s.std():.4f}, "
          f"min {s.min():.3f}, max {s.max():.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["mpc", "truck", "lorenz"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--restarts", type=int, default=1, choices=range(1, 6),
                   help="initial plans per start (straight, then constant curvature +-half, +-full), both solvers")
    p.add_argument("--slsqp-iters", type=int, default=500, help="SLSQP's iteration cap per solve")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--fit-steps", type=int, default=2000)
    p.add_argument("--train-steps", type=int, default=600)
    p.add_argument("--time", type=float, default=20.0)
    p.add_argument("--starts", type=int, default=100)
    p.add_argument("--model", choices=["true", "emulator"], default="emulator")
    p.add_argument("--lorenz-horizon", type=int, default=20)
    p.add_argument("--lorenz-iters", type=int, default=1)
    p.add_argument("--margin", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "mpc":
        bench_mpc(a.batch, a.horizon, a.iters, a.seed, a.restarts, a.slsqp_iters)
    elif a.what == "truck":
        bench_truck(a.seeds, a.fit_steps, a.train_steps)
    else:
        bench_lorenz(a.starts, a.seeds, a.model, a.time, a.lorenz_horizon, a.lorenz_iters, a.margin)


if __name__ == "__main__":
    main()
