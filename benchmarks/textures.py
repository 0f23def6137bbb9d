"""Portilla-Simoncelli texture metamers: difflens against plenoptic 1.4, side by side in one process.

For each bundled texture (256x256, 4 scales, 4 orientations, spatial_corr_width 9): the same
start (the texture's mean + 0.2 * uniform noise), the same loss (plenoptic's
``portilla_simoncelli_loss_factory``, difflens's ``portilla_simoncelli_loss``), range penalty
0.1, the same optimiser (Adam(lr=0.01, amsgrad=True) by default, or plenoptic's tutorial
L-BFGS with ``--lbfgs``) and the same number of iterations. The two syntheses run interleaved,
``--chunk`` iterations of one then of the other (both resume), so load from other processes
hits both alike. Prints per-iteration wall and CPU (process) time of each: the mean over the
run and the best chunk, the ratios, both final losses and their relative difference, how many
difflens iterations reach plenoptic's final loss (to 1e-5 relative, the float32 rounding of two
different computations), and the largest pixel difference of the two metamers. Also the model
alone: forward + backward at 256x256, interleaved repeats, best of each.

    python benchmarks/textures.py [--iters 100] [--chunk 5] [--threads 1] [--lbfgs] [--textures brick gravel]

On a machine shared with other jobs the wall times inflate; the CPU times less so, and the
best chunk least. Report the load (``uptime``) beside the numbers.
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


class Timer:
    """Wall and CPU seconds per iteration: totals and the best chunk."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.iters = 0
        self.best_wall = self.best_cpu = float("inf")

    @contextlib.contextmanager
    def chunk(self, n):
        w, c = time.perf_counter(), time.process_time()
        yield
        w, c = time.perf_counter() - w, time.process_time() - c
        self.wall, self.cpu, self.iters = self.wall + w, self.cpu + c, self.iters + n
        self.best_wall, self.best_cpu = min(self.best_wall, w / n), min(self.best_cpu, c / n)


def plenoptic_metamer(img, init, lbfgs):
    import plenoptic as po

    model = po.simul.PortillaSimoncelli(img.shape[-2:])
    loss = po.tools.optim.portilla_simoncelli_loss_factory(model, img)
    met = po.synth.Metamer(img, model, loss_function=loss)
    cls, kw = optimizer(lbfgs)
    met.setup(initial_image=init.clone(), optimizer=cls, optimizer_kwargs=kw)

    def step(n):
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            met.synthesize(max_iter=n, stop_criterion=0.0)

    def final():
        with torch.no_grad():
            return float(met.objective_function()), met.metamer.detach()

    return step, final


def difflens_metamer(img, init, lbfgs):
    from difflens.simulate import PortillaSimoncelli, portilla_simoncelli_loss
    from difflens.synthesize import Metamer

    model = PortillaSimoncelli(img.shape[-2:])
    met = Metamer(img, model, loss_function=portilla_simoncelli_loss(model, img), initial_image=init.clone())
    cls, kw = optimizer(lbfgs)
    met.setup(optimizer=lambda p: cls(p, **kw))

    def step(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            met.synthesize(n, stop_criterion=0.0, progress=False)

    def final():
        with torch.no_grad():
            return float(met.objective().sum()), met.metamer.detach(), met.losses

    return step, final


def model_time(repeats=7):
    import plenoptic as po

    from difflens import data
    from difflens.simulate import PortillaSimoncelli

    img = data.brick()
    models = {"plenoptic": po.simul.PortillaSimoncelli((256, 256)), "difflens": PortillaSimoncelli((256, 256))}
    timers = {name: Timer() for name in models}
    x = img.clone().requires_grad_(True)
    for m in models.values():
        for _ in range(2):
            m(x).sum().backward()
    for _ in range(repeats):
        for name, m in models.items():
            with timers[name].chunk(1):
                m(x).sum().backward()
    return timers


def _ms(t):
    return (f"{1000 * t.wall / t.iters:7.1f} {1000 * t.best_wall:7.1f} {1000 * t.cpu / t.iters:7.1f} "
            f"{1000 * t.best_cpu:7.1f}")


def _ratios(p, d):
    return (f"{p.wall / p.iters / (d.wall / d.iters):5.2f} {p.best_wall / d.best_wall:5.2f} "
            f"{p.cpu / p.iters / (d.cpu / d.iters):5.2f} {p.best_cpu / d.best_cpu:5.2f}")


def main() -> None:
    from difflens import data

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=5, help="iterations of one side before switching (default 5)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lbfgs", action="store_true", help="plenoptic tutorial's L-BFGS instead of Adam")
    ap.add_argument("--textures", nargs="+", default=list(data.textures()))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    opt = "L-BFGS(lr=1, max_iter=10, strong_wolfe)" if args.lbfgs else "Adam(lr=0.01, amsgrad=True)"
    print(f"PS texture metamers, 256x256, 4 scales x 4 orientations, width 9, {opt}, {args.iters} iterations "
          f"in chunks of {args.chunk}, {args.threads} thread(s); the machine may be loaded by other processes")
    head = "wall/it  best    cpu/it  best"
    print(f"{'ms':14s} {'plenoptic: ' + head:>41s} | {'difflens: ' + head:>40s} | ratio wall best cpu best")
    t = model_time()
    print(f"{'model fwd+bwd':14s} {_ms(t['plenoptic']):>41s} | {_ms(t['difflens']):>40s} | "
          f"{_ratios(t['plenoptic'], t['difflens'])}")
    rows = []
    for i, name in enumerate(args.textures):
        img = data.load_image(name)
        init = start_image(img, i)
        sides = {"plenoptic": plenoptic_metamer(img, init, args.lbfgs), "difflens": difflens_metamer(img, init, args.lbfgs)}
        timers = {k: Timer() for k in sides}
        done = 0
        while done < args.iters:
            n = min(args.chunk, args.iters - done)
            for k, (step, _) in sides.items():
                with timers[k].chunk(n):
                    step(n)
            done += n
        p_loss, p_x = sides["plenoptic"][1]()
        d_loss, d_x, d_losses = sides["difflens"][1]()
        print(f"{name:14s} {_ms(timers['plenoptic']):>41s} | {_ms(timers['difflens']):>40s} | "
              f"{_ratios(timers['plenoptic'], timers['difflens'])}")
        target = p_loss * (1 + 1e-5)  # plenoptic's final loss, up to float32 rounding of the two paths
        reached = (d_losses <= target).nonzero()
        its = int(reached[0]) if len(reached) else (args.iters if d_loss <= target else -1)
        rows.append(f"{name:14s} {p_loss:10.5g} {d_loss:10.5g} {abs(d_loss - p_loss) / p_loss:9.1e} "
                    f"{its if its >= 0 else 'not reached':>18} {float((p_x - d_x).abs().max()):18.2e}")
    print(f"\n{'texture':14s} {'po loss':>10s} {'dl loss':>10s} {'rel diff':>9s} {'dl its to po loss':>18s} "
          f"{'max |x_po - x_dl|':>18s}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
