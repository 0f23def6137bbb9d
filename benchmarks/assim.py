"""DAPPER 1.7.1 and difflens.assim side by side, on the same truths and observations, in one process.

    nice -n 10 python benchmarks/assim.py --seeds 10 --cycles 1000 2>/dev/null

For every seed DAPPER simulates the Lorenz-63 (Sakov 2012) truth and observations;
DAPPER runs each method on them one experiment after another, difflens runs all
``--seeds`` experiments as one batch (members x experiments). Printed: the
time-mean analysis RMSE after burn-in (mean over seeds with a 95% t-interval)
and the wall time of each side, and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch


def dapper_run(name, HMM, xx, yy, seed):
    import dapper.da_methods as da

    xp = {"enkf_sqrt_n10": lambda: da.EnKF("Sqrt", N=10, infl=1.02, rot=True),
          "enkf_pertobs_n10": lambda: da.EnKF("PertObs", N=10, infl=1.04),
          "pf_n100": lambda: da.PartFilt(N=100, reg=2.4, NER=0.3),
          "var3d": lambda: da.Var3D(xB=0.1),
          "extkf": lambda: da.ExtKF(infl=180)}[name]()
    xp.seed = seed
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        xp.assimilate(HMM, xx, yy)
        sec = time.perf_counter() - t0
        xp.stats.average_in_time()
    return float(xp.avrgs.err.rms.a.val), sec


def difflens_method(name, B):
    from difflens.assim import EnKF, ExtKF, ParticleFilter, Var3D

    return {"enkf_sqrt_n10": lambda: EnKF("sqrt", 10, 1.02, True),
            "enkf_pertobs_n10": lambda: EnKF("pertobs", 10, 1.04),
            "pf_n100": lambda: ParticleFilter(100, 2.4, 0.3),
            "var3d": lambda: Var3D(B, 0.1),
            "extkf": lambda: ExtKF(180.0)}[name]()


def main() -> None:
    import dapper as dpr
    from dapper.mods.Lorenz63.sakov2012 import HMM as DHMM

    from difflens.assim import climatology, confidence_interval, lorenz63_sakov2012, run_filter

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--methods", default="enkf_sqrt_n10,enkf_pertobs_n10,pf_n100,var3d,extkf")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dh = DHMM.copy()
    dh.tseq.Ko = a.cycles - 1  # DAPPER observes Ko + 1 times
    truths, obs, fulls = [], [], []
    with contextlib.redirect_stderr(io.StringIO()):
        for s in range(a.seeds):
            dpr.set_seed(1000 + s)
            xx, yy = dh.simulate()
            fulls.append(xx)
            truths.append(xx[::dh.tseq.dko])
            obs.append(np.stack(list(yy)))
    truth = torch.tensor(np.stack(truths))
    y = torch.tensor(np.stack(obs))
    hmm = lorenz63_sakov2012(a.cycles)
    hmm.burn_in = int(np.sum(dh.tseq.tto <= dh.tseq.BurnIn))  # DAPPER's burn-in, in cycles
    B = climatology(hmm, 2000, torch.Generator().manual_seed(1))
    print(f"Lorenz-63 (Sakov 2012), {a.seeds} seeds x {a.cycles} cycles, burn-in {hmm.burn_in} cycles; "
          f"torch threads {a.threads}")
    print(f"{'method':18s} {'DAPPER RMSE':>16s} {'difflens RMSE':>16s} {'DAPPER s':>9s} {'difflens s':>10s} "
          f"{'speed-up':>8s}")
    for name in a.methods.split(","):
        d_rmse, d_sec = [], 0.0
        for s in range(a.seeds):
            r, sec = dapper_run(name, dh, fulls[s], yy_of(obs[s]), 2000 + s)
            d_rmse.append(r)
            d_sec += sec
        res = run_filter(difflens_method(name, B), hmm, truth, y, torch.Generator().manual_seed(3))
        dm, dh_ = confidence_interval(d_rmse)
        fm, fh = confidence_interval(res.rmse_a)
        print(f"{name:18s} {dm:9.3f} ± {dh_:.3f} {fm:9.3f} ± {fh:.3f} {d_sec:9.1f} {res.seconds:10.1f} "
              f"{d_sec / res.seconds:8.1f}", flush=True)


def yy_of(o):
    return o


if __name__ == "__main__":
    main()
