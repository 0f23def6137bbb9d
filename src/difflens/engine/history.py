"""What an optimisation records, kept on the parameters' device.

Per-step values are written into preallocated device buffers (grown by
doubling), so recording a step never forces the host to wait for the device.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["History"]


class _Buffer:
    """A growable (capacity, *shape) tensor with a fill count."""

    def __init__(self) -> None:
        self.data: torch.Tensor | None = None
        self.length = 0

    def append(self, value: torch.Tensor) -> None:
        value = value.detach()
        if self.data is None:
            self.data = torch.empty((64, *value.shape), dtype=value.dtype, device=value.device)
        elif self.data.shape[1:] != value.shape:
            raise ValueError(f"recorded value has shape {tuple(value.shape)}, earlier ones "
                             f"{tuple(self.data.shape[1:])}; the loss shape must not change")
        if self.length == self.data.shape[0]:
            self.data = torch.cat([self.data, torch.empty_like(self.data)])
        self.data[self.length] = value.to(self.data.device, self.data.dtype)
        self.length += 1

    def view(self) -> torch.Tensor:
        if self.data is None:
            return torch.empty(0)
        return self.data[: self.length]

    def truncate(self, n: int) -> None:
        self.length = min(self.length, n)


class History:
    """Per-iteration records of an :class:`~difflens.engine.Optimization`.

    Attributes (tensors, one row per completed iteration, on the parameters' device)
    ---------------------------------------------------------------------------
    loss: ``(T,)`` or ``(T, B)`` for a per-item loss; the loss *before* each step.
    grad_norm: ``(T,)`` 2-norm of the gradient of the summed loss.
    change_norm: ``(T,)`` 2-norm of the parameter change made by each step (NaN if not recorded).
    lr: list of the first parameter group's learning rate at each step (host floats).
    snapshots / snapshot_iterations: values of ``snapshot_fn`` and the iterations they were taken at.
    seconds: wall-clock seconds spent in ``run`` so far, over all runs (a resumed run adds to it).
    Extra series: :meth:`log` and ``history[name]``.
    """

    def __init__(self) -> None:
        self._loss = _Buffer()
        self._grad = _Buffer()
        self._change = _Buffer()
        self.lr: list[float] = []
        self.snapshots: list[Any] = []
        self.snapshot_iterations: list[int] = []
        self._series: dict[str, tuple[list[int], list[float]]] = {}
        self.seconds = 0.0

    def __len__(self) -> int:
        return self._loss.length

    @property
    def loss(self) -> torch.Tensor:
        return self._loss.view()

    @property
    def grad_norm(self) -> torch.Tensor:
        return self._grad.view()

    @property
    def change_norm(self) -> torch.Tensor:
        return self._change.view()

    def append(self, loss: torch.Tensor, grad_norm: torch.Tensor, change_norm: torch.Tensor, lr: float) -> None:
        """Record one iteration: ``loss`` (0-d or ``(B,)``), ``grad_norm`` and ``change_norm`` (0-d
        tensors, kept on their device) and the learning rate ``lr``.
        """
        self._loss.append(loss)
        self._grad.append(grad_norm)
        self._change.append(change_norm)
        self.lr.append(float(lr))

    def add_snapshot(self, iteration: int, value: Any) -> None:
        """Store ``value`` (a tensor or dict of them) taken at ``iteration``."""
        self.snapshots.append(value)
        self.snapshot_iterations.append(int(iteration))

    def log(self, name: str, value: float | torch.Tensor, iteration: int) -> None:
        """Record an extra scalar series (validation loss, accuracy, ...). Syncs if ``value`` is a tensor."""
        iters, values = self._series.setdefault(name, ([], []))
        iters.append(int(iteration))
        values.append(float(value.detach()) if isinstance(value, torch.Tensor) else float(value))

    def series_names(self) -> list[str]:
        """The names of the extra series recorded by :meth:`log`, in first-logged order."""
        return list(self._series)

    def iterations(self, name: str) -> list[int]:
        """The iterations at which ``name`` was logged."""
        return list(self._get(name)[0])

    def __getitem__(self, name: str) -> torch.Tensor:
        return torch.tensor(self._get(name)[1], dtype=torch.float64)

    def _get(self, name: str) -> tuple[list[int], list[float]]:
        if name not in self._series:
            known = ", ".join(self._series) or "none"
            raise KeyError(f"no series {name!r} was logged (logged: {known})")
        return self._series[name]

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` iterations (snapshots and series taken after them are dropped)."""
        for b in (self._loss, self._grad, self._change):
            b.truncate(n)
        self.lr = self.lr[:n]
        keep = [i for i, it in enumerate(self.snapshot_iterations) if it <= n]
        self.snapshots = [self.snapshots[i] for i in keep]
        self.snapshot_iterations = [self.snapshot_iterations[i] for i in keep]
        for name, (iters, values) in self._series.items():
            k = sum(1 for it in iters if it <= n)
            self._series[name] = (iters[:k], values[:k])

    def to(self, device: torch.device | str) -> "History":
        """Move the recorded tensors and snapshots to ``device`` (in place); returns ``self``."""
        for b in (self._loss, self._grad, self._change):
            if b.data is not None:
                b.data = b.data.to(device)
        self.snapshots = [_move(s, device) for s in self.snapshots]
        return self

    def state_dict(self) -> dict[str, Any]:
        """Everything recorded, on the CPU, as plain tensors, lists and floats (for a checkpoint).
        """
        return {
            "loss": self.loss.cpu().clone(),
            "grad_norm": self.grad_norm.cpu().clone(),
            "change_norm": self.change_norm.cpu().clone(),
            "lr": list(self.lr),
            "snapshots": [_move(s, "cpu") for s in self.snapshots],
            "snapshot_iterations": list(self.snapshot_iterations),
            "series": {k: (list(i), list(v)) for k, (i, v) in self._series.items()},
            "seconds": float(self.seconds),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Replace this history by a :meth:`state_dict`, its tensors placed on ``device``."""
        self.__init__()
        for key, buf in (("loss", self._loss), ("grad_norm", self._grad), ("change_norm", self._change)):
            values = state[key]
            if values.numel() or values.ndim > 1:
                buf.data = values.to(device).clone()
                buf.length = values.shape[0]
        self.lr = list(state["lr"])
        self.snapshots = [_move(s, device) for s in state["snapshots"]]
        self.snapshot_iterations = list(state["snapshot_iterations"])
        self._series = {k: (list(i), list(v)) for k, (i, v) in state["series"].items()}
        self.seconds = float(state.get("seconds", 0.0))


def _move(value: Any, device: torch.device | str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _move(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_move(v, device) for v in value)
    return value
