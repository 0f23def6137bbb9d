"""Study ``draw``: the seed-001 inverse-graphics autoencoder that learns to draw digits with strokes.

Data: scikit-learn's bundled digits on a 28x28 canvas (no download), or IDX
files in a folder you name::

    difflens run draw --set data_root=~/mnist                      # MNIST
    difflens run draw --set data_root=~/emnist --set dataset=emnist --set subset=balanced
    difflens run draw --set dataset=fashion_mnist --set limit_train=10000   # Debian's dataset-fashion-mnist

``dataset=fashion_mnist`` reads Fashion-MNIST's four IDX files from ``data_root``, or, when
that is not given, from where Debian's ``dataset-fashion-mnist`` package installs them
(``/usr/share/datasets/fashion-mnist``).

The gesture autoencoder is trained on reconstruction alone (the seed's method),
then fine-tuned with IDEC (``--set cluster_weight=0.1``, the default; ``0``
skips that phase). Both sets of commands are clustered and reported. Training
lengths are epoch counts, so one seed gives the same numbers on any load
(``--set time_budget=SECONDS`` adds a wall-clock limit, at the price of that).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from .registry import study
from .settings import StudySettings, setting


@dataclass(frozen=True)
class DrawSettings(StudySettings):
    """Settings of the ``draw`` study. Epoch counts of ``None`` pick the bundled digits' value, or a
    tenth of it (at least 1) for MNIST-size data."""

    PRESETS = {"quick": dict(gesture_epochs=16, static_epochs=8, cluster_epochs=6, limit_train=3000,
                             limit_test=1000, kmeans_restarts=2),
               "full": dict(gesture_epochs=300, static_epochs=120, cluster_epochs=80)}

    data_root: str | None = setting(None, "folder of MNIST/EMNIST/Fashion-MNIST IDX files (none: the bundled "
                                          "digits, or Debian's Fashion-MNIST folder for dataset=fashion_mnist)")
    dataset: str = setting("mnist", "what data_root holds", choices=("mnist", "emnist", "fashion_mnist"))
    subset: str = setting("balanced", "EMNIST subset", choices=("balanced", "byclass", "bymerge", "digits",
                                                                 "letters", "mnist"))
    limit_train: int | None = setting(None, "use at most this many training images of IDX data", minimum=1)
    limit_test: int | None = setting(None, "use at most this many test images of IDX data", minimum=1)
    gesture_epochs: int | None = setting(150, "epochs of gesture autoencoder training", minimum=1)
    cluster_weight: float = setting(0.1, "IDEC clustering weight of the fine-tuning phase (0: skip it)",
                                    minimum=0.0)
    cluster_epochs: int | None = setting(40, "epochs of IDEC fine-tuning", minimum=1)
    static_epochs: int | None = setting(60, "epochs of static-marker autoencoder training", minimum=1)
    kmeans_restarts: int = setting(5, "k-means restarts scored and averaged", minimum=1, maximum=50)
    time_budget: float | None = setting(None, "optional wall-clock limit per gesture run (breaks "
                                              "same-seed-same-numbers)", unit="s", minimum=1.0)
    static_time_budget: float | None = setting(None, "optional wall-clock limit of the static run", unit="s",
                                               minimum=1.0)


#: where Debian's ``dataset-fashion-mnist`` package puts the four IDX files
FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"


def _data(ctx):
    from difflens.data import emnist, load_digits, mnist

    s = ctx.settings
    if s.dataset == "fashion_mnist":
        root = os.path.expanduser(s.data_root or FASHION_MNIST_DEBIAN)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"dataset=fashion_mnist: no folder {root}; set data_root to the folder of "
                                    "Fashion-MNIST's IDX files, or `apt-get install dataset-fashion-mnist`")
        train = mnist(root, "train", limit=s.limit_train, device=ctx.device)
        test = mnist(root, "test", limit=s.limit_test, device=ctx.device)
        return f"Fashion-MNIST from {root}", train, test
    if s.data_root:
        root = os.path.expanduser(s.data_root)
        if s.dataset == "mnist":
            train = mnist(root, "train", limit=s.limit_train, device=ctx.device)
            test = mnist(root, "test", limit=s.limit_test, device=ctx.device)
            return f"MNIST from {root}", train, test
        train = emnist(root, s.subset, "train", limit=s.limit_train, device=ctx.device)
        test = emnist(root, s.subset, "test", limit=s.limit_test, device=ctx.device)
        return f"EMNIST {s.subset} from {root}", train, test
    train = load_digits(28, "train", seed=0, device=ctx.device)
    test = load_digits(28, "test", seed=0, device=ctx.device)
    return "scikit-learn digits, 8x8 resized to 28x28 (1,347 train / 450 test)", train, test


def _configs(ctx, n_train: int):
    from difflens.draw.experiment import DrawConfig

    s = ctx.settings
    bundled = n_train < 5000

    def epochs(value: int | None, bundled_value: int) -> int:
        if value is not None:
            return value
        return bundled_value if bundled else max(1, bundled_value // 10)

    default = DrawSettings()
    seeds = tuple(range(s.kmeans_restarts))
    return (DrawConfig(variant="gesture", epochs=epochs(s.gesture_epochs, default.gesture_epochs),
                       time_budget=s.time_budget, kmeans_seeds=seeds, cluster_weight=s.cluster_weight,
                       cluster_epochs=epochs(s.cluster_epochs, default.cluster_epochs)),
            DrawConfig(variant="static", n_markers=10, max_size=3.5, min_size=0.75, join="max",
                       epochs=epochs(s.static_epochs, default.static_epochs), time_budget=s.static_time_budget,
                       kmeans_seeds=seeds))


@study("draw", title="Inverse graphics: an autoencoder that learns to draw digits with strokes",
       settings=DrawSettings,
       headline=(("kmeans_accuracy_codes", "k-means accuracy, gesture commands"),
                 ("kmeans_accuracy_pixels", "k-means accuracy, pixels"), ("test_mse", "test reconstruction MSE")),
       figure="gesture_reconstruction_test", order=40,
       description="The seed-001 experiment: a network maps a digit image to marker commands, a differentiable "
                   "renderer draws each marker as a 2-D Gaussian and joins them, and the whole is "
                   "trained on reconstruction error. Two decoders: static markers (x, y, size; joined by max "
                   "as in the seed) and one pen gesture (cumulative tanh velocities from the left middle, an "
                   "intensity and size per point; joined by soft-or, 1 - prod(1 - marker), so that faded "
                   "points still get gradient). Then k-means on the learned commands against k-means on "
                   "pixels.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    from difflens.draw.experiment import run_experiment
    from difflens.plot import draw as dplot

    source, train, test = _data(ctx)
    ctx.text(f"Data: {source}.")
    ctx.metric("data", source)
    gesture_cfg, static_cfg = _configs(ctx, len(train[0]))
    results = {}
    for offset, cfg in enumerate((gesture_cfg, static_cfg)):
        with ctx.phase(f"training the {cfg.variant} autoencoder"):
            results[cfg.variant] = run_experiment(train, test, cfg, ctx.generator(offset), log=ctx.log,
                                                  progress=ctx.progress_label(f"draw {cfg.variant}"),
                                                  checkpoint_dir=ctx.checkpoint_dir(cfg.variant),
                                                  resume=ctx.resume)
    g = results["gesture"]
    for key in ("kmeans_accuracy_codes", "kmeans_accuracy_pixels", "hungarian_accuracy_codes",
                "hungarian_accuracy_pixels", "train_seconds", "probe_accuracy_codes", "probe_accuracy_pixels",
                "kmeans_accuracy_codes_std", "hungarian_accuracy_codes_std", "kmeans_accuracy_pixels_std",
                "hungarian_accuracy_pixels_std", "error_ratio_codes_to_pixels", "train_mse", "test_mse",
                "train_psnr", "test_psnr", "epochs", "kmeans_accuracy_codes_autoencoder",
                "hungarian_accuracy_codes_autoencoder", "probe_accuracy_codes_autoencoder", "test_mse_autoencoder",
                "kmeans_accuracy_head", "hungarian_accuracy_head", "cluster_epochs"):
        if key in g.metrics:
            ctx.metric(key, g.metrics[key])
    for key, value in results["static"].metrics.items():
        if key != "config" and not key.endswith("_pixels") and not key.endswith("_pixels_std"):
            ctx.metric(f"static_{key}", value)
    ctx.metric("config", g.metrics["config"])

    # -- reconstructions ----------------------------------------------------
    (xtr, ytr), (xte, yte) = train, test
    pick_tr = torch.cat([torch.nonzero(ytr == c)[:2, 0] for c in torch.unique(ytr)[:10]])
    pick_te = torch.cat([torch.nonzero(yte == c)[:2, 0] for c in torch.unique(yte)[:10]])
    for variant, res in results.items():
        ctx.heading(f"{variant.capitalize()} decoder")
        with torch.no_grad():
            for split, x, pick in (("train", xtr, pick_tr), ("test", xte, pick_te)):
                fig = dplot.reconstruction_grid(x[pick], res.model(x[pick]),
                                                title=f"{variant}: {split} images and their drawings")
                ctx.figure(f"{variant}_reconstruction_{split}", fig,
                           f"{split.capitalize()} images (rows 1, 3) and what the {variant} decoder draws "
                           f"(rows 2, 4). {split} MSE {res.metrics[f'{split}_mse']:.4f}, "
                           f"PSNR {res.metrics[f'{split}_psnr']:.1f} dB.")
            cmd = res.model.commands(xte[pick_te])
        fig = dplot.gesture_tracks(cmd.positions, cmd.sizes, cmd.intensities, xte[pick_te],
                                   shape=xte.shape[-2:], ncols=10, ordered=variant == "gesture",
                                   title=f"{variant}: marker commands (colour = order, dot = size, opacity = ink)")
        ctx.figure(f"{variant}_tracks", fig,
                   "Learned commands on test digits: markers coloured by their index (for the gesture, the "
                   "drawing order from the red cross), dot area by marker size, opacity by intensity.")
        steps, loss, test_it, test_mse, snaps, snap_epochs, phase = _training_record(res)
        fig = dplot.loss_curves(steps, loss, test_it, test_mse, res.trainer.steps_per_epoch,
                                title=f"{variant} training", phase_start=phase, phase_label="IDEC fine-tuning")
        ctx.figure(f"{variant}_loss", fig, "Training loss (reconstruction MSE, plus the smoothness and, after the "
                   "dashed line, the IDEC clustering term) and test reconstruction MSE per epoch.")
        n_frames = min(len(snaps), 10 if ctx.quick else 40)
        frames = np.unique(np.linspace(0, len(snaps) - 1, n_frames).round().astype(int))
        anim = dplot.training_animation([snaps[i] for i in frames], [snap_epochs[i] for i in frames], xte[:16])
        ctx.animation(f"{variant}_training", anim, "Reconstructions of test digits (rows 2-3) over training; "
                      "the targets are in the top row.")

    # -- clustering ---------------------------------------------------------
    ctx.heading("Clustering: commands against pixels")
    rows = []
    tuned = "codes_autoencoder" in g.clustering
    named = [("gesture commands" + (", IDEC fine-tuned" if tuned else ""), g, "codes")]
    if tuned:
        named.append(("gesture commands, autoencoder alone (the seed)", g, "codes_autoencoder"))
    for name, res, feature in (*named, ("static commands", results["static"], "codes"), ("pixels", g, "pixels")):
        s = res.clustering[feature]
        rows.append([name, f"{s['majority']:.3f} ± {s['majority_std']:.3f}",
                     f"{s['hungarian']:.3f} ± {s['hungarian_std']:.3f}", f"{s['probe']:.3f}",
                     f"{1 - s['majority']:.3f}"])
    ctx.table(rows, ["features (test split)", "k-means, majority label", "k-means, one-to-one (Hungarian)",
                     "linear probe", "majority error"],
              caption=f"k-means with k = number of classes, mean ± std over {len(gesture_cfg.kmeans_seeds)} "
                      "seeds; linear probe: logistic regression fitted on the training split.")
    fig = dplot.cluster_matrix({"gesture commands": g.tables["codes"], "static commands":
                                results["static"].tables["codes"], "pixels": g.tables["pixels"]})
    ctx.figure("clusters", fig, "Cluster × label counts of one k-means run (rows ordered by majority label).")


def _training_record(res):
    """Loss, test MSE and snapshots of both training phases on one epoch axis, and where phase 2 starts."""
    spe = res.trainer.steps_per_epoch
    parts = [res.trainer] + ([res.cluster_trainer] if res.cluster_trainer is not None else [])
    steps, loss, test_it, test_mse, snaps, snap_epochs = [], [], [], [], [], []
    offset = 0
    for trainer in parts:
        h = trainer.optimization.history
        steps.append(offset + np.arange(len(h.loss)))
        loss.append(h.loss.cpu().numpy())
        test_it += [offset + i for i in h.iterations("test_mse")]
        test_mse += list(h["test_mse"].numpy())
        keep = range(len(h.snapshots)) if offset == 0 else range(1, len(h.snapshots))  # phase 2's first = last
        snaps += [h.snapshots[i] for i in keep]
        snap_epochs += [(offset + h.snapshot_iterations[i]) / spe for i in keep]
        offset += trainer.optimization.iteration
    phase = res.trainer.optimization.iteration / spe if res.cluster_trainer is not None else None
    return np.concatenate(steps), np.concatenate(loss), test_it, test_mse, snaps, snap_epochs, phase
