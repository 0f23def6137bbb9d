"""plenoptic 1.4.0 and difflens pyramids side by side: forward + backward time, in one process.

    nice -n 10 python benchmarks/pyramid.py --repeats 30

Steerable pyramid at 256x256, 4 scales, 4 orientations (order 3), real and complex,
and the Laplacian pyramid (5 scales), on the Einstein photograph: each side runs
``loss = sum of squared coefficients; loss.backward()`` ``--repeats`` times after a
warm-up, alternating sides so machine load hits both alike. Printed: the median
milliseconds per forward+backward of each side, their ratio (plenoptic / difflens),
the largest coefficient difference, and the construction time of each steerable pyramid.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch


def fwd_bwd(model, x):
    x = x.detach().requires_grad_()
    t0 = time.perf_counter()
    out = model(x)
    values = list(out.values()) if isinstance(out, dict) else list(out)
    loss = sum((torch.view_as_real(v) if v.is_complex() else v).square().sum() for v in values)
    loss.backward()
    return time.perf_counter() - t0, values


def max_diff(a, b):
    return max((u - v).abs().max().item() for u, v in zip(a, b))


def main() -> None:
    import plenoptic as po

    from difflens.data import einstein
    from difflens.simulate import LaplacianPyramid, SteerablePyramidFreq

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")
    x = einstein().repeat(a.batch, 1, 1, 1)
    print(f"256x256 einstein x {a.batch}, torch threads {a.threads}, median of {a.repeats} runs; "
          "the machine may be shared with other jobs, so absolute times vary, ratios less so")
    print(f"{'case':34s} {'plenoptic ms':>13s} {'difflens ms':>12s} {'ratio':>7s} {'max |diff|':>11s}")
    cases = []
    for is_complex in (False, True):
        t0 = time.perf_counter()
        theirs = po.simul.SteerablePyramidFreq((256, 256), height=4, order=3, is_complex=is_complex)
        t1 = time.perf_counter()
        mine = SteerablePyramidFreq((256, 256), height=4, order=3, is_complex=is_complex)
        t2 = time.perf_counter()
        cases.append((f"steerable 4x4 {'complex' if is_complex else 'real'}", theirs, mine,
                      (t1 - t0, t2 - t1)))
    cases.append(("laplacian 5 scales", po.simul.LaplacianPyramid(5), LaplacianPyramid(5), None))
    for name, theirs, mine, build in cases:
        for _ in range(3):
            fwd_bwd(theirs, x)
            fwd_bwd(mine, x)
        tt, tm = [], []
        for _ in range(a.repeats):
            s, ref = fwd_bwd(theirs, x)
            tt.append(s)
            s, out = fwd_bwd(mine, x)
            tm.append(s)
        mt, mm = statistics.median(tt) * 1e3, statistics.median(tm) * 1e3
        print(f"{name:34s} {mt:13.2f} {mm:12.2f} {mt / mm:7.2f} {max_diff(ref, out):11.2e}")
        if build:
            print(f"{'  construction':34s} {build[0] * 1e3:13.1f} {build[1] * 1e3:12.1f} "
                  f"{build[0] / build[1]:7.2f}")


if __name__ == "__main__":
    main()
