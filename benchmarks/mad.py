"""MAD competition and image-quality metrics: difflens against plenoptic 1.4, side by side in one process.

MAD: the Einstein image (256x256), MSE against 1 - SSIM in all four directions (min/max
of each holding the other), the same starting image (image + 0.1 * Gaussian noise,
clipped to [0, 1]), Adam(lr=0.01, amsgrad=True), the same number of iterations. Prints
per-iteration time, the ratio, and both sides' final optimised and reference metric.

Metrics: forward + backward time of ssim, ms_ssim, nlpd (and mse) on einstein vs curie.

    python benchmarks/mad.py [--iters 100] [--threads 1] [--repeats 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time
import warnings

import torch


def d_mse(x, y):
    from difflens.metric import mse

    return mse(x, y).mean()


def d_ssim(x, y):
    from difflens.metric import ssim

    return 1 - ssim(x, y).mean()


def p_mse(x, y):
    import plenoptic as po

    return po.metric.mse(x, y).mean()


def p_ssim(x, y):
    import plenoptic as po

    return 1 - po.metric.ssim(x, y).mean()


def run_plenoptic(img, init, optimized, reference, minmax, lam, iters):
    import plenoptic as po

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mad = po.synth.MADCompetition(img, optimized, reference, minmax, metric_tradeoff_lambda=lam)
        mad.setup(initial_noise=0.0)  # then start from the shared initial image
    with torch.no_grad():
        mad._mad_image.copy_(init)
    mad._reference_metric_target = reference(img, init).item()
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
        warnings.simplefilter("ignore")
        mad.synthesize(max_iter=iters, stop_criterion=0.0)
    seconds = (time.perf_counter() - start) / iters
    with torch.no_grad():
        return seconds, float(optimized(img, mad.mad_image)), float(reference(img, mad.mad_image))


def run_difflens(img, init, optimized, reference, minmax, lam, iters):
    from difflens.synthesize import MADCompetition

    mad = MADCompetition(img, optimized, reference, minmax, metric_tradeoff_lambda=lam, initial_image=init)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mad.synthesize(max_iter=iters, stop_criterion=0.0, progress=False)
    seconds = (time.perf_counter() - start) / iters
    return seconds, float(mad.optimized_metric_loss[-1]), float(mad.reference_metric_loss[-1])


def time_metric(fn, a, b, repeats):
    x = b.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fn(a, x).sum().backward()
        start = time.perf_counter()
        for _ in range(repeats):
            x.grad = None
            fn(a, x).sum().backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per side; the fastest is kept")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # both sides warn about MAD images leaving [0, 1]

    import plenoptic as po

    from difflens import data, metric

    img = data.einstein()
    noise = torch.randn(img.shape, generator=torch.Generator().manual_seed(0))
    init = (img + 0.1 * noise).clamp(0, 1)
    print(f"MAD competition, einstein 256x256, {args.iters} iterations, {args.threads} thread(s)")
    print(f"{'optimised (direction) / held':<28}{'difflens ms/it':>15}{'plenoptic ms/it':>16}{'ratio':>7}"
          f"{'final opt d / p':>22}{'final ref d / p':>24}")
    # lambdas as the MAD tutorial balances them: ~ratio of the two metrics' scales
    cases = [("mse", "min", "1-ssim", 1.0), ("mse", "max", "1-ssim", 1.0),
             ("1-ssim", "min", "mse", 1000.0), ("1-ssim", "max", "mse", 1000.0)]
    ours = {"mse": d_mse, "1-ssim": d_ssim}
    theirs = {"mse": p_mse, "1-ssim": p_ssim}
    ratios = []
    run_difflens(img, init, d_mse, d_ssim, "min", 1.0, 3)  # warm-up (FFT plans, allocator)
    run_plenoptic(img, init, p_mse, p_ssim, "min", 1.0, 3)
    for opt_name, minmax, ref_name, lam in cases:
        # alternate the two sides and keep each one's faster run (the machine is shared)
        runs_d, runs_p = [], []
        for _ in range(args.rounds):
            runs_d.append(run_difflens(img, init, ours[opt_name], ours[ref_name], minmax, lam, args.iters))
            runs_p.append(run_plenoptic(img, init, theirs[opt_name], theirs[ref_name], minmax, lam, args.iters))
        d, p = min(runs_d), min(runs_p)
        ratios.append(p[0] / d[0])
        print(f"{opt_name + ' (' + minmax + ') / ' + ref_name:<28}{d[0] * 1e3:>15.2f}{p[0] * 1e3:>16.2f}"
              f"{p[0] / d[0]:>7.2f}{d[1]:>11.5f} /{p[1]:>9.5f}{d[2]:>12.6f} /{p[2]:>10.6f}")
    print(f"MAD speed-up: min {min(ratios):.2f}x, mean {sum(ratios) / len(ratios):.2f}x")

    curie = data.curie()
    print(f"\nmetrics, forward + backward on einstein vs curie 256x256, {args.repeats} repeats")
    print(f"{'metric':<10}{'difflens ms':>13}{'plenoptic ms':>14}{'ratio':>8}{'|difference|':>15}")
    for name in ("ssim", "ms_ssim", "nlpd", "mse"):
        ours_fn, theirs_fn = getattr(metric, name), getattr(po.metric, name)
        td = time_metric(ours_fn, img, curie, args.repeats)
        tp = time_metric(theirs_fn, img, curie, args.repeats)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            diff = float((ours_fn(img, curie) - theirs_fn(img, curie)).abs().max())
        print(f"{name:<10}{td * 1e3:>13.2f}{tp * 1e3:>14.2f}{tp / td:>8.2f}{diff:>15.2e}")


if __name__ == "__main__":
    main()
