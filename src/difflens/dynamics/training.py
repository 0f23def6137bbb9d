"""Training an :class:`~difflens.dynamics.emulators.Emulator` on the shared engine.

:func:`train_emulator` builds one :class:`~difflens.engine.Optimization`, runs
it and returns it (checkpointed with ``checkpoint_path``, continued with
``resume=True``). Mini-batches of windows come from a :class:`WindowSampler`
that owns an explicit ``torch.Generator`` and saves it in ``state_dict``; it is
registered with the engine as tracked ``state`` (the emulator's normalisation
buffers are saved by the engine with the module), so a run saved and resumed
draws the same batches and ends with the same weights as an uninterrupted one.

The loss is a multi-step rollout loss: from ``context`` true states the emulator
predicts ``rollout_steps`` states autoregressively (its own predictions fed
back), and the squared errors, scaled by the increments' standard deviation, are
averaged. ``rollout_steps=1`` is plain next-state (teacher-forced) training.
Optional Gaussian input noise (``noise`` x the state std) is added to the context.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from difflens.tools.rng import default_generator

from .emulators import Emulator

__all__ = ["ClippedAdam", "TrainConfig", "WindowSampler", "rollout_loss", "train_emulator", "validation_loss"]


class WindowSampler:
    """Random windows ``(batch, length, d)`` cut from trajectories ``(n, T, d)``.

    Every draw uses ``generator`` (a CPU ``torch.Generator``); :meth:`state_dict`
    holds its state and the number of batches drawn. Windows are returned on
    ``trajectories.device`` with ``trajectories.dtype``.
    """

    def __init__(self, trajectories: Tensor, length: int, batch_size: int, generator: torch.Generator) -> None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        if trajectories.ndim != 3:
            raise ValueError(f"trajectories must have shape (n, T, d), got {list(trajectories.shape)}")
        if int(length) < 2 or int(length) > trajectories.shape[1]:
            raise ValueError(f"window length must be in [2, T={trajectories.shape[1]}], got {length}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.data, self.length, self.batch_size, self.generator = trajectories, int(length), int(batch_size), generator
        self.draws = 0
        self._offsets = torch.arange(self.length, device=trajectories.device)

    def sample(self) -> Tensor:
        """One batch of random windows ``(batch_size, length, d)`` on the data's device."""
        n, T, _ = self.data.shape
        i = torch.randint(0, n, (self.batch_size,), generator=self.generator)
        s = torch.randint(0, T - self.length + 1, (self.batch_size,), generator=self.generator)
        self.draws += 1
        i, s = i.to(self.data.device), s.to(self.data.device)
        return self.data[i[:, None], s[:, None] + self._offsets]

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state for a checkpoint: its generator's state and how many draws it made.
        """
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (a resumed run then draws what an uninterrupted one would).
        """
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])


