"""Model metamers: images a model cannot tell apart from a target.

A metamer minimises ``loss_function(model(x), model(image))`` plus a penalty
keeping ``x`` inside ``allowed_range``. The optimisation runs on
:class:`difflens.engine.Optimization`; this module only defines the objective,
validation, and the saved file.

A batch of B targets gives B metamers matched one-to-one, each with its own
loss and its own convergence (a converged metamer stops moving while the
others go on).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from difflens.engine import LossChange, Optimization, load_file
from difflens.engine.optimization import CheckpointError
from difflens.tools.io import atomic_torch_save

__all__ = ["Metamer", "mse", "penalize_range", "plot_loss", "display_metamer", "animate",
           "plot_synthesis_status"]

FORMAT = "difflens.synthesize.Metamer"


def mse(synth_rep: Tensor, ref_rep: Tensor) -> Tensor:
    """Mean squared error over everything but the batch dimension: shape ``(B,)``."""
    diff = (synth_rep - ref_rep).pow(2)
    return diff.reshape(diff.shape[0], -1).mean(1) if diff.ndim > 1 else diff.mean().reshape(1)


def penalize_range(image: Tensor, allowed_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Sum of squared distances of pixels outside ``allowed_range``, per batch item: ``(B,)``."""
    lo, hi = allowed_range
    below = (lo - image).clamp_min(0).pow(2)
    above = (image - hi).clamp_min(0).pow(2)
    return (below + above).reshape(image.shape[0], -1).sum(1)


