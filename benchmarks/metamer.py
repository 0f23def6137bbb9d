"""Metamer synthesis: difflens against plenoptic 1.4, side by side in one process.

The tutorial's setting: the Einstein image (256×256), 31×31 models with
circular padding, Adam(lr=0.01, amsgrad=True), the same white-noise start,
the same number of iterations, range penalty 0.1. Prints per-iteration time,
the ratio, and both final losses (they should agree: same objective, same
optimiser, same start).

    python benchmarks/metamer.py [--iters 200] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch


def plenoptic_models():
    import plenoptic as po

    g = po.simulate.Gaussian((31, 31), std=3.0, pad_mode="circular")
    cs = po.simulate.CenterSurround((31, 31), center_std=1.962, surround_std=4.235, pad_mode="circular")
    lg = po.simulate.LuminanceGainControl((31, 31), pad_mode="circular")
    return _freeze({"Gaussian": g, "CenterSurround": cs, "LuminanceGainControl": lg})


def _freeze(models):
    from difflens.studies.probe import LG_PARAMS

    models["LuminanceGainControl"].load_state_dict({k: torch.as_tensor([v]) for k, v in LG_PARAMS.items()})
    for m in models.values():
        for p in m.parameters():
            p.requires_grad_(False)
        m.eval()
    return models


def run_plenoptic(img, init, model, iters):
    import plenoptic as po

    met = po.synthesize.Metamer(img, model)
    met.setup(initial_image=init, optimizer=torch.optim.Adam, optimizer_kwargs={"lr": 0.01, "amsgrad": True})
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        warnings.simplefilter("ignore")
        met.synthesize(max_iter=iters, stop_criterion=0.0)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds / len(met.losses), float(met.objective_function())


def run_difflens(img, init, model, iters):
    from difflens.synthesize import Metamer

    met = Metamer(img, model, initial_image=init)
    start = time.perf_counter()
    met.synthesize(max_iter=iters, stop_criterion=0.0, progress=False)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(met.objective().sum())
    return seconds / len(met.losses), final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from difflens import data
    from difflens.studies.probe import tutorial_models

    img = data.einstein()
    init = torch.rand(img.shape, generator=torch.Generator().manual_seed(0))
    ours = tutorial_models(torch.device("cpu"))
    theirs = plenoptic_models()
    print(f"metamer synthesis, 256x256, 31x31 kernels, {args.iters} Adam iterations, "
          f"{args.threads} CPU threads, torch {torch.__version__}")
    print(f"{'model':22s} {'plenoptic ms/it':>16s} {'difflens ms/it':>15s} {'speed-up':>9s} "
          f"{'plenoptic loss':>15s} {'difflens loss':>14s}")
    for name in ours:
        run_difflens(img, init, ours[name], 3)  # warm-up (caches, allocator)
        run_plenoptic(img, init, theirs[name], 3)
        t_dl, loss_dl = run_difflens(img, init, ours[name], args.iters)
        t_po, loss_po = run_plenoptic(img, init, theirs[name], args.iters)
        print(f"{name:22s} {1e3 * t_po:16.2f} {1e3 * t_dl:15.2f} {t_po / t_dl:8.1f}x "
              f"{loss_po:15.4e} {loss_dl:14.4e}")


if __name__ == "__main__":
    main()
