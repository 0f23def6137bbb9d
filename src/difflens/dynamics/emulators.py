"""Recurrent emulators of a dynamical system: the seed's ``fcRNN``, a GRU and an LSTM.

A *net* maps a window of states ``(B, L, d)`` to one vector ``(B, d)`` (a linear
head on the last hidden state, zero initial hidden state: the seed's design).
An :class:`Emulator` wraps a net with what makes it usable as a flow map:
per-variable normalisation of the inputs, prediction of the *increment*
``x[n+1] - x[n]`` (scaled by the increments' standard deviation) instead of the
state, and autoregressive rollout from any context of at least ``context``
states. Inputs and outputs of an :class:`Emulator` are in physical units.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from difflens.tools.rng import default_generator

from .integrators import check_finite_states

__all__ = ["NETS", "Emulator", "GRUNet", "LSTMNet", "fcRNN", "init_uniform_", "make_emulator",
           "uninitialised"]


def uninitialised(cls: type[nn.Module], *args, **kwargs) -> nn.Module:
    """``cls(*args, **kwargs)`` with uninitialised CPU storage: built on the meta device, so its
    ``reset_parameters`` draws nothing from torch's global RNG (``nn.utils.skip_init`` for any module
    taking ``device=``)."""
    return cls(*args, device="meta", **kwargs).to_empty(device="cpu")


def init_uniform_(module: nn.Module, bound: float, generator: torch.Generator) -> nn.Module:
    """Draw every parameter of ``module`` from U(-bound, bound) with ``generator``, in ``named_parameters`` order.

    The draws are float64 on the generator's device, then cast and moved to
    each parameter, so one seed gives the same weights (up to rounding) for
    float32 and float64 modules on any device. Torch's global RNG is not used.
    Returns ``module``.
    """
    g = default_generator(generator)
    with torch.no_grad():
        for p in module.parameters():
            u = torch.rand(p.shape, generator=g, device=g.device, dtype=torch.float64)
            p.copy_(((2.0 * u - 1.0) * bound).to(device=p.device, dtype=p.dtype))
    return module


class _RecurrentNet(nn.Module):
    """Batch-first recurrent layers (zero initial state) and a linear head on the last output.

    Weights are initialised as PyTorch initialises ``nn.RNN``/``nn.GRU``/
    ``nn.LSTM`` and ``nn.Linear`` (all U(-1/sqrt(hidden_dim), 1/sqrt(hidden_dim)),
    since the head's fan-in is ``hidden_dim``), but drawn from ``generator``
    (default :func:`~difflens.tools.rng.default_generator`), never from torch's
    global RNG.
    """

    rnn_kind = "rnn"

    def __init__(self, input_size: int = 3, hidden_dim: int = 64, output_size: int = 3, n_layers: int = 1,
                 *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        for name, v in (("input_size", input_size), ("hidden_dim", hidden_dim), ("output_size", output_size),
                        ("n_layers", n_layers)):
            if int(v) < 1:
                raise ValueError(f"{name} must be a positive integer, got {v}")
        generator = default_generator(generator)
        self.input_size, self.hidden_dim, self.n_layers = int(input_size), int(hidden_dim), int(n_layers)
        self.output_size = int(output_size)
        # built without initialising (meta device, then empty CPU storage): no draw from the global RNG
        self.rnn = self._make_rnn()
        self.fc = uninitialised(nn.Linear, self.hidden_dim, self.output_size)
        init_uniform_(self, 1.0 / math.sqrt(self.hidden_dim), generator)

    def _make_rnn(self) -> nn.Module:
        return uninitialised(nn.RNN, self.input_size, self.hidden_dim, self.n_layers, nonlinearity="relu",
                                  batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, L, input_size)`` -> ``(B, output_size)`` from the last time step."""
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"{type(self).__name__} expects input of shape (batch, length, {self.input_size}), "
                             f"got {list(x.shape)}")
        out, _ = self.rnn(x)
        return self.fc(out[:, -1, :])


class fcRNN(_RecurrentNet):
    """The seed's network: ``nn.RNN`` with ReLU, ``n_layers`` layers of ``hidden_dim`` units, linear head."""

    rnn_kind = "rnn"


class GRUNet(_RecurrentNet):
    """Same layout as :class:`fcRNN` with GRU layers."""

    rnn_kind = "gru"

    def _make_rnn(self) -> nn.Module:
        return uninitialised(nn.GRU, self.input_size, self.hidden_dim, self.n_layers, batch_first=True)


