"""Eigendistortions: difflens vs plenoptic 1.4.0, side by side in one process.

(a) A crop of the einstein image through the tutorial's three models (Gaussian,
    CenterSurround, LuminanceGainControl with the tutorial's parameters): the exact
    spectrum, then the top and bottom eigenvalues of each method checked against it
    with :func:`difflens.synthesize.eigendistortion.eigenvalues_close` (within 1%;
    absolute 1e-6·λmax below 1e-4·λmax), and the Jacobian products each method needs
    to get there ("products to 1%", read from the solver's history).
(b) The full 256x256 tutorial eigendistortions: difflens' default (Lanczos) on the
    difflens models and on plenoptic's models; plenoptic's default power method timed
    for ``--plenoptic-iters`` iterations and extrapolated to its default budget.

    python benchmarks/eigendistortion.py                  # crop 32, full 256x256
    python benchmarks/eigendistortion.py --size 48 --skip-full
    python benchmarks/eigendistortion.py --threads 1

Timings are wall-clock on whatever else the machine is running (noisy when shared).
A Jacobian product is one J·v or Jᵀ·u; a Fisher product JᵀJ·v counts two.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from contextlib import contextmanager

os.environ.setdefault("TQDM_DISABLE", "1")  # plenoptic's progress bars flood the table

import torch

import difflens as dl
from difflens.studies.probe import LG_PARAMS, tutorial_models
from difflens.synthesize import Eigendistortion
from difflens.synthesize.eigendistortion import eigenvalues_close


def _freeze(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def difflens_models() -> dict[str, torch.nn.Module]:
    return tutorial_models(torch.device("cpu"))


def plenoptic_models() -> dict[str, torch.nn.Module]:
    import plenoptic as po
    from plenoptic.simulate.canonical_computations.filters import circular_gaussian2d

    class Gaussian(torch.nn.Module):  # the tutorial's own model
        def __init__(self, kernel_size, std_dev=3):
            super().__init__()
            self.kernel_size = kernel_size
            self.conv = torch.nn.Conv2d(1, 1, kernel_size=kernel_size, padding=(0, 0), bias=False)
            self.conv.weight.data[0, 0] = circular_gaussian2d(kernel_size, float(std_dev))

        def forward(self, x):
            x = po.tools.conv.same_padding(x, self.kernel_size, pad_mode="circular")
            return self.conv(x)

    lg = po.simulate.LuminanceGainControl((31, 31), pad_mode="circular")
    lg.load_state_dict({k: torch.as_tensor([v]) for k, v in LG_PARAMS.items()})
    return {"Gaussian": _freeze(Gaussian((31, 31))),
            "CenterSurround": _freeze(po.simulate.CenterSurround(
                (31, 31), center_std=1.962, surround_std=4.235, pad_mode="circular")),
            "LuminanceGainControl": _freeze(lg)}


@contextmanager
def count_plenoptic_products():
    """Count plenoptic's Fisher-vector products (2 Jacobian products per vector)."""
    import plenoptic.synthesize.autodiff as ad
    import plenoptic.synthesize.eigendistortion as pe

    counter = {"products": 0}
    original = ad._fisher_info_matrix_vector_product

    def counted(y, x, v, dummy_vec):
        counter["products"] += 2 * v.shape[1]
        return original(y, x, v, dummy_vec)

    ad._fisher_info_matrix_vector_product = pe._fisher_info_matrix_vector_product = counted
    try:
        yield counter
    finally:
        ad._fisher_info_matrix_vector_product = pe._fisher_info_matrix_vector_product = original


def _first(products: torch.Tensor, ok: torch.Tensor) -> int | None:
    """Products at the first iteration from which ``ok`` holds to the end (None: never)."""
    bad = (~ok).nonzero()
    start = 0 if len(bad) == 0 else int(bad[-1]) + 1
    return int(products[start]) if start < len(ok) else None


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "NO"
    if isinstance(x, float):
        return f"{x:.3g}"
    return str(x)


