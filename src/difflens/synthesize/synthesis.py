"""What every image synthesis that owns the engine shares.

:class:`~difflens.synthesize.Metamer` (and :class:`~difflens.synthesize.MetamerCTF`) and
:class:`~difflens.synthesize.MADCompetition` each optimise one image tensor on one
:class:`difflens.engine.Optimization`, their ``optimization``. :class:`Synthesis` holds
what they do the same way: building the optimiser and scheduler from plenoptic's
arguments, refusing a new optimiser once the run has started, configuring and running
the engine, the engine's histories, and rebuilding the engine from a saved file. A
subclass defines the image it optimises, the objective, and what its file holds.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Callable

import torch
from torch import Tensor

from difflens.engine import NonFiniteLossError, Optimization, StopRule
from difflens.tools.io import CheckpointError

__all__ = ["Synthesis", "NonFiniteSynthesisLoss", "penalize_range_total", "store_every"]


class NonFiniteSynthesisLoss(NonFiniteLossError, ValueError):
    """A synthesis loss became NaN or infinite: the engine's error, also a ``ValueError`` as plenoptic raises.

    The synthesised image and the optimiser are back at the last finite iteration.
    """


def penalize_range_total(image: Tensor, allowed_range: tuple[float, float] = (0.0, 1.0)) -> Tensor:
    """Sum over every pixel of the squared distance outside ``allowed_range``: a 0-d tensor."""
    lo, hi = allowed_range
    return (lo - image).clamp_min(0).pow(2).sum() + (image - hi).clamp_min(0).pow(2).sum()


def store_every(store_progress: bool | int) -> int | None:
    """How often ``store_progress`` keeps a snapshot: ``True`` -> 1, ``N`` -> N, ``False``/0 -> ``None``.

    Raises
    ------
    ValueError
        ``store_progress`` is neither a bool nor an integer >= 0.
    """
    if isinstance(store_progress, bool):
        return 1 if store_progress else None
    if isinstance(store_progress, int) and store_progress >= 0:
        return store_progress or None
    raise ValueError(f"store_progress must be a bool or an integer >= 0, got {store_progress!r}")


class Synthesis:
    """Base class of syntheses that optimise one image tensor on the engine.

    Subclasses set :attr:`optimization` to ``None`` and :attr:`store_progress` to ``False``
    in their constructor, define :meth:`setup` (which builds the engine with
    :meth:`build_engine`) and call :meth:`run_engine` from their ``synthesize``.

    Attributes
    ----------
    optimization : Optimization or None
        The engine, built by the first ``synthesize`` (or ``setup`` / ``load``); ``None`` before.
    store_progress : bool or int
        The snapshot interval chosen by the last ``synthesize`` that set one.
    """

    optimization: Optimization | None
    store_progress: bool | int
    nonfinite_error: type[NonFiniteSynthesisLoss] = NonFiniteSynthesisLoss

    def setup(self, *args: Any, **kwargs: Any) -> Synthesis:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    # ---------------------------------------------------------------- engine
    def build_engine(self, image: Tensor, loss: Callable[[], Tensor], optimizer: Any = None,
                     optimizer_kwargs: dict[str, Any] | None = None, scheduler: Any = None,
                     scheduler_kwargs: dict[str, Any] | None = None, **engine_options: Any) -> Optimization:
        """Build (and keep as :attr:`optimization`) the engine optimising ``image``.

        Parameters
        ----------
        image : Tensor
            The leaf tensor optimised.
        loss : callable
            The engine's loss, ``() -> Tensor`` (or ``(image) -> Tensor``).
        optimizer : optional
            An optimiser over ``[image]``, an optimiser class (built with ``optimizer_kwargs``,
            default ``{"lr": 0.01}``), or a factory ``params -> Optimizer``. Default
            ``Adam(lr=0.01, amsgrad=True)`` (``optimizer_kwargs`` update it).
        optimizer_kwargs : dict, optional
            Only with the default or an optimiser class.
        scheduler : optional
            A scheduler of that optimiser, a scheduler class (built with ``scheduler_kwargs``),
            or a factory ``optimizer -> scheduler``. Default none.
        scheduler_kwargs : dict, optional
            Only with a scheduler class.
        **engine_options
            Passed to :class:`~difflens.engine.Optimization` (``snapshot_fn``, ``state``, ...).

        Raises
        ------
        ValueError
            The engine exists already, or ``*_kwargs`` are given with an instance.
        """
        if self.optimization is not None:
            raise ValueError("setup() can only be called once, before synthesize()")
        if optimizer is None:
            optimizer = torch.optim.Adam([image], **{"lr": 0.01, "amsgrad": True, **(optimizer_kwargs or {})})
        elif isinstance(optimizer, type):
            optimizer = optimizer([image], **(optimizer_kwargs or {"lr": 0.01}))
        elif optimizer_kwargs is not None:
            raise ValueError("optimizer_kwargs only go with an optimizer class, not an optimizer instance")
        if isinstance(scheduler, type):
            cls, kw = scheduler, dict(scheduler_kwargs or {})
            scheduler = lambda opt: cls(opt, **kw)  # noqa: E731
        elif scheduler_kwargs is not None:
            raise ValueError("scheduler_kwargs only go with a scheduler class")
        self.optimization = Optimization([image], loss, optimizer=optimizer, scheduler=scheduler, **engine_options)
        return self.optimization

    def run_engine(self, max_iter: int, *, optimizer: Any, scheduler: Any, store_progress: bool | int,
                   stop_rules: list[StopRule], progress: str | bool,
                   checkpoint_path: str | os.PathLike | None, resume: bool) -> Optimization:
        """Build the engine on the first call (:meth:`setup`), configure it and run ``max_iter`` steps.

        ``optimizer`` / ``scheduler`` may only be given on the first call; ``progress`` is the
        progress line's label (or ``False``); the other arguments are ``synthesize``'s.

        Raises
        ------
        ValueError
            A new optimiser or scheduler on a later call, or a bad ``store_progress``.
        NonFiniteSynthesisLoss
            The loss became NaN or inf (:attr:`nonfinite_error`, a ``ValueError``); the image
            and the optimiser are restored to the last finite iteration.
        """
        if self.optimization is None:
            self.setup(optimizer=optimizer, scheduler=scheduler)
        elif optimizer is not None and optimizer is not self.optimization.optimizer:
            raise ValueError("optimizer can only be set on the first call to synthesize (or setup); "
                             "this call resumes the existing synthesis")
        elif scheduler is not None and scheduler is not self.optimization.scheduler:
            raise ValueError("scheduler can only be set on the first call to synthesize (or setup)")
        assert self.optimization is not None
        every = store_every(store_progress)
        options: dict[str, Any] = {"snapshot_every": every} if every else {}
        self.optimization.configure(stop_rules=stop_rules, progress=progress,
                                    checkpoint_path=checkpoint_path, **options)
        if every:
            self.store_progress = store_progress
        try:
            self.optimization.run(max_iter, resume=resume)
        except NonFiniteLossError as err:
            raise self.nonfinite_error(f"Found a NaN in loss during optimization: {err}", err.iteration) from err
        return self.optimization

    def restore_engine(self, engine_state: dict[str, Any] | None, scheduler_class: str | None,
                       path: Any, optimizer: Any = None, scheduler: Any = None) -> None:
        """Rebuild the engine (if not built yet) and load a saved engine state into it.

        Parameters
        ----------
        engine_state : dict or None
            The saved ``optimization.state_dict()`` (``None``: nothing ran before the save).
        scheduler_class : str or None
            Name of the saved scheduler's class.
        path : path-like
            The file, for messages.
        optimizer, scheduler : optional
            Class or factory to rebuild them; default the saved ``torch.optim`` optimiser
            class and ``torch.optim.lr_scheduler`` scheduler class (settings from the file).

        Raises
        ------
        CheckpointError
            The saved optimiser or scheduler cannot be rebuilt without help.
        """
        if engine_state is None:
            return
        if self.optimization is None:
            opt = optimizer if optimizer is not None else saved_class(torch.optim, engine_state["optimizer_class"],
                                                                      path)
            if isinstance(opt, type):
                cls = opt
                opt = lambda params: cls(params, lr=0.01)  # noqa: E731 (settings come from the file)
            sched = scheduler
            if sched is None and scheduler_class is not None:
                sched = saved_class(torch.optim.lr_scheduler, scheduler_class, path)
            if isinstance(sched, type):
                sched = scheduler_factory(sched, engine_state["scheduler"], path)
            self.setup(optimizer=opt, scheduler=sched)
        assert self.optimization is not None
        every = store_every(self.store_progress)
        if every:
            self.optimization.configure(snapshot_every=every)
        self.optimization.load_state_dict(engine_state)

    def scheduler_class_name(self) -> str | None:
        """The running scheduler's class name, for a save file (``None`` without one)."""
        opt = self.optimization
        return None if opt is None or opt.scheduler is None else type(opt.scheduler).__name__

    def run_state(self) -> dict[str, Any]:
        """The run's part of a save file: ``store_progress``, ``scheduler_class``, ``optimization``.

        ``optimization`` is the engine's ``state_dict()`` (``None`` before the first run);
        :meth:`restore_run` reads these keys back.
        """
        opt = self.optimization
        return {"store_progress": self.store_progress, "scheduler_class": self.scheduler_class_name(),
                "optimization": None if opt is None else opt.state_dict()}

    def restore_run(self, saved: dict[str, Any], leaf: Tensor, saved_leaf: Tensor, path: Any,
                    optimizer: Any = None, scheduler: Any = None) -> None:
        """Copy ``saved_leaf`` into the optimised ``leaf``, then restore what :meth:`run_state` saved.

        Parameters
        ----------
        saved : dict
            The save file's payload, holding :meth:`run_state`'s keys.
        leaf, saved_leaf : Tensor
            The optimised tensor and its saved value (cast to its dtype and device).
        path, optimizer, scheduler
            As in :meth:`restore_engine`.
        """
        with torch.no_grad():
            leaf.copy_(saved_leaf.to(leaf))
        self.store_progress = saved["store_progress"]
        self.restore_engine(saved["optimization"], saved["scheduler_class"], path, optimizer, scheduler)

    def move_engine(self, image: Tensor, device: Any = None, dtype: torch.dtype | None = None) -> None:
        """Move / cast the optimised leaf ``image`` with the engine (optimiser state, history).

        The subclass's ``to`` moves its own tensors and calls this for the leaf.
        """
        if self.optimization is None:
            image.data = image.data.to(device=device, dtype=dtype)
            return
        if device is not None:
            self.optimization.to(device)
        if dtype is not None:
            image.data = image.data.to(dtype)
            for state in self.optimization.optimizer.state.values():
                for k, v in state.items():
                    if isinstance(v, Tensor) and v.is_floating_point() and k != "step":
                        state[k] = v.to(dtype)

    # --------------------------------------------------------------- results
    def history_series(self, name: str) -> Tensor:
        """An engine history series (``"loss"``, ``"grad_norm"``, ...) on CPU; empty before the first run."""
        if self.optimization is None:
            return torch.empty(0)
        return getattr(self.optimization.history, name).detach().cpu()

    @property
    def gradient_norm(self) -> Tensor:
        """``(T,)`` 2-norm of the gradient at each iteration (on CPU)."""
        return self.history_series("grad_norm")

    @property
    def pixel_change_norm(self) -> Tensor:
        """``(T,)`` 2-norm of each step's change of the synthesised image (on CPU)."""
        return self.history_series("change_norm")

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The engine's optimiser (``None`` before the first run)."""
        return None if self.optimization is None else self.optimization.optimizer

    @property
    def scheduler(self) -> Any:
        """The engine's scheduler (``None`` without one)."""
        return None if self.optimization is None else self.optimization.scheduler


