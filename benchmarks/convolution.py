"""Front-end model speed: difflens vs plenoptic 1.4.0, forward + backward through the image.

This is the inner loop of metamer synthesis: a frozen model (``remove_grad``), an
image that requires grad, ``loss.backward()``. Both libraries run side by side in
one process on the same input with the same parameters.

    python benchmarks/convolution.py                 # 256x256, 31x31, all models
    python benchmarks/convolution.py --size 128 --kernel 15 --pad reflect
    python benchmarks/convolution.py --crossover     # FFT vs direct path sweep

Numbers are medians of ``--repeat`` timings; the machine may be shared (noisy).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import difflens as dl

MODELS = ["Gaussian", "CenterSurround", "LinearNonlinear", "LuminanceGainControl",
          "LuminanceContrastGainControl", "OnOff"]


CLOCK = time.perf_counter


def _time(fn: Callable[[], None], repeat: int, min_time: float = 0.05) -> float:
    fn()
    fn()
    samples = []
    for _ in range(repeat):
        n, start = 0, CLOCK()
        while True:
            fn()
            n += 1
            elapsed = CLOCK() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / n)
    return statistics.median(samples)


def _step(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> Callable[[], None]:
    def fn() -> None:
        x.grad = None
        loss = (model(x) - target).pow(2).mean()
        loss.backward()
    return fn


def compare_models(size: int, kernel: int, pad: str, batch: int, repeat: int, dtype: torch.dtype,
                   models: list[str]) -> list[tuple]:
    import plenoptic as po

    gen = torch.Generator().manual_seed(0)
    img = torch.rand(batch, 1, size, size, generator=gen, dtype=dtype)
    rows = []
    for name in models:
        p_model = getattr(po.simulate, name)(kernel, pad_mode=pad).to(dtype)
        d_model = getattr(dl.simulate, name)(kernel, pad_mode=pad).to(dtype)
        d_model.load_state_dict(p_model.state_dict())
        for m in (p_model, d_model):
            po.tools.remove_grad(m)
            m.eval()
        with torch.no_grad():
            target = p_model(torch.rand(img.shape, generator=gen, dtype=dtype))
            err = ((d_model(img) - p_model(img)).abs().max() / p_model(img).abs().max()).item()
        xp = img.clone().requires_grad_(True)
        xd = img.clone().requires_grad_(True)
        t_p = _time(_step(p_model, xp, target), repeat)
        t_d = _time(_step(d_model, xd, target), repeat)
        g_err = ((xd.grad - xp.grad).abs().max() / xp.grad.abs().max()).item()
        rows.append((name, t_p * 1e3, t_d * 1e3, t_p / t_d, err, g_err))
    return rows


def crossover(repeat: int, pad: str) -> list[tuple]:
    from difflens.tools.conv import correlate2d

    gen = torch.Generator().manual_seed(0)
    rows = []
    for size in (16, 32, 64, 128, 256):
        for k in (3, 5, 7, 9, 15, 31):
            if k > size:
                continue
            x = torch.rand(1, 1, size, size, generator=gen, requires_grad=True)
            w = torch.rand(2, 1, k, k, generator=gen)
            times = {}
            for method in ("direct", "fft"):
                def fn(method: str = method, x: torch.Tensor = x, w: torch.Tensor = w) -> None:
                    x.grad = None
                    correlate2d(x, w, pad, method=method).pow(2).sum().backward()
                times[method] = _time(fn, repeat, min_time=0.02)
            auto = dl.tools.conv.choose_method(x.shape, w.shape, x.dtype, pad)
            rows.append((size, k, times["direct"] * 1e3, times["fft"] * 1e3,
                         times["direct"] / times["fft"], auto))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--kernel", type=int, default=31)
    parser.add_argument("--pad", default="circular", choices=["circular", "reflect", "constant"])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--float64", action="store_true")
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--crossover", action="store_true", help="sweep FFT vs direct path")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="wall: perf_counter; cpu: process CPU time (robust on a shared "
                             "machine; use with --threads 1)")
    args = parser.parse_args()
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock")
    if args.crossover:
        print(f"\ncorrelate2d forward+backward, 2 kernels, pad_mode={args.pad} (ms)")
        print(f"{'image':>6} {'kernel':>6} {'direct':>9} {'fft':>9} {'direct/fft':>10} {'auto':>7}")
        for size, k, td, tf, r, auto in crossover(args.repeat, args.pad):
            print(f"{size:>6} {k:>6} {td:>9.3f} {tf:>9.3f} {r:>10.2f} {auto:>7}")
        return
    dtype = torch.float64 if args.float64 else torch.float32
    print(f"\nforward+backward per call, {args.batch}x1x{args.size}x{args.size} {dtype}, "
          f"kernel {args.kernel}x{args.kernel}, pad_mode={args.pad}")
    print(f"{'model':<30} {'plenoptic ms':>12} {'difflens ms':>12} {'speed-up':>9} "
          f"{'out rel err':>11} {'grad rel err':>12}")
    for name, tp, td, ratio, err, gerr in compare_models(args.size, args.kernel, args.pad, args.batch,
                                                         args.repeat, dtype, args.models):
        print(f"{name:<30} {tp:>12.2f} {td:>12.3f} {ratio:>8.1f}x {err:>11.1e} {gerr:>12.1e}")


if __name__ == "__main__":
    main()