@dataclass
class TrainConfig:
    """Emulator training settings (defaults: the study's default run).

    Measured on Lorenz-63 (LSTM, 64 units, 10,000 steps): a high peak learning
    rate with gradient clipping matters most - peak 1e-3 / 3e-3 / 6e-3 / 1e-2 /
    2e-2 / 4e-2 gave median VPT 4.2 / 5.0 / 5.2 / 5.7 / 6.5 / 5.7 Lyapunov times
    (one seed); float64 training changed nothing but took 4x longer.

    iterations: Adam steps. batch_size: windows per step. lr, lr_final: cosine
    decay from ``lr`` to ``lr_final`` over ``iterations``. rollout_steps: length
    of the multi-step loss, used from iteration ``rollout_from * iterations``
    on (before: one-step loss). noise: input-noise std in units of the state
    std. weight_decay: Adam's L2 term. clip: gradient-norm clip (None: off).
    """

    iterations: int = 10000
    batch_size: int = 128
    lr: float = 2e-2
    lr_final: float = 1e-5
    rollout_steps: int = 1
    rollout_from: float = 0.0
    noise: float = 0.0
    weight_decay: float = 0.0
    clip: float | None = 1.0

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.batch_size < 1 or self.rollout_steps < 1:
            raise ValueError(f"need iterations >= 0, batch_size >= 1, rollout_steps >= 1; got {self}")
        if not (self.lr > 0 and self.lr_final > 0 and self.noise >= 0 and 0 <= self.rollout_from <= 1):
            raise ValueError(f"need lr > 0, lr_final > 0, noise >= 0, 0 <= rollout_from <= 1; got {self}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (``dataclasses.asdict``)."""
        return asdict(self)


def rollout_loss(emulator: Emulator, windows: Tensor, rollout_steps: int, noise: float = 0.0,
                 generator: torch.Generator | None = None) -> Tensor:
    """Mean squared rollout error (in units of ``delta_std``) of ``windows`` ``(B, context + rollout_steps, d)``.

    ``noise`` > 0 adds ``noise * std`` Gaussian noise to the context, drawn
    from ``generator`` (default :func:`~difflens.tools.rng.default_generator`:
    the same noise at every call).
    """
    c = emulator.context
    ctx, target = windows[:, :c], windows[:, c:c + rollout_steps]
    if noise > 0:
        g = default_generator(generator)
        eps = torch.randn(ctx.shape, generator=g, device=g.device, dtype=ctx.dtype).to(ctx.device)
        ctx = ctx + noise * emulator.std * eps
    pred = emulator.rollout(ctx, rollout_steps, max_abs=None)
    return ((pred - target) / emulator.delta_std).square().mean()


def validation_loss(emulator: Emulator, trajectories: Tensor, rollout_steps: int = 1, max_windows: int = 2048,
                    stride: int | None = None) -> float:
    """The rollout loss on evenly spaced windows of ``trajectories`` ``(n, T, d)`` (no noise, no grad)."""
    length = emulator.context + rollout_steps
    n, T, _ = trajectories.shape
    per = max(1, max_windows // n)
    stride = stride or max(1, (T - length) // per)
    starts = torch.arange(0, T - length + 1, stride, device=trajectories.device)[:per]
    win = trajectories[:, starts[:, None] + torch.arange(length, device=trajectories.device)]
    win = win.reshape(-1, length, trajectories.shape[-1]).to(emulator.mean.dtype)
    with torch.no_grad():
        return float(rollout_loss(emulator, win, rollout_steps))


class ClippedAdam(torch.optim.Adam):
    """Adam that clips the gradient norm to ``clip`` (None: no clipping) before each step."""

    def __init__(self, params, clip: float | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.clip = clip

    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_([p for g in self.param_groups for p in g["params"]], self.clip)
        super().step()
        return loss


def _check_trajectories(x: Tensor, emulator: Emulator, what: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[-1] != emulator.dim:
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what} must be trajectories of shape (n, T, {emulator.dim}), got {shape}")
    if not x.is_floating_point():
        raise TypeError(f"{what} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or inf")


def _build(emulator: Emulator, train: Tensor, config: TrainConfig, generator: torch.Generator,
           val: Tensor | None, val_every: int, snapshot_every: int | None, callbacks: Sequence[Callable],
           progress: bool | str, checkpoint_every: int | None):
    """The engine that trains ``emulator`` (see :func:`train_emulator`)."""
    from difflens.engine import Optimization

    dtype = emulator.mean.dtype
    train = train.to(dtype=dtype, device=emulator.mean.device)
    sampler = WindowSampler(train, emulator.context + config.rollout_steps, config.batch_size, generator)

    switch = int(config.rollout_from * config.iterations)

    def loss_fn() -> Tensor:
        steps = config.rollout_steps if sampler.draws >= switch else 1  # draws: saved with the sampler
        return rollout_loss(emulator, sampler.sample(), steps, config.noise, generator)

    total = max(1, config.iterations)
    ratio = config.lr_final / config.lr

    def lr_lambda(it: int) -> float:
        frac = min(it, total) / total
        return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * frac))

    def optimizer(params):
        return ClippedAdam(params, clip=config.clip, lr=config.lr, weight_decay=config.weight_decay)

    def scheduler(opt):
        return torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)

    cbs = list(callbacks)
    if val is not None:
        val_t = val.to(dtype=dtype, device=emulator.mean.device)

        def log_val(opt) -> None:
            if opt.iteration % val_every == 0:
                opt.history.log("val_loss", validation_loss(emulator, val_t, 1), opt.iteration)
        cbs.insert(0, log_val)  # before the caller's callbacks: an interrupt raised there keeps this entry
    # the emulator's normalisation buffers are saved by the engine with the module (once); the sampler
    # (its generator, which also draws the input noise, and its draw count) is the only other state
    return Optimization(
        emulator, loss_fn, optimizer=optimizer, scheduler=scheduler, stop_rules=(),
        check_every=val_every if val is not None else 50, record_change=False,
        snapshot_every=snapshot_every,
        snapshot_fn=lambda: {k: v.detach().clone() for k, v in emulator.state_dict().items()},
        progress=progress, callbacks=cbs, state={"sampler": sampler}, checkpoint_every=checkpoint_every)


def train_emulator(emulator: Emulator, train: Tensor, config: TrainConfig, generator: torch.Generator, *,
                   val: Tensor | None = None, val_every: int = 100, snapshot_every: int | None = None,
                   callbacks: Sequence[Callable] = (), progress: bool | str = False,
                   checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int | None = None,
                   resume: bool = False):
    """Train ``emulator`` in place for ``config.iterations`` steps and return the engine that ran.

    Parameters
    ----------
    emulator : Emulator
        Trained in place (its parameters; its normalisation buffers are kept
        and saved with the checkpoint).
    train : Tensor
        ``(n, T, d)`` trajectories in physical units (cast to the emulator's
        dtype and device); windows of ``context + rollout_steps`` states are
        drawn from them.
    config : TrainConfig
        Iterations, batch size, learning-rate schedule, rollout loss, noise.
    generator : torch.Generator
        A CPU generator drawing every batch and the input noise; its state is
        checkpointed, so one seed gives one run.
    val : Tensor, optional
        Validation trajectories ``(n, T, d)``; every ``val_every`` iterations
        (default 100) their one-step loss is logged as ``history["val_loss"]``.
    snapshot_every : int, optional
        Store a copy of the emulator's ``state_dict`` in ``history.snapshots``
        every this many iterations (for the training animations).
    callbacks : sequence of callables
        ``fn(optimization)`` at each check point (every ``val_every``
        iterations with ``val``, else every 50), after the validation loss.
    progress : bool or str
        A progress bar (or log lines), see :class:`~difflens.engine.Optimization`.
    checkpoint_path : path-like, optional
        Where the engine writes its checkpoint (every ``checkpoint_every``
        iterations, and when the run ends or is interrupted).
    checkpoint_every : int, optional
        Iterations between checkpoints (default: only at the end).
    resume : bool
        With an existing ``checkpoint_path``: load it and finish the run it
        records, so an interrupted run resumed with the same arguments ends
        with exactly the weights and history of an uninterrupted one.

    Returns
    -------
    Optimization
        The engine after its run: ``history`` (``loss``, ``val_loss``,
        ``snapshots``, ``seconds``), ``stop_reason`` (``"interrupted"`` after
        Ctrl-C or SIGTERM; ``finished`` is then False and the checkpoint holds
        the state to resume from).
    """
    _check_trajectories(train, emulator, "train")
    if val is not None:
        _check_trajectories(val, emulator, "val")
    if isinstance(val_every, bool) or not isinstance(val_every, int) or val_every < 1:
        raise ValueError(f"val_every must be a positive integer, got {val_every!r}")
    optimization = _build(emulator, train, config, generator, val, val_every, snapshot_every, callbacks, progress,
                          checkpoint_every)
    optimization.configure(checkpoint_path=checkpoint_path)
    return optimization.run(config.iterations, resume=resume)