def part_a(size: int, power_iters: int, rows: list, ratios: list, crop_fisher: dict) -> None:
    img = dl.data.einstein()[..., 128 - size // 2:128 + size // 2, 128 - size // 2:128 + size // 2]
    img = img.contiguous()
    pl_models = plenoptic_models()
    import plenoptic as po
    for name, model in difflens_models().items():
        t = time.perf_counter()
        ex = Eigendistortion(img, model).synthesize("exact")
        t_ex = time.perf_counter() - t
        lam = ex.eigenvalues.double()
        lmax, want = float(lam[0]), torch.stack([lam[0], lam[-1]])
        rows.append([name, "difflens exact", ex.n_products, "-", "yes", "yes", t_ex])
        t = time.perf_counter()
        pe = po.synthesize.Eigendistortion(img, pl_models[name])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pe.synthesize("exact")
        t_pe = time.perf_counter() - t
        pe_ok = eigenvalues_close(pe.eigenvalues[[0, -1]], want, lmax)
        rows.append([name, "plenoptic exact", size * size, "-", bool(pe_ok[0]), bool(pe_ok[1]), t_pe])

        t = time.perf_counter()
        lz = Eigendistortion(img, model).synthesize()
        t_lz = time.perf_counter() - t
        h = lz.info["history"]
        ok = eigenvalues_close(h["values"], want, lmax)
        lz_first = _first(h["products"], ok.all(1))
        fin = eigenvalues_close(lz.eigenvalues, want, lmax)
        rows.append([name, "difflens lanczos (default)", lz.n_products, lz_first or "never", bool(fin[0]),
                     bool(fin[1]), t_lz])

        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pw = Eigendistortion(img, model).synthesize("power", max_iter=power_iters, tol=1e-10)
        t_pw = time.perf_counter() - t
        h, ph = pw.info["history"], pw.info["history"]["phase"]
        p0, p1 = h["products"][ph == 0], h["products"][ph == 1]
        top_first = _first(p0, eigenvalues_close(h["values"][ph == 0, 0], lam[0], lmax))
        bot_first = _first(p1 - p0[-1], eigenvalues_close(h["values"][ph == 1, 0], lam[-1], lmax))
        pw_first = None if top_first is None or bot_first is None else top_first + bot_first
        fin = eigenvalues_close(pw.eigenvalues, want, lmax)
        rows.append([name, f"difflens power (tol 1e-10, max_iter {power_iters})", pw.n_products,
                     pw_first or "never", bool(fin[0]), bool(fin[1]), t_pw])

        t = time.perf_counter()
        with count_plenoptic_products() as counter, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pp = po.synthesize.Eigendistortion(img, pl_models[name])
            pp.synthesize("power")  # plenoptic's default: max_iter 1000, stop_criterion 1e-7
        t_pp = time.perf_counter() - t
        fin = eigenvalues_close(pp.eigenvalues, want, lmax)
        rows.append([name, "plenoptic power (default)", counter["products"], "-", bool(fin[0]),
                     bool(fin[1]), t_pp])
        crop_fisher[name] = counter["products"] // 2
        ratios.append([name, lz_first, pw_first,
                       None if pw_first is None or lz_first is None else pw_first / lz_first])
        print(f"  (a) {name}: λmax {lmax:.4g}, λmin {float(lam[-1]):.3g}, "
              f"{int((lam < 1e-4 * lmax).sum())}/{len(lam)} eigenvalues below 1e-4·λmax", flush=True)


def _fisher_seconds(model, img, repeat: int = 3) -> float:
    """Seconds per Fisher product JᵀJ·v of ``model`` at ``img`` through difflens' operator."""
    op = Eigendistortion(img, model).operator
    v = torch.randn(1, op.n, generator=torch.Generator().manual_seed(0))
    op.fisher(v)
    t = time.perf_counter()
    for _ in range(repeat):
        op.fisher(v)
    return (time.perf_counter() - t) / repeat


def part_b(plenoptic_iters: int, run_on_plenoptic_models: bool, rows: list,
           crop_fisher: dict) -> None:
    import plenoptic as po
    img = dl.data.einstein()
    pl_models = plenoptic_models()
    for name, model in difflens_models().items():
        t = time.perf_counter()
        eig = Eigendistortion(img, model).synthesize()
        t_dl = time.perf_counter() - t
        fs_dl, fs_pm = _fisher_seconds(model, img), _fisher_seconds(pl_models[name], img)
        t_dl_pm = None
        if run_on_plenoptic_models:
            t = time.perf_counter()
            Eigendistortion(img, pl_models[name]).synthesize()
            t_dl_pm = time.perf_counter() - t
        t = time.perf_counter()
        with count_plenoptic_products() as counter, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pe = po.synthesize.Eigendistortion(img, pl_models[name])
            pe.synthesize("power", max_iter=plenoptic_iters)
        t_pl = time.perf_counter() - t
        per_fisher = t_pl / (counter["products"] / 2)
        full = per_fisher * 2 * 2 * 1000  # 2 Fisher products per iteration, 1000 top + 1000 bottom
        lam = eig.eigenvalues
        like_crop = per_fisher * crop_fisher[name] if name in crop_fisher else None
        rows.append([name, f"{float(lam[0]):.4g} / {float(lam[1]):.2g}", eig.n_products, t_dl,
                     fs_dl, fs_pm, t_dl_pm, per_fisher, full, full / t_dl, like_crop,
                     None if like_crop is None else like_crop / t_dl])
        print(f"  (b) {name} done", flush=True)


def table(headers: list[str], rows: list) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def report_a(size: int, rows: list, ratios: list) -> None:
    print(f"\n(a) einstein crop {size}x{size}; within 1% = eigenvalues_close "
          "(relative above 1e-4·λmax, else absolute 1e-6·λmax)\n")
    print(table(["model", "method", "Jacobian products (run)", "products to 1% (top+bottom)",
                 "top within 1%", "bottom within 1%", "time s"], rows))
    print()
    print(table(["model", "lanczos products to 1%", "power products to 1%",
                 "power / lanczos"], ratios))


def report_b(plenoptic_iters: int, rows: list) -> None:
    print("\n(b) full 256x256 tutorial eigendistortions. difflens: default Lanczos (tol 1e-7) on "
          "the difflens models.\n    plenoptic: its default power method on its models, timed "
          f"for {plenoptic_iters} iterations of each of its top/bottom loops, then EXTRAPOLATED\n"
          "    to its default max_iter (1000 top + 1000 bottom iterations, 2 Fisher products "
          "each): an upper bound,\n    its stop criterion may end earlier; and (second "
          "estimate) to the Fisher products it used on the crop\n    in (a). Fisher product = "
          "JᵀJ·v = 2 Jacobian products.\n")
    print(table(["model", "difflens λmax / λmin", "Jacobian products", "difflens s",
                 "s / Fisher product: difflens model", ("s / Fisher product: plenoptic model, "
                 "difflens operator"), "difflens solver on plenoptic model s",
                 "s / Fisher product: plenoptic", "plenoptic full run s (EXTRAPOLATED, 2000 it)",
                 "plenoptic / difflens", "plenoptic s (EXTRAPOLATED, crop's products)",
                 "plenoptic / difflens (crop's products)"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="crop size for part (a)")
    ap.add_argument("--power-iters", type=int, default=16000,
                    help="max_iter of difflens power in (a), run with tol 1e-10")
    ap.add_argument("--plenoptic-iters", type=int, default=3,
                    help="plenoptic power iterations timed at 256x256 in (b)")
    ap.add_argument("--skip-crop", action="store_true", help="skip part (a)")
    ap.add_argument("--skip-full", action="store_true", help="skip part (b)")
    ap.add_argument("--solver-on-plenoptic-models", action="store_true",
                    help="(b): also run difflens' solver on plenoptic's models (slow: minutes)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU", flush=True)
    crop_fisher: dict[str, int] = {}
    if not args.skip_crop:
        rows, ratios = [], []
        part_a(args.size, args.power_iters, rows, ratios, crop_fisher)
        report_a(args.size, rows, ratios)
    if not args.skip_full:
        rows_b = []
        part_b(args.plenoptic_iters, args.solver_on_plenoptic_models, rows_b, crop_fisher)
        report_b(args.plenoptic_iters, rows_b)


if __name__ == "__main__":
    main()
