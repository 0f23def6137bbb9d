"""Coarse-to-fine metamers (plenoptic's ``MetamerCTF``) on the engine.

Portilla & Simoncelli's texture synthesis converges better when the metamer first
matches the statistics of the coarsest scale, then adds finer scales one by one,
like optimising a blurred objective and sharpening it. :class:`MetamerCTF` is a
:class:`~difflens.synthesize.Metamer` whose engine loss is the loss of the current
stage; the stage changes between steps (an engine callback), and the stage state
travels with the engine's checkpoints, so an interrupted synthesis resumes exactly.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Literal

import torch
from torch import Tensor, nn

from difflens.engine import Optimization, StopRule
from difflens.tools.io import CheckpointError

from .metamer import Metamer, mse

__all__ = ["MetamerCTF", "CoarseToFineState"]

Mode = Literal["together", "separate"]


class CoarseToFineState:
    """Where a coarse-to-fine synthesis is: the scales left, those finished, and when each ran.

    It has ``state_dict`` / ``load_state_dict`` so the engine saves it in checkpoints and
    rolls it back with the metamer.

    Attributes
    ----------
    mode : str
        ``"together"`` (each stage also keeps the finished coarser scales) or ``"separate"``.
    scales : list
        Scales still to run; the first is the current stage; the last is ``"all"``.
    scales_finished : list
        Scales done, in order.
    scales_timing : dict
        Scale -> ``[first iteration, last iteration]`` it ran.
    initial_lr : list of float
        Learning rates restored at each change of stage.
    converged : bool
        plenoptic's convergence test after the last step.
    """

    def __init__(self, model_scales: list, mode: Mode) -> None:
        self.mode = mode
        self.scales = list(model_scales[:-1]) + ([model_scales[-1]] if mode == "separate" else []) + ["all"]
        self.scales_finished: list = []
        self.scales_timing: dict = {k: [] for k in self.scales}
        self.scales_timing[self.scales[0]].append(0)
        self.initial_lr: list[float] = []
        self.processed = 0   # the last iteration the after-step callback handled
        self.converged = False
        self.stage_target: Tensor | None = None  # cache, not state

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "scales": list(self.scales), "scales_finished": list(self.scales_finished),
                "scales_timing": {k: list(v) for k, v in self.scales_timing.items()},
                "initial_lr": list(self.initial_lr), "processed": self.processed, "converged": self.converged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["mode"] != self.mode:
            raise CheckpointError(f"saved with coarse_to_fine={state['mode']!r}, this MetamerCTF has "
                                  f"{self.mode!r}: build it with the saved value")
        self.scales = list(state["scales"])
        self.scales_finished = list(state["scales_finished"])
        self.scales_timing = {k: list(v) for k, v in state["scales_timing"].items()}
        self.initial_lr = list(state["initial_lr"])
        self.processed = int(state["processed"])
        self.converged = bool(state["converged"])
        self.stage_target = None


class _CoarseToFineConverged(StopRule):
    """Stops when the overall loss converged and the full model has run long enough (set by the callback)."""

    name = "loss_change"

    def __init__(self, state: CoarseToFineState) -> None:
        self.state = state

    def check(self, opt: Optimization) -> bool:
        return self.state.converged


class MetamerCTF(Metamer):
    """Metamers synthesised coarse to fine: plenoptic 1.1's ``MetamerCTF``.

    Parameters
    ----------
    image, model, loss_function, range_penalty_lambda, allowed_range, initial_image, generator
        As for :class:`~difflens.synthesize.Metamer`. ``model`` must have a ``scales``
        list (coarse to fine) and accept ``model(x, scales=[...])``, returning the
        statistics of those scales only (e.g. :class:`~difflens.simulate.PortillaSimoncelli`);
        with a ``remove_scales(rep, scales)`` method as well, each step runs the model once.
    coarse_to_fine : {"together", "separate"}
        ``"together"``: each stage matches its scale and all coarser ones; ``"separate"``:
        its scale only (then the finest scale gets a stage of its own). Both end with "all".

    Attributes
    ----------
    scales, scales_finished, scales_timing, scales_loss, losses
        As plenoptic's: the stages left and done, ``[start, end]`` iteration of each stage,
        the loss of the stage at each iteration, and the full loss at each iteration
        (summed over a batch).
    optimization : Optimization or None
        The engine (see :class:`~difflens.synthesize.Metamer`).

    Raises
    ------
    ValueError
        An unknown ``coarse_to_fine``; a model without ``scales`` or whose output does not
        shrink when given ``scales``.

    Examples
    --------
    >>> import torch
    >>> from difflens import data
    >>> from difflens.simulate import PortillaSimoncelli
    >>> from difflens.synthesize import MetamerCTF
    >>> img = data.gravel()[..., :64, :64]
    >>> model = PortillaSimoncelli((64, 64), n_scales=2, spatial_corr_width=5)
    >>> met = MetamerCTF(img, model, generator=torch.Generator().manual_seed(0))
    >>> _ = met.synthesize(12, ctf_iters_to_check=3, change_scale_criterion=None, progress=False)
    >>> met.scales_finished
    ('pixel_statistics', 'residual_lowpass', 1, 0)
    >>> met.scales_timing["residual_lowpass"]  # first and last iteration of that stage
    [3, 5]
    >>> met.losses.shape
    torch.Size([12])
    """

    def __init__(self, image: Tensor, model: nn.Module | Callable[..., Tensor],
                 loss_function: Callable[[Tensor, Tensor], Tensor] = mse, range_penalty_lambda: float = 0.1,
                 allowed_range: tuple[float, float] = (0.0, 1.0), initial_image: Tensor | None = None,
                 coarse_to_fine: Mode = "together", generator: torch.Generator | None = None) -> None:
        if coarse_to_fine not in ("together", "separate"):
            raise ValueError(f"Don't know how to handle value {coarse_to_fine!r}! Must be one of: 'separate', "
                             "'together'")
        super().__init__(image, model, loss_function, range_penalty_lambda, allowed_range, initial_image, generator)
        _check_coarse_to_fine_model(model, self.image)
        self._ctf = CoarseToFineState(list(model.scales), coarse_to_fine)
        self._select = callable(getattr(model, "remove_scales", None))
        self._rule_settings: dict[str, Any] = {}

    # ------------------------------------------------------------ engine hooks
    def _engine_state(self) -> dict[str, Any]:
        return {"coarse_to_fine": self._ctf}

    def _stop_rules(self, stop_criterion: float, stop_iters_to_check: int) -> list:
        return [_CoarseToFineConverged(self._ctf)]

    def setup(self, initial_image: Tensor | None = None, optimizer: Any = None,
              optimizer_kwargs: dict[str, Any] | None = None, scheduler: Any = None,
              scheduler_kwargs: dict[str, Any] | None = None) -> "MetamerCTF":
        """As :meth:`Metamer.setup`; also records the learning rates each new stage starts from."""
        super().setup(initial_image, optimizer, optimizer_kwargs, scheduler, scheduler_kwargs)
        self._ctf.initial_lr = [float(g["lr"]) for g in self.optimization.optimizer.param_groups]
        # the stage can change after every step, so the engine checks (and calls back) every step
        self.optimization.configure(callbacks=[self._after_step], check_every=1)
        return self

    def _stage_scales(self) -> list | None:
        st = self._ctf
        if st.scales[0] == "all":
            return None
        return [st.scales[0]] + (list(st.scales_finished) if st.mode == "together" else [])

    def objective(self, metamer: Tensor | None = None) -> Tensor:
        """Per-item loss ``(B,)`` of the current stage (its scales only) + range penalty.

        During a synthesis step it also records the full loss (all scales) of the
        metamer before the step, as plenoptic's ``losses``.
        """
        x = self.metamer if metamer is None else metamer
        engine = self.optimization
        record = (metamer is None and engine is not None and _logged(engine) == engine.iteration)
        scales = self._stage_scales()
        if scales is None:
            loss = self._per_item(self.loss_function(self.model(x), self.target_representation), x)
            if record:
                engine.history.log("overall_loss", loss.detach().sum(), engine.iteration + 1)
            return loss
        st = self._ctf
        if self._select:
            rep = self.model(x)
            stage_rep = self.model.remove_scales(rep, scales)
        else:
            rep = None
            stage_rep = self.model(x, scales=scales)
        if st.stage_target is None:
            with torch.no_grad():
                st.stage_target = (self.model.remove_scales(self.target_representation, scales) if self._select
                                   else self.model(self.image, scales=scales)).detach()
        if record:
            with torch.no_grad():
                full = self.model(x) if rep is None else rep.detach()
                overall = self._per_item(self.loss_function(full, self.target_representation), x.detach())
            engine.history.log("overall_loss", overall.sum(), engine.iteration + 1)
        return self._per_item(self.loss_function(stage_rep, st.stage_target), x)

    def _after_step(self, opt: Optimization) -> None:
        """After each step: plenoptic's convergence test, then its change of stage."""
        st, n = self._ctf, opt.iteration
        if st.processed == n:
            return
        st.processed = n
        s = self._rule_settings
        losses = opt.history["overall_loss"].tolist()
        k = s["stop_iters_to_check"]
        loss_converged = len(losses) > k and abs(losses[-k] - losses[-1]) < s["stop_criterion"]
        st.converged = bool(loss_converged and st.scales[0] == "all"
                            and (n - 1 - st.scales_timing["all"][0]) > s["ctf_iters_to_check"])
        c = s["ctf_iters_to_check"]
        crit = s["change_scale_criterion"]
        stage_loss = opt.history.loss
        if len(st.scales) > 1 and stage_loss.shape[0] >= c and n - st.scales_timing[st.scales[0]][0] >= c:
            last, before = float(stage_loss[-1].sum()), float(stage_loss[-c].sum())
            if crit is None or abs(last - before) < crit:
                st.scales_timing[st.scales[0]].append(n - 1)
                st.scales_finished.append(st.scales.pop(0))
                if st.scales:
                    st.scales_timing[st.scales[0]].append(n)
                for group, lr in zip(opt.optimizer.param_groups, st.initial_lr):
                    group["lr"] = lr
                st.stage_target = None

    # ------------------------------------------------------------ synthesis
    def synthesize(self, max_iter: int = 100, optimizer: Any = None, scheduler: Any = None,
                   store_progress: bool | int = False, stop_criterion: float = 1e-4, stop_iters_to_check: int = 50,
                   change_scale_criterion: float | None = 1e-2, ctf_iters_to_check: int = 50,
                   progress: bool = True, *, checkpoint_path: str | os.PathLike | None = None,
                   resume: bool = False) -> Tensor:
        """Run (or resume) coarse-to-fine synthesis for up to ``max_iter`` more iterations.

        Parameters
        ----------
        max_iter, optimizer, scheduler, store_progress, progress, checkpoint_path, resume
            As :meth:`Metamer.synthesize`.
        stop_criterion, stop_iters_to_check
            Stop once the full loss changed by less than ``stop_criterion`` over the last
            ``stop_iters_to_check`` iterations *and* the full model ("all") has run for more
            than ``ctf_iters_to_check`` iterations.
        change_scale_criterion
            Move to the next stage once the stage's loss changed by less than this over the
            last ``ctf_iters_to_check`` iterations (and the stage ran that long); ``None``
            moves on every ``ctf_iters_to_check`` iterations. Must exceed ``stop_criterion``.
        ctf_iters_to_check
            See above (>= 1).

        Notes
        -----
        The convergence test counts iterations over all calls; plenoptic counts those of
        the current call (the same for a single call).
        """
        if change_scale_criterion is not None and not (
                isinstance(change_scale_criterion, (int, float)) and math.isfinite(change_scale_criterion)):
            raise ValueError(f"change_scale_criterion must be a finite number or None, got {change_scale_criterion!r}")
        if change_scale_criterion is not None and stop_criterion >= change_scale_criterion:
            raise ValueError("stop_criterion must be strictly less than change_scale_criterion, or things get weird! "
                             f"(got stop_criterion={stop_criterion}, change_scale_criterion={change_scale_criterion})")
        for name, value in (("ctf_iters_to_check", ctf_iters_to_check), ("stop_iters_to_check", stop_iters_to_check)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._rule_settings = {"stop_criterion": float(stop_criterion), "stop_iters_to_check": stop_iters_to_check,
                               "change_scale_criterion": change_scale_criterion,
                               "ctf_iters_to_check": ctf_iters_to_check}
        return super().synthesize(max_iter, optimizer, scheduler, store_progress, stop_criterion,
                                  stop_iters_to_check, progress, checkpoint_path=checkpoint_path, resume=resume)

    # ------------------------------------------------------------ results
    @property
    def coarse_to_fine(self) -> str:
        return self._ctf.mode

    @property
    def scales(self) -> tuple:
        return tuple(self._ctf.scales)

    @property
    def scales_finished(self) -> tuple:
        return tuple(self._ctf.scales_finished)

    @property
    def scales_timing(self) -> dict:
        return self._ctf.scales_timing

    @property
    def losses(self) -> Tensor:
        """``(T,)`` full loss (all scales) before each iteration, summed over a batch (float64, CPU)."""
        if self.optimization is None or "overall_loss" not in self.optimization.history.series_names():
            return torch.empty(0)
        return self.optimization.history["overall_loss"]

    @property
    def scales_loss(self) -> tuple:
        """Loss of the stage that ran at each iteration, summed over a batch: a tuple of floats (plenoptic's)."""
        loss = self.history_series("loss")
        return tuple((loss.sum(1) if loss.ndim == 2 else loss).tolist())

    def to(self, device: torch.device | str) -> "MetamerCTF":
        """Move everything to ``device`` (see :meth:`Metamer.to`)."""
        super().to(device)
        self._ctf.stage_target = None
        return self

    def __repr__(self) -> str:
        it = 0 if self.optimization is None else self.optimization.iteration
        return (f"MetamerCTF(image={tuple(self.image.shape)}, iterations={it}, stage={self._ctf.scales[0]!r}, "
                f"coarse_to_fine={self._ctf.mode!r})")


def _logged(engine: Optimization) -> int:
    if "overall_loss" not in engine.history.series_names():
        return 0
    return len(engine.history.iterations("overall_loss"))


def _check_coarse_to_fine_model(model: Any, image: Tensor) -> None:
    msg = "and therefore we cannot do coarse-to-fine synthesis"
    scales = getattr(model, "scales", None)
    if not isinstance(scales, (list, tuple)) or len(scales) < 2:
        raise ValueError(f"model has no scales attribute (a list of at least two scale names) {msg}")
    with torch.no_grad():
        full = model(image)
        try:
            part = model(image, scales=[scales[0]])
        except TypeError as exc:
            raise ValueError(f"model forward method does not accept a scales argument {msg}") from exc
    if part.shape == full.shape:
        raise ValueError(f"Output of model forward method doesn't change shape when scales keyword arg is set to "
                         f"{[scales[0]]} {msg}")
