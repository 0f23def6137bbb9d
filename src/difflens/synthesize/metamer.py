"""Model metamers: images a model cannot tell apart from a target.

A metamer minimises ``loss_function(model(x), model(image))`` plus a penalty
keeping ``x`` inside ``allowed_range``. The optimisation runs on one
:class:`difflens.engine.Optimization`, the object's ``optimization``; this module
only defines the objective, the stop criterion and the saved file. Inputs and
models are checked by :mod:`difflens.tools.validate`.

A batch of B targets gives B metamers matched one-to-one, each with its own
loss and its own convergence (a converged metamer stops moving while the
others go on).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from difflens.engine import LossConvergence, Optimization
from difflens.tools.io import CheckpointError, load_file, save_file
from difflens.tools.rng import default_generator
from difflens.tools.validate import check_finite, check_range, check_synthesis_image, validate_model

from .synthesis import Synthesis

__all__ = ["Metamer", "mse", "penalize_range"]

FORMAT = "difflens.synthesize.Metamer"
VERSION = 2  # 2: loss_function test output, scheduler class, engine state under "optimization"


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


class Metamer(Synthesis):
    """Synthesise model metamers of ``image``.

    Parameters
    ----------
    image : Tensor
        Target, a float32 or float64 tensor ``(B, C, H, W)`` with finite values inside
        ``allowed_range`` (any tensor with a leading batch dimension works); B targets
        give B metamers.
    model : nn.Module or callable
        Deterministic, with no trainable parameters (use :func:`difflens.tools.remove_grad`),
        keeping its input's dtype and device and letting gradients reach the input; its
        output's first dimension is the batch. Checked by
        :func:`difflens.tools.validate.validate_model`.
    loss_function : callable
        ``(synth_rep, target_rep) -> loss``. A ``(B,)`` result gives each metamer
        its own loss; a scalar is shared. Default :func:`mse` (per item).
    range_penalty_lambda : float
        Weight of :func:`penalize_range` (>= 0). Default 0.1.
    allowed_range : (float, float)
        The pixel range ``(low, high)``. Default ``(0, 1)``.
    initial_image : Tensor, optional
        Starting point, same shape as ``image`` (a single image is repeated over
        the batch). Default: uniform noise in ``allowed_range`` drawn from ``generator``.
    generator : torch.Generator, optional
        For the default initial image (default :func:`difflens.tools.rng.default_generator`).

    Attributes
    ----------
    optimization : Optimization or None
        The engine running the synthesis, built by :meth:`setup` (called by the first
        :meth:`synthesize` or by :meth:`load`); ``None`` before. Its
        ``history.seconds`` is the time spent synthesising.

    Examples
    --------
    A metamer of a 16 x 16 noise image for a Gaussian blur, from a seeded start:

    >>> import torch
    >>> from difflens.simulate import Gaussian
    >>> from difflens.synthesize import Metamer
    >>> from difflens.tools import remove_grad
    >>> model = Gaussian(5).eval()
    >>> remove_grad(model)
    >>> image = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> met = Metamer(image, model, generator=torch.Generator().manual_seed(1))
    >>> met.synthesize(max_iter=50, progress=False).shape
    torch.Size([1, 1, 16, 16])
    >>> bool(met.losses[-1] < met.losses[0] / 10)
    True
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
        lo, hi = check_range(allowed_range)
        check_synthesis_image(image, "image", min_ndim=2, allowed_range=(lo, hi))
        if isinstance(range_penalty_lambda, bool) or not (
                isinstance(range_penalty_lambda, (int, float)) and math.isfinite(range_penalty_lambda)
                and range_penalty_lambda >= 0):
            raise ValueError(f"range_penalty_lambda must be a finite number >= 0, got {range_penalty_lambda!r}")
        if not callable(loss_function):
            raise TypeError(f"loss_function must be callable (synth_rep, target_rep) -> loss, "
                            f"got {type(loss_function).__name__}")
        validate_model(model, image_shape=image.shape, image_dtype=image.dtype, device=image.device,
                       same_batch=True)
        self.image = image.detach()
        self.model = model
        self.loss_function = loss_function
        self.range_penalty_lambda = float(range_penalty_lambda)
        self.allowed_range = (lo, hi)
        with torch.no_grad():
            self.target_representation = model(self.image).detach()
        check_finite(self.target_representation, "model(image), the target representation,")
        self.metamer = self._initial(initial_image, generator)
        self.optimization: Optimization | None = None
        self.store_progress: bool | int = False

    # ---------------------------------------------------------------- setup
    def _initial(self, initial_image: Tensor | None, generator: torch.Generator | None) -> Tensor:
        if initial_image is None:
            g = default_generator(generator, device=self.image.device)
            lo, hi = self.allowed_range
            x = torch.rand(self.image.shape, generator=g, device=self.image.device, dtype=self.image.dtype)
            x = lo + (hi - lo) * x
        else:
            check_synthesis_image(initial_image, "initial_image", min_ndim=2)
            x = initial_image.detach().to(self.image.device, self.image.dtype)
            if x.shape != self.image.shape:
                if x.shape[0] == 1 and x.shape[1:] == self.image.shape[1:]:
                    x = x.expand_as(self.image)
                else:
                    raise ValueError(f"initial_image has shape {tuple(initial_image.shape)}, image has "
                                     f"{tuple(self.image.shape)}; they must match (or initial_image have batch 1)")
        return x.clone().requires_grad_(True)

    def setup(self, initial_image: Tensor | None = None, optimizer: Any = None,
              optimizer_kwargs: dict[str, Any] | None = None, scheduler: Any = None,
              scheduler_kwargs: dict[str, Any] | None = None) -> "Metamer":
        """Set the starting image, optimiser and scheduler, and build :attr:`optimization` (plenoptic's ``setup``).

        Called by the first :meth:`synthesize` when not called before; only once.

        Parameters
        ----------
        initial_image : Tensor, optional
            New starting point (as the constructor's ``initial_image``).
        optimizer : optional
            An optimiser class (plenoptic), an optimiser over ``[self.metamer]``, or a
            factory ``params -> Optimizer``. Default ``Adam(lr=0.01, amsgrad=True)``.
        optimizer_kwargs : dict, optional
            Arguments for an optimiser class (default ``{"lr": 0.01}``, plus
            ``amsgrad=True`` for the default Adam).
        scheduler : optional
            A scheduler class, a scheduler of that optimiser, or a factory
            ``optimizer -> scheduler``. Default none.
        scheduler_kwargs : dict, optional
            Arguments for a scheduler class.
        """
        if self.optimization is not None:
            raise ValueError("setup() can only be called once, before synthesize()")
        if initial_image is not None:
            with torch.no_grad():  # in place: an optimizer given over self.metamer stays valid
                self.metamer.copy_(self._initial(initial_image, None))
        self.build_engine(self.metamer, self.objective, optimizer, optimizer_kwargs, scheduler, scheduler_kwargs,
                          freeze_converged=True, snapshot_fn=self._snapshot, state=self._engine_state())
        return self

    def _engine_state(self) -> dict[str, Any]:
        """Objects saved, restored and rolled back with the engine (subclasses add theirs)."""
        return {}

    def _stop_rules(self, stop_criterion: float, stop_iters_to_check: int) -> list:
        """The engine's stop rules for :meth:`synthesize` (subclasses change them)."""
        return [LossConvergence(stop_criterion, stop_iters_to_check)]

    def _snapshot(self) -> Tensor:
        return self.metamer.detach().clone()

    def objective(self, metamer: Tensor | None = None) -> Tensor:
        """Per-item loss ``(B,)``: representation loss + λ · range penalty."""
        x = self.metamer if metamer is None else metamer
        return self._per_item(self.loss_function(self.model(x), self.target_representation), x)

    def _per_item(self, loss: Tensor, x: Tensor) -> Tensor:
        """A loss_function output as a ``(B,)`` loss, plus the range penalty of ``x``."""
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
        optimizer: Any = None,
        scheduler: Any = None,
        store_progress: bool | int = False,
        stop_criterion: float = 1e-4,
        stop_iters_to_check: int = 50,
        progress: bool = True,
        *,
        checkpoint_path: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> Tensor:
        """Run (or resume) synthesis for up to ``max_iter`` more iterations; returns ``self.metamer``.

        Parameters
        ----------
        max_iter : int
            Iterations to run at most in this call.
        optimizer, scheduler : optional
            As in :meth:`setup`; only on the first call (default ``Adam(lr=0.01, amsgrad=True)``).
        store_progress : bool or int
            ``True`` or N keeps a copy of the metamer every N iterations in
            ``saved_metamer`` (it cannot change once set; ``False`` keeps the earlier choice).
        stop_criterion, stop_iters_to_check : float, int
            A metamer stops when its loss changed by less than ``stop_criterion`` over
            the last ``stop_iters_to_check`` iterations, as in plenoptic (see
            :class:`~difflens.engine.LossConvergence`); the run ends when all have.
        progress : bool
            Show a progress bar (a line every 10% in a log).
        checkpoint_path : path-like, optional
            Where the engine writes its checkpoint (at the end, and on Ctrl-C / SIGTERM).
        resume : bool
            With an existing ``checkpoint_path``: load it and finish the run it records
            (call on a Metamer built with the same arguments and ``synthesize``
            arguments), giving the numbers an uninterrupted run gives.
        """
        engine = self.run_engine(max_iter, optimizer=optimizer, scheduler=scheduler, store_progress=store_progress,
                                 stop_rules=self._stop_rules(stop_criterion, stop_iters_to_check),
                                 progress="metamer" if progress else False, checkpoint_path=checkpoint_path,
                                 resume=resume)
        if engine.stop_reason == "loss_change":
            warnings.warn("loss has converged, stopping synthesis", stacklevel=2)
        return self.metamer

    # -------------------------------------------------------------- results
    @property
    def losses(self) -> Tensor:
        """Loss per iteration: ``(T,)`` for one target, ``(T, B)`` for a batch (on CPU)."""
        loss = self.history_series("loss")
        return loss[:, 0] if loss.ndim == 2 and loss.shape[1] == 1 else loss

    @property
    def saved_metamer(self) -> Tensor:
        """``(S, *image.shape)`` snapshots taken every ``store_progress`` iterations (initial image first)."""
        if self.optimization is None or not self.optimization.history.snapshots:
            return torch.empty(0)
        return torch.stack([s.cpu() for s in self.optimization.history.snapshots])

    @property
    def saved_iterations(self) -> list[int]:
        """The iterations of :attr:`saved_metamer`."""
        return [] if self.optimization is None else list(self.optimization.history.snapshot_iterations)

    # ------------------------------------------------------ devices and files
    def to(self, device: torch.device | str) -> "Metamer":
        """Move image, target representation, metamer, model, optimizer state and history."""
        self.image = self.image.to(device)
        self.target_representation = self.target_representation.to(device)
        if isinstance(self.model, nn.Module):
            self.model.to(device)
        if self.optimization is not None:
            self.optimization.to(device)
        else:
            self.metamer.data = self.metamer.data.to(device)
        return self

    def _loss_test(self, target: Tensor) -> Tensor:
        """``loss_function`` on the saved test inputs ``(target, 2 * target)``, as plenoptic checks it."""
        with torch.no_grad():
            out = self.loss_function(target, 2 * target)
        return out.detach() if isinstance(out, Tensor) else torch.as_tensor(out)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the whole synthesis to one file, atomically (model weights are not saved).

        The file holds the image, the target representation, ``loss_function``'s output
        on ``(target, 2 * target)`` (so :meth:`load` can tell a different loss), the
        metamer, the range penalty, and the engine's state (optimiser, scheduler, history).
        """
        payload = {
            "image": self.image.cpu(),
            "target_representation": self.target_representation.cpu(),
            "loss_function_output": self._loss_test(self.target_representation).cpu(),
            "metamer": self.metamer.detach().cpu(),
            "range_penalty_lambda": self.range_penalty_lambda,
            "allowed_range": list(self.allowed_range),
            **self.run_state(),
        }
        return save_file(payload, path, format=FORMAT, version=VERSION)

    def load(self, path: str | os.PathLike, map_location: Any = None, *, optimizer: Any = None,
             scheduler: Any = None, tensor_equality_atol: float = 1e-8,
             tensor_equality_rtol: float = 1e-5) -> "Metamer":
        """Restore a :meth:`save` file into this object, built with the same arguments.

        Synthesis can then be resumed with :meth:`synthesize`; the result equals an
        uninterrupted synthesis. As plenoptic's ``load``, the file is refused when its
        image, ``range_penalty_lambda``, ``allowed_range``, model (its output on the
        image) or ``loss_function`` (its output on the saved test tensors) differ from
        this object's.

        Parameters
        ----------
        path : path-like
            A :meth:`save` file.
        map_location : optional
            As for ``torch.load``; default this object's device.
        optimizer : optional
            Optimiser class or factory ``params -> Optimizer`` to rebuild the saved one
            (default: the saved ``torch.optim`` class; its settings come from the file).
        scheduler : optional
            Scheduler class or factory ``optimizer -> scheduler`` (default: the saved
            ``torch.optim.lr_scheduler`` class, rebuilt from its saved settings).
        tensor_equality_atol, tensor_equality_rtol : float
            Tolerances of the comparisons (``torch.allclose``).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        CheckpointError
            A corrupt or foreign file, or one saved for a different image, model,
            loss function, penalty or range, or with an optimiser or scheduler that
            cannot be rebuilt.
        """
        sd = load_file(path, format=FORMAT, version=VERSION, map_location=map_location or self.image.device)
        if int(sd.get("version", 0)) < VERSION:
            raise CheckpointError(f"{path} was written by an older difflens (Metamer file version "
                                  f"{sd.get('version', 0)}, this one reads {VERSION}); synthesise it again")
        tol = {"rtol": tensor_equality_rtol, "atol": tensor_equality_atol}
        img = sd["image"]
        if img.shape != self.image.shape or img.dtype != self.image.dtype or not torch.allclose(
                img.to(self.image.device), self.image, **tol):
            raise CheckpointError(f"{path} was saved for a different target image (saved {tuple(img.shape)} "
                                  f"{img.dtype}, this Metamer has {tuple(self.image.shape)} {self.image.dtype})")
        saved_rep = sd["target_representation"].to(self.image.device)
        with torch.no_grad():
            rep = self.model(img.to(self.image.device))
        if rep.shape != saved_rep.shape or not torch.allclose(rep, saved_rep.to(rep.dtype), rtol=1e-4, atol=1e-6):
            raise CheckpointError(f"{path} was saved with a different model: its target representation differs")
        if not math.isclose(float(sd["range_penalty_lambda"]), self.range_penalty_lambda, rel_tol=1e-9):
            raise CheckpointError(f"{path} was saved with range_penalty_lambda={sd['range_penalty_lambda']}, "
                                  f"this Metamer has {self.range_penalty_lambda}: build it with the saved value")
        if tuple(float(v) for v in sd["allowed_range"]) != self.allowed_range:
            raise CheckpointError(f"{path} was saved with allowed_range={tuple(sd['allowed_range'])}, this "
                                  f"Metamer has {self.allowed_range}: build it with the saved value")
        mine, saved = self._loss_test(saved_rep), sd["loss_function_output"].to(self.image.device)
        if mine.shape != saved.shape or not torch.allclose(mine.to(saved.dtype), saved, **tol):
            raise CheckpointError(f"{path} was saved with a different loss_function: on the saved test tensors "
                                  "(target_representation, 2 * target_representation) the saved one gave "
                                  f"{saved.flatten()[:4].tolist()}, this one gives {mine.flatten()[:4].tolist()}")
        self.restore_run(sd, self.metamer, sd["metamer"], path, optimizer, scheduler)
        return self

    def __repr__(self) -> str:
        it = 0 if self.optimization is None else self.optimization.iteration
        return f"Metamer(image={tuple(self.image.shape)}, iterations={it}, device={self.image.device})"

