"""The seed's whole workflow in one call: build, train, reconstruct, cluster codes against pixels.

:func:`run_experiment` works on any ``(images, labels)`` pair of splits;
:func:`train_on` points it at MNIST or EMNIST IDX files in a folder.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from .autoencoder import ConvEncoder, DrawingAutoencoder, GestureDecoder, MLPEncoder, StaticDecoder
from .evaluate import cluster_comparison, contingency, to_numpy_features
from .train import DrawTrainer, batched_codes, reconstruction_metrics

__all__ = ["DrawConfig", "DrawResult", "build_model", "run_experiment", "train_on"]


@dataclass
class DrawConfig:
    """Settings of one drawing autoencoder run (lengths in pixels of the 28x28 canvas).

    variant: ``"gesture"`` (one stroke, the seed's second model) or ``"static"`` (independent markers).
    encoder: ``"mlp"`` or ``"conv"``; hidden: the encoder's dense layer widths.
    n_markers: markers (static) or points along the stroke (gesture).
    max_step: gesture step bound; speed: ``"free"`` (tanh velocities) or ``"constant"``.
    min_size, max_size: marker standard deviation range.
    join: how markers combine; default ``"softor"``, not the seed's ``"max"``: under the hard max a
        point whose intensity reaches 0 never wins a pixel, gets no gradient and stays dead, which
        on the bundled digits left some seeds with a third of the gesture unused (test MSE 0.011
        against 0.0055 with soft-or).
    epochs, batch_size, lr: Adam with cosine decay over ``epochs``; ``lr=None`` (default) takes 2e-3 for
        the gesture and 1e-3 for static markers. 2e-3 for the gesture gave lower test MSE than 1e-3
        on the bundled digits (0.0043-0.0052 against 0.0047-0.0060 over 5 seeds, with smoothness 1e-3).
    smoothness: gesture penalty weight on squared velocity changes (:class:`DrawTrainer`); default
        1e-3 (alone at lr 1e-3 it lowered the test MSE to 0.0047-0.0052 over 5 seeds from
        0.0047-0.0060); no effect on static markers.
    augment: random affine jitter of training batches (see :func:`~difflens.draw.train.random_affine`).
    cluster_weight: ``0`` (default) trains on reconstruction alone, the seed's method. ``> 0`` adds a
        second phase after ``epochs``: IDEC fine-tuning (:mod:`difflens.draw.clustering`), centres from
        k-means on the training codes, loss ``MSE + smoothness + cluster_weight * KL(P || Q)``.
    cluster_epochs, cluster_lr, cluster_augment: that phase's length, Adam rate (cosine decay) and
        affine jitter of its batches (as ``augment``).
    n_clusters: centres of the fine-tuning phase (``None``: the number of distinct training labels).
    time_budget: seconds after which training stops at an epoch end (``None``: no limit); both phases
        share it.
    kmeans_seeds: k-means restarts scored and averaged.
    """

    variant: str = "gesture"
    encoder: str = "mlp"
    hidden: tuple[int, ...] = (256, 256)
    n_markers: int = 20
    max_step: float = 3.0
    speed: str = "free"
    min_size: float = 0.6
    max_size: float = 2.0
    join: str = "softor"
    epochs: int = 150
    batch_size: int = 64
    lr: float | None = None
    smoothness: float = 1e-3
    augment: dict[str, float] | None = None
    cluster_weight: float = 0.0
    cluster_epochs: int = 40
    cluster_lr: float = 1e-3
    cluster_augment: dict[str, float] | None = None
    n_clusters: int | None = None
    time_budget: float | None = None
    kmeans_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self) -> None:
        if self.variant not in ("gesture", "static"):
            raise ValueError(f"variant must be 'gesture' or 'static', got {self.variant!r}")
        if self.encoder not in ("mlp", "conv"):
            raise ValueError(f"encoder must be 'mlp' or 'conv', got {self.encoder!r}")
        self.hidden = tuple(int(h) for h in self.hidden)
        self.kmeans_seeds = tuple(int(s) for s in self.kmeans_seeds)
        if self.lr is None:
            self.lr = 2e-3 if self.variant == "gesture" else 1e-3
        if not self.smoothness >= 0:
            raise ValueError(f"smoothness must be >= 0, got {self.smoothness}")
        if not self.cluster_weight >= 0:
            raise ValueError(f"cluster_weight must be >= 0, got {self.cluster_weight}")
        if self.n_clusters is not None and int(self.n_clusters) < 2:
            raise ValueError(f"n_clusters must be >= 2, got {self.n_clusters}")


@dataclass
class DrawResult:
    """What :func:`run_experiment` returns: the trained model and trainers, and every number measured.

    ``trainer`` ran the reconstruction phase; ``cluster_trainer`` the IDEC phase (``None`` without
    one), whose ``cluster`` is the :class:`~difflens.draw.clustering.ClusterHead`; ``autoencoder``
    is a copy of the model before that phase (``None`` without one).
    """

    config: DrawConfig
    model: DrawingAutoencoder
    trainer: DrawTrainer
    metrics: dict[str, Any]
    clustering: dict[str, dict[str, Any]]
    tables: dict[str, Any] = field(default_factory=dict)
    cluster_trainer: DrawTrainer | None = None
    autoencoder: DrawingAutoencoder | None = None


def build_model(config: DrawConfig, image_shape: tuple[int, int, int], generator: torch.Generator,
                device: torch.device | str = "cpu") -> DrawingAutoencoder:
    """The autoencoder ``config`` describes, its weights drawn from ``generator``."""
    shape = image_shape[-2:]
    if config.variant == "gesture":
        decoder = GestureDecoder(config.n_markers, shape, max_step=config.max_step, min_size=config.min_size,
                                 max_size=config.max_size, join=config.join, speed=config.speed)
    else:
        decoder = StaticDecoder(config.n_markers, shape, min_size=config.min_size, max_size=config.max_size,
                                join=config.join)
    cls = MLPEncoder if config.encoder == "mlp" else ConvEncoder
    encoder = cls(decoder.n_raw, image_shape, hidden=config.hidden, generator=generator)
    return DrawingAutoencoder(encoder, decoder).to(device)


def run_experiment(
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    config: DrawConfig | None = None,
    generator: torch.Generator | None = None,
    n_snapshots: int = 16,
    checkpoint_path: str | os.PathLike | None = None,
    progress: bool | str = False,
    log: Callable[[str], None] | None = None,
) -> DrawResult:
    """Train on ``train`` images, then score reconstructions and clusterings on ``test``.

    ``train`` and ``test`` are ``(images (N, 1, H, W) in [0, 1], labels (N,))``
    on one device. ``generator`` (CPU, default seed 0) draws the weights and the
    batch order. The first ``n_snapshots`` test images are reconstructed after
    every epoch (``result.trainer.opt.history.snapshots``).

    ``result.metrics`` holds ``train_mse``, ``test_mse``, ``train_psnr``,
    ``test_psnr``, ``train_seconds`` (both phases), ``epochs``, and for ``codes`` and
    ``pixels``: ``kmeans_accuracy_*`` (majority label), ``hungarian_accuracy_*``
    (one-to-one), their ``*_std`` over the k-means seeds, and ``probe_accuracy_*``.
    With an IDEC phase, the codes' scores are those after it; the same scores of the
    codes before it (the plain autoencoder) are ``*_codes_autoencoder``, with
    ``test_mse_autoencoder``, and the head's own assignments score ``*_accuracy_head``.
    """
    config = config or DrawConfig()
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    log = log or (lambda message: None)
    (xtr, ytr), (xte, yte) = train, test
    if xtr.ndim != 4 or xte.shape[1:] != xtr.shape[1:]:
        raise ValueError(f"train and test images must be (N, C, H, W) of one size, got {tuple(xtr.shape)} "
                         f"and {tuple(xte.shape)}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("images and labels differ in count")
    model = build_model(config, tuple(xtr.shape[1:]), generator, xtr.device)
    trainer = DrawTrainer(model, xtr, batch_size=config.batch_size, lr=config.lr, epochs=config.epochs,
                          generator=generator, test_images=xte, snapshot_images=xte[:n_snapshots],
                          augment=config.augment, smoothness=config.smoothness, time_budget=config.time_budget,
                          checkpoint_path=checkpoint_path, progress=progress)
    log(f"training {config.variant} autoencoder ({sum(p.numel() for p in model.parameters())} weights) on "
        f"{len(xtr)} images for {config.epochs} epochs")
    trainer.run(config.epochs)
    log(f"trained {trainer.epoch:.1f} epochs in {trainer.seconds:.1f} s (stop: {trainer.opt.stop_reason})")
    metrics: dict[str, Any] = {"train_seconds": trainer.seconds, "epochs": trainer.epoch,
                               "stop_reason": trainer.opt.stop_reason, "config": asdict(config)}
    cluster_trainer = autoencoder = None
    if config.cluster_weight > 0 and config.cluster_epochs > 0:
        autoencoder = copy.deepcopy(model)
        cluster_trainer, before = _fine_tune(model, trainer, xtr, ytr, xte, yte, config, generator, n_snapshots,
                                             checkpoint_path, progress, metrics, log)
        metrics["train_seconds"] = trainer.seconds + cluster_trainer.seconds
    for name, x in (("train", xtr), ("test", xte)):
        m = reconstruction_metrics(model, x)
        metrics[f"{name}_mse"], metrics[f"{name}_psnr"] = m["mse"], m["psnr"]
    start = time.perf_counter()
    features = {
        "codes": (to_numpy_features(batched_codes(model, xtr)), to_numpy_features(batched_codes(model, xte))),
        "pixels": (to_numpy_features(xtr), to_numpy_features(xte)),
    }
    clustering = cluster_comparison(features, ytr, yte, seeds=config.kmeans_seeds)
    if cluster_trainer is not None:
        clustering["codes_autoencoder"] = before
    for name, s in clustering.items():
        metrics[f"kmeans_accuracy_{name}"] = s["majority"]
        metrics[f"kmeans_accuracy_{name}_std"] = s["majority_std"]
        metrics[f"hungarian_accuracy_{name}"] = s["hungarian"]
        metrics[f"hungarian_accuracy_{name}_std"] = s["hungarian_std"]
        metrics[f"probe_accuracy_{name}"] = s["probe"]
    metrics["error_ratio_codes_to_pixels"] = (1 - metrics["kmeans_accuracy_codes"]) / max(
        1e-12, 1 - metrics["kmeans_accuracy_pixels"])
    metrics["evaluate_seconds"] = time.perf_counter() - start
    log(f"k-means (majority) codes {metrics['kmeans_accuracy_codes']:.3f} vs pixels "
        f"{metrics['kmeans_accuracy_pixels']:.3f}; evaluation {metrics['evaluate_seconds']:.1f} s")
    tables = {}
    from sklearn.cluster import KMeans

    for name, (_, fte) in features.items():
        clusters = KMeans(n_clusters=len(torch.unique(yte)), n_init=10, random_state=config.kmeans_seeds[0]
                          ).fit_predict(fte)
        tables[name] = contingency(yte.cpu().numpy(), clusters)[0]
    return DrawResult(config, model, trainer, metrics, clustering, tables, cluster_trainer, autoencoder)


def _fine_tune(model, trainer, xtr, ytr, xte, yte, config, generator, n_snapshots, checkpoint_path, progress,
               metrics, log) -> tuple[DrawTrainer, dict[str, Any]]:
    """The IDEC phase: score the plain autoencoder's codes, then fine-tune with a cluster head."""
    from .clustering import ClusterHead
    from .evaluate import hungarian_accuracy, majority_accuracy

    train_codes = batched_codes(model, xtr)
    # run_experiment files these scores under "codes_autoencoder" with the others
    test_codes = batched_codes(model, xte)
    before = cluster_comparison({"codes": (to_numpy_features(train_codes), to_numpy_features(test_codes))},
                                ytr, yte, seeds=config.kmeans_seeds)["codes"]
    metrics["test_mse_autoencoder"] = reconstruction_metrics(model, xte)["mse"]
    k = int(config.n_clusters) if config.n_clusters is not None else len(torch.unique(ytr))
    head = ClusterHead.from_kmeans(train_codes, k, generator)
    budget = None if config.time_budget is None else max(1e-3, config.time_budget - trainer.seconds)
    path = None if checkpoint_path is None else f"{os.fspath(checkpoint_path)}.cluster"
    tuner = DrawTrainer(model, xtr, batch_size=config.batch_size, lr=config.cluster_lr,
                        epochs=config.cluster_epochs, generator=generator, test_images=xte,
                        snapshot_images=xte[:n_snapshots], augment=config.cluster_augment,
                        smoothness=config.smoothness, cluster=head, cluster_weight=config.cluster_weight,
                        time_budget=budget, checkpoint_path=path,
                        progress=f"{progress} (clustering)" if isinstance(progress, str) else progress)
    log(f"IDEC fine-tuning with {k} centres for {config.cluster_epochs} epochs "
        f"(plain autoencoder codes: k-means {before['majority']:.3f})")
    tuner.run(config.cluster_epochs)
    predicted = head.predict(batched_codes(model, xte)).cpu().numpy()
    metrics["kmeans_accuracy_head"] = majority_accuracy(yte.cpu().numpy(), predicted)
    metrics["hungarian_accuracy_head"] = hungarian_accuracy(yte.cpu().numpy(), predicted)
    metrics["cluster_epochs"] = tuner.epoch
    log(f"fine-tuned {tuner.epoch:.1f} epochs in {tuner.seconds:.1f} s")
    return tuner, before


def train_on(root: str | os.PathLike, dataset: str = "mnist", subset: str = "balanced",
             config: DrawConfig | None = None, seed: int = 0, limit_train: int | None = None,
             limit_test: int | None = None, device: torch.device | str = "cpu",
             progress: bool | str = True, checkpoint_path: str | os.PathLike | None = None) -> DrawResult:
    """Run :func:`run_experiment` on MNIST (``dataset="mnist"``) or EMNIST IDX files in ``root``.

    ``subset`` picks the EMNIST subset; ``limit_*`` keep the first samples of
    each split. With no ``config``, the default gesture model trains for 10
    epochs (60,000 images make an epoch 45 times longer than the bundled set's).
    """
    from difflens.data.idx import emnist, mnist

    if dataset == "mnist":
        train = mnist(root, "train", limit=limit_train, device=device)
        test = mnist(root, "test", limit=limit_test, device=device)
    elif dataset == "emnist":
        train = emnist(root, subset, "train", limit=limit_train, device=device)
        test = emnist(root, subset, "test", limit=limit_test, device=device)
    else:
        raise ValueError(f"dataset must be 'mnist' or 'emnist', got {dataset!r}")
    config = config or DrawConfig(epochs=10)
    return run_experiment(train, test, config, torch.Generator().manual_seed(int(seed)), progress=progress,
                          checkpoint_path=checkpoint_path, log=lambda m: print(m, flush=True))
