"""Geodesics: the shortest path between two images in a model's representation (Hénaff & Simoncelli 2016).

plenoptic 1.1's ``Geodesic`` (deprecated there in 1.1 and gone from 1.4), on the engine.
The ``n_steps - 1`` frames between the fixed anchors ``image_a`` and ``image_b`` are
optimised to minimise the path energy of their representations,

``E = mean_k ||model(x_{k+1}) - model(x_k)||^2 + lambda * range_penalty(x)``,

whose minimum is a constant-speed shortest path (Cauchy-Schwarz). A model that makes the
path straight in its representation "linearises" the transformation between the images;
:func:`~difflens.tools.straightness.deviation_from_line` measures how straight a path is,
and :meth:`Geodesic.calculate_jerkiness` the first-order optimality of the solution.
Plots: :mod:`difflens.plot.geodesic`.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from torch import Tensor, nn

from difflens.engine import ChangeNormConvergence, Optimization
from difflens.tools.io import CheckpointError, load_file, save_file
from difflens.tools.straightness import deviation_from_line, make_straight_line, sample_brownian_bridge
from difflens.tools.validate import check_range, check_synthesis_image, validate_model

from .synthesis import Synthesis, device_and_dtype, penalize_range_total

__all__ = ["Geodesic", "step_energy"]

FORMAT = "difflens.synthesize.Geodesic"
VERSION = 1


def step_energy(representation: Tensor) -> Tensor:
    """Squared 2-norm of each step of a path: ``(T, ...)`` -> ``(T - 1,)``."""
    velocity = torch.diff(representation, dim=0)
    return velocity.reshape(velocity.shape[0], -1).pow(2).sum(1)


class Geodesic(Synthesis):
    """Synthesise an approximate geodesic between two images for a model.

    Parameters
    ----------
    image_a, image_b : Tensor
        The anchors, float32/float64 ``(1, channel, height, width)`` of the same shape,
        inside ``allowed_range``; they stay fixed (copies are kept).
    model : nn.Module or callable
        Deterministic, without trainable parameters, mapping a batch of frames
        ``(T, C, H, W)`` to ``(T, ...)`` (checked by
        :func:`~difflens.tools.validate.validate_model`).
    n_steps : int
        Transitions in the path (>= 2): the geodesic has ``n_steps + 1`` frames. Default 10.
    initial_sequence : {"straight", "bridge"}
        Start from the pixel fade or from a Brownian bridge between the anchors.
    range_penalty_lambda : float
        Weight of the squared excursion of pixels outside ``allowed_range`` (>= 0). Default 0.1.
    allowed_range : (float, float)
        Pixel range. Default ``(0, 1)``.
    generator : torch.Generator, optional
        Draws the Brownian bridge (default :func:`difflens.tools.rng.default_generator`).

    Attributes
    ----------
    intermediate : Tensor
        ``(n_steps - 1, C, H, W)``, the optimised frames (a leaf that requires grad).
    pixelfade : Tensor
        ``(n_steps + 1, C, H, W)``, the straight line in pixels between the anchors.
    optimization : Optimization or None
        The engine, built by the first :meth:`synthesize` (or :meth:`load`).

    Examples
    --------
    For the identity model the pixel fade is already the geodesic: nothing moves.

    >>> import torch
    >>> from difflens.synthesize import Geodesic
    >>> a, b = torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.5)
    >>> geo = Geodesic(a, b, lambda x: x, n_steps=4)
    >>> _ = geo.synthesize(5, progress=False)
    >>> bool(torch.allclose(geo.geodesic, geo.pixelfade))
    True
    """

    def __init__(self, image_a: Tensor, image_b: Tensor, model: nn.Module | Callable[[Tensor], Tensor],
                 n_steps: int = 10, initial_sequence: Literal["straight", "bridge"] = "straight",
                 range_penalty_lambda: float = 0.1, allowed_range: tuple[float, float] = (0.0, 1.0), *,
                 generator: torch.Generator | None = None) -> None:
        lo, hi = check_range(allowed_range)
        for img, name in ((image_a, "image_a"), (image_b, "image_b")):
            check_synthesis_image(img, name, ndim=4, batch_size=1, allowed_range=(lo, hi))
        if image_a.shape != image_b.shape or image_a.dtype != image_b.dtype:
            raise ValueError(f"image_a and image_b must have the same shape and dtype, got {tuple(image_a.shape)} "
                             f"{image_a.dtype} and {tuple(image_b.shape)} {image_b.dtype}")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 2:
            raise ValueError(f"n_steps must be an integer >= 2 (a path with at least one frame between the "
                             f"anchors), got {n_steps!r}")
        if initial_sequence not in ("straight", "bridge"):
            raise ValueError(f"Don't know how to handle initial_sequence={initial_sequence!r}: "
                             "use 'straight' or 'bridge'")
        if isinstance(range_penalty_lambda, bool) or not (
                isinstance(range_penalty_lambda, (int, float)) and math.isfinite(range_penalty_lambda)
                and range_penalty_lambda >= 0):
            raise ValueError(f"range_penalty_lambda must be a finite number >= 0, got {range_penalty_lambda!r}")
        validate_model(model, image_shape=image_a.shape, image_dtype=image_a.dtype, device=image_a.device,
                       same_batch=True)
        self.image_a = image_a.detach().clone()
        self.image_b = image_b.detach().clone()
        self.model = model
        self.n_steps = n_steps
        self.initial_sequence = initial_sequence
        self.range_penalty_lambda = float(range_penalty_lambda)
        self.allowed_range = (lo, hi)
        self.pixelfade = make_straight_line(self.image_a, self.image_b, n_steps)
        start = (self.pixelfade if initial_sequence == "straight"
                 else sample_brownian_bridge(self.image_a, self.image_b, n_steps, generator=generator))
        self.intermediate = start[1:-1].detach().clone().requires_grad_(True)
        self.optimization: Optimization | None = None
        self.store_progress: bool | int = False

    # ------------------------------------------------------------ objective
    @property
    def geodesic(self) -> Tensor:
        """``(n_steps + 1, C, H, W)``: ``image_a``, the intermediate frames, ``image_b``."""
        return torch.cat([self.image_a, self.intermediate, self.image_b])

    def objective_function(self, geodesic: Tensor | None = None) -> Tensor:
        """Path energy (mean squared step length of the representation) + λ · range penalty: 0-d."""
        x = self.geodesic if geodesic is None else geodesic
        return (step_energy(self.model(x)).mean()
                + self.range_penalty_lambda * penalize_range_total(x, self.allowed_range))

    def calculate_jerkiness(self, geodesic: Tensor | None = None) -> Tensor:
        """First-order optimality of a path: ``(n_steps - 1,)``, zero for a geodesic.

        For each intermediate frame, the squared norm of the representation's unit
        acceleration pulled back through the model's Jacobian, ``||J_k^T a_k / |a_k| ||^2``:
        at a geodesic the acceleration is normal to the representation manifold, so this
        vanishes (Hénaff & Simoncelli 2016).

        Parameters
        ----------
        geodesic : Tensor, optional
            A path ``(n_steps + 1, C, H, W)``; default the current one.
        """
        x = self.geodesic if geodesic is None else geodesic
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            rep = self.model(x)
            acceleration = torch.diff(rep, n=2, dim=0)
            norm = acceleration.reshape(acceleration.shape[0], -1).norm(dim=1)
            direction = acceleration / norm.reshape(-1, *([1] * (acceleration.ndim - 1)))
            pulled = torch.autograd.grad(rep[1:-1], x, direction, retain_graph=True, create_graph=True)[0][1:-1]
        return pulled.reshape(pulled.shape[0], -1).pow(2).sum(1)

    def _progress_values(self) -> Tensor:
        """What ``store_progress`` keeps: the step energies and the deviation from the line, flat."""
        with torch.no_grad():
            rep = self.model(self.geodesic).detach()
            along, off = deviation_from_line(rep.cpu())
            return torch.cat([step_energy(rep).cpu(), torch.stack([along, off], 1).reshape(-1)])

    # ------------------------------------------------------------ synthesis
    def setup(self, optimizer: Any = None, scheduler: Any = None) -> Geodesic:
        """Build :attr:`optimization` (called by the first :meth:`synthesize`; only once).

        ``optimizer``: an optimiser over ``[self.intermediate]``, a class, or a factory
        ``params -> Optimizer`` (default ``Adam(lr=0.001, amsgrad=True)``, plenoptic's);
        ``scheduler``: a scheduler, a class or a factory ``optimizer -> scheduler``.
        """
        kwargs = {"lr": 0.001} if optimizer is None or isinstance(optimizer, type) else None
        self.build_engine(self.intermediate, self.objective_function, optimizer, kwargs, scheduler,
                          snapshot_fn=self._progress_values)
        return self

    def synthesize(self, max_iter: int = 1000, optimizer: Any = None, store_progress: bool | int = False,
                   stop_criterion: float | None = None, stop_iters_to_check: int = 50, *,
                   scheduler: Any = None, progress: bool = True,
                   checkpoint_path: str | os.PathLike | None = None, resume: bool = False) -> Tensor:
        """Run (or resume) synthesis for up to ``max_iter`` more iterations; returns :attr:`geodesic`.

        Parameters
        ----------
        max_iter : int
            Iterations to run at most in this call. Default 1,000.
        optimizer, scheduler : optional
            As in :meth:`setup`; only on the first call.
        store_progress : bool or int
            ``True`` or N records :attr:`step_energy` and :attr:`dev_from_line` every N
            iterations; ``False`` keeps the earlier choice.
        stop_criterion : float, optional
            Stop once each of the last ``stop_iters_to_check`` steps changed the frames by
            less than this (2-norm; plenoptic's criterion). Default
            ``||pixelfade|| * golden ratio / 1e4``.
        stop_iters_to_check : int
            See ``stop_criterion``. Default 50.
        progress : bool
            Show a progress bar (a line every 10% in a log).
        checkpoint_path : path-like, optional
            Where the engine writes its checkpoint (at the end, and on Ctrl-C / SIGTERM).
        resume : bool
            With an existing ``checkpoint_path``: load it and finish the run it records.

        Raises
        ------
        NonFiniteSynthesisLoss
            The loss became NaN or inf (a ``ValueError``); the frames are restored.
        """
        if stop_criterion is None:
            stop_criterion = float(torch.linalg.vector_norm(self.pixelfade)) / 1e4 * (1 + 5 ** 0.5) / 2
        engine = self.run_engine(max_iter, optimizer=optimizer, scheduler=scheduler, store_progress=store_progress,
                                 stop_rules=[ChangeNormConvergence(stop_criterion, stop_iters_to_check)],
                                 progress="geodesic" if progress else False, checkpoint_path=checkpoint_path,
                                 resume=resume)
        if engine.stop_reason == "change_norm":
            warnings.warn("Pixel change norm has converged, stopping synthesis", stacklevel=2)
        return self.geodesic

    # ------------------------------------------------------------ results
    @property
    def losses(self) -> Tensor:
        """``(T,)`` the loss before each iteration's step (on CPU)."""
        return self.history_series("loss")

    def _kept(self) -> list[Tensor]:
        if self.optimization is None:
            return []
        h = self.optimization.history
        return [s for s, it in zip(h.snapshots, h.snapshot_iterations) if it < self.optimization.iteration]

    @property
    def step_energy(self) -> Tensor:
        """``(S, n_steps)`` squared step lengths in representation, every ``store_progress`` iterations."""
        kept = self._kept()
        return torch.stack([s[: self.n_steps] for s in kept]) if kept else torch.empty(0, self.n_steps)

    @property
    def dev_from_line(self) -> Tensor:
        """``(S, n_steps + 1, 2)`` distance along and from the representation's straight line (normalised)."""
        kept = self._kept()
        if not kept:
            return torch.empty(0, self.n_steps + 1, 2)
        return torch.stack([s[self.n_steps:].reshape(self.n_steps + 1, 2) for s in kept])

    # ------------------------------------------------------ devices and files
    def to(self, *args: Any, **kwargs: Any) -> Geodesic:
        """Move and/or cast (``to(device)``, ``to(dtype)``, ``to(device, dtype)``) images, model, optimiser state."""
        device, dtype = device_and_dtype(args, kwargs)
        for name in ("image_a", "image_b", "pixelfade"):
            setattr(self, name, getattr(self, name).to(device=device, dtype=dtype))
        if isinstance(self.model, nn.Module):
            self.model.to(*(a for a in (device, dtype) if a is not None))
        self.move_engine(self.intermediate, device, dtype)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write the whole synthesis to one file, atomically (the model is not saved).

        The file holds the anchors, the settings, the frames, the objective on the pixel
        fade (so :meth:`load` can tell a different model) and the engine's state.
        """
        with torch.no_grad():
            check = self.objective_function(self.pixelfade)
        payload = {
            "image_a": self.image_a.cpu(), "image_b": self.image_b.cpu(), "n_steps": self.n_steps,
            "initial_sequence": self.initial_sequence, "range_penalty_lambda": self.range_penalty_lambda,
            "allowed_range": list(self.allowed_range), "intermediate": self.intermediate.detach().cpu(),
            "pixelfade_objective": check.cpu(), **self.run_state(),
        }
        return save_file(payload, path, format=FORMAT, version=VERSION)

    def load(self, path: str | os.PathLike, map_location: Any = None, *, optimizer: Any = None,
             scheduler: Any = None, tensor_equality_atol: float = 1e-8,
             tensor_equality_rtol: float = 1e-5) -> Geodesic:
        """Restore a :meth:`save` file into this object, built with the same arguments.

        As plenoptic's, the file is refused (``CheckpointError``, a ``ValueError``) when
        ``image_a``, ``image_b``, ``n_steps``, ``initial_sequence``, ``range_penalty_lambda``
        or ``allowed_range`` differ ("Saved and initialized X are different"), or when the
        objective on the pixel fade differs by more than 1% (another model). Synthesis then
        resumes with :meth:`synthesize`, equal to an uninterrupted run.

        Parameters
        ----------
        path : path-like
            A :meth:`save` file.
        map_location : optional
            As for ``torch.load``; default this object's device.
        optimizer, scheduler : optional
            Class or factory to rebuild them (default the saved classes).
        tensor_equality_atol, tensor_equality_rtol : float
            Tolerances of the image comparisons.
        """
        device = self.image_a.device
        sd = load_file(path, format=FORMAT, version=VERSION, map_location=map_location or device)
        tol = {"rtol": tensor_equality_rtol, "atol": tensor_equality_atol}
        for name in ("image_a", "image_b"):
            saved, mine = sd[name].to(device), getattr(self, name)
            if saved.shape != mine.shape or saved.dtype != mine.dtype or not torch.allclose(saved, mine, **tol):
                raise CheckpointError(f"Saved and initialized {name} are different: {path} has "
                                      f"{tuple(saved.shape)} {saved.dtype}, this Geodesic {tuple(mine.shape)} "
                                      f"{mine.dtype} (or their values differ)")
        for name in ("n_steps", "initial_sequence", "range_penalty_lambda", "allowed_range"):
            saved, mine = sd[name], getattr(self, name)
            same = (tuple(map(float, saved)) == mine if isinstance(mine, tuple)
                    else math.isclose(saved, mine, rel_tol=1e-9) if isinstance(mine, float) else saved == mine)
            if not same:
                raise CheckpointError(f"Saved and initialized {name} are different: {path} has {saved!r}, this "
                                      f"Geodesic has {mine!r}; build it with the saved value")
        with torch.no_grad():
            mine_check = self.objective_function(self.pixelfade)
        saved_check = sd["pixelfade_objective"].to(mine_check)
        if not torch.allclose(mine_check, saved_check, rtol=1e-2):
            raise CheckpointError("objective_function on pixelfade of saved and initialized Geodesic object are "
                                  f"different! Do they use the same model? Self: {float(mine_check):.6g}, "
                                  f"Saved: {float(saved_check):.6g}")
        self.restore_run(sd, self.intermediate, sd["intermediate"], path, optimizer, scheduler)
        return self

    def __repr__(self) -> str:
        it = 0 if self.optimization is None else self.optimization.iteration
        return f"Geodesic(n_steps={self.n_steps}, image={tuple(self.image_a.shape)}, iterations={it})"
