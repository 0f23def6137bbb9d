"""Measure the Lorenz-63 targets of difflens.dynamics and print them against the goals.

1. lambda_1 of Lorenz-63 from a long tangent-space QR run (goal: within 2% of
   0.9056) and the spectrum's sum (goal: -(sigma + 1 + beta) = -13.667).
2. The default study (``difflens run lorenz`` at default settings, timed; goal
   <= 5 minutes on 2 cores): the emulator's median VPT over >= 100 held-out
   initial conditions (goal >= 5 Lyapunov times), its 10,000-step free run
   (goal: on the attractor), the RK4 ceiling, the emulator's lambda_1, and the
   grey-box recovery (goal: sigma, rho, beta within 1% from clean data) with
   its error against observation noise.

    python benchmarks/lorenz_eval.py                 # everything (~5-6 min on 2 cores)
    python benchmarks/lorenz_eval.py --seeds 0 1 2   # the study at several seeds
    python benchmarks/lorenz_eval.py --skip-study    # lambda_1 only
    python benchmarks/lorenz_eval.py --summarize DIR [DIR ...]   # mean and spread over the seed*/ folders
                                                                 # that earlier runs kept with --out
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def lambda1_long(n_traj: int, n_steps: int, seed: int) -> dict:
    from difflens.dynamics import (
        Lorenz63,
        attractor_initial_conditions,
        flow_step,
        lyapunov_spectrum,
    )

    f = Lorenz63()
    x0 = attractor_initial_conditions(f, n_traj, torch.Generator().manual_seed(seed), spinup=20.0)
    t0 = time.perf_counter()
    res = lyapunov_spectrum(flow_step(f, 0.01), x0, n_steps=n_steps, dt=0.01, transient=500)
    return {"exponents": res.exponents.tolist(), "stderr": res.stderr.tolist(), "sum": res.sum,
            "seconds": time.perf_counter() - t0, "time_units": n_traj * n_steps * 0.01}


def run_study(seed: int, out: Path) -> tuple[dict, float]:
    from difflens.studies.runner import run_study as run

    t0 = time.perf_counter()
    run("lorenz", out, seed=seed, verbose=False)
    seconds = time.perf_counter() - t0
    return json.loads((out / "metrics.json").read_text()), seconds


def seed_summary(metrics: list[dict]) -> list[tuple]:
    """Mean, standard deviation and range over seeds of the seed-dependent targets."""
    import statistics

    vpt = [m["vpt_median_lyapunov_times"] for m in metrics]
    sd = statistics.stdev(vpt) if len(vpt) > 1 else float("nan")
    on = sum(bool(m["free_run_report"]["on_attractor"]) for m in metrics)
    lam = [m["lambda1_emulator"] for m in metrics]
    rows = [(f"median VPT over {len(vpt)} seeds", f"mean {statistics.mean(vpt):.2f} +- {sd:.2f} (std), "
             f"range {min(vpt):.2f}-{max(vpt):.2f}", ">= 5 LT", statistics.mean(vpt) >= 5),
            (f"free run on the attractor, {len(vpt)} seeds", f"{on} of {len(vpt)}", "all", on == len(vpt)),
            (f"lambda_1 emulator over {len(lam)} seeds", f"mean {statistics.mean(lam):.3f}, "
             f"range {min(lam):.3f}-{max(lam):.3f}", "report", None)]
    greybox = [max(m["greybox_relative_errors"]) for m in metrics]
    rows.append((f"grey-box clean, {len(greybox)} seeds", f"max relative error {max(greybox):.1e}", "within 1%",
                 max(greybox) <= 0.01))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--lyap-traj", type=int, default=64)
    p.add_argument("--lyap-steps", type=int, default=4000)
    p.add_argument("--skip-study", action="store_true")
    p.add_argument("--out", default=None, help="keep the study reports here (default: a temporary folder)")
    p.add_argument("--summarize", nargs="+", default=None, metavar="DIR",
                   help="only print the summary over the seed*/metrics.json kept in these --out folders")
    args = p.parse_args(argv)

    if args.summarize:
        found = sorted(f for d in args.summarize for f in Path(d).glob("seed*/metrics.json"))
        metrics = [json.loads(f.read_text()) for f in found]
        metrics = [m for m in metrics if m.get("status", "complete") == "complete"]
        _print(seed_summary(metrics))
        return
    rows = []
    lam = lambda1_long(args.lyap_traj, args.lyap_steps, 0)
    l1, se = lam["exponents"][0], lam["stderr"][0]
    rows.append(("lambda_1 Lorenz-63", (f"{l1:.4f} +- {se:.4f} ({lam['time_units']:.0f} time units, "
                                        f"{lam['seconds']:.0f} s)"),
                 "within 2% of 0.9056", abs(l1 - 0.9056) / 0.9056 <= 0.02))
    rows.append(("spectrum", ", ".join(f"{v:.4f}" for v in lam["exponents"]), "0.9056, 0, -14.5723", None))
    rows.append(("spectrum sum", f"{lam['sum']:.5f}", "-(sigma+1+beta) = -13.66667",
                 abs(lam["sum"] + 13.666667) < 1e-3))

    if not args.skip_study:
        root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="lorenz_eval_"))
        done = []
        for seed in args.seeds:
            m, seconds = run_study(seed, root / f"seed{seed}")
            tag = f"[seed {seed}]"
            wall = f"{seconds:.0f} s (training {m['train_seconds']:.0f} s, {torch.get_num_threads()} threads available)"
            rows.append((f"{tag} study wall time", wall, "<= 300 s on 2 cores", seconds <= 300))
            q10, q90 = m["vpt_q10_q90_lyapunov_times"]
            vpt = (f"{m['vpt_median_lyapunov_times']:.2f} LT over {m['vpt_n_initial_conditions']} held-out ICs "
                   f"(mean {m['vpt_mean_lyapunov_times']:.2f}, 10-90%: {q10:.2f}-{q90:.2f})")
            rows.append((f"{tag} median VPT", vpt, ">= 5 LT, >= 100 ICs",
                         m["vpt_median_lyapunov_times"] >= 5 and m["vpt_n_initial_conditions"] >= 100))
            ceiling = (f"{m['vpt_ceiling_rk4_lyapunov_times']:.2f} LT (NRMSE 0.5), "
                       f"{m['vpt_ceiling_rk4_threshold_0.3_lyapunov_times']:.2f} LT (0.3)")
            rows.append((f"{tag} RK4 dt=0.01 ceiling", ceiling, "report", None))
            rep = m["free_run_report"]
            free = (f"on_attractor={rep['on_attractor']}, max W1/std={rep.get('w1_over_std_max', float('nan')):.3f}, "
                    f"spread={rep.get('spread_ratio_min', float('nan')):.2f}, distinct maxima="
                    f"{rep.get('distinct_maxima_second_half')}, lobe switches={rep.get('lobe_switches')}")
            rows.append((f"{tag} {m['free_run_steps']}-step free run", free, "no blow-up or collapse",
                         bool(rep["on_attractor"]) and m["free_run_steps"] >= 10000))
            lam_em = (f"{m['lambda1_emulator']:.3f} +- {m['lambda1_emulator_stderr']:.3f} "
                      f"(system: {m['lambda1_true']:.3f})")
            rows.append((f"{tag} lambda_1 emulator", lam_em, "report", None))
            err = m["greybox_relative_errors"]
            clean = ", ".join(f"{v:.5f}" for v in m["greybox_sigma_rho_beta"]) + f" (max rel. error {max(err):.1e})"
            rows.append((f"{tag} grey-box, clean", clean, "within 1%", max(err) <= 0.01))
            sweep = "; ".join(f"noise {k}: {max(v['relative_errors']):.1e}" for k, v in m["greybox_noise_sweep"].items())
            rows.append((f"{tag} grey-box vs noise", sweep, "report", None))
            done.append(m)
        if len(done) > 1:
            rows += seed_summary(done)
    _print(rows)


def _print(rows: list[tuple]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'quantity':{width}s}  {'measured':70s}  {'goal':26s}  ok")
    for name, value, goal, ok in rows:
        flag = "" if ok is None else ("PASS" if ok else "FAIL")
        print(f"{name:{width}s}  {value:70s}  {goal:26s}  {flag}")


if __name__ == "__main__":
    main()
