"""The seed's whole workflow in one call: build, train, reconstruct, cluster codes against pixels.

:func:`run_experiment` works on any ``(images, labels)`` pair of splits;
:func:`train_on` points it at MNIST or EMNIST IDX files in a folder;
:func:`fine_tune` is the IDEC phase on its own, for any trained autoencoder.
With a ``checkpoint_dir``, each training phase checkpoints to its own file there
(:data:`CHECKPOINT_FILES`) and ``resume=True`` continues an interrupted run to
the numbers of an uninterrupted one.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from difflens.engine import Optimization
from difflens.tools.rng import default_generator

from .autoencoder import ConvEncoder, DrawingAutoencoder, GestureDecoder, MLPEncoder, StaticDecoder
from .evaluate import cluster_comparison, contingency, hungarian_accuracy, majority_accuracy, to_numpy_features
from .train import DrawTrainer, batched_codes, reconstruction_metrics

__all__ = ["CHECKPOINT_FILES", "TIMING_KEYS", "DrawConfig", "DrawResult", "build_model", "fine_tune",
           "run_experiment", "train_on"]

#: the checkpoint file of each training phase inside ``run_experiment``'s ``checkpoint_dir``
CHECKPOINT_FILES = {"pre-training": "pretraining.pt", "IDEC fine-tuning": "idec.pt"}
#: the keys of ``DrawResult.metrics`` that are wall-clock times (seconds); every other key is
#: the same between two runs at one seed
TIMING_KEYS = frozenset({"train_seconds", "evaluate_seconds"})


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
    time_budget: seconds after which training stops at an epoch end; both phases share it. Default
        ``None``: no limit, the phases run ``epochs`` and ``cluster_epochs``, so one seed gives the same
        numbers however loaded the machine is (a budget makes them depend on its speed).
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
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | str = False,
    log: Callable[[str], None] | None = None,
    callbacks: tuple[Callable[[Optimization], None], ...] = (),
) -> DrawResult:
    """Train on ``train`` images, then score reconstructions and clusterings on ``test``.

    Parameters
    ----------
    train, test : (Tensor, Tensor)
        ``(images (N, 1, H, W) in [0, 1], labels (N,))`` on one device.
    config : DrawConfig, optional
        The run's settings (default ``DrawConfig()``).
    generator : torch.Generator, optional
        CPU generator of the weights, the batch order and the IDEC centres' k-means seed
        (default :func:`~difflens.tools.rng.default_generator`, seed 0).
    n_snapshots : int
        The first ``n_snapshots`` test images are reconstructed after every epoch
        (``result.trainer.optimization.history.snapshots``). Default 16.
    checkpoint_dir : path-like, optional
        A folder where each training phase checkpoints to its own file
        (:data:`CHECKPOINT_FILES`: ``pretraining.pt``, ``idec.pt``), every 5 epochs, at its
        end and on an interrupt.
    resume : bool
        With ``checkpoint_dir``: load the phases that finished, finish the interrupted one
        from its checkpoint and go on, giving the metrics of an uninterrupted run (timing
        keys aside). Pass the same data, config and a generator in the same state.
    progress : bool or str
        Progress bars (a description names them).
    log : callable, optional
        ``log(message)`` for one-line reports.
    callbacks : tuple of callables
        ``fn(optimization)`` called after every epoch of both phases (after the trainers' own).

    Returns
    -------
    DrawResult
        ``result.metrics`` holds ``train_mse``, ``test_mse``, ``train_psnr``,
        ``test_psnr``, ``train_seconds`` (both phases, from the engines' histories),
        ``evaluate_seconds``, ``epochs``, ``stop_reason``, ``config``, and for ``codes``
        and ``pixels``: ``kmeans_accuracy_*`` (majority label), ``hungarian_accuracy_*``
        (one-to-one), their ``*_std`` over the k-means seeds, and ``probe_accuracy_*``.
        With an IDEC phase, the codes' scores are those after it; the same scores of the
        codes before it (the plain autoencoder) are ``*_codes_autoencoder``, with
        ``test_mse_autoencoder``, and the head's own assignments score ``*_accuracy_head``.
        The keys in :data:`TIMING_KEYS` are wall-clock times; all others are identical
        between two runs at one seed (``config.time_budget`` left at ``None``).

    Raises
    ------
    KeyboardInterrupt
        A phase was interrupted (Ctrl-C, SIGTERM, a callback raising ``KeyboardInterrupt``):
        its checkpoint is written (with ``checkpoint_dir``) and nothing later runs.
    """
    config = config or DrawConfig()
    generator = default_generator(generator)
    log = log or (lambda message: None)
    (xtr, ytr), (xte, yte) = train, test
    if xtr.ndim != 4 or xte.shape[1:] != xtr.shape[1:]:
        raise ValueError(f"train and test images must be (N, C, H, W) of one size, got {tuple(xtr.shape)} "
                         f"and {tuple(xte.shape)}")
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise ValueError("images and labels differ in count")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs the checkpoint_dir of the interrupted run")
    paths = {phase: None if checkpoint_dir is None else Path(checkpoint_dir) / name
             for phase, name in CHECKPOINT_FILES.items()}
    model = build_model(config, tuple(xtr.shape[1:]), generator, xtr.device)
    trainer = DrawTrainer(model, xtr, batch_size=config.batch_size, lr=config.lr, epochs=config.epochs,
                          generator=generator, test_images=xte, snapshot_images=xte[:n_snapshots],
                          augment=config.augment, smoothness=config.smoothness, time_budget=config.time_budget,
                          progress=progress, callbacks=tuple(callbacks))
    log(f"training {config.variant} autoencoder ({sum(p.numel() for p in model.parameters())} weights) on "
        f"{len(xtr)} images for {config.epochs} epochs")
    trainer.run(config.epochs, checkpoint_path=paths["pre-training"], resume=resume)
    _raise_if_interrupted(trainer, "pre-training", config.epochs)
    stop = trainer.optimization.stop_reason
    log(f"trained {trainer.epoch:.1f} epochs in {trainer.seconds:.1f} s (stop: {stop})")
    metrics: dict[str, Any] = {"train_seconds": trainer.seconds, "epochs": trainer.epoch,
                               "stop_reason": stop, "config": asdict(config)}
    cluster_trainer = autoencoder = before = None
    if config.cluster_weight > 0 and config.cluster_epochs > 0:
        autoencoder = copy.deepcopy(model)
        # the plain autoencoder's scores, filed under "codes_autoencoder" with the others below
        before = cluster_comparison({"codes": (to_numpy_features(batched_codes(model, xtr)),
                                               to_numpy_features(batched_codes(model, xte)))},
                                    ytr, yte, seeds=config.kmeans_seeds)["codes"]
        metrics["test_mse_autoencoder"] = reconstruction_metrics(model, xte)["mse"]
        k = int(config.n_clusters) if config.n_clusters is not None else len(torch.unique(ytr))
        log(f"IDEC fine-tuning with {k} centres for {config.cluster_epochs} epochs "
            f"(plain autoencoder codes: k-means {before['majority']:.3f})")
        budget = None if config.time_budget is None else max(1e-3, config.time_budget - trainer.seconds)
        cluster_trainer = fine_tune(
            model, xtr, config, generator, n_clusters=k, test_images=xte, snapshot_images=xte[:n_snapshots],
            time_budget=budget, checkpoint_path=paths["IDEC fine-tuning"], resume=resume,
            progress=f"{progress} (clustering)" if isinstance(progress, str) else progress,
            callbacks=tuple(callbacks))
        _raise_if_interrupted(cluster_trainer, "IDEC fine-tuning", config.cluster_epochs)
        log(f"fine-tuned {cluster_trainer.epoch:.1f} epochs in {cluster_trainer.seconds:.1f} s")
        predicted = cluster_trainer.cluster.predict(batched_codes(model, xte)).cpu().numpy()
        metrics["kmeans_accuracy_head"] = majority_accuracy(yte.cpu().numpy(), predicted)
        metrics["hungarian_accuracy_head"] = hungarian_accuracy(yte.cpu().numpy(), predicted)
        metrics["cluster_epochs"] = cluster_trainer.epoch
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
    if before is not None:
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


def fine_tune(
    model: DrawingAutoencoder,
    images: Tensor,
    config: DrawConfig,
    generator: torch.Generator | None = None,
    *,
    n_clusters: int | None = None,
    test_images: Tensor | None = None,
    snapshot_images: Tensor | None = None,
    time_budget: float | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | str = False,
    callbacks: tuple[Callable[[Optimization], None], ...] = (),
) -> DrawTrainer:
    """The IDEC phase on a trained autoencoder: k-means centres on its codes, then fine-tuning.

    ``model`` is trained in place: centres from k-means on the codes of ``images``
    ``(N, 1, H, W)`` (its seed drawn from ``generator``), then ``config.cluster_epochs``
    epochs of Adam (rate ``config.cluster_lr``, cosine decay, batches of
    ``config.batch_size`` jittered by ``config.cluster_augment``) on
    ``MSE + config.smoothness * penalty + config.cluster_weight * KL(P || Q)``.

    Parameters
    ----------
    n_clusters : int, optional
        Centres; default ``config.n_clusters`` (one of the two must be given).
    test_images, snapshot_images : Tensor, optional
        As for :class:`~difflens.draw.train.DrawTrainer` (test MSE and snapshots per epoch).
    time_budget : float, optional
        Seconds after which the phase stops at an epoch end (default ``None``: no limit;
        ``config.time_budget`` is not read here, :func:`run_experiment` passes what is left of it).
    checkpoint_path, resume : as for :meth:`DrawTrainer.run <difflens.draw.train.DrawTrainer.run>`.
    generator : torch.Generator, optional
        Default :func:`~difflens.tools.rng.default_generator` (seed 0).
    progress, callbacks : as for :class:`~difflens.draw.train.DrawTrainer`.

    Returns
    -------
    DrawTrainer
        The trainer that ran the phase: ``.cluster`` is the
        :class:`~difflens.draw.clustering.ClusterHead`; check ``.optimization.finished``
        (``False`` after an interrupt) before using the model as a result.
    """
    from .clustering import ClusterHead

    generator = default_generator(generator)
    k = n_clusters if n_clusters is not None else config.n_clusters
    if k is None:
        raise ValueError("fine_tune needs n_clusters (or config.n_clusters)")
    head = ClusterHead.from_kmeans(batched_codes(model, images), int(k), generator)
    tuner = DrawTrainer(model, images, batch_size=config.batch_size, lr=config.cluster_lr,
                        epochs=config.cluster_epochs, generator=generator, test_images=test_images,
                        snapshot_images=snapshot_images, augment=config.cluster_augment,
                        smoothness=config.smoothness, cluster=head, cluster_weight=config.cluster_weight,
                        time_budget=time_budget, progress=progress, callbacks=tuple(callbacks))
    return tuner.run(config.cluster_epochs, checkpoint_path=checkpoint_path, resume=resume)


def _raise_if_interrupted(trainer: DrawTrainer, phase: str, epochs: float) -> None:
    if trainer.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt(f"interrupted during {phase} (epoch {trainer.epoch:.2f} of {epochs})")


def train_on(root: str | os.PathLike, dataset: str = "mnist", subset: str = "balanced",
             config: DrawConfig | None = None, seed: int = 0, limit_train: int | None = None,
             limit_test: int | None = None, device: torch.device | str = "cpu",
             progress: bool | str = True, checkpoint_dir: str | os.PathLike | None = None,
             resume: bool = False) -> DrawResult:
    """Run :func:`run_experiment` on MNIST (``dataset="mnist"``) or EMNIST IDX files in ``root``.

    ``subset`` picks the EMNIST subset; ``limit_*`` keep the first samples of
    each split. With no ``config``, the default gesture model trains for 10
    epochs (60,000 images make an epoch 45 times longer than the bundled set's).
    ``checkpoint_dir`` and ``resume`` are :func:`run_experiment`'s.
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
    return run_experiment(train, test, config, default_generator(seed=int(seed)), progress=progress,
                          checkpoint_dir=checkpoint_dir, resume=resume, log=lambda m: print(m, flush=True))
