"""DAPPER 1.7.1 and difflens.assim side by side, on the same truths and observations, in one process.

    nice -n 10 python benchmarks/assim.py --setup l63 --methods pf_n100 --seeds 10 --cycles 1000 2>/dev/null

For every seed DAPPER simulates the truth and observations (Lorenz-63 as Sakov
2012, or Lorenz-96 as Sakov & Oke 2008; truth seed ``1000 + first_seed + i``);
DAPPER runs each method on them one experiment after another, difflens runs all
``--seeds`` experiments as one batch (members x experiments). Printed: the
time-mean analysis RMSE after DAPPER's burn-in (mean over seeds with a 95%
t-interval), the wall time of each side and their ratio. Each method has the
settings of DAPPER's "suggested tuning" comments (``mods/Lorenz63/sakov2012.py``,
``mods/Lorenz96/sakov2008.py``); 4D-Var on Lorenz-63 has none there (see ``VAR4D_L63``).
Tune on ``--first-seed 100`` and above, report on the default seeds 0-9.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import torch

#: 4D-Var on Lorenz-63 (not in DAPPER's suggested tuning): window in cycles, background scale, outer loops,
#: which observations of the window enter the cost (see ``difflens.assim.Var4D``); ``--var4d`` overrides them.
VAR4D_L63 = dict(lag=15, xB=0.005, outer=2, observations="all", rescue_tail=1e-6, rescue_xB=1.0)
# lag, xB, outer tuned on truth seeds 1100+ (docs/assim.md); the lost-window rescue's tail as the particle filter's

L63 = {  # name: (DAPPER method, difflens method from (B,), DAPPER's published RMSE)
    "enkf_sqrt_n10": (lambda da: da.EnKF("Sqrt", N=10, infl=1.02, rot=True),
                      lambda A, B: A.EnKF("sqrt", 10, 1.02, True), 0.60),
    "enkf_pertobs_n10": (lambda da: da.EnKF("PertObs", N=10, infl=1.04),
                         lambda A, B: A.EnKF("pertobs", 10, 1.04), 0.65),
    # inflation tuned on truth seeds 1100-1109 (difflens, 4 filter seeds): fewer lost-track episodes than 1.04
    "enkf_pertobs_n10_infl108": (lambda da: da.EnKF("PertObs", N=10, infl=1.08),
                                 lambda A, B: A.EnKF("pertobs", 10, 1.08), 0.65),
    "pf_n100": (lambda da: da.PartFilt(N=100, reg=2.4, NER=0.3),
                lambda A, B: A.ParticleFilter(100, 2.4, 0.3), 0.38),
    "pf_n800": (lambda da: da.PartFilt(N=800, reg=0.9, NER=0.2),
                lambda A, B: A.ParticleFilter(800, 0.9, 0.2), 0.28),
    # the same with difflens's lost-track rescue (DAPPER's PartFilt has none): see ParticleFilter's rescue_tail
    "pf_n800_rescue": (lambda da: da.PartFilt(N=800, reg=0.9, NER=0.2),
                       lambda A, B: A.ParticleFilter(800, 0.9, 0.2, rescue_tail=1e-6), 0.28),
    "pf_n100_rescue": (lambda da: da.PartFilt(N=100, reg=2.4, NER=0.3),
                       lambda A, B: A.ParticleFilter(100, 2.4, 0.3, rescue_tail=1e-6), 0.38),
    "var3d": (lambda da: da.Var3D(xB=0.1), lambda A, B: A.Var3D(B, 0.1), 1.04),
    "extkf": (lambda da: da.ExtKF(infl=180), lambda A, B: A.ExtKF(180.0), 0.92),
    "ienks_n10": (lambda da: da.iEnKS("Sqrt", N=10, infl=1.02, rot=True),
                  lambda A, B: A.IEnKS(10, lag=1, n_iter=10, infl=1.02, rot=True), 0.31),
    # DAPPER's Var4D is its "newest" scheme (each observation enters one window), Gauss-Newton, nIter=10
    "var4d": (lambda da: da.Var4D(Lag=VAR4D_L63["lag"], xB=VAR4D_L63["xB"]),
              lambda A, B: A.Var4D(B, VAR4D_L63["xB"], VAR4D_L63["lag"], outer=VAR4D_L63["outer"],
                                   observations=VAR4D_L63["observations"], rescue_tail=VAR4D_L63["rescue_tail"],
                                   rescue_xB=VAR4D_L63["rescue_xB"]), 0.35),
}
L96 = {
    "var3d": (lambda da: da.Var3D(xB=0.02), lambda A, B: A.Var3D(B, 0.02), 0.41),
    "extkf": (lambda da: da.ExtKF(infl=10), lambda A, B: A.ExtKF(10.0), 0.24),
    "enkf_sqrt_n24": (lambda da: da.EnKF("Sqrt", N=24, infl=1.013, rot=True),
                      lambda A, B: A.EnKF("sqrt", 24, 1.013, True), 0.18),
    "letkf_n7": (lambda da: da.LETKF(N=7, rot=True, infl=1.04, loc_rad=4),
                 lambda A, B: A.LETKF(7, 4.0, 1.04, True), 0.22),
}


class _ObsAtTime:
    """DAPPER 1.7.1's ``Var4D`` calls ``HMM.Obs(ko)(ko)`` where ``HMM.Obs(ko)`` is meant (an ``IndexError``): an
    operator that returns itself when called with an integer time and observes when called with states."""

    def __init__(self, op):
        self.op = op

    def __call__(self, arg):
        return self.op if isinstance(arg, (int, np.integer)) else self.op(arg)

    def __getattr__(self, name):
        return getattr(self.op, name)


class _ObsShim:
    def __init__(self, obs):
        self.obs = obs

    def __call__(self, ko):
        return _ObsAtTime(self.obs(ko))

    def __getattr__(self, name):
        return getattr(self.obs, name)


def dapper_run(make, HMM, xx, yy, seed):
    import dapper as dpr
    import dapper.da_methods as da

    xp = make(da)
    if type(xp).__name__ == "Var4D":  # work around DAPPER 1.7.1's Obs(ko)(ko) (only in this run's copy)
        HMM = HMM.copy()
        HMM.Obs = _ObsShim(HMM.Obs)
    dpr.set_seed(seed)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        t0 = time.perf_counter()
        xp.assimilate(HMM, xx, yy)
        sec = time.perf_counter() - t0
        xp.stats.average_in_time()
    return float(xp.avrgs.err.rms.a.val), sec


def main() -> None:
    import dapper as dpr

    import difflens.assim as A

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", choices=("l63", "l96"), default="l63")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--first-seed", type=int, default=0, help="truth seeds 1000 + first_seed + i (tune on >= 100)")
    p.add_argument("--blocks", default=None,
                   help="comma-separated first seeds, e.g. 0,100,200: --seeds truths from each, run as one batch "
                        "(difflens only), statistics printed per block")
    p.add_argument("--cycles", type=int, default=1000)
    p.add_argument("--methods", default=None, help="comma-separated; default all of the setup's")
    p.add_argument("--no-dapper", action="store_true", help="difflens only (tuning)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=1,
                   help="runs of each method on the same truths with different filter seeds (repeat 0: the default seeds)")
    p.add_argument("--var4d", default=None, help="4D-Var settings, e.g. lag=8,xB=0.01,outer=2,observations=all")
    a = p.parse_args()
    if a.var4d:
        for kv in a.var4d.split(","):
            k, v = kv.split("=")
            VAR4D_L63[k] = (v if k == "observations" else None if v == "None"
                            else int(v) if k in ("lag", "outer") else float(v))
        print(f"4D-Var settings: {VAR4D_L63}")
    torch.set_num_threads(a.threads)
    blocks = [a.first_seed] if a.blocks is None else [int(b) for b in a.blocks.split(",")]
    truth_seeds = [1000 + b + i for b in blocks for i in range(a.seeds)]
    a.first_seed = blocks[0]
    if a.setup == "l63":
        from dapper.mods.Lorenz63.sakov2012 import HMM as DHMM

        table, hmm = L63, A.lorenz63_sakov2012(a.cycles)
    else:
        from dapper.mods.Lorenz96.sakov2008 import HMM as DHMM

        table, hmm = L96, A.lorenz96_sakov2008(a.cycles)
    dh = DHMM.copy()
    dh.tseq.Ko = a.cycles - 1  # DAPPER observes Ko + 1 times
    truths, obs, fulls, yys = [], [], [], []
    with contextlib.redirect_stderr(io.StringIO()):
        for ts in truth_seeds:
            dpr.set_seed(ts)
            xx, yy = dh.simulate()
            fulls.append(xx)
            yys.append(yy)
            truths.append(xx[::dh.tseq.dko])
            obs.append(np.stack(list(yy)))
    truth = torch.tensor(np.stack(truths))
    y = torch.tensor(np.stack(obs))
    hmm.burn_in = int(np.sum(dh.tseq.tto <= dh.tseq.BurnIn))  # DAPPER's burn-in, in cycles
    # 3D-/4D-Var's B: the covariance of a free run (Lorenz-96: 1,000 time units, the 40 x 40 covariance
    # needs the longer run; 100 gives 0.42 instead of 0.41 on the tuning truths)
    B = A.climatology(hmm, 2000 if a.setup == "l63" else 20000, torch.Generator().manual_seed(1))
    print(f"{hmm.name}, {len(truth_seeds)} seeds (truth seeds "
          + ", ".join(f"{1000 + b}..{1000 + b + a.seeds - 1}" for b in blocks) + ") x "
          f"{a.cycles} cycles, burn-in {hmm.burn_in} cycles; torch threads {a.threads}")
    print(f"{'method':18s} {'DAPPER RMSE':>16s} {'difflens RMSE':>16s} {'published':>9s} {'DAPPER s':>9s} "
          f"{'difflens s':>10s} {'speed-up':>8s}", flush=True)
    names = list(table) if a.methods is None else a.methods.split(",")
    for name in names:
        d_make, f_make, published = table[name]
        d_all, f_all = [], []
        for rep in range(a.repeats):
            off = 10000 * rep  # repeat 0: DAPPER seeds 2000 + first_seed + i, difflens generator 3 + first_seed
            d_rmse, d_sec = [], 0.0
            if not a.no_dapper:
                try:
                    for s, ts in enumerate(truth_seeds):
                        r, sec = dapper_run(d_make, dh, fulls[s], yys[s], ts + 1000 + off)
                        d_rmse.append(r)
                        d_sec += sec
                except Exception as err:
                    print(f"{name:18s} DAPPER fails: {type(err).__name__}: {err}", flush=True)
                    d_rmse, d_sec = [], 0.0
            method = f_make(A, B)
            if isinstance(method, A.Var4D):
                res = method.run(hmm, truth, y)
            else:
                res = A.run_filter(method, hmm, truth, y, torch.Generator().manual_seed(3 + a.first_seed + off))
            fm, fh = A.confidence_interval(res.rmse_a)
            if d_rmse:
                dm, dh_ = A.confidence_interval(d_rmse)
                dap = f"{dm:9.3f} ± {dh_:.3f}"
                ratio = f"{d_sec / res.seconds:8.1f}"
            else:
                dap, ratio = f"{'-':>16s}", f"{'-':>8s}"
            tag = name if a.repeats == 1 else f"{name} r{rep}"
            print(f"{tag:18s} {dap} {fm:9.3f} ± {fh:.3f} {published:9.2f} {d_sec:9.1f} {res.seconds:10.1f} {ratio}",
                  flush=True)
            if len(blocks) > 1:
                for i, b in enumerate(blocks):
                    bm, bh = A.confidence_interval(res.rmse_a[i * a.seeds:(i + 1) * a.seeds])
                    print(f"{'':18s} truth seeds {1000 + b}..{1000 + b + a.seeds - 1}: difflens {bm:.3f} ± {bh:.3f}",
                          flush=True)
            if getattr(method, "rescued", None):
                print(f"{'':18s} rescued (cycle, experiment): {method.rescued}", flush=True)
            if getattr(method, "rescue_tries", 0):
                print(f"{'':18s} windows that failed the lost-window test: {method.rescue_tries}", flush=True)
            print(f"{'':18s} difflens per seed: {np.round(res.rmse_a.numpy(), 3).tolist()}"
                  + (f"; DAPPER: {np.round(d_rmse, 3).tolist()}" if d_rmse else ""), flush=True)
            if d_rmse:
                pm, ph = A.confidence_interval(res.rmse_a - torch.tensor(d_rmse, dtype=res.rmse_a.dtype))
                print(f"{'':18s} paired difference difflens - DAPPER (same truths): {pm:+.3f} ± {ph:.3f}", flush=True)
            d_all += d_rmse
            f_all += res.rmse_a.tolist()
        if a.repeats > 1:
            fm, fh = A.confidence_interval(f_all)
            line = f"{name + ' all':18s} difflens {fm:.3f} ± {fh:.3f} over {len(f_all)} runs"
            if d_all:
                dm, dh_ = A.confidence_interval(d_all)
                pm, ph = A.confidence_interval(torch.tensor(f_all) - torch.tensor(d_all))
                line += (f"; DAPPER {dm:.3f} ± {dh_:.3f} over {len(d_all)} runs; paired difference "
                         f"{pm:+.3f} ± {ph:.3f}")
            print(line, flush=True)

if __name__ == "__main__":
    main()
