"""Training the drawing autoencoder on the shared engine.

:class:`BatchSampler` draws shuffled mini-batches epoch by epoch from an
explicit ``torch.Generator`` and can save/restore its position, so a resumed
run draws exactly the batches an uninterrupted run would. :class:`DrawTrainer`
builds one :class:`~difflens.engine.Optimization` over the model's parameters
with the reconstruction MSE of a fresh batch as the loss, logs the test MSE
and stores reconstruction snapshots once per epoch, and exposes it as
``trainer.optimization``. ``trainer.run(epochs, checkpoint_path=..., resume=True)``
continues an interrupted run from its checkpoint to the numbers of an
uninterrupted one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from difflens.engine import Optimization, TimeBudget
from difflens.tools.io import CheckpointError
from difflens.tools.rng import default_generator

__all__ = ["BatchSampler", "DrawTrainer", "batched_codes", "random_affine", "reconstruction_metrics"]


class BatchSampler:
    """Shuffled index batches of ``batch_size`` from ``range(n)``; a new permutation each epoch.

    The last incomplete batch of an epoch is dropped (every batch has the same
    size). ``generator`` is a CPU ``torch.Generator`` (default
    :func:`~difflens.tools.rng.default_generator`, seed 0);
    :meth:`state_dict` holds its state and the position in the current epoch.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator | None = None):
        if int(n) < 1:
            raise ValueError(f"need at least one sample, got n={n}")
        if not 1 <= int(batch_size):
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size = int(n), min(int(batch_size), int(n))
        generator = default_generator(generator)
        if generator.device.type != "cpu":
            raise ValueError("BatchSampler needs a CPU torch.Generator")
        self.generator = generator
        self.epoch, self.position = 0, 0
        self.permutation = torch.randperm(self.n, generator=self.generator)

    @property
    def batches_per_epoch(self) -> int:
        return self.n // self.batch_size

    def next(self) -> Tensor:
        """The next ``(batch_size,)`` int64 index batch (CPU)."""
        if self.position + self.batch_size > self.n:
            self.epoch += 1
            self.position = 0
            self.permutation = torch.randperm(self.n, generator=self.generator)
        idx = self.permutation[self.position: self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state for a checkpoint: sizes, epoch, position, permutation and generator
        state."""
        return {"n": self.n, "batch_size": self.batch_size, "epoch": self.epoch, "position": self.position,
                "permutation": self.permutation.clone(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; one for another ``n`` or ``batch_size`` raises
        ``CheckpointError``."""
        if (state["n"], state["batch_size"]) != (self.n, self.batch_size):
            raise CheckpointError(f"sampler state is for n={state['n']}, batch_size={state['batch_size']}; "
                             f"this sampler has n={self.n}, batch_size={self.batch_size}")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self.permutation = state["permutation"].clone()
        self.generator.set_state(state["generator"])


def random_affine(images: Tensor, generator: torch.Generator, shift: float = 0.0, rotate: float = 0.0,
                  scale: float = 0.0) -> Tensor:
    """Randomly shifted (pixels), rotated (degrees) and scaled (relative) copies of ``(N, C, H, W)`` images.

    Each image draws its own uniform ``shift`` in ``[-shift, shift]`` per axis,
    angle in ``[-rotate, rotate]`` and scale factor in ``[1 - scale, 1 + scale]``
    from the CPU ``generator``; bilinear resampling, zeros outside.
    """
    n, _, h, w = images.shape
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64) * 2 - 1  # (N, 4) in [-1, 1]
    angle = torch.deg2rad(u[:, 0] * rotate)
    factor = 1.0 + u[:, 1] * scale
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin * h / w, u[:, 2] * shift * 2 / w], 1),
                         torch.stack([sin * w / h, cos, u[:, 3] * shift * 2 / h], 1)], 1)
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def batched_codes(model: nn.Module, images: Tensor, batch_size: int = 1024) -> Tensor:
    """``model.code(images)`` ``(N, D)`` without gradients, ``batch_size`` images at a time."""
    with torch.no_grad():
        return torch.cat([model.code(images[i: i + batch_size]) for i in range(0, len(images), batch_size)])


def reconstruction_metrics(model: nn.Module, images: Tensor, batch_size: int = 512) -> dict[str, float]:
    """Mean squared error and PSNR (dB, peak 1) of ``model(images)`` against ``images`` ``(N, 1, H, W)``.

    PSNR is ``10 log10(1 / MSE)`` of the whole set's MSE.
    """
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = images[i: i + batch_size]
            total += float(F.mse_loss(model(x), x, reduction="sum"))
            count += x.numel()
    mse = total / max(count, 1)
    return {"mse": mse, "psnr": 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf}


