"""The draw study's clustering numbers over many seeds, through the sweep engine (local or Ray).

Each seed is one ``difflens run draw`` run (a sub-folder of ``--out``), run by
:func:`difflens.studies.sweep.sweep`; the table compares k-means on the learned
gesture commands against k-means on pixels (majority label and one-to-one
Hungarian accuracy, mean ± std and 95% CI over seeds). ``--backend both`` runs
the same sweep on the local process pool and on a local Ray cluster, prints the
wall-time ratio ray / local and checks that both summaries agree (timing keys
aside). Re-running a command skips finished runs.

    python benchmarks/draw_clustering.py --seeds 0-9 --out /tmp/draw-digits
    python benchmarks/draw_clustering.py --seeds 0-13 --quick --backend both --jobs 2 --out /tmp/draw-ratio
    python benchmarks/draw_clustering.py --seeds 0-9 --quick --set dataset=fashion_mnist --out /tmp/draw-fashion
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

KEYS = [("k-means codes", "kmeans_accuracy_codes"), ("k-means pixels", "kmeans_accuracy_pixels"),
        ("1:1 codes", "hungarian_accuracy_codes"), ("1:1 pixels", "hungarian_accuracy_pixels"),
        ("k-means AE codes", "kmeans_accuracy_codes_autoencoder"), ("probe codes", "probe_accuracy_codes"),
        ("probe pixels", "probe_accuracy_pixels"), ("test MSE", "test_mse"),
        ("error ratio", "error_ratio_codes_to_pixels")]


def untimed(summary) -> list[tuple]:
    """The summary's numbers without timing keys (names with 'seconds' or 'ms_per')."""
    return sorted((r["group"], r["metric"], tuple(r["values"])) for r in summary.rows
                  if "seconds" not in r["metric"] and "ms_per" not in r["metric"])


def table(summary) -> None:
    rows = {r["metric"]: r for r in summary.rows}
    print(f"{'metric':18s} {'n':>3s} {'mean':>7s} {'std':>7s} {'95% CI':>17s} {'min':>7s} {'max':>7s}")
    for label, key in KEYS:
        if key in rows:
            r = rows[key]
            print(f"{label:18s} {r['n']:3d} {r['mean']:7.4f} {r['std']:7.4f} "
                  f"{r['ci_low']:8.4f}-{r['ci_high']:<8.4f} {r['min']:7.4f} {r['max']:7.4f}")
    if "kmeans_accuracy_codes" in rows and "kmeans_accuracy_pixels" in rows:
        codes, pixels = rows["kmeans_accuracy_codes"], rows["kmeans_accuracy_pixels"]
        fewer = 1 - (1 - codes["mean"]) / (1 - pixels["mean"])
        print(f"mean k-means error: codes {1 - codes['mean']:.4f}, pixels {1 - pixels['mean']:.4f} -> "
              f"{100 * fewer:.1f}% fewer errors with codes (target >= 25%)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0-9", help="a range a-b or a comma list")
    scale = ap.add_mutually_exclusive_group()
    scale.add_argument("--quick", action="store_true")
    scale.add_argument("--full", action="store_true")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a study setting")
    ap.add_argument("--backend", default="local", choices=("local", "ray", "both"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    from difflens.studies.sweep import sweep

    preset = "quick" if a.quick else "full" if a.full else "default"
    options = dict(item.split("=", 1) for item in a.set)
    backends = ["local", "ray"] if a.backend == "both" else [a.backend]
    results, walls = {}, {}
    for backend in backends:
        out = Path(a.out) / backend if a.backend == "both" else Path(a.out)
        start = time.perf_counter()
        results[backend] = sweep("draw", out, a.seeds, preset=preset, options=options, backend=backend,
                                 jobs=a.jobs, verbose=True)
        walls[backend] = time.perf_counter() - start
        print(f"{backend}: {walls[backend]:.1f} s wall for {len(results[backend].runs)} runs")
    table(results[backends[-1]])
    if a.backend == "both":
        same = untimed(results["local"]) == untimed(results["ray"])
        ratio = walls["ray"] / walls["local"]
        print(json.dumps({"local_seconds": round(walls["local"], 1), "ray_seconds": round(walls["ray"], 1),
                          "ratio_ray_to_local": round(ratio, 3), "summaries_equal": same}))
        if not math.isfinite(ratio):
            raise SystemExit(1)


if __name__ == "__main__":
    main()
