"""Portilla-Simoncelli texture metamers: difflens against plenoptic 1.4, side by side in one process.

For each bundled texture (256x256, 4 scales, 4 orientations, spatial_corr_width 9): the same
start (the texture's mean + 0.2 * uniform noise), the same loss (plenoptic's
``portilla_simoncelli_loss_factory``, difflens's ``portilla_simoncelli_loss``), range penalty
0.1, the same optimiser (Adam(lr=0.01, amsgrad=True) by default, or plenoptic's tutorial
L-BFGS with ``--lbfgs``) and the same number of iterations. Prints the per-iteration time of
each, the ratio, both final losses, and how many difflens iterations reach plenoptic's final
loss. Also the model alone: forward + backward time at 256x256.

    python benchmarks/textures.py [--iters 100] [--threads 1] [--lbfgs] [--textures brick gravel]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch


def start_image(img, seed):
    g = torch.Generator().manual_seed(seed)
    return (img.mean() + 0.2 * (torch.rand(img.shape, generator=g) - 0.5)).clamp(0, 1)


def optimizer(lbfgs):
    if lbfgs:
        return torch.optim.LBFGS, {"lr": 1, "max_iter": 10, "max_eval": 12, "history_size": 100,
                                   "line_search_fn": "strong_wolfe"}
    return torch.optim.Adam, {"lr": 0.01, "amsgrad": True}


def run_plenoptic(img, init, iters, lbfgs):
    import plenoptic as po

    model = po.simul.PortillaSimoncelli(img.shape[-2:])
    loss = po.tools.optim.portilla_simoncelli_loss_factory(model, img)
    met = po.synth.Metamer(img, model, loss_function=loss)
    cls, kw = optimizer(lbfgs)
    met.setup(initial_image=init.clone(), optimizer=cls, optimizer_kwargs=kw)
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        met.synthesize(max_iter=iters, stop_criterion=0.0)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        return seconds / iters, float(met.objective_function()), met.metamer.detach()


def run_difflens(img, init, iters, lbfgs):
    from difflens.simulate import PortillaSimoncelli, portilla_simoncelli_loss
    from difflens.synthesize import Metamer

    model = PortillaSimoncelli(img.shape[-2:])
    met = Metamer(img, model, loss_function=portilla_simoncelli_loss(model, img), initial_image=init.clone())
    cls, kw = optimizer(lbfgs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        met.synthesize(iters, optimizer=lambda p: cls(p, **kw), stop_criterion=0.0, progress=False)
    with torch.no_grad():
        final = float(met.objective().sum())
    return met.optimization.history.seconds / iters, final, met.losses, met.metamer.detach()


def model_time(repeats=5):
    import plenoptic as po

    from difflens import data
    from difflens.simulate import PortillaSimoncelli

    img = data.brick()
    out = {}
    for name, m in (("plenoptic", po.simul.PortillaSimoncelli((256, 256))), ("difflens", PortillaSimoncelli((256, 256)))):
        x = img.clone().requires_grad_(True)
        for _ in range(2):
            m(x).sum().backward()
        t = time.perf_counter()
        for _ in range(repeats):
            m(x).sum().backward()
        out[name] = (time.perf_counter() - t) / repeats
    return out


def main() -> None:
    from difflens import data

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lbfgs", action="store_true", help="plenoptic tutorial's L-BFGS instead of Adam")
    ap.add_argument("--textures", nargs="+", default=list(data.textures()))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    opt = "L-BFGS(lr=1, max_iter=10, strong_wolfe)" if args.lbfgs else "Adam(lr=0.01, amsgrad=True)"
    print(f"PS texture metamers, 256x256, 4 scales x 4 orientations, width 9, {opt}, {args.iters} iterations, "
          f"{args.threads} thread(s); the machine may be loaded by other processes")
    t = model_time()
    print(f"model forward+backward: plenoptic {1000 * t['plenoptic']:.1f} ms, difflens {1000 * t['difflens']:.1f} ms, "
          f"ratio {t['plenoptic'] / t['difflens']:.2f}x")
    print(f"{'texture':14s} {'po ms/it':>9s} {'dl ms/it':>9s} {'ratio':>6s} {'po loss':>10s} {'dl loss':>10s} "
          f"{'dl its to po loss':>18s} {'max |x_po - x_dl|':>18s}")
    for i, name in enumerate(args.textures):
        img = data.load_image(name)
        init = start_image(img, i)
        p_it, p_loss, p_x = run_plenoptic(img, init, args.iters, args.lbfgs)
        d_it, d_loss, d_losses, d_x = run_difflens(img, init, args.iters, args.lbfgs)
        reached = (d_losses <= p_loss).nonzero()
        its = int(reached[0]) if len(reached) else (args.iters if d_loss <= p_loss else -1)
        print(f"{name:14s} {1000 * p_it:9.1f} {1000 * d_it:9.1f} {p_it / d_it:6.2f} {p_loss:10.4g} {d_loss:10.4g} "
              f"{its if its >= 0 else 'not reached':>18} {float((p_x - d_x).abs().max()):18.2e}")


if __name__ == "__main__":
    main()