class DrawTrainer:
    """Train ``model`` to reconstruct ``images`` ``(N, 1, H, W)`` with Adam on mini-batch MSE.

    Parameters
    ----------
    model: a :class:`~difflens.draw.autoencoder.DrawingAutoencoder` (or any ``images -> images`` module).
    images: training images, on the model's device.
    batch_size, lr: mini-batch size (default 64) and Adam learning rate (default 1e-3).
    epochs: the planned length; sets the cosine learning-rate decay to 0 (``None``: constant rate).
    generator: CPU generator of the batch order (default :func:`~difflens.tools.rng.default_generator`).
    test_images: optional images whose MSE is logged as ``"test_mse"`` after each epoch.
    snapshot_images: optional images whose reconstructions are stored after each epoch
        (``history.snapshots``, for the training animation).
    augment: ``None`` or ``{"shift": px, "rotate": degrees, "scale": fraction}``: each batch is
        randomly deformed by :func:`random_affine` (drawn from the sampler's generator, so
        resuming stays exact) and the model reconstructs the deformed images.
    smoothness: weight of a penalty on the mean squared change of consecutive gesture velocities,
        ``mean_b,k ||v_{k+1} - v_k||^2`` (velocities in units of ``max_step``), added to the MSE so strokes
        turn gradually (default 0: plain reconstruction). Needs a model with ``encoder`` and a decoder
        returning :class:`~difflens.draw.autoencoder.Commands`; ignored when those have no velocities.
    cluster: a :class:`~difflens.draw.clustering.ClusterHead` on the model's codes, or ``None`` (default:
        plain reconstruction). With one, ``cluster_weight * KL(P || Q)`` of the batch's codes is added to
        the loss (IDEC), the centres train with the encoder, and the targets ``P`` of all training
        images are recomputed from their unaugmented codes at the start and after every epoch.
    cluster_weight: weight of that term (default 0.1, IDEC's).
    time_budget: seconds after which training stops at the end of an epoch (default ``None``: no limit,
        training runs the epochs asked for, so one seed gives the same numbers under any machine load).
    checkpoint_epochs: with a ``checkpoint_path`` given to :meth:`run`, the checkpoint is also written
        every this many epochs (default 5), besides at the end of a run and on an interrupt.
    progress: ``True`` or a description for a progress bar.
    callbacks: ``fn(optimization)`` called after each epoch, after the trainer's own (cluster targets,
        test MSE); one raising ``KeyboardInterrupt`` stops the run as Ctrl-C does.

    Attributes
    ----------
    optimization: the :class:`~difflens.engine.Optimization` the trainer builds, configures and runs:
        ``optimization.history`` has the loss per step, ``"test_mse"`` per epoch, the snapshots and the
        wall time (``history.seconds``); ``optimization.stop_reason`` says why the last run ended
        (``"interrupted"`` after Ctrl-C, SIGTERM or a callback's ``KeyboardInterrupt``).
    """

    def __init__(self, model: nn.Module, images: Tensor, batch_size: int = 64, lr: float = 1e-3,
                 epochs: int | None = None, generator: torch.Generator | None = None,
                 test_images: Tensor | None = None, snapshot_images: Tensor | None = None,
                 augment: dict[str, float] | None = None, smoothness: float = 0.0,
                 cluster: nn.Module | None = None, cluster_weight: float = 0.1,
                 time_budget: float | None = None, checkpoint_epochs: int = 5, progress: bool | str = False,
                 callbacks: tuple[Callable[[Optimization], None], ...] = ()):
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        self.model, self.images = model, images
        self.test_images, self.snapshot_images = test_images, snapshot_images
        self.sampler = BatchSampler(len(images), batch_size, generator)
        if augment is not None:
            unknown = set(augment) - {"shift", "rotate", "scale"}
            if unknown:
                raise ValueError(f"augment takes keys shift, rotate, scale; got {sorted(unknown)}")
        self.augment = dict(augment) if augment else None
        if not float(smoothness) >= 0:
            raise ValueError(f"smoothness must be >= 0, got {smoothness}")
        if smoothness and not (hasattr(model, "encoder") and hasattr(model, "decoder")):
            raise ValueError("smoothness > 0 needs a DrawingAutoencoder (a model with encoder and decoder)")
        self.smoothness = float(smoothness)
        self.cluster, self.cluster_weight = cluster, float(cluster_weight)
        if cluster is not None:
            if not (hasattr(model, "encoder") and hasattr(model, "decoder")):
                raise ValueError("cluster needs a DrawingAutoencoder (a model with encoder and decoder)")
            if not self.cluster_weight >= 0:
                raise ValueError(f"cluster_weight must be >= 0, got {cluster_weight}")
            self._update_targets()
        self.steps_per_epoch = self.sampler.batches_per_epoch
        if isinstance(checkpoint_epochs, bool) or not isinstance(checkpoint_epochs, int) or checkpoint_epochs < 1:
            raise ValueError(f"checkpoint_epochs must be a positive integer, got {checkpoint_epochs!r}")
        scheduler = None
        if epochs is not None:
            total = int(epochs) * self.steps_per_epoch
            scheduler = lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
        snapshot_fn = None
        if snapshot_images is not None:
            def snapshot_fn() -> Tensor:
                with torch.no_grad():
                    return self.model(self.snapshot_images).detach().cpu()
        trained = model if cluster is None else nn.ModuleDict({"model": model, "cluster": cluster})
        self.optimization = Optimization(
            trained, self._loss, optimizer=lambda params: torch.optim.Adam(params, lr=lr),
            scheduler=scheduler,
            stop_rules=[TimeBudget(time_budget)] if time_budget else [],
            check_every=self.steps_per_epoch,
            snapshot_every=self.steps_per_epoch if snapshot_images is not None else None,
            snapshot_fn=snapshot_fn, record_change=False, progress=progress,
            callbacks=(self._update_targets, self._log_test, *callbacks), state={"sampler": self.sampler},
            checkpoint_every=self.steps_per_epoch * checkpoint_epochs,
        )

    def _loss(self) -> Tensor:
        idx = self.sampler.next().to(self.images.device)
        x = self.images[idx]
        if self.augment:
            x = random_affine(x, self.sampler.generator, **self.augment)
        if not self.smoothness and self.cluster is None:
            return F.mse_loss(self.model(x), x)
        reconstruction, commands = self.model.decoder(self.model.encoder(x))
        loss = F.mse_loss(reconstruction, x)
        v = commands.velocities
        if self.smoothness and v is not None and v.shape[1] > 1:
            loss = loss + self.smoothness * ((v[:, 1:] - v[:, :-1]) ** 2).sum(-1).mean()
        if self.cluster is not None:
            loss = loss + self.cluster_weight * self.cluster.loss(self.model.decoder.code(commands), idx)
        return loss

    def _update_targets(self, opt: Optimization | None = None) -> None:
        if self.cluster is None or (opt is not None and opt.iteration % self.steps_per_epoch):
            return
        self.cluster.update_targets(batched_codes(self.model, self.images))

    def _log_test(self, opt: Optimization) -> None:
        if self.test_images is not None and opt.iteration % self.steps_per_epoch == 0:
            opt.history.log("test_mse", reconstruction_metrics(self.model, self.test_images)["mse"],
                            opt.iteration)

    @property
    def epoch(self) -> float:
        """Epochs completed (fractional inside an epoch)."""
        return self.optimization.iteration / self.steps_per_epoch

    @property
    def seconds(self) -> float:
        """Wall seconds spent training, over every run and resume (``optimization.history.seconds``)."""
        return self.optimization.history.seconds

    def run(self, epochs: float, *, checkpoint_path: str | os.PathLike | None = None,
            resume: bool = False) -> DrawTrainer:
        """Train ``epochs`` more epochs (rounded to whole steps; or until the time budget); returns ``self``.

        Parameters
        ----------
        epochs : float
            Epochs to train (>= 0).
        checkpoint_path : path-like, optional
            The run's checkpoint (model, Adam, schedule, sampler and its generator, history),
            written atomically every ``checkpoint_epochs`` epochs, at the end and on an interrupt.
        resume : bool
            With ``checkpoint_path`` existing: load it and finish the run it records (to the
            step that run was going to; nothing runs if it had finished), giving the numbers
            of an uninterrupted run. Without the file the run starts as usual.

        Notes
        -----
        After an interrupt ``optimization.stop_reason`` is ``"interrupted"``; callers that go on
        to another phase must check it (see :func:`~difflens.draw.experiment.run_experiment`).
        """
        if not float(epochs) >= 0:
            raise ValueError(f"epochs must be >= 0, got {epochs}")
        steps = int(round(float(epochs) * self.steps_per_epoch))
        self.optimization.configure(checkpoint_path=checkpoint_path)
        self.optimization.run(steps, resume=resume)
        return self

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
        """One atomic file with the optimisation state (model weights, Adam, sampler, history)."""
        return self.optimization.save(path, extra=extra)

    def load(self, path: str | os.PathLike) -> dict[str, Any]:
        """Restore a :meth:`save` file (or a checkpoint); training then continues exactly where it stopped."""
        return self.optimization.load(path, map_location=self.optimization.device)