class LSTMNet(_RecurrentNet):
    """Same layout as :class:`fcRNN` with LSTM layers."""

    rnn_kind = "lstm"

    def _make_rnn(self) -> nn.Module:
        return uninitialised(nn.LSTM, self.input_size, self.hidden_dim, self.n_layers, batch_first=True)


NETS = {"rnn": fcRNN, "gru": GRUNet, "lstm": LSTMNet}


INPUTS = ("state", "state+increment")
TARGETS = ("state", "increment", "second_difference")


class Emulator(nn.Module):
    """A learned one-step map ``window (B, L, d) -> next state (B, d)`` in physical units.

    Parameters
    ----------
    net: a recurrent net (:class:`fcRNN`, :class:`GRUNet`, :class:`LSTMNet`) with
        ``output_size == d`` and ``input_size`` d (``inputs="state"``) or 2 d.
    context: the number L of past states the emulator reads (default 15, the seed's).
    inputs: what the net sees at each of the window's time steps:
        ``"state"`` (default): ``(x - mean) / std`` (L steps);
        ``"state+increment"``: that and ``(x[t] - x[t-1]) / delta_std`` (L - 1
        steps).
    target: what the net's output ``y`` means:
        ``"state"``: ``x[n+1] = mean + std * y`` (the seed's);
        ``"increment"`` (default): ``x[n+1] = x[n] + delta_std * y``;
        ``"second_difference"``: ``x[n+1] = 2 x[n] - x[n-1] + delta2_std * y``
        (the net corrects a linear extrapolation).
    mean, std, delta_std, delta2_std: ``(d,)`` scales of the states, their
        increments and second differences (from the training data).
    linear_skip: add a learnable linear map of the last normalised state to
        the net's output (initialised at zero): the linear part of the vector
        field then needs no units of the net.

    Notes
    -----
    Measured on Lorenz-63 (dt = 0.01): increment inputs and the
    second-difference target give 5-20x lower one-step errors but feed rollout
    errors back strongly (the net learns a high-order extrapolation), so their
    valid prediction time is *worse*; the defaults are the stable choice.
    """

    def __init__(self, net: nn.Module, context: int = 15, mean: Tensor | None = None, std: Tensor | None = None,
                 delta_std: Tensor | None = None, delta2_std: Tensor | None = None,
                 inputs: str = "state", target: str = "increment", linear_skip: bool = False) -> None:
        super().__init__()
        if inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        d = int(getattr(net, "output_size", 3))
        need = d if inputs == "state" else 2 * d
        if getattr(net, "input_size", need) != need:
            raise ValueError(f"with inputs={inputs!r} the net needs input_size {need} for d={d}, got "
                             f"{net.input_size}")
        minimum = 1 if (inputs == "state" and target != "second_difference") else 2
        if int(context) < minimum:
            raise ValueError(f"context must be >= {minimum} for inputs={inputs!r}, target={target!r}, got {context}")
        self.net, self.context, self.dim, self.inputs, self.target = net, int(context), d, inputs, target
        dtype = next(net.parameters()).dtype
        for name, v, default in (("mean", mean, 0.0), ("std", std, 1.0), ("delta_std", delta_std, 1.0),
                                 ("delta2_std", delta2_std, 1.0)):
            v = torch.full((d,), default) if v is None else torch.as_tensor(v)
            if v.shape != (d,):
                raise ValueError(f"{name} must have shape ({d},), got {list(v.shape)}")
            self.register_buffer(name, v.detach().clone().to(dtype))
        self.skip = None
        if linear_skip:
            self.skip = uninitialised(nn.Linear, d, d, bias=False, dtype=dtype)
            nn.init.zeros_(self.skip.weight)

    def _check_window(self, window: Tensor, what: str = "window") -> None:
        if not isinstance(window, Tensor) or window.ndim != 3 or window.shape[-1] != self.dim:
            shape = list(window.shape) if isinstance(window, Tensor) else type(window).__name__
            raise ValueError(f"{what} must have shape (batch, length, {self.dim}), got {shape}")
        if window.shape[1] < self.context:
            raise ValueError(f"{what} has {window.shape[1]} time steps but this emulator needs a context of at "
                             f"least {self.context}")
        if window.device != self.mean.device:
            raise ValueError(f"{what} is on {window.device} but the emulator is on {self.mean.device}; "
                             "move one of them with .to()")
        if not window.is_floating_point():
            raise TypeError(f"{what} must be a floating-point tensor, got {window.dtype}")
        finite = torch.isfinite(window.detach())
        if not bool(finite.all()):  # once per call: one host sync
            bad = (~finite).reshape(window.shape[0], -1).any(1).nonzero()[:, 0].tolist()
            raise ValueError(f"{what} contains NaN or inf (batch element(s) {bad[:10]}"
                             f"{' ...' if len(bad) > 10 else ''}); the emulator needs finite states")

    def forward(self, window: Tensor) -> Tensor:
        """Next state ``(B, d)`` after the last of ``window`` ``(B, L >= context, d)`` (uses the last ``context``).

        Raises ``ValueError`` for a window of the wrong shape or device, or
        containing NaN or inf (checked once per call).
        """
        self._check_window(window)
        return self.step(window[:, -self.context:])

    def step(self, window: Tensor) -> Tensor:
        """Next state ``(B, d)`` from exactly ``context`` states ``(B, context, d)``, without input checks.

        The map :meth:`forward` and :meth:`rollout` apply after validating their
        input; for inner loops (Jacobians, Lyapunov exponents) that already
        hold a valid window.
        """
        z = (window - self.mean) / self.std
        if self.inputs == "state+increment":
            z = torch.cat((z[:, 1:], (window[:, 1:] - window[:, :-1]) / self.delta_std), -1)
        y = self.net(z)
        if self.skip is not None:
            y = y + self.skip(z[:, -1, : self.dim])
        last = window[:, -1]
        if self.target == "increment":
            return last + y * self.delta_std
        if self.target == "second_difference":
            return 2 * last - window[:, -2] + y * self.delta2_std
        return self.mean + y * self.std

    def rollout(self, context: Tensor, n_steps: int, max_abs: float | None = 1e6) -> Tensor:
        """Feed predictions back: ``n_steps`` new states ``(B, n_steps, d)`` after ``context`` ``(B, L, d)``.

        Differentiable when gradients are enabled (used by the multi-step
        training loss). Raises ``ValueError`` when ``context`` has the wrong
        shape or device or contains NaN or inf (checked once per call, not per
        step), and :class:`~difflens.dynamics.StateBlowUpError` naming the
        first predicted step with NaN/inf or ``|x| > max_abs`` (``None``: only
        NaN/inf).
        """
        self._check_window(context, "context")
        if int(n_steps) < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        window = context[:, -self.context:]
        outs = []
        for _ in range(int(n_steps)):
            nxt = self.step(window)
            outs.append(nxt)
            window = torch.cat((window[:, 1:], nxt.unsqueeze(1)), 1)
        if not outs:
            return context.new_zeros(context.shape[0], 0, self.dim)
        states = torch.stack(outs, 1)
        check_finite_states(states.transpose(0, 1), None, max_abs, what="emulator rollout")
        return states


