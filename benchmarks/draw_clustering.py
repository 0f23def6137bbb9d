"""The draw study's clustering numbers over many seeds: the seed's autoencoder, IDEC, pixels.

Runs ``run_experiment`` with the study's default gesture settings (150 epochs,
then 40 epochs of IDEC fine-tuning with weight 0.1) once per seed, one thread
per process, and prints k-means accuracy (majority label and one-to-one) of
the autoencoder's commands, of the fine-tuned commands and of the pixels, on
the test split of the bundled digits.

    python benchmarks/draw_clustering.py --seeds 0-3 --jobs 2
    python benchmarks/draw_clustering.py --seeds 0-13 --jobs 14 --out draw.json   # a 16-core machine
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os


def one(args: tuple) -> dict:
    seed, overrides = args
    import torch

    torch.set_num_threads(1)
    from difflens.data import load_digits
    from difflens.draw import DrawConfig, run_experiment

    cfg = DrawConfig(**{"cluster_weight": 0.1, "cluster_epochs": 40, **overrides})
    res = run_experiment(load_digits(split="train"), load_digits(split="test"), cfg,
                         torch.Generator().manual_seed(seed))
    m = {k: v for k, v in res.metrics.items() if k != "config"}
    m["seed"] = seed
    print(json.dumps({k: m[k] for k in ("seed", "kmeans_accuracy_codes_autoencoder", "kmeans_accuracy_codes",
                                        "train_seconds") if k in m}), flush=True)
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0-3", help="a range a-b or a comma list")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", nargs="*", default=[], help="DrawConfig overrides key=value (JSON values)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if "-" in a.seeds:
        lo, hi = a.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in a.seeds.split(",")]
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in a.set)}
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        rows = sorted(pool.map(one, [(s, overrides) for s in seeds]), key=lambda r: r["seed"])
    if a.out:
        with open(a.out, "w") as f:
            json.dump(rows, f, indent=1)
    table(rows)


def table(rows: list[dict]) -> None:
    import numpy as np

    cols = [("k-means AE", "kmeans_accuracy_codes_autoencoder"), ("k-means IDEC", "kmeans_accuracy_codes"),
            ("pixels", "kmeans_accuracy_pixels"), ("1:1 AE", "hungarian_accuracy_codes_autoencoder"),
            ("1:1 IDEC", "hungarian_accuracy_codes"), ("MSE AE", "test_mse_autoencoder"), ("MSE IDEC", "test_mse"),
            ("train s", "train_seconds")]
    print("seed " + " ".join(f"{name:>12s}" for name, _ in cols))
    for r in rows:
        print(f"{r['seed']:4d} " + " ".join(f"{r.get(key, float('nan')):12.4f}" for _, key in cols))
    means = [np.mean([r.get(key, np.nan) for r in rows]) for _, key in cols]
    print("mean " + " ".join(f"{m:12.4f}" for m in means))
    ae, idec, px = (np.array([r.get(k, np.nan) for r in rows]) for k in
                    ("kmeans_accuracy_codes_autoencoder", "kmeans_accuracy_codes", "kmeans_accuracy_pixels"))
    print(f"error ratio to pixels (mean): AE {np.mean((1 - ae) / (1 - px)):.3f}, IDEC {np.mean((1 - idec) / (1 - px)):.3f}; "
          f"seeds >= 0.90: AE {int((ae >= 0.9).sum())}/{len(rows)}, IDEC {int((idec >= 0.9).sum())}/{len(rows)}")


if __name__ == "__main__":
    main()
