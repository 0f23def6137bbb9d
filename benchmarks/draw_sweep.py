"""Sweep the drawing autoencoder's clustering settings over seeds, one process per pre-training run.

Each job pre-trains one autoencoder (reconstruction only, the seed's method) and
then fine-tunes copies of it with IDEC under every ``--variants`` setting,
scoring k-means (majority label and one-to-one) on the codes of the *training*
split and of the *test* split. Choose settings by the training-split scores:
the test split's labels then never steer the choice.

    python benchmarks/draw_sweep.py --seeds 0 1 2 3 --jobs 2 --out sweep.json
    python benchmarks/draw_sweep.py --device cuda --seeds 0-15 --jobs 12 --out sweep.json

Variants are ``name:key=value,key=value`` over ``cluster_weight``,
``cluster_epochs`` (scores are also taken at every 10 epochs and at the end), ``cluster_lr``
and ``shift``/``rotate``/``scale`` (affine jitter of the fine-tuning batches).
``--pretrain key=value ...`` changes the pre-training ``DrawConfig``. The
fine-tuning is :func:`difflens.draw.experiment.fine_tune`; a row's ``seconds``
is its phase's wall time from the engine (the autoencoder row: pre-training;
a variant's rows: the whole fine-tuning phase, scoring included).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os


def _parse_kv(text: str) -> dict:
    out = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        out[key] = json.loads(value) if value[:1] in "[{(" else float(value) if any(c in value for c in ".e") \
            else int(value) if value.lstrip("-").isdigit() else value
    return out


def _scores(model, xtr, ytr, xte, yte, seeds):
    from difflens.draw import batched_codes, kmeans_scores
    from difflens.draw.evaluate import to_numpy_features

    ctr, cte = to_numpy_features(batched_codes(model, xtr)), to_numpy_features(batched_codes(model, xte))
    tr = kmeans_scores(ctr, ytr.cpu().numpy(), seeds=seeds)
    te = kmeans_scores(cte, yte.cpu().numpy(), seeds=seeds)
    return {"train_majority": tr["majority"], "train_hungarian": tr["hungarian"],
            "test_majority": te["majority"], "test_hungarian": te["hungarian"]}


def job(args: tuple) -> list[dict]:
    seed, pretrain, variants, device, kmeans_seeds, transductive = args
    import dataclasses

    import torch

    torch.set_num_threads(1)
    from difflens.data import load_digits
    from difflens.draw import DrawConfig, reconstruction_metrics, run_experiment
    from difflens.draw.experiment import fine_tune

    xtr, ytr = load_digits(split="train", device=device)
    xte, yte = load_digits(split="test", device=device)
    config = DrawConfig(**pretrain, kmeans_seeds=kmeans_seeds)
    if transductive:  # train on every image (labels unused); score on the splits as before
        xfit = torch.cat([xtr, xte])
        yfit = torch.cat([ytr, yte])
    else:
        xfit, yfit = xtr, ytr
    base = run_experiment((xfit, yfit), (xte, yte), config, torch.Generator().manual_seed(seed))
    rows = [{"seed": seed, "variant": "autoencoder", "epochs": 0, "seconds": base.metrics["train_seconds"],
             "test_mse": base.metrics["test_mse"], **_scores(base.model, xtr, ytr, xte, yte, kmeans_seeds)}]
    print(json.dumps(rows[-1]), flush=True)
    steps_per_epoch = len(xfit) // min(config.batch_size, len(xfit))
    for name, v in variants.items():
        v = dict(v)
        model = copy.deepcopy(base.model)
        jitter = {k: v.pop(k) for k in ("shift", "rotate", "scale") if k in v}
        tuned = dataclasses.replace(config, cluster_weight=float(v.pop("cluster_weight", 0.1)),
                                    cluster_epochs=int(v.pop("cluster_epochs", 40)),
                                    cluster_lr=float(v.pop("cluster_lr", 1e-3)), cluster_augment=jitter or None)
        if v:
            raise ValueError(f"unknown variant keys {sorted(v)}")
        variant_rows: list[dict] = []

        def score(opt, name=name, model=model, variant_rows=variant_rows):  # every 10 epochs, inside the run
            if opt.iteration % (10 * steps_per_epoch) == 0 or opt.iteration == opt.target:
                variant_rows.append({"seed": seed, "variant": name, "epochs": opt.iteration // steps_per_epoch,
                                     "test_mse": reconstruction_metrics(model, xte)["mse"],
                                     **_scores(model, xtr, ytr, xte, yte, kmeans_seeds)})
                print(json.dumps(variant_rows[-1]), flush=True)

        tuner = fine_tune(model, xfit, tuned, torch.Generator().manual_seed(1000 + seed), n_clusters=10,
                          callbacks=(score,))
        if not tuner.optimization.finished:
            raise KeyboardInterrupt(f"interrupted during the {name} fine-tuning")
        for row in variant_rows:  # the phase's wall time (scoring included), from the engine
            row["seconds"] = tuner.seconds
        rows += variant_rows
    return rows


def _seeds(items: list[str]) -> list[int]:
    out = []
    for item in items:
        a, _, b = item.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", default=["0-3"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pretrain", nargs="*", default=[], help="DrawConfig key=value for pre-training")
    ap.add_argument("--variants", nargs="*", default=["idec:cluster_weight=0.1,cluster_epochs=40"])
    ap.add_argument("--kmeans-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--transductive", action="store_true", help="train on train + test images")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    pretrain = {}
    for item in a.pretrain:  # one key=value each; JSON values may hold commas
        key, _, value = item.partition("=")
        pretrain[key] = json.loads(value) if value[:1] in "[{" else _parse_kv(item)[key]
    variants = {}
    for text in a.variants:
        name, _, spec = text.partition(":")
        variants[name] = _parse_kv(spec)
    tasks = [(s, pretrain, variants, a.device, tuple(a.kmeans_seeds), a.transductive) for s in _seeds(a.seeds)]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ctx = mp.get_context("spawn")
    with ctx.Pool(a.jobs) as pool:
        rows = [r for rs in pool.imap_unordered(job, tasks) for r in rs]
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"pretrain": pretrain, "variants": variants, "transductive": a.transductive, "rows": rows},
                      f, indent=1)
    summarize(rows)


def summarize(rows: list[dict]) -> None:
    import numpy as np

    keys = sorted({(r["variant"], r["epochs"]) for r in rows})
    print(f"{'variant':28s} {'ep':>3s} {'n':>3s} {'train maj':>10s} {'test maj':>9s} {'min':>6s} "
          f"{'test hung':>9s} {'mse':>7s}")
    for variant, epochs in keys:
        rs = [r for r in rows if r["variant"] == variant and r["epochs"] == epochs]
        col = lambda k, rs=rs: np.array([r[k] for r in rs])
        print(f"{variant:28s} {epochs:3d} {len(rs):3d} {col('train_majority').mean():10.3f} "
              f"{col('test_majority').mean():9.3f} {col('test_majority').min():6.3f} "
              f"{col('test_hungarian').mean():9.3f} {col('test_mse').mean():7.4f}")


if __name__ == "__main__":
    main()