class Metamer:
    """Synthesise model metamers of ``image``.

    Parameters
    ----------
    image:
        Target, a 4-D float tensor ``(B, C, H, W)`` (any tensor with a leading
        batch dimension works); B targets give B metamers.
    model:
        A deterministic ``nn.Module`` (or callable) with no trainable parameters
        (use :func:`difflens.tools.remove_grad`).
    loss_function:
        ``(synth_rep, target_rep) -> loss``. A ``(B,)`` result gives each metamer
        its own loss; a scalar is shared. Default :func:`mse` (per item).
    range_penalty_lambda, allowed_range:
        Weight of :func:`penalize_range` and the pixel range. ``image`` must lie
        inside ``allowed_range``.
    initial_image:
        Starting point, same shape as ``image`` (a single image is repeated over
        the batch). Default: uniform noise in ``allowed_range`` drawn from
        ``generator``.
    generator:
        ``torch.Generator`` for the default initial image (default: seed 0).
    """

    def __init__(
        self,
        image: Tensor,
        model: nn.Module | Callable[[Tensor], Tensor],
        loss_function: Callable[[Tensor, Tensor], Tensor] = mse,
        range_penalty_lambda: float = 0.1,
        allowed_range: tuple[float, float] = (0.0, 1.0),
        initial_image: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        _check_image(image, "image")
        lo, hi = _check_range(allowed_range)
        if image.min() < lo or image.max() > hi:
            raise ValueError(f"image values lie in [{image.min():.4g}, {image.max():.4g}], outside "
                             f"allowed_range {allowed_range}; rescale it (difflens.tools.rescale) or widen the range")
        if not (range_penalty_lambda >= 0):
            raise ValueError(f"range_penalty_lambda must be >= 0, got {range_penalty_lambda!r}")
        _check_model(model, image)
        self.image = image.detach()
        self.model = model
        self.loss_function = loss_function
        self.range_penalty_lambda = float(range_penalty_lambda)
        self.allowed_range = (lo, hi)
        with torch.no_grad():
            self.target_representation = model(self.image).detach()
        self.metamer = self._initial(initial_image, generator)
        self._engine: Optimization | None = None
        self.store_progress: bool | int = False

    # ---------------------------------------------------------------- setup
    def _initial(self, initial_image: Tensor | None, generator: torch.Generator | None) -> Tensor:
        if initial_image is None:
            g = generator if generator is not None else torch.Generator(device=self.image.device).manual_seed(0)
            lo, hi = self.allowed_range
            x = torch.rand(self.image.shape, generator=g, device=self.image.device, dtype=self.image.dtype)
            x = lo + (hi - lo) * x
        else:
            _check_image(initial_image, "initial_image")
            x = initial_image.detach().to(self.image.device, self.image.dtype)
            if x.shape != self.image.shape:
                if x.shape[0] == 1 and x.shape[1:] == self.image.shape[1:]:
                    x = x.expand_as(self.image)
                else:
                    raise ValueError(f"initial_image has shape {tuple(initial_image.shape)}, image has "
                                     f"{tuple(self.image.shape)}; they must match (or initial_image have batch 1)")
        return x.clone().requires_grad_(True)

    def objective(self, metamer: Tensor | None = None) -> Tensor:
        """Per-item loss ``(B,)``: representation loss + λ · range penalty."""
        x = self.metamer if metamer is None else metamer
        loss = self.loss_function(self.model(x), self.target_representation)
        if loss.ndim == 0:
            loss = loss.expand(x.shape[0]) / x.shape[0]
        elif loss.shape != (x.shape[0],):
            raise ValueError(f"loss_function returned shape {tuple(loss.shape)}; expected a scalar or ({x.shape[0]},)")
        if self.range_penalty_lambda:
            loss = loss + self.range_penalty_lambda * penalize_range(x, self.allowed_range)
        return loss

    # ------------------------------------------------------------ synthesis
    def synthesize(
        self,
        max_iter: int = 100,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any = None,
        store_progress: bool | int = False,
        stop_criterion: float = 1e-4,
        stop_iters_to_check: int = 50,
        progress: bool = True,
    ) -> Tensor:
        """Run (or resume) synthesis for up to ``max_iter`` more iterations; returns ``self.metamer``.

        ``optimizer`` (over ``[self.metamer]``; default ``Adam(lr=0.01, amsgrad=True)``)
        and ``scheduler`` may only be given on the first call. ``store_progress``:
        ``True`` or N keeps a copy of the metamer every N iterations in
        ``saved_metamer``. A metamer stops when its loss changed by less than
        ``stop_criterion`` over ``stop_iters_to_check`` iterations; the run ends
        when all have.
        """
        if self._engine is None:
            opt = optimizer if optimizer is not None else torch.optim.Adam([self.metamer], lr=0.01, amsgrad=True)
            self._engine = self._make_engine(opt, scheduler)
        elif optimizer is not None and optimizer is not self._engine.optimizer:
            raise ValueError("optimizer can only be set on the first call to synthesize; "
                             "this call resumes the existing synthesis")
        elif scheduler is not None and scheduler is not self._engine.scheduler:
            raise ValueError("scheduler can only be set on the first call to synthesize")
        self._set_store(store_progress)
        self._engine.stop_rules = [LossChange(stop_criterion, window=stop_iters_to_check)]
        self._engine.progress = "metamer" if progress else False
        self._engine.run(max_iter)
        if self._engine.stop_reason == "loss_change":
            warnings.warn("loss has converged, stopping synthesis", stacklevel=2)
        return self.metamer

    def _make_engine(self, optimizer: torch.optim.Optimizer, scheduler: Any) -> Optimization:
        return Optimization([self.metamer], self.objective, optimizer=optimizer, scheduler=scheduler,
                            freeze_converged=True, snapshot_fn=lambda: self.metamer.detach().clone())

    def _set_store(self, store_progress: bool | int) -> None:
        if isinstance(store_progress, bool):
            every = 1 if store_progress else None
        elif isinstance(store_progress, int) and store_progress > 0:
            every = store_progress
        else:
            raise ValueError(f"store_progress must be a bool or a positive int, got {store_progress!r}")
        if self.store_progress and every and self._engine.snapshot_every not in (None, every):
            raise ValueError("store_progress cannot change between calls to synthesize "
                             f"(was every {self._engine.snapshot_every}, now {every})")
        self.store_progress = store_progress if every else self.store_progress
        if every:
            self._engine.snapshot_every = every

    # -------------------------------------------------------------- results
    @property
    def losses(self) -> Tensor:
        """Loss per iteration: ``(T,)`` for one target, ``(T, B)`` for a batch (on CPU)."""
        loss = self._history("loss")
        return loss[:, 0] if loss.ndim == 2 and loss.shape[1] == 1 else loss

    @property
    def gradient_norm(self) -> Tensor:
        return self._history("grad_norm")

    @property
    def pixel_change_norm(self) -> Tensor:
        return self._history("change_norm")

    @property
    def saved_metamer(self) -> Tensor:
        """``(S, *image.shape)`` snapshots taken every ``store_progress`` iterations (initial image first)."""
        if self._engine is None or not self._engine.history.snapshots:
            return torch.empty(0)
        return torch.stack([s.cpu() for s in self._engine.history.snapshots])

    @property
    def saved_iterations(self) -> list[int]:
        return [] if self._engine is None else list(self._engine.history.snapshot_iterations)

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        return None if self._engine is None else self._engine.optimizer

    @property
    def engine(self) -> Optimization | None:
        """The underlying :class:`~difflens.engine.Optimization` (``None`` before synthesis)."""
        return self._engine

    def _history(self, name: str) -> Tensor:
        if self._engine is None:
            return torch.empty(0)
        return getattr(self._engine.history, name).detach().cpu()

    # ------------------------------------------------------ devices and files
    def to(self, device: torch.device | str) -> "Metamer":
        """Move image, target representation, metamer, model, optimizer state and history."""
        self.image = self.image.to(device)
        self.target_representation = self.target_representation.to(device)
        if isinstance(self.model, nn.Module):
            self.model.to(device)
        if self._engine is not None:
            self._engine.to(device)
        else:
            self.metamer.data = self.metamer.data.to(device)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write the whole synthesis to one file, atomically (model weights are not saved)."""
        payload = {
            "format": FORMAT,
            "image": self.image.cpu(),
            "target_representation": self.target_representation.cpu(),
            "metamer": self.metamer.detach().cpu(),
            "range_penalty_lambda": self.range_penalty_lambda,
            "allowed_range": list(self.allowed_range),
            "store_progress": self.store_progress,
            "engine": None if self._engine is None else self._engine.state_dict(),
        }
        return atomic_torch_save(payload, path)

    def load(self, path: str | os.PathLike, map_location: Any = None) -> "Metamer":
        """Restore a :meth:`save` file into this object (built with the same image and model).

        Synthesis can then be resumed with :meth:`synthesize`.
        """
        sd = load_file(path, map_location=map_location or self.image.device)
        if not isinstance(sd, dict) or sd.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a saved Metamer")
        if sd["image"].shape != self.image.shape or not torch.allclose(sd["image"].to(self.image), self.image):
            raise CheckpointError(f"{path} was saved for a different target image")
        with torch.no_grad():
            rep = self.model(sd["image"].to(self.image))
        if rep.shape != sd["target_representation"].shape or not torch.allclose(
                rep, sd["target_representation"].to(rep), rtol=1e-4, atol=1e-6):
            raise CheckpointError(f"{path} was saved with a different model: its target representation differs")
        self.range_penalty_lambda = sd["range_penalty_lambda"]
        self.allowed_range = tuple(sd["allowed_range"])
        self.store_progress = sd["store_progress"]
        with torch.no_grad():
            self.metamer.copy_(sd["metamer"].to(self.metamer))
        if sd["engine"] is not None:
            opt_cls = getattr(torch.optim, sd["engine"]["optimizer_class"], None)
            if opt_cls is None:
                raise CheckpointError(f"unknown optimizer {sd['engine']['optimizer_class']!r} in {path}")
            self._engine = self._make_engine(opt_cls([self.metamer], lr=0.01), None)
            if self.store_progress:
                self._engine.snapshot_every = 1 if self.store_progress is True else int(self.store_progress)
            self._engine.load_state_dict(sd["engine"])
        return self

    def __repr__(self) -> str:
        it = 0 if self._engine is None else self._engine.iteration
        return f"Metamer(image={tuple(self.image.shape)}, iterations={it}, device={self.image.device})"


# Plots live in difflens.plot.metamer; they are reachable here as the tutorial calls them.
def plot_loss(metamer: Metamer, iteration: int | None = None, ax=None, **kwargs):
    """Loss against iteration (log scale); see :func:`difflens.plot.metamer.plot_loss`."""
    from difflens.plot.metamer import plot_loss as _plot

    return _plot(metamer, iteration=iteration, ax=ax, **kwargs)


def display_metamer(metamer: Metamer, batch_idx: int = 0, iteration: int | None = None, ax=None, **kwargs):
    from difflens.plot.metamer import display_metamer as _plot

    return _plot(metamer, batch_idx=batch_idx, iteration=iteration, ax=ax, **kwargs)


def plot_synthesis_status(metamer: Metamer, iteration: int | None = None, **kwargs):
    from difflens.plot.metamer import plot_synthesis_status as _plot

    return _plot(metamer, iteration=iteration, **kwargs)


def animate(metamer: Metamer, framerate: int = 10, **kwargs):
    """A matplotlib animation of the synthesis; see :func:`difflens.plot.metamer.animate`."""
    from difflens.plot.metamer import animate as _plot

    return _plot(metamer, framerate=framerate, **kwargs)


def _check_image(x: Any, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have a batch dimension first: (B, ...) e.g. (B, C, H, W); "
                         f"got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


def _check_range(allowed_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in allowed_range)
    except (TypeError, ValueError):
        raise ValueError(f"allowed_range must be a pair (low, high), got {allowed_range!r}") from None
    if not lo < hi:
        raise ValueError(f"allowed_range must have low < high, got {allowed_range!r}")
    return lo, hi


def _check_model(model: Any, image: Tensor) -> None:
    if not callable(model):
        raise TypeError(f"model must be callable, got {type(model).__name__}")
    if isinstance(model, nn.Module):
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        if trainable:
            raise ValueError(f"model has trainable parameters ({', '.join(trainable[:4])}); call "
                             "difflens.tools.remove_grad(model) first so synthesis cannot change the model")
    with torch.no_grad():
        a, b = model(image), model(image)
    if not isinstance(a, Tensor):
        raise TypeError(f"model must return a tensor, returned {type(a).__name__}")
    if a.shape[:1] != image.shape[:1]:
        raise ValueError(f"model output has batch size {a.shape[:1]}, input {image.shape[0]}: the first "
                         "dimension must be the batch")
    if not torch.equal(a, b):
        raise ValueError("model is not deterministic: two calls on the same image gave different outputs "
                         "(call model.eval() to turn off dropout and similar)")
