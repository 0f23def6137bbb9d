"""The one optimisation loop of difflens.

:class:`Optimization` minimises ``loss_fn()`` over a list of tensors (an image,
a model's parameters, kernel hyperparameters) with any ``torch.optim``
optimiser. Metamers, emulator training, GP fitting and the drawing autoencoder
all run through it; none of them writes a loop of its own.
"""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from difflens.tools.io import CheckpointError, load_file, save_file

from .history import History
from .interrupt import Interrupted, deferred_interrupt
from .progress import make_progress
from .stopping import StopRule

__all__ = ["Optimization", "NonFiniteLossError", "CheckpointError", "load_file"]

FORMAT = "difflens.engine.Optimization"
VERSION = 2  # 2: adds "target" (the iteration the last run was running to) and elapsed seconds

_UNCHANGED: Any = object()


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite. ``iteration`` is the first bad one."""

    def __init__(self, message: str, iteration: int) -> None:
        super().__init__(message)
        self.iteration = iteration


OptimizerLike = torch.optim.Optimizer | Callable[[list[torch.Tensor]], torch.optim.Optimizer] | None


class Optimization:
    """Minimise ``loss_fn()`` over ``params``.

    Parameters
    ----------
    params:
        Leaf tensors with ``requires_grad=True``, or an ``nn.Module`` (its
        trainable parameters are optimised; its persistent buffers, such as
        batch-norm statistics, are saved, loaded and rolled back with them;
        ``.to()`` moves the whole module).
    loss_fn:
        ``() -> Tensor``; a scalar, or a ``(B,)`` vector of B independent losses
        (their sum is minimised; stop rules and ``freeze_converged`` act per item).
    optimizer:
        A ``torch.optim.Optimizer`` over exactly ``params``, or a factory
        ``params -> Optimizer``. Default ``Adam(lr=0.01)``. L-BFGS works: every
        step is ``optimizer.step(closure)``.
    scheduler:
        An LR scheduler or a factory ``optimizer -> scheduler``; stepped once per
        iteration (``ReduceLROnPlateau`` gets the loss, which costs a host sync).
    stop_rules:
        :class:`~difflens.engine.stopping.StopRule` instances, checked at check points.
    min_iter:
        No rule may stop the run before this many iterations in total.
    check_every:
        Iterations between host syncs (stop rules, NaN check, progress bar,
        callbacks). Default 1 on CPU, 25 elsewhere.
    snapshot_every, snapshot_fn:
        Every ``snapshot_every`` iterations store ``snapshot_fn()`` (default: a
        copy of the parameters) in ``history.snapshots``; also at iteration 0.
    record_change:
        Record the norm of each step's parameter change (costs a copy per step).
    progress:
        ``True`` or a description: a tqdm bar when stderr is a terminal, else a
        plain line every 10% of the run (logs stay readable).
    callbacks:
        ``fn(opt)`` called at each check point.
    state:
        Other objects with ``state_dict``/``load_state_dict`` (a data sampler and
        its generator) saved and restored with the run, so a
        resumed run equals an uninterrupted one.
    freeze_converged:
        With a ``(B,)`` loss, parameters' rows ``[b]`` stop moving once item b
        converged (every parameter must have leading dimension B).
    checkpoint_path, checkpoint_every:
        Write :meth:`save` atomically every ``checkpoint_every`` iterations (at
        check points) and when ``run`` ends, including after Ctrl-C or SIGTERM.
        ``run(..., resume=True)`` continues from this file when it exists.

    Notes
    -----
    Owners (Metamer, emulator training, GP fitting, ...) build one
    ``Optimization``, expose it as their ``optimization`` attribute, change it
    only through :meth:`configure`, and run it with :meth:`run`. Elapsed wall
    time is recorded in ``history.seconds``; nobody needs to time ``run``.

    Examples
    --------
    Least squares by gradient descent, stopped when the loss stops changing:

    >>> import torch
    >>> from difflens.engine import LossChange, Optimization
    >>> target = torch.tensor([1.0, -2.0, 0.5])
    >>> x = torch.zeros(3, requires_grad=True)
    >>> opt = Optimization([x], lambda: ((x - target) ** 2).sum(),
    ...                    optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
    ...                    stop_rules=[LossChange(1e-10)])
    >>> opt = opt.run(max_iter=500)
    >>> opt.stop_reason, opt.iteration < 500, bool(torch.allclose(x, target, atol=1e-4))
    ('loss_change', True, True)
    >>> opt.history.loss.shape == (opt.iteration,)
    True
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | nn.Module,
        loss_fn: Callable[[], torch.Tensor],
        optimizer: OptimizerLike = None,
        scheduler: Any = None,
        stop_rules: Sequence[StopRule] = (),
        min_iter: int = 0,
        check_every: int | None = None,
        snapshot_every: int | None = None,
        snapshot_fn: Callable[[], Any] | None = None,
        record_change: bool = True,
        progress: bool | str = False,
        callbacks: Sequence[Callable[["Optimization"], None]] = (),
        state: Mapping[str, Any] | None = None,
        freeze_converged: bool = False,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
    ) -> None:
        self.module = params if isinstance(params, nn.Module) else None
        # persistent buffers by name, found once: every CPU step captures them for NaN rollback
        self._buffer_names: list[str] = []
        if self.module is not None:
            persistent = set(self.module.state_dict(keep_vars=True))
            self._buffer_names = [k for k, _ in self.module.named_buffers() if k in persistent]
        self.params = _as_param_list(params)
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable () -> Tensor, got {type(loss_fn).__name__}")
        self.loss_fn = loss_fn
        self.optimizer = _make_optimizer(optimizer, self.params)
        self.scheduler = _make_scheduler(scheduler, self.optimizer)
        for rule in stop_rules:
            if not isinstance(rule, StopRule):
                raise TypeError(f"stop_rules must be StopRule instances, got {rule!r}")
        self.stop_rules = list(stop_rules)
        self.min_iter = _nonneg_int(min_iter, "min_iter")
        device = self.params[0].device
        self.check_every = (_pos_int(check_every, "check_every") if check_every is not None
                            else (1 if device.type == "cpu" else 25))
        self.snapshot_every = _pos_int(snapshot_every, "snapshot_every") if snapshot_every is not None else None
        self.snapshot_fn = snapshot_fn or (lambda: [p.detach().clone() for p in self.params])
        self.record_change = bool(record_change)
        self.progress = progress
        self.callbacks = list(callbacks)
        self.state = dict(state or {})
        for name, obj in self.state.items():
            if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise TypeError(f"state[{name!r}] has no state_dict/load_state_dict")
        self.freeze_converged = bool(freeze_converged)
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.checkpoint_every = (_pos_int(checkpoint_every, "checkpoint_every") if checkpoint_every is not None
                                 else None)

        self.history = History()
        self.iteration = 0
        self.target: int | None = None  # the iteration the current (or last) run runs to
        self.stop_reason: str | None = None
        self.converged: torch.Tensor | None = None  # (B,) bool, per-item losses only
        self._frozen: list[torch.Tensor] | None = None
        self._good: tuple[int, Any] | None = None  # last state known to give finite losses
        self._pending: tuple[int, Any] | None = None
        self._checked = 0  # iterations whose losses were checked finite

    # ------------------------------------------------------------------ running
    @property
    def device(self) -> torch.device:
        return self.params[0].device

    def configure(
        self,
        *,
        stop_rules: Sequence[StopRule] = _UNCHANGED,
        min_iter: int = _UNCHANGED,
        check_every: int = _UNCHANGED,
        snapshot_every: int | None = _UNCHANGED,
        snapshot_fn: Callable[[], Any] | None = _UNCHANGED,
        progress: bool | str = _UNCHANGED,
        callbacks: Sequence[Callable[["Optimization"], None]] = _UNCHANGED,
        checkpoint_path: str | os.PathLike | None = _UNCHANGED,
        checkpoint_every: int | None = _UNCHANGED,
    ) -> "Optimization":
        """Change how the next :meth:`run` stops, reports, snapshots and checkpoints; returns ``self``.

        Only the arguments given change; they mean what they mean in the
        constructor and are validated the same way. The parameters, optimizer
        and history are untouched, so a run configured anew resumes exactly.
        ``snapshot_every`` cannot change once snapshots were taken at another
        interval (``None`` stops taking them).
        """
        if stop_rules is not _UNCHANGED:
            for rule in stop_rules:
                if not isinstance(rule, StopRule):
                    raise TypeError(f"stop_rules must be StopRule instances, got {rule!r}")
            self.stop_rules = list(stop_rules)
        if min_iter is not _UNCHANGED:
            self.min_iter = _nonneg_int(min_iter, "min_iter")
        if check_every is not _UNCHANGED:
            self.check_every = _pos_int(check_every, "check_every")
        if snapshot_every is not _UNCHANGED:
            every = _pos_int(snapshot_every, "snapshot_every") if snapshot_every is not None else None
            if (every is not None and self.snapshot_every not in (None, every)
                    and self.history.snapshot_iterations):
                raise ValueError(f"snapshot_every cannot change from {self.snapshot_every} to {every} once "
                                 "snapshots were taken")
            self.snapshot_every = every
        if snapshot_fn is not _UNCHANGED:
            if snapshot_fn is not None and not callable(snapshot_fn):
                raise TypeError(f"snapshot_fn must be callable, got {snapshot_fn!r}")
            self.snapshot_fn = snapshot_fn or (lambda: [p.detach().clone() for p in self.params])
        if progress is not _UNCHANGED:
            if not isinstance(progress, (bool, str)):
                raise TypeError(f"progress must be a bool or a description, got {progress!r}")
            self.progress = progress
        if callbacks is not _UNCHANGED:
            if not all(callable(cb) for cb in callbacks):
                raise TypeError("callbacks must be callables fn(optimization)")
            self.callbacks = list(callbacks)
        if checkpoint_path is not _UNCHANGED:
            self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        if checkpoint_every is not _UNCHANGED:
            self.checkpoint_every = (_pos_int(checkpoint_every, "checkpoint_every")
                                     if checkpoint_every is not None else None)
        return self

    @property
    def finished(self) -> bool:
        """Whether the last run ended by itself (a stop rule or its iteration count), not by an interrupt."""
        return self.stop_reason is not None and self.stop_reason != "interrupted"

    def run(self, max_iter: int, *, resume: bool = False) -> "Optimization":
        """Run up to ``max_iter`` more iterations; returns ``self``. Call again to go on.

        Parameters
        ----------
        max_iter : int
            Iterations to run at most (>= 0); stop rules may end the run sooner.
        resume : bool
            With a ``checkpoint_path`` that exists: load it and finish the run it
            records instead, up to the iteration that run was going to (nothing
            runs when it had finished). Without the file, run as usual. A run
            resumed this way gives the same numbers as one never interrupted.

        Notes
        -----
        A first SIGINT or SIGTERM finishes the current step, records
        ``stop_reason="interrupted"`` and writes the checkpoint; the signal is
        then passed on (see :mod:`difflens.engine.interrupt`), so inside a study
        the run raises :class:`~difflens.engine.interrupt.Interrupted`.
        """
        max_iter = _nonneg_int(max_iter, "max_iter")
        if resume:
            if self.checkpoint_path is None:
                raise ValueError("run(resume=True) needs a checkpoint_path (see configure)")
            if self.checkpoint_path.is_file():
                self.load(self.checkpoint_path)
                if self.finished or self.target is None:
                    return self
                max_iter = max(0, self.target - self.iteration)
        self.stop_reason = None
        for rule in self.stop_rules:
            rule.start(self)
        if self.snapshot_every and not self.history.snapshot_iterations:
            self.history.add_snapshot(self.iteration, _detach(self.snapshot_fn()))
        target = self.target = self.iteration + max_iter
        bar = make_progress(self.progress, "optimising", self.iteration, target)
        started = time.perf_counter()
        try:
            with deferred_interrupt() as interrupted:
                try:
                    self._loop(target, interrupted, bar)
                except KeyboardInterrupt:  # raised from inside a step: undo that partial step
                    self._rollback_partial_step()
                    self.stop_reason = "interrupted"
                finally:
                    self.history.seconds += time.perf_counter() - started
                    if bar is not None:
                        bar.close()
                    if self.checkpoint_path is not None and self.stop_reason is not None:
                        self.save(self.checkpoint_path)
        except Interrupted as exc:  # passed on by deferred_interrupt: say where this run stopped
            if exc.iteration is None:
                exc.iteration, exc.max_iter = self.iteration, target
                exc.description = self.progress if isinstance(self.progress, str) else None
            raise
        return self

    def _loop(self, target: int, interrupted: Callable[[], bool], bar: Any) -> None:
        while self.iteration < target:
            self._step()
            at_check = self.iteration % self.check_every == 0 or self.iteration == target
            if self.snapshot_every and self.iteration % self.snapshot_every == 0:
                self.history.add_snapshot(self.iteration, _detach(self.snapshot_fn()))
            if at_check:
                reason = self._check()
                if bar is not None:
                    bar.update(self.iteration, float(self.history.loss[-1].sum()))
                if reason:
                    self.stop_reason = reason
                    return
            if interrupted():
                self._check()
                self.stop_reason = "interrupted"
                return
        self.stop_reason = "max_iter"

    def _step(self) -> None:
        need_copy = self.record_change or (self.iteration + 1) % self.check_every == 0
        before = [p.detach().clone() for p in self.params] if need_copy else None
        if (self.iteration + 1) % self.check_every == 0 or self.check_every == 1:
            self._pending = (self.iteration, self._capture(before))
        recorded: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            with torch.enable_grad():
                loss = self.loss_fn()
                if not isinstance(loss, torch.Tensor) or loss.ndim > 1:
                    raise TypeError("loss_fn must return a scalar or (B,) tensor, got "
                                    f"{type(loss).__name__} {tuple(getattr(loss, 'shape', ()))}")
                total = loss.sum() if loss.ndim else loss
                if not total.requires_grad:
                    raise ValueError(
                        "loss_fn returned a loss that does not depend on the parameters being optimised "
                        "(it has no autograd graph): check that it uses them and does not detach them or "
                        "run under torch.no_grad()")
                total.backward()
            if not recorded:
                recorded["loss"] = loss.detach()
                grads = [p.grad for p in self.params if p.grad is not None]
                recorded["grad"] = (torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
                                    if grads else torch.zeros((), device=self.device))
            return total

        self._before, self._in_step = before, True
        self.optimizer.step(closure)
        if self._frozen is not None:
            with torch.no_grad():
                for p, f in zip(self.params, self._frozen):
                    mask = self.converged.to(p.device).view(-1, *([1] * (p.ndim - 1)))
                    p.copy_(torch.where(mask, f, p))
        if before is not None and self.record_change:
            with torch.no_grad():
                change = torch.linalg.vector_norm(
                    torch.stack([(p.detach() - b).norm() for p, b in zip(self.params, before)]))
        else:
            change = torch.full((), math.nan, device=self.device)
        self.history.append(recorded["loss"], recorded["grad"], change, _lr(self.optimizer))
        self.iteration += 1
        self._in_step = False
        if self.scheduler is not None:
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(float(recorded["loss"].sum()))
            else:
                self.scheduler.step()

    def _check(self) -> str | None:
        new = self.history.loss[self._checked:]
        if new.numel() and not bool(torch.isfinite(new).all()):
            bad = self._checked + int((~torch.isfinite(new.reshape(new.shape[0], -1)).all(1)).nonzero()[0])
            self._restore_good()
            raise NonFiniteLossError(
                f"the loss became non-finite at iteration {bad}; parameters and optimizer state were "
                f"restored to iteration {self.iteration}, the last one known to give a finite loss, "
                "and the history was kept up to there", bad)
        self._checked = self.iteration
        if self._pending is not None and self._pending[0] < self.iteration:
            self._good = self._pending  # its own loss is now known to be finite
            self._pending = None
        for cb in self.callbacks:
            cb(self)
        if self.checkpoint_every and self.checkpoint_path and self.iteration % self.checkpoint_every == 0:
            self.save(self.checkpoint_path)
        if self.iteration < self.min_iter:
            return None
        per_item = self.history.loss.ndim == 2
        done = torch.zeros(self.history.loss.shape[1], dtype=torch.bool) if per_item else None
        for rule in self.stop_rules:
            answer = rule.check(self)
            if isinstance(answer, torch.Tensor) and answer.ndim == 1:
                if not per_item:
                    raise ValueError(f"{rule!r} answered per item but the loss is a scalar")
                done |= answer.cpu()
                if bool(done.all()):
                    self._update_converged(done)
                    return rule.name
            elif bool(answer):
                return rule.name
        if per_item:
            self._update_converged(done)
        return None

    def _update_converged(self, done: torch.Tensor) -> None:
        newly = done & ~(self.converged if self.converged is not None else torch.zeros_like(done))
        self.converged = done if self.converged is None else (self.converged | done)
        if not (self.freeze_converged and bool(newly.any())):
            return
        if self._frozen is None:
            for p in self.params:
                if p.ndim == 0 or p.shape[0] != done.shape[0]:
                    raise ValueError("freeze_converged needs every parameter to have leading dimension "
                                     f"B={done.shape[0]}, got shape {tuple(p.shape)}")
            self._frozen = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, f in zip(self.params, self._frozen):
                f[newly.to(p.device)] = p.detach()[newly.to(p.device)]

    # --------------------------------------------------------- restore points
    def _capture(self, params: list[torch.Tensor] | None) -> dict[str, Any]:
        return {
            "params": params if params is not None else [p.detach().clone() for p in self.params],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": copy.deepcopy(self.scheduler.state_dict()) if self.scheduler is not None else None,
            "state": {k: copy.deepcopy(v.state_dict()) for k, v in self.state.items()},
            "buffers": {k: v.detach().clone() for k, v in self._buffers().items()},
        }

    def _buffers(self) -> dict[str, torch.Tensor]:
        """The module's persistent buffers (running statistics, cluster targets, ...) by name."""
        return {k: self.module.get_buffer(k) for k in self._buffer_names}

    def _set_buffers(self, saved: Mapping[str, torch.Tensor]) -> None:
        if self.module is None or not saved:
            return
        mine = self._buffers()
        if set(saved) != set(mine):
            raise CheckpointError(f"saved buffers {sorted(saved)}, this module has {sorted(mine)}")
        with torch.no_grad():
            for name, value in saved.items():
                current = mine[name]
                if current.shape == value.shape:
                    current.copy_(value.to(current.device, current.dtype))
                else:  # a buffer whose size is set by the data (e.g. per-sample targets)
                    owner, _, attr = name.rpartition(".")
                    setattr(self.module.get_submodule(owner), attr, value.to(current.device, current.dtype))

    def _restore(self, iteration: int, saved: dict[str, Any]) -> None:
        with torch.no_grad():
            for p, s in zip(self.params, saved["params"]):
                p.copy_(s)
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        for k, obj in self.state.items():
            obj.load_state_dict(saved["state"][k])
        self._set_buffers(saved.get("buffers", {}))
        self.iteration = iteration
        self.history.truncate(iteration)
        self._checked = min(self._checked, iteration)

    def _restore_good(self) -> None:
        if self._good is not None:
            self._restore(*self._good)
        else:  # nothing finite was ever seen: go back to the start of this run's first step
            start = self._pending if self._pending is not None else (self.iteration, self._capture(None))
            self._restore(*start)
        self._pending = None

    def _rollback_partial_step(self) -> None:
        before = getattr(self, "_before", None)
        if not getattr(self, "_in_step", False):
            return
        self._in_step = False
        if before is not None:
            with torch.no_grad():
                for p, b in zip(self.params, before):
                    p.copy_(b)
            if self._pending is not None and self._pending[0] == self.iteration:
                self._restore(*self._pending)

    # --------------------------------------------------------------- devices
    def to(self, device: torch.device | str) -> "Optimization":
        """Move parameters, their gradients, optimizer state, history and tracked modules."""
        device = torch.device(device)
        if self.module is not None:
            self.module.to(device)
        for p in self.params:
            p.data = p.data.to(device)
            if p.grad is not None:
                p.grad.data = p.grad.data.to(device)
        for st in self.optimizer.state.values():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and k != "step":
                    st[k] = v.to(device)
        for obj in self.state.values():
            if hasattr(obj, "to"):
                obj.to(device)
        self.history.to(device)
        if self._frozen is not None:
            self._frozen = [f.to(device) for f in self._frozen]
        self._good = self._pending = None
        return self

    # -------------------------------------------------------------- save/load
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: parameters, optimizer, scheduler, history, tracked state."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "iteration": self.iteration,
            "target": self.target,
            "stop_reason": self.stop_reason,
            "params": [p.detach().cpu().clone() for p in self.params],
            "optimizer_class": type(self.optimizer).__name__,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "history": self.history.state_dict(),
            "state": {k: v.state_dict() for k, v in self.state.items()},
            "buffers": {k: v.detach().cpu().clone() for k, v in self._buffers().items()},
            "converged": None if self.converged is None else self.converged.cpu().clone(),
            "frozen": None if self._frozen is None else [f.cpu().clone() for f in self._frozen],
            "checked": self._checked,
        }

    def load_state_dict(self, sd: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict` into this optimisation (built over parameters of the same
        shapes with the same optimiser class).

        Raises
        ------
        CheckpointError
            The state is not a difflens optimisation state, is from a newer version, or does not
            match this optimisation's parameters or optimiser.
        """
        if not isinstance(sd, Mapping) or sd.get("format") != FORMAT:
            raise CheckpointError("not a difflens optimisation state (missing or wrong 'format' key)")
        if int(sd.get("version", 0)) > VERSION:
            raise CheckpointError(f"state has version {sd['version']}, this difflens reads up to {VERSION}")
        saved = [tuple(t.shape) for t in sd["params"]]
        mine = [tuple(p.shape) for p in self.params]
        if saved != mine:
            raise CheckpointError(f"saved parameters have shapes {saved}, this optimisation has {mine}")
        if sd["optimizer_class"] != type(self.optimizer).__name__:
            raise CheckpointError(f"saved with optimizer {sd['optimizer_class']}, this optimisation uses "
                                  f"{type(self.optimizer).__name__}")
        if set(sd["state"]) != set(self.state):
            raise CheckpointError(f"saved tracked state {sorted(sd['state'])}, this optimisation tracks "
                                  f"{sorted(self.state)}")
        with torch.no_grad():
            for p, s in zip(self.params, sd["params"]):
                p.copy_(s.to(p.device, p.dtype))
        self.optimizer.load_state_dict(sd["optimizer"])
        if (sd["scheduler"] is None) != (self.scheduler is None):
            raise CheckpointError("the save file and this optimisation disagree on having a scheduler")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(sd["scheduler"])
        for k, obj in self.state.items():
            obj.load_state_dict(sd["state"][k])
        self._set_buffers(sd.get("buffers", {}))
        self.history.load_state_dict(sd["history"], self.device)
        self.iteration = int(sd["iteration"])
        self.target = sd.get("target")
        self.stop_reason = sd["stop_reason"]
        self.converged = sd["converged"]
        self._frozen = None if sd["frozen"] is None else [f.to(self.device) for f in sd["frozen"]]
        self._checked = int(sd["checked"])
        self._good = self._pending = None

    def save(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the state (and ``extra`` plain data) to one file, atomically."""
        payload = {k: v for k, v in self.state_dict().items() if k not in ("format", "version")}
        payload["extra"] = dict(extra or {})
        return save_file(payload, path, format=FORMAT, version=VERSION)

    def load(self, path: str | os.PathLike, map_location: Any = None) -> dict[str, Any]:
        """Restore a :meth:`save` file onto this optimisation's device; returns its ``extra``."""
        sd = load_file(path, format=FORMAT, version=VERSION, map_location=map_location)
        self.load_state_dict(sd)
        return sd.get("extra", {})

    # ---------------------------------------------------------------- misc

    def __repr__(self) -> str:
        return (f"Optimization(iteration={self.iteration}, optimizer={type(self.optimizer).__name__}, "
                f"stop_reason={self.stop_reason!r}, device={self.device})")


def _as_param_list(params: Iterable[torch.Tensor] | nn.Module) -> list[torch.Tensor]:
    if isinstance(params, nn.Module):
        plist = [p for p in params.parameters() if p.requires_grad]
    elif isinstance(params, torch.Tensor):
        plist = [params]
    else:
        plist = list(params)
    if not plist:
        raise ValueError("nothing to optimise: params is empty (or the module has no trainable parameters)")
    for i, p in enumerate(plist):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] is a {type(p).__name__}, not a tensor")
        if not (p.is_leaf and p.requires_grad):
            raise ValueError(f"params[{i}] must be a leaf tensor with requires_grad=True")
        if not p.is_floating_point() and not p.is_complex():
            raise TypeError(f"params[{i}] has dtype {p.dtype}; only floating tensors can be optimised")
    devices = {p.device for p in plist}
    if len(devices) > 1:
        raise ValueError(f"all parameters must be on one device, got {sorted(map(str, devices))}")
    return plist


def _make_optimizer(optimizer: OptimizerLike, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    if optimizer is None:
        return torch.optim.Adam(params, lr=0.01)
    if not isinstance(optimizer, torch.optim.Optimizer):
        if not callable(optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer or a factory, got {optimizer!r}")
        optimizer = optimizer(params)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError("the optimizer factory must return a torch.optim.Optimizer")
    theirs = {id(p) for g in optimizer.param_groups for p in g["params"]}
    if theirs != {id(p) for p in params}:
        raise ValueError("the optimizer must optimise exactly the tensors being optimised here "
                         f"({len(params)} tensors; the optimizer holds {len(theirs)} others or more)")
    return optimizer


def _make_scheduler(scheduler: Any, optimizer: torch.optim.Optimizer) -> Any:
    if scheduler is None:
        return None
    kinds = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if not isinstance(scheduler, kinds):
        scheduler = scheduler(optimizer) if callable(scheduler) else scheduler
    if not isinstance(scheduler, kinds):
        raise TypeError(f"scheduler must be a torch LR scheduler or a factory, got {scheduler!r}")
    if scheduler.optimizer is not optimizer:
        raise ValueError("the scheduler belongs to a different optimizer")
    return scheduler


def _lr(optimizer: torch.optim.Optimizer) -> float:
    lr = optimizer.param_groups[0].get("lr", math.nan)
    return float(lr)


def _detach(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _detach(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_detach(v) for v in value)
    return value


def _pos_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return value