def device_and_dtype(args: tuple, kwargs: dict[str, Any]) -> tuple[Any, torch.dtype | None]:
    """Read ``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or keywords, as ``Tensor.to`` takes them.

    Raises
    ------
    TypeError
        Other keywords, or a dtype that is not floating point.
    """
    kwargs = dict(kwargs)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    for a in args:
        if isinstance(a, torch.dtype):
            dtype = a
        else:
            device = a
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"a synthesis runs in a floating-point dtype, got {dtype}")
    return device, dtype


def saved_class(module: Any, name: str, path: Any) -> type:
    """The class ``name`` in ``torch.optim`` or ``torch.optim.lr_scheduler``, as a file recorded it.

    Raises
    ------
    CheckpointError
        There is no such class there.
    """
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        kind = "optimizer" if module is torch.optim else "scheduler"
        raise CheckpointError(f"{path} was saved with {kind} {name!r}, which is not in {module.__name__}: "
                              f"pass {kind}=<its class or a factory> to load")
    return cls


def scheduler_factory(cls: type, state: dict[str, Any] | None, path: Any) -> Callable[[Any], Any]:
    """Build ``cls`` on an optimizer from its saved state (its required arguments are saved in it).

    Raises
    ------
    CheckpointError
        A required argument of ``cls`` is not in ``state``.
    """
    state = state or {}
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    missing = [n for n in required if n not in state]
    if missing:
        raise CheckpointError(f"{path} was saved with scheduler {cls.__name__}, whose argument(s) "
                              f"{', '.join(missing)} are not in its saved state: pass "
                              "scheduler=lambda opt: <the scheduler built on opt> to load")
    kwargs = {n: state[n] for n in required}
    return lambda opt: cls(opt, **kwargs)
