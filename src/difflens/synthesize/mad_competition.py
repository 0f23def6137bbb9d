"""Maximum differentiation (MAD) competition (Wang & Simoncelli 2008), plenoptic 1.1's ``MADCompetition``.

Starting from ``image`` plus Gaussian noise, the MAD image minimises (``minmax="min"``) or
maximises (``"max"``) ``optimized_metric(image, x)`` while holding
``reference_metric(image, x)`` at its starting value. The objective is

``t * L1(image, x) + lambda1 * (L2(image, x0) - L2(image, x))**2 + lambda2 * range_penalty(x)``

with ``t = +1`` for ``"min"`` and ``-1`` for ``"max"``. The optimisation runs on one
:class:`difflens.engine.Optimization`, the object's ``optimization``; this module only
defines the objective, what is recorded, and the saved file. Plots: :mod:`difflens.plot.mad`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from difflens.engine import LossConvergence, Optimization
from difflens.tools.io import CheckpointError, load_file, save_file
from difflens.tools.rng import default_generator
from difflens.tools.validate import check_range, check_synthesis_image, validate_metric

from .synthesis import NonFiniteSynthesisLoss, Synthesis, device_and_dtype, penalize_range_total

__all__ = ["MADCompetition", "NonFiniteMADLoss", "penalize_range_total"]

FORMAT = "difflens.synthesize.MADCompetition"
VERSION = 1
Metric = Callable[[Tensor, Tensor], Tensor]
_SERIES = ("optimized_metric", "reference_metric")


class NonFiniteMADLoss(NonFiniteSynthesisLoss):
    """The MAD loss became NaN or infinite: the engine's error, also a ``ValueError`` as plenoptic raises."""


