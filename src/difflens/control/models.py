"""Learned forward models ``s' = G(s, a)`` trained on random moves, and ensembles of them.

:class:`ForwardModel` is a small MLP predicting the normalised state change; :class:`ModelFit`
trains it (or every member of an :class:`Ensemble`) on the engine from transitions
``(s, a, s')``, with a held-out prediction error.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import Tensor, nn

from difflens.engine import Optimization
from difflens.tools.rng import default_generator

from .environments import check_finite

__all__ = ["Ensemble", "ForwardModel", "ModelFit", "TransitionSampler", "init_linear", "random_transitions"]


def init_linear(module: nn.Module, generator: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for lin in module.modules():
            if isinstance(lin, nn.Linear):
                bound = 1.0 / lin.in_features ** 0.5
                lin.weight.uniform_(-bound, bound, generator=generator)
                lin.bias.uniform_(-bound, bound, generator=generator)
    return module


class ForwardModel(nn.Module):
    """An MLP one-step model: ``s' = s + d_std * net([(s - s_mean)/s_std, (a - a_mean)/a_std])``.

    Parameters
    ----------
    state_dim, action_dim: sizes n and m. hidden: width; layers: hidden layers (tanh).
    generator: the weights' initial draw (default :func:`difflens.tools.rng.default_generator`).
    dtype: of the weights (float64 by default, the environments' dtype).

    Notes
    -----
    ``forward(s (..., n), a (..., m)) -> s' (..., n)``. :meth:`set_normalisation` fixes the
    input and output scales from data (buffers, saved with the weights).
    """

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 64, layers: int = 2,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.state_dim, self.action_dim = state_dim, action_dim
        dims = [state_dim + action_dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b, dtype=dtype), nn.Tanh()]
        mods.append(nn.Linear(dims[-1], state_dim, dtype=dtype))
        self.net = init_linear(nn.Sequential(*mods), default_generator(generator))
        for name, size in (("s_mean", state_dim), ("s_std", state_dim), ("a_mean", action_dim),
                           ("a_std", action_dim), ("d_std", state_dim)):
            self.register_buffer(name, (torch.zeros if "mean" in name else torch.ones)(size, dtype=dtype))

    def set_normalisation(self, s: Tensor, a: Tensor, s_next: Tensor) -> "ForwardModel":
        """Scale inputs and outputs by the mean/std of transitions ``s (N, n), a (N, m), s_next (N, n)``."""
        with torch.no_grad():
            self.s_mean.copy_(s.mean(0))
            self.s_std.copy_(s.std(0).clamp_min(1e-8))
            self.a_mean.copy_(a.mean(0))
            self.a_std.copy_(a.std(0).clamp_min(1e-8))
            self.d_std.copy_((s_next - s).std(0).clamp_min(1e-8))
        return self

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        """Predicted next states ``(..., n)`` from states ``s`` ``(..., n)`` and actions ``a``
        ``(..., m)``."""
        x = torch.cat([(s - self.s_mean) / self.s_std, (a - self.a_mean) / self.a_std], -1)
        return s + self.d_std * self.net(x)


class Ensemble(nn.Module):
    """K forward models with their own initial weights; ``forward`` is the members' mean.

    :meth:`all` gives every member's prediction ``(K, ..., n)``; :meth:`disagreement` the variance
    across members summed over the state, ``(...,)``: large where the models were not trained.
    """

    def __init__(self, members: list[ForwardModel]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an Ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def all(self, s: Tensor, a: Tensor) -> Tensor:
        """Every member's prediction, ``(K, ..., n)``, for states ``s`` ``(..., n)`` and actions
        ``a`` ``(..., m)``."""
        return torch.stack([m(s, a) for m in self.members], 0)

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        """The members' mean prediction ``(..., n)``."""
        return self.all(s, a).mean(0)

    def disagreement(self, s: Tensor, a: Tensor) -> Tensor:
        """``(...,)`` variance across members of the prediction, summed over the state dimensions.
        """
        return self.all(s, a).var(0, unbiased=False).sum(-1)

    def set_normalisation(self, s: Tensor, a: Tensor, s_next: Tensor) -> "Ensemble":
        """:meth:`ForwardModel.set_normalisation` on every member; returns ``self``."""
        for m in self.members:
            m.set_normalisation(s, a, s_next)
        return self


def random_transitions(step: Callable[[Tensor, Tensor], Tensor], states: Tensor, low: Tensor, high: Tensor,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """One random move from each of ``states`` ``(N, n)``: actions uniform in ``[low, high]``.

    Returns ``(s, a, s_next)``, without gradients.
    """
    check_finite(states, "states")
    g = default_generator(generator)
    low, high = torch.as_tensor(low).to(states), torch.as_tensor(high).to(states)
    a = low + (high - low) * torch.rand(states.shape[0], low.shape[0], generator=g, dtype=states.dtype).to(states)
    with torch.no_grad():
        s_next = step(states, a)
    return states, a, s_next


class TransitionSampler:
    """Minibatches of transition indices from its own generator (saved with a checkpoint)."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator) -> None:
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def sample(self) -> Tensor:
        """``(min(batch_size, n),)`` random transition indices (with replacement across calls)."""
        return torch.randint(self.n, (min(self.batch_size, self.n),), generator=self.generator)

    def state_dict(self) -> dict:
        """The sampler's state for a checkpoint: its generator's state."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (a resumed run then draws what an uninterrupted one would).
        """
        self.generator.set_state(state["generator"])


class ModelFit:
    """Train a :class:`ForwardModel` or :class:`Ensemble` on transitions, on the engine.

    The loss is the mean squared error of the normalised state change over a minibatch (each
    ensemble member sees its own minibatch). The transitions are split: the last ``held_out``
    fraction is never trained on and gives :meth:`held_out_error`.

    Parameters
    ----------
    model: the model (its normalisation is set from the training transitions).
    s, a, s_next: ``(N, n)``, ``(N, m)``, ``(N, n)`` transitions (see :func:`random_transitions`).
    batch_size, lr: Adam minibatches (learning rate decays 10x over ``decay_steps``, default none).
    held_out: fraction kept for the held-out error. generator: minibatch draws.
    """

    def __init__(self, model: ForwardModel | Ensemble, s: Tensor, a: Tensor, s_next: Tensor, *,
                 batch_size: int = 256, lr: float = 3e-3, held_out: float = 0.1, decay_steps: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        for name, x in (("s", s), ("a", a), ("s_next", s_next)):
            check_finite(x, name)
        if not (s.shape[0] == a.shape[0] == s_next.shape[0]) or s.shape != s_next.shape:
            raise ValueError(f"transitions must be s (N, n), a (N, m), s_next (N, n); got {list(s.shape)}, "
                             f"{list(a.shape)}, {list(s_next.shape)}")
        if not 0 < held_out < 1:
            raise ValueError(f"held_out must be in (0, 1), got {held_out!r}")
        n_test = max(1, int(round(held_out * s.shape[0])))
        self.train = (s[:-n_test], a[:-n_test], s_next[:-n_test])
        self.test = (s[-n_test:], a[-n_test:], s_next[-n_test:])
        self.model = model.set_normalisation(*self.train)
        self.members = list(model.members) if isinstance(model, Ensemble) else [model]
        g = default_generator(generator)
        self.sampler = TransitionSampler(self.train[0].shape[0], batch_size, g)
        sched = None
        if decay_steps:
            sched = lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.1 ** (1.0 / decay_steps))
        self.optimization = Optimization(model, self.loss, optimizer=lambda p: torch.optim.Adam(p, lr=lr),
                                         scheduler=sched, state={"sampler": self.sampler}, record_change=False)

    def _member_loss(self, m: ForwardModel, idx: Tensor) -> Tensor:
        s, a, s2 = (x[idx] for x in self.train)
        return (((m(s, a) - s2) / m.d_std) ** 2).mean()

    def loss(self) -> Tensor:
        """The engine's loss: each member's mean squared error of the normalised state change on its
        own minibatch, summed over members (a scalar).
        """
        return sum(self._member_loss(m, self.sampler.sample()) for m in self.members)

    def fit(self, steps: int, *, progress: bool | str = False, checkpoint_path: str | os.PathLike | None = None,
            resume: bool = False) -> "ModelFit":
        """Run ``steps`` Adam iterations (continuing any earlier ones)."""
        self.optimization.configure(progress=progress, checkpoint_path=checkpoint_path)
        self.optimization.run(steps, resume=resume)
        return self

    def held_out_error(self) -> float:
        """Root-mean-square one-step error on the held-out transitions, in units of the state change's std."""
        s, a, s2 = self.test
        with torch.no_grad():
            errs = [(((m(s, a) - s2) / m.d_std) ** 2).mean() for m in self.members]
        return float(torch.stack(errs).mean().sqrt())
