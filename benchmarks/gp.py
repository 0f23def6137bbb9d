"""Exact GP regression: difflens vs scikit-learn vs GPyTorch, side by side in one process.

Each run fits the hyperparameters (signal variance, lengthscale(s) — one per
dimension in D > 1 — and noise variance) of a squared-exponential GP on N noisy
points, then predicts mean and std at 1,000 test points. Every library starts
from the same hyperparameters (lengthscale 1, variance 1, noise 1e-2), in
float64 on CPU, with the same number of restarts (default 0):

- difflens: ``GaussianProcess(SquaredExponential(...), noise_variance=1e-2)``, L-BFGS.
- regressor: difflens's ``GaussianProcessRegressor`` given scikit-learn's kernel and ``alpha``
  (difflens's own ``ConstantKernel * RBF + WhiteKernel``), L-BFGS on the engine.
- scikit-learn: ``ConstantKernel(1) * RBF(...) + WhiteKernel(1e-2)``, L-BFGS-B, alpha=1e-10.
- GPyTorch: ``ScaleKernel(RBFKernel(ard))`` + ``GaussianLikelihood``, 50 Adam steps
  (lr 0.1), then ``eval()`` prediction (its documented exact-GP recipe).

The table reports wall time (fit + predict), the exact log marginal likelihood
of each library's final hyperparameters (recomputed by difflens with the same
formula, so the column is comparable), the test RMSE against the noise-free
function, and the ratios peer time / difflens time. Timings on a shared machine
are noisy; run it alone.

    python benchmarks/gp.py                       # N = 500 2000, D = 1 5
    python benchmarks/gp.py --sizes 500 2000 5000 --peers sklearn gpytorch
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch


def make_data(n: int, dim: int, seed: int, n_test: int = 1000):
    rng = np.random.default_rng(seed)
    if dim == 1:
        X = rng.uniform(0, 10, (n, 1))
        Xt = np.linspace(0, 10, n_test)[:, None]
        f = lambda x: np.sin(x[:, 0]) + 0.3 * np.sin(3 * x[:, 0])
    else:
        X = rng.uniform(0, 1, (n, dim))
        Xt = rng.uniform(0, 1, (n_test, dim))
        f = lambda x: np.sin(2 * np.pi * x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 2]
    y = f(X) + 0.1 * rng.standard_normal(n)
    return X, y, Xt, f(Xt)


def exact_lml(X, y, lengthscale, variance, noise) -> float:
    from difflens.gp import GaussianProcess, SquaredExponential

    gp = GaussianProcess(SquaredExponential(lengthscale, variance), noise_variance=noise, optimize=False)
    return gp.fit(X, y).log_marginal_likelihood()


def run_difflens(X, y, Xt, restarts: int, seed: int):
    from difflens.gp import GaussianProcess, SquaredExponential

    dim = X.shape[1]
    t0 = time.perf_counter()
    gp = GaussianProcess(SquaredExponential(torch.ones(dim) if dim > 1 else 1.0, 1.0), noise_variance=1e-2,
                         n_restarts=restarts)
    gp.fit(X, y, generator=torch.Generator().manual_seed(seed))
    mean, _std = gp.predict(Xt, return_std=True)
    seconds = time.perf_counter() - t0
    hp = gp.kernel.hyperparameters()
    info = f"{gp.fit_info_['evaluations']} evals"
    return seconds, mean, (hp["lengthscale"].reshape(-1).numpy(), float(hp["variance"]), float(gp.noise_variance.detach())), info


def run_regressor(X, y, Xt, restarts: int, seed: int):
    """difflens's scikit-learn-convention estimator, with the very kernel and alpha given to scikit-learn."""
    from difflens.gp import GaussianProcessRegressor, WhiteKernel
    from difflens.gp.sklearn_kernels import RBF, ConstantKernel

    dim = X.shape[1]
    kernel = ConstantKernel(1.0) * RBF(np.ones(dim) if dim > 1 else 1.0) + WhiteKernel(1e-2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpr = GaussianProcessRegressor(kernel, alpha=1e-10, n_restarts_optimizer=restarts,
                                       random_state=seed).fit(X, y)
        mean, _std = gpr.predict(Xt, return_std=True)
    seconds = time.perf_counter() - t0
    k = gpr.kernel_
    hp = (np.atleast_1d(k.k1.k2.length_scale), float(k.k1.k1.constant_value), float(k.k2.noise_level) + 1e-10)
    evals = gpr.optimization.history.seconds if gpr.optimization is not None else 0.0
    return seconds, mean, hp, f"sklearn API, engine {evals:.2f} s"


def run_sklearn(X, y, Xt, restarts: int, seed: int):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    dim = X.shape[1]
    kernel = ConstantKernel(1.0) * RBF(np.ones(dim) if dim > 1 else 1.0) + WhiteKernel(1e-2)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gpr = GaussianProcessRegressor(kernel, alpha=1e-10, n_restarts_optimizer=restarts,
                                       random_state=seed).fit(X, y)
        mean, _std = gpr.predict(Xt, return_std=True)
    seconds = time.perf_counter() - t0
    k = gpr.kernel_
    hp = (np.atleast_1d(k.k1.k2.length_scale), float(k.k1.k1.constant_value), float(k.k2.noise_level) + 1e-10)
    return seconds, mean, hp, ""


def run_gpytorch(X, y, Xt, restarts: int, seed: int, steps: int = 50):
    import gpytorch

    dim = X.shape[1]
    Xtr = torch.as_tensor(X, dtype=torch.float64)
    ytr = torch.as_tensor(y, dtype=torch.float64)
    Xte = torch.as_tensor(Xt, dtype=torch.float64)

    class Model(gpytorch.models.ExactGP):
        def __init__(self, x, t, likelihood):
            super().__init__(x, t, likelihood)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(
                gpytorch.kernels.RBFKernel(ard_num_dims=dim if dim > 1 else None))

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    t0 = time.perf_counter()
    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    model = Model(Xtr, ytr, likelihood).double()
    model.covar_module.base_kernel.lengthscale = torch.ones(dim, dtype=torch.float64)
    model.covar_module.outputscale = 1.0
    likelihood.noise = 1e-2
    model.train()
    likelihood.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
    # GPyTorch's own recipe: a fixed number of Adam steps (this is the peer's loop, not difflens code)
    for _ in range(steps):
        opt.zero_grad()
        loss = -mll(model(Xtr), ytr)
        loss.backward()
        opt.step()
    model.eval()
    likelihood.eval()
    with torch.no_grad():
        pred = model(Xte)
        mean, _var = pred.mean, pred.variance
    seconds = time.perf_counter() - t0
    hp = (model.covar_module.base_kernel.lengthscale.detach().reshape(-1).numpy(),
          float(model.covar_module.outputscale.detach()), float(likelihood.noise.detach()))
    return seconds, mean.numpy(), hp, f"{steps} Adam steps"


RUNNERS = {"difflens": run_difflens, "regressor": run_regressor, "sklearn": run_sklearn,
           "gpytorch": run_gpytorch}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000], help="training set sizes N")
    p.add_argument("--dims", type=int, nargs="+", default=[1, 5], help="input dimensions D")
    p.add_argument("--peers", nargs="*", default=["regressor", "sklearn", "gpytorch"],
                   choices=["regressor", "sklearn", "gpytorch"],
                   help="rows after difflens's GaussianProcess; 'regressor' is difflens's GaussianProcessRegressor")
    p.add_argument("--restarts", type=int, default=0, help="optimizer restarts, the same for every library")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="cap torch's and every BLAS/OpenMP pool's threads (default: the libraries' own)")
    args = p.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    # warm-up: the first torch.optim optimizer of a process imports torch._dynamo (seconds); not a GP cost
    torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])

    import sklearn

    print(f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, torch threads {torch.get_num_threads()}, "
          f"restarts {args.restarts}, "
          f"{args.n_test} test points, float64 CPU", flush=True)
    ratios: dict[tuple[int, int], dict[str, float]] = {}
    header = f"{'D':>2} {'N':>6} {'library':9} {'seconds':>9} {'LML':>12} {'test RMSE':>10} {'x difflens':>10}  notes"
    print(header)
    print("-" * len(header))
    for dim in args.dims:
        for n in args.sizes:
            X, y, Xt, ft = make_data(n, dim, args.seed, args.n_test)
            ours = None
            for name in ["difflens", *args.peers]:
                seconds, mean, (ls, var, noise), note = RUNNERS[name](X, y, Xt, args.restarts, args.seed)
                lml = exact_lml(X, y, torch.as_tensor(ls) if dim > 1 else float(ls[0]), var, noise)
                rmse = float(np.sqrt(np.mean((np.asarray(mean) - ft) ** 2)))
                ours = ours or seconds
                ratios.setdefault((dim, n), {})[name] = seconds
                ratio = f"{seconds / ours:10.2f}"
                print(f"{dim:>2} {n:>6} {name:9} {seconds:9.2f} {lml:12.3f} {rmse:10.4f} {ratio}  {note}",
                      flush=True)
    for (dim, n), t in ratios.items():
        if "sklearn" in t and "regressor" in t:
            print(f"D={dim} N={n}: scikit-learn / GaussianProcessRegressor = {t['sklearn'] / t['regressor']:.2f}x, "
                  f"scikit-learn / GaussianProcess = {t['sklearn'] / t['difflens']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