def _scalar(value: Any, name: str) -> Tensor:
    if not isinstance(value, Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{name} must return a single number, got {shape}")
    return value.reshape(())


class MADCompetition(Synthesis):
    """Synthesise one maximally-differentiating image for two metrics.

    A full MAD set is four images: the minimum and maximum of each metric with the other
    held fixed; one object makes one of them (:func:`difflens.plot.mad.display_mad_image_all`
    shows the four).

    Parameters
    ----------
    image : Tensor
        Reference image, float32/float64 ``(batch, channel, height, width)`` with finite
        values inside ``allowed_range``.
    optimized_metric, reference_metric : callable
        ``(image, mad_image) -> one-element tensor``, 0 for identical images and positive
        otherwise (a distance: use ``1 - ssim``, not ``ssim``). Checked by
        :func:`difflens.tools.validate.validate_metric`.
    minmax : {"min", "max"}
        Minimise or maximise ``optimized_metric``.
    initial_noise : float
        Standard deviation of the Gaussian noise added to ``image`` for the starting MAD
        image (then clipped to ``allowed_range``, as plenoptic 1.1). Default 0.1.
    metric_tradeoff_lambda : float, optional
        Weight of the squared change of ``reference_metric``. ``None``: ``10**round(log10(r))``
        with ``r`` the ratio of the two metrics at the starting image (warns with the value).
    range_penalty_lambda : float
        Weight of :func:`penalize_range_total` (>= 0). Default 0.1.
    allowed_range : (float, float)
        Pixel range. Default ``(0, 1)``.
    generator : torch.Generator, optional
        Draws the initial noise (default :func:`difflens.tools.rng.default_generator`).
    initial_image : Tensor, optional
        Start from this image instead of ``image`` plus noise (same shape as ``image``).

    Attributes
    ----------
    optimization : Optimization or None
        The engine, built by the first :meth:`synthesize` (or :meth:`load`).
    mad_image : Tensor
        The current MAD image (a leaf tensor that requires grad).
    initial_image : Tensor
        The starting MAD image.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import mse
    >>> from difflens.synthesize import MADCompetition
    >>> img = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> def l1(x, y):
    ...     return (x - y).abs().mean()
    >>> mad = MADCompetition(img, lambda x, y: mse(x, y).mean(), l1, "max", metric_tradeoff_lambda=10.0,
    ...                      generator=torch.Generator().manual_seed(1))
    >>> _ = mad.synthesize(20, progress=False)
    >>> mad.optimized_metric_loss.shape, bool(mad.optimized_metric_loss[-1] > mad.optimized_metric_loss[0])
    (torch.Size([21]), True)
    """

    nonfinite_error = NonFiniteMADLoss

    def __init__(
        self,
        image: Tensor,
        optimized_metric: nn.Module | Metric,
        reference_metric: nn.Module | Metric,
        minmax: Literal["min", "max"],
        initial_noise: float = 0.1,
        metric_tradeoff_lambda: float | None = None,
        range_penalty_lambda: float = 0.1,
        allowed_range: tuple[float, float] = (0.0, 1.0),
        *,
        generator: torch.Generator | None = None,
        initial_image: Tensor | None = None,
    ) -> None:
        lo, hi = check_range(allowed_range)
        check_synthesis_image(image, "image", min_ndim=2, allowed_range=(lo, hi))
        if minmax not in ("min", "max"):
            raise ValueError(f"minmax must be 'min' or 'max', got {minmax!r}")
        for value, name in ((range_penalty_lambda, "range_penalty_lambda"), (initial_noise, "initial_noise")):
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value)
                                               and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if metric_tradeoff_lambda is not None and (
                isinstance(metric_tradeoff_lambda, bool) or not isinstance(metric_tradeoff_lambda, (int, float))
                or not math.isfinite(metric_tradeoff_lambda)):
            raise ValueError(f"metric_tradeoff_lambda must be a finite number or None, got {metric_tradeoff_lambda!r}")
        for metric, name in ((optimized_metric, "optimized_metric"), (reference_metric, "reference_metric")):
            validate_metric(metric, image_shape=image.shape, image_dtype=image.dtype, device=image.device,
                            name=name)
        self.image = image.detach()
        self.optimized_metric = optimized_metric
        self.reference_metric = reference_metric
        self.minmax = minmax
        self.range_penalty_lambda = float(range_penalty_lambda)
        self.allowed_range = (lo, hi)
        self.initial_noise = float(initial_noise)
        self.initial_image = self._initial(initial_image, generator)
        self.mad_image = self.initial_image.clone().requires_grad_(True)
        with torch.no_grad():
            self.reference_metric_target = float(self._metric(self.reference_metric, self.mad_image,
                                                              "reference_metric"))
            start_opt = float(self._metric(self.optimized_metric, self.mad_image, "optimized_metric"))
        if metric_tradeoff_lambda is None:
            ratio = torch.as_tensor(start_opt / self.reference_metric_target, dtype=torch.float64)
            metric_tradeoff_lambda = float(10.0 ** torch.round(torch.log10(ratio)))
            warnings.warn(f"Since metric_tradeoff_lambda was None, automatically set to {metric_tradeoff_lambda} "
                          "to roughly balance metrics.", stacklevel=2)
        self.metric_tradeoff_lambda = float(metric_tradeoff_lambda)
        self._current = (start_opt, self.reference_metric_target)  # metrics at the current mad_image
        self.optimization: Optimization | None = None
        self.store_progress: bool | int = False

    # ---------------------------------------------------------------- setup
    def _initial(self, initial_image: Tensor | None, generator: torch.Generator | None) -> Tensor:
        if initial_image is not None:
            check_synthesis_image(initial_image, "initial_image", min_ndim=2)
            if initial_image.shape != self.image.shape:
                raise ValueError(f"initial_image has shape {tuple(initial_image.shape)}, image has "
                                 f"{tuple(self.image.shape)}; they must match")
            return initial_image.detach().to(self.image.device, self.image.dtype).clone()
        g = default_generator(generator, device=self.image.device)
        noise = torch.randn(self.image.shape, generator=g, device=self.image.device, dtype=self.image.dtype)
        return (self.image + self.initial_noise * noise).clamp(*self.allowed_range)

    def _metric(self, metric: Metric, x: Tensor, name: str, image: Tensor | None = None) -> Tensor:
        return _scalar(metric(self.image if image is None else image, x), name)

    def _terms(self, mad_image: Tensor, image: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        sm = self._metric(self.optimized_metric, mad_image, "optimized_metric", image)
        fm = self._metric(self.reference_metric, mad_image, "reference_metric", image)
        sign = 1.0 if self.minmax == "min" else -1.0
        loss = (sign * sm + self.metric_tradeoff_lambda * (self.reference_metric_target - fm).pow(2)
                + self.range_penalty_lambda * penalize_range_total(mad_image, self.allowed_range))
        return loss, sm, fm

    def objective_function(self, mad_image: Tensor | None = None, image: Tensor | None = None) -> Tensor:
        """The MAD loss (0-d) at ``mad_image`` (default the current one) against ``image``."""
        return self._terms(self.mad_image if mad_image is None else mad_image, image)[0]

    def _engine_loss(self) -> Tensor:
        """The engine's loss: records both metrics at the first evaluation of each step."""
        loss, sm, fm = self._terms(self.mad_image)
        opt = self.optimization
        logged = len(opt.history.iterations(_SERIES[0])) if _SERIES[0] in opt.history.series_names() else 0
        if logged == opt.iteration:  # once per step (L-BFGS evaluates the loss more often)
            opt.history.log(_SERIES[0], sm, opt.iteration + 1)
            opt.history.log(_SERIES[1], fm, opt.iteration + 1)
        return loss

    def _snapshot(self) -> Tensor:
        return self.mad_image.detach().clone()

    def setup(self, optimizer: Any = None, scheduler: Any = None) -> MADCompetition:
        """Build :attr:`optimization` (called by the first :meth:`synthesize`; only once).

        ``optimizer``: an optimiser over ``[self.mad_image]``, an optimiser class, or a factory
        ``params -> Optimizer`` (default ``Adam(lr=0.01, amsgrad=True)``). ``scheduler``: a
        scheduler of that optimiser, or a factory ``optimizer -> scheduler``.
        """
        self.build_engine(self.mad_image, self._engine_loss, optimizer, scheduler=scheduler, snapshot_fn=self._snapshot)
        return self

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
        """Run (or resume) synthesis for up to ``max_iter`` more iterations; returns :attr:`mad_image`.

        Parameters
        ----------
        max_iter : int
            Iterations to run at most in this call.
        optimizer, scheduler : optional
            As in :meth:`setup`; only on the first call.
        store_progress : bool or int
            ``True`` or N keeps a copy of the MAD image every N iterations
            (:attr:`saved_mad_image`); ``False`` keeps the earlier choice.
        stop_criterion, stop_iters_to_check : float, int
            Stop when the loss changed by less than ``stop_criterion`` over the last
            ``stop_iters_to_check`` iterations (plenoptic's criterion).
        progress : bool
            Show a progress bar (a line every 10% in a log).
        checkpoint_path : path-like, optional
            Where the engine writes its checkpoint (at the end, and on Ctrl-C / SIGTERM).
        resume : bool
            With an existing ``checkpoint_path``: load it and finish the run it records.

        Raises
        ------
        NonFiniteMADLoss
            The loss became NaN or inf (a ``ValueError`` and a
            :class:`~difflens.engine.NonFiniteLossError`); the MAD image and optimiser are
            restored to the last finite iteration.
        """
        try:
            self.run_engine(max_iter, optimizer=optimizer, scheduler=scheduler, store_progress=store_progress,
                            stop_rules=[LossConvergence(stop_criterion, stop_iters_to_check)],
                            progress="MAD competition" if progress else False, checkpoint_path=checkpoint_path,
                            resume=resume)
        finally:
            self._update_current()
        if self.optimization.stop_reason == "loss_change":
            warnings.warn("Loss has converged, stopping synthesis", stacklevel=2)
        return self.mad_image

    def _update_current(self) -> None:
        with torch.no_grad():
            self._current = (float(self._metric(self.optimized_metric, self.mad_image, "optimized_metric")),
                             float(self._metric(self.reference_metric, self.mad_image, "reference_metric")))

    # -------------------------------------------------------------- results
    @property
    def losses(self) -> Tensor:
        """``(T,)`` the loss before each iteration's step (on CPU)."""
        return self.history_series("loss")

    def _metric_series(self, index: int) -> Tensor:
        values: list[float] = []
        opt = self.optimization
        if opt is not None and _SERIES[index] in opt.history.series_names():
            values = opt.history[_SERIES[index]].tolist()[: opt.iteration]  # at the iterate before each step
        return torch.tensor([*values, self._current[index]])

    @property
    def optimized_metric_loss(self) -> Tensor:
        """``(T + 1,)`` ``optimized_metric(image, mad_image)`` at the start and after each iteration."""
        return self._metric_series(0)

    @property
    def reference_metric_loss(self) -> Tensor:
        """``(T + 1,)`` ``reference_metric(image, mad_image)`` at the start and after each iteration."""
        return self._metric_series(1)

    @property
    def saved_mad_image(self) -> Tensor:
        """``(S, *image.shape)`` copies taken every ``store_progress`` iterations before the current one."""
        if self.optimization is None:
            return torch.empty(0)
        h = self.optimization.history
        kept = [s.cpu() for s, it in zip(h.snapshots, h.snapshot_iterations) if it < self.optimization.iteration]
        return torch.stack(kept) if kept else torch.empty(0)

    @property
    def saved_iterations(self) -> list[int]:
        """The iterations of :attr:`saved_mad_image`."""
        if self.optimization is None:
            return []
        return [it for it in self.optimization.history.snapshot_iterations if it < self.optimization.iteration]

    # ------------------------------------------------------ devices and files
    def to(self, *args: Any, **kwargs: Any) -> MADCompetition:
        """Move and/or cast (``to(device)``, ``to(dtype)``, ``to(device, dtype)``) images, metrics, optimiser state."""
        device, dtype = device_and_dtype(args, kwargs)
        if dtype is not None and dtype not in (torch.float32, torch.float64):
            raise TypeError(f"MADCompetition runs in float32 or float64, got {dtype}")
        for name in ("image", "initial_image"):
            setattr(self, name, getattr(self, name).to(device=device, dtype=dtype))
        for metric in (self.optimized_metric, self.reference_metric):
            if isinstance(metric, nn.Module):
                metric.to(*(a for a in (device, dtype) if a is not None))
        self.move_engine(self.mad_image, device, dtype)
        return self

    def _fingerprint(self) -> dict[str, Any]:
        """Values that tell whether a file was saved for this competition's image and metrics."""
        with torch.no_grad():
            probe = self.initial_image
            return {"optimized_metric": float(self._metric(self.optimized_metric, probe, "optimized_metric")),
                    "reference_metric": float(self._metric(self.reference_metric, probe, "reference_metric"))}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the whole competition to one file, atomically (the metrics themselves are not saved).

        The file holds the image, the starting and current MAD images, the settings, both
        metrics' values on the starting image (so :meth:`load` can tell different metrics),
        and the engine's state (optimiser, scheduler, history, snapshots).
        """
        payload = {
            "image": self.image.cpu(), "initial_image": self.initial_image.cpu(),
            "mad_image": self.mad_image.detach().cpu(), "minmax": self.minmax,
            "metric_tradeoff_lambda": self.metric_tradeoff_lambda,
            "range_penalty_lambda": self.range_penalty_lambda, "allowed_range": list(self.allowed_range),
            "reference_metric_target": self.reference_metric_target, "metrics": self._fingerprint(),
            "current": list(self._current), **self.run_state(),
        }
        return save_file(payload, path, format=FORMAT, version=VERSION)

    def load(self, path: str | os.PathLike, map_location: Any = None, *, optimizer: Any = None,
             scheduler: Any = None, tensor_equality_atol: float = 1e-8,
             tensor_equality_rtol: float = 1e-5) -> MADCompetition:
        """Restore a :meth:`save` file into this object, built with the same arguments.

        Synthesis then resumes with :meth:`synthesize`, equal to an uninterrupted run. As in
        plenoptic, the file is refused (``CheckpointError``, a ``ValueError``, saying "Saved and
        initialized X are different") when the image, ``minmax``, ``metric_tradeoff_lambda``,
        ``range_penalty_lambda``, ``allowed_range`` or either metric (its value on the saved
        starting image) differ. ``optimizer`` / ``scheduler``: class or factory to rebuild
        them (default the saved ``torch.optim`` optimiser and ``torch.optim.lr_scheduler``
        scheduler classes, rebuilt from their saved settings).
        """
        sd = load_file(path, format=FORMAT, version=VERSION, map_location=map_location or self.image.device)
        tol = {"rtol": tensor_equality_rtol, "atol": tensor_equality_atol}
        img = sd["image"].to(self.image.device)
        if img.shape != self.image.shape or img.dtype != self.image.dtype or not torch.allclose(img, self.image,
                                                                                                 **tol):
            raise CheckpointError(f"Saved and initialized image are different: {path} was saved for an image "
                                  f"{tuple(img.shape)} {img.dtype}, this one is {tuple(self.image.shape)} "
                                  f"{self.image.dtype} (or its values differ)")
        for name in ("minmax", "metric_tradeoff_lambda", "range_penalty_lambda", "allowed_range"):
            saved, mine = sd[name], getattr(self, name)
            same = saved == mine if isinstance(mine, str) else (
                tuple(map(float, saved)) == mine if isinstance(mine, tuple) else math.isclose(saved, mine,
                                                                                              rel_tol=1e-9))
            if not same:
                raise CheckpointError(f"Saved and initialized {name} are different: {path} has {saved!r}, this "
                                      f"MADCompetition has {mine!r}; build it with the saved value")
        init = sd["initial_image"].to(self.image.device, self.image.dtype)
        with torch.no_grad():
            self.initial_image = init
            mine = self._fingerprint()
        for name, saved in sd["metrics"].items():
            if not math.isclose(saved, mine[name], rel_tol=1e-4, abs_tol=1e-7):
                raise CheckpointError(f"Saved and initialized {name} are different: on the saved initial image "
                                      f"the saved one gave {saved:.6g}, this one gives {mine[name]:.6g}")
        self.reference_metric_target = float(sd["reference_metric_target"])
        self._current = tuple(sd["current"])
        self.restore_run(sd, self.mad_image, sd["mad_image"], path, optimizer, scheduler)
        return self

    def __repr__(self) -> str:
        it = 0 if self.optimization is None else self.optimization.iteration
        return (f"MADCompetition({self.minmax} {_name(self.optimized_metric)} holding {_name(self.reference_metric)}, "
                f"image={tuple(self.image.shape)}, iterations={it})")


def _name(metric: Any) -> str:
    return getattr(metric, "__name__", type(metric).__name__)

