"""Eigendistortions: the input perturbations a model is most and least sensitive to.

For a deterministic model ``y = f(x)`` the Fisher matrix under additive white
Gaussian output noise is ``F = JᵀJ`` with ``J = ∂y/∂x`` (``m × n``, ``x`` flattened).
Its top eigenvectors are the distortions of ``x`` the model sees most, its bottom
ones the distortions it is blind to (Berardino et al. 2017; plenoptic's convention).

Solvers (all work through Jacobian products, counted; see :mod:`.jacobian`):

- ``"lanczos"`` (default): thick-restart Lanczos with full reorthogonalisation on ``F``;
  one Krylov space gives both ends of the spectrum.
- ``"power"``: block power iteration for the top ``k``, then on ``λ_max·I − F`` for the bottom.
- ``"randomized_svd"``: Halko et al. range finder; the top ``k`` only (as plenoptic).
- ``"exact"``: the full Jacobian, then ``eigh(JᵀJ)`` in float64: every eigenpair.

Eigenvalue tolerance used in tests and benchmarks (:func:`eigenvalues_close`): an
estimate ``λ̂`` of ``λ`` is "within 1%" when ``|λ̂ − λ| ≤ 0.01·max(|λ|, 1e-4·λ_max)``.
Eigenvalues above ``1e-4·λ_max`` (≈ 1000 × float32 machine precision, relative to the
top) are compared relatively; below it — e.g. the huge, nearly degenerate null space
of a blur — the comparison is absolute, to ``1e-6·λ_max``, since their relative values
are float32 rounding noise and any vector in that space is an equally valid answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from ..tools.io import CheckpointError, load_file, save_file
from ..tools.rng import default_generator
from ..tools.validate import check_finite, check_synthesis_image, validate_model
from .eigsolvers import SolverResult, exact, lanczos, power, randomized_svd
from .jacobian import JacobianOperator

__all__ = ["EXACT_MAX_INPUT", "Eigendistortion", "eigenvalues_close"]

Method = Literal["lanczos", "power", "randomized_svd", "exact"]
METHODS = ("lanczos", "power", "randomized_svd", "exact")
#: ``method="exact"`` refuses inputs with more elements (the n × n Fisher matrix is formed).
EXACT_MAX_INPUT = 8192
FORMAT = "difflens.synthesize.Eigendistortion"
VERSION = 1


def eigenvalues_close(estimate: Tensor, exact_values: Tensor, lambda_max: float | Tensor,
                      rtol: float = 0.01, floor: float = 1e-4) -> Tensor:
    """Elementwise ``|estimate − exact| ≤ rtol · max(|exact|, floor · |lambda_max|)`` (bool tensor).

    See the module docstring: relative above ``floor · λ_max``, absolute below.
    """
    exact_values = torch.as_tensor(exact_values, dtype=torch.float64)
    estimate = torch.as_tensor(estimate, dtype=torch.float64)
    scale = torch.clamp(exact_values.abs(), min=floor * abs(float(lambda_max)))
    return (estimate - exact_values).abs() <= rtol * scale


class Eigendistortion:
    """Eigendistortions of ``model`` at ``image`` (eigenvectors of the Fisher matrix ``JᵀJ``).

    Parameters
    ----------
    image: the input, any shape, float32 or float64, finite. A 4-D image must be a
        batch of one, ``(1, C, H, W)``. Other shapes (e.g. a ``(3,)`` or ``(B, 3)``
        state) are one input vector of ``image.numel()`` elements.
    model: a callable (e.g. ``nn.Module``) returning one tensor; deterministic, with no
        trainable parameters (see :func:`difflens.tools.remove_grad`), keeping the
        input's dtype and device.
    jvp_mode: how Jacobian-vector products are computed (see :class:`JacobianOperator`).

    Notes
    -----
    After :meth:`synthesize`: ``eigendistortions`` ``(N, *dist_shape)`` — unit-norm
    eigenvectors, ``dist_shape = image.shape[1:]`` for a 4-D image, else ``image.shape``
    (so ``image + a * eig.eigendistortions`` broadcasts); ``eigenvalues`` ``(N,)``,
    descending (top k, then bottom k); ``eigenindex`` ``(N,)``, each one's rank in the
    full spectrum (0 = largest, ``n - 1`` = smallest). Each vector's sign is chosen so
    that its largest-magnitude element is positive.
    """

    def __init__(self, image: Tensor, model: Callable[[Tensor], Tensor], *,
                 jvp_mode: Literal["auto", "reverse", "forward"] = "auto") -> None:
        check_synthesis_image(image, "image")
        if image.ndim == 4 and image.shape[0] != 1:
            raise ValueError(f"image must be a batch of one (1, C, H, W), got shape "
                             f"{tuple(image.shape)}; make one Eigendistortion per image")
        validate_model(model, image_shape=image.shape, image_dtype=image.dtype,
                       device=image.device)
        self._image = image.detach().clone()
        self._model = model
        self.jvp_mode = jvp_mode
        self._op: JacobianOperator | None = None
        self._reset_results()

    def _reset_results(self) -> None:
        self._eigendistortions: Tensor | None = None
        self._eigenvalues: Tensor | None = None
        self._eigenindex: Tensor | None = None
        self._jacobian: Tensor | None = None
        self.info: dict[str, Any] = {}

    # -- properties --------------------------------------------------------------
    @property
    def image(self) -> Tensor:
        return self._image

    @property
    def model(self) -> Callable[[Tensor], Tensor]:
        return self._model

    @property
    def dist_shape(self) -> torch.Size:
        """Shape of one eigendistortion: ``image.shape[1:]`` for 4-D images, else ``image.shape``."""
        return self._image.shape[1:] if self._image.ndim == 4 else self._image.shape

    @property
    def operator(self) -> JacobianOperator:
        """The Jacobian operator at ``image`` (built on first use; counts products)."""
        if self._op is None:
            op = JacobianOperator(self._model, self._image, mode=self.jvp_mode)
            check_finite(op.output, "model(image)")
            self._op = op
        return self._op

    @property
    def eigendistortions(self) -> Tensor | None:
        return self._eigendistortions

    @property
    def eigenvalues(self) -> Tensor | None:
        return self._eigenvalues

    @property
    def eigenindex(self) -> Tensor | None:
        return self._eigenindex

    @property
    def jacobian(self) -> Tensor | None:
        """The ``(m, n)`` Jacobian; set by ``method="exact"`` only."""
        return self._jacobian

    @property
    def n_products(self) -> int:
        """Jacobian products (jvp + vjp) used by the last :meth:`synthesize`."""
        return int(self.info.get("n_products", 0))

    def __repr__(self) -> str:
        done = "not synthesized" if self._eigenvalues is None else (
            f"{len(self._eigenvalues)} eigendistortions by {self.info.get('method')!r}")
        return f"Eigendistortion(image {tuple(self._image.shape)}, {done})"

    # -- synthesis ---------------------------------------------------------------
    def synthesize(self, method: Method = "lanczos", k: int = 1, max_iter: int = 1000,
                   tol: float = 1e-7, p: int = 5, q: int = 2,
                   generator: torch.Generator | None = None, progress: bool = False, *,
                   basis_size: int | None = None, exact_max_input: int = EXACT_MAX_INPUT,
                   ) -> Eigendistortion:
        """Compute the top-``k`` and bottom-``k`` eigendistortions (``"exact"``: all of them).

        Parameters
        ----------
        method: ``"lanczos"`` (default), ``"power"``, ``"randomized_svd"`` (top ``k``
            only) or ``"exact"`` (inputs of at most ``exact_max_input`` elements).
        k: eigenpairs wanted at each end; ``2k <= n`` (``k <= n`` for randomized SVD).
        max_iter: iterations (Fisher products per vector) per solve, lanczos/power.
        tol: stop when, for every wanted pair, the residual ``‖Fv − λv‖`` or the change of
            ``λ`` over the last ``max(10, iter/10)`` iterations is at most ``tol · λ_max``.
        p, q: randomized SVD oversampling and power steps.
        generator: source of the random start (default :func:`difflens.tools.rng.default_generator`).
        progress: show a tqdm bar. basis_size: Lanczos basis before a thick restart
            (default ``min(n, max(40, 8k))``).

        Returns
        -------
        Eigendistortion
            ``self``, with ``eigendistortions``, ``eigenvalues``, ``eigenindex`` and ``info`` set
            (``method``, ``n_products``, ``iterations``, ``converged``, ``residuals`` and,
            for lanczos/power, ``history``: products and eigenvalue estimates per iteration).
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        op = self.operator
        n = op.n
        if method != "exact":
            need = k if method == "randomized_svd" else 2 * k
            if not isinstance(k, int) or k < 1 or need > n:
                raise ValueError(f"k must be an integer with 1 <= {'k' if need == k else '2k'} <= n "
                                 f"= {n} (input elements) for method {method!r}, got k={k!r}")
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        if not tol >= 0:
            raise ValueError(f"tol must be >= 0, got {tol}")
        generator = default_generator(generator, device=op.device)
        op.reset_counts()
        opts = {"generator": generator, "progress": progress}
        if method == "exact":
            if n > exact_max_input:
                raise ValueError(f"method='exact' forms the {n} x {n} Fisher matrix: the input has "
                                 f"{n} elements, above exact_max_input={exact_max_input}. Use "
                                 "method='lanczos' (or raise exact_max_input if memory allows)")
            if op.m * n > 2 ** 28:
                raise ValueError(f"method='exact' forms the {op.m} x {n} Jacobian ({op.m * n:.3g} "
                                 "elements, above 2**28): use method='lanczos'")
            res, self._jacobian = exact(op)
        elif method == "lanczos":
            res = lanczos(op.fisher, n, k, max_iter, tol, basis_size=basis_size,
                          dtype=op.dtype, device=op.device, **opts)
        elif method == "power":
            res = power(op.fisher, n, k, max_iter, tol, dtype=op.dtype, device=op.device, **opts)
        else:
            res = randomized_svd(op.fisher, n, k, p, q, dtype=op.dtype, device=op.device,
                                 generator=generator)
        self._store(res, method)
        if not res.converged and method in ("lanczos", "power"):
            warnings.warn(f"{method} stopped at max_iter={max_iter} before reaching tol={tol:g}; "
                          "the eigendistortions may be inaccurate (raise max_iter)", stacklevel=2)
        return self

    def _store(self, res: SolverResult, method: str) -> None:
        vecs = res.vectors
        idx = vecs.abs().argmax(dim=1)
        signs = torch.sign(vecs.gather(1, idx[:, None]))
        signs[signs == 0] = 1
        vecs = vecs * signs
        self._eigendistortions = vecs.reshape(len(vecs), *self.dist_shape).detach()
        self._eigenvalues = res.values.to(self._image.device, self._image.dtype)
        self._eigenindex = res.index
        op = self.operator
        self.info = {"method": method, "n_products": op.n_products, "n_jvp": op.n_jvp,
                         "n_vjp": op.n_vjp, "iterations": res.iterations, "converged": res.converged,
                         "residuals": res.residuals, "history": res.history}

    def index_of(self, eigenindex: int) -> int:
        """Row of ``eigendistortions`` holding spectrum rank ``eigenindex`` (negative counts from
        the smallest: ``-1`` is the minimum)."""
        if self._eigenindex is None:
            raise ValueError("no eigendistortions yet: call synthesize() first")
        n = self.operator.n
        if not -n <= eigenindex < n:
            raise ValueError(f"eigenindex must be in [-{n}, {n}), got {eigenindex}")
        hit = (self._eigenindex == eigenindex % n).nonzero()
        if len(hit) == 0:
            raise ValueError(f"eigenindex {eigenindex} was not synthesized; available: "
                             f"{self._eigenindex.tolist()[:10]}")
        return int(hit[0, 0])

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the image, the model's output on it and the results to one file, atomically."""
        out = self._model_output()
        state = {"image": self._image.cpu(), "output": out.cpu(),
                 "eigendistortions": _cpu(self._eigendistortions),
                 "eigenvalues": _cpu(self._eigenvalues), "eigenindex": _cpu(self._eigenindex),
                 "jacobian": _cpu(self._jacobian),
                 "info": {k: _cpu(v) for k, v in self.info.items()}}
        return save_file(state, path, format=FORMAT, version=VERSION)

    def load(self, path: str | Path, map_location: Any = None, rtol: float = 1e-5,
             atol: float = 1e-8) -> Eigendistortion:
        """Load results saved by :meth:`save` into this object (built with the same image and model).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        CheckpointError
            (a ``ValueError``) The file is corrupt or not an eigendistortion file, or its
            image or the model's output on it differ from this object's (``rtol``, ``atol``).
        """
        state = load_file(path, format=FORMAT, version=VERSION, map_location="cpu")
        keys = {"image", "output", "eigendistortions", "eigenvalues", "eigenindex", "jacobian", "info"}
        if not keys <= set(state):
            raise CheckpointError(f"{str(path)!r} lacks {sorted(keys - set(state))}: not a complete "
                                  "Eigendistortion file")
        image = self._image.cpu()
        if state["image"].shape != image.shape or not torch.allclose(
                state["image"].to(image.dtype), image, rtol=rtol, atol=atol):
            raise CheckpointError(f"the saved image differs from this object's image (saved shape "
                                  f"{tuple(state['image'].shape)}, here {tuple(image.shape)}): build "
                                  "the Eigendistortion with the image it was saved with")
        out = self._model_output().cpu()
        if state["output"].shape != out.shape or not torch.allclose(
                state["output"].to(out.dtype), out, rtol=rtol, atol=atol):
            raise CheckpointError("the model's output on the image differs from the saved one: this "
                                  "object's model is not the model the file was saved with")
        device = map_location if map_location is not None else self._image.device
        mv = (lambda t: t.to(device) if isinstance(t, Tensor) else t)
        self._eigendistortions = mv(state["eigendistortions"])
        self._eigenvalues = mv(state["eigenvalues"])
        self._eigenindex = mv(state["eigenindex"])
        self._jacobian = mv(state["jacobian"])
        self.info = dict(state["info"])
        return self

    def to(self, *args: Any, **kwargs: Any) -> Eigendistortion:
        """Move/cast the image, the model (if it has ``.to``) and the results, like ``Tensor.to``."""
        self._image = self._image.to(*args, **kwargs)
        if hasattr(self._model, "to"):
            self._model = self._model.to(*args, **kwargs)
        for name in ("_eigendistortions", "_eigenvalues", "_jacobian"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t.to(*args, **kwargs))
        self._op = None
        return self

    def _model_output(self) -> Tensor:
        if self._op is not None:
            return self._op.output
        with torch.no_grad():
            return self._model(self._image).detach()


def _cpu(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x.detach().cpu()
    if isinstance(x, dict):
        return {k: _cpu(v) for k, v in x.items()}
    return x