def make_emulator(kind: str = "rnn", hidden: int = 64, layers: int = 1, context: int = 15, data=None,
                  inputs: str = "state", target: str = "increment", linear_skip: bool = False,
                  recurrent_init: float = 1.0, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None, *, generator: torch.Generator) -> Emulator:
    """Build an :class:`Emulator` with a fresh ``kind`` net (``"rnn"`` = the seed's fcRNN, ``"gru"``, ``"lstm"``).

    ``data`` (a :class:`~difflens.dynamics.data.TrajectoryData`) supplies the
    scales; every initial weight is drawn from ``generator`` (PyTorch's default
    initialisation distributions, see :func:`init_uniform_`; torch's global RNG
    is neither used nor changed), so equal-seeded generators give identical
    emulators. ``recurrent_init`` scales the initial hidden-to-hidden weights
    (0: the net starts as a function of the last state only and learns to use
    the history).
    """
    if kind not in NETS:
        raise ValueError(f"kind must be one of {sorted(NETS)}, got {kind!r}")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    d = int(data.train.shape[-1]) if data is not None else 3
    net = NETS[kind](d if inputs == "state" else 2 * d, hidden, d, layers, generator=generator)
    with torch.no_grad():
        for name, p in net.rnn.named_parameters():
            if name.startswith("weight_hh"):
                p.mul_(float(recurrent_init))
    net = net.to(dtype=dtype, device=device)
    kw = {} if data is None else {"mean": data.mean, "std": data.std, "delta_std": data.delta_std,
                                  "delta2_std": data.delta2_std}
    return Emulator(net, context, inputs=inputs, target=target, linear_skip=linear_skip, **kw).to(device)
