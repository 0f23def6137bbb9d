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
function, the ratios peer time / difflens time, the number of LML evaluations
(value and gradient) of the fit and the mean time of one. scikit-learn runs its own
default optimiser call (``scipy.optimize.minimize(..., "L-BFGS-B", jac=True)``)
passed as a callable so that its evaluations can be counted. The last lines give
the ratios of the totals and of the time per evaluation, which depends less on how
many evaluations each optimiser needed and on the machine's load. Timings on a
shared machine are noisy; run it alone.

    python benchmarks/gp.py                       # N = 500 2000, D = 1 5
    python benchmarks/gp.py --sizes 500 2000 5000 --peers sklearn gpytorch
    python benchmarks/gp.py --sizes 2000 --per-evaluation --threads 1   # CPU time of one evaluation
    python benchmarks/gp.py --sizes 2000 --peers sklearn --seeds 0 1 2 3 4 5 6 7 8 9   # mean +/- std over data
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


class Counter:
    """Counts the LML evaluations (value and gradient) of one fit and the seconds spent in them."""

    def __init__(self):
        self.evaluations, self.seconds = 0, 0.0

    def wrap(self, fn):
        def counted(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self.evaluations += 1

        return counted


def timed(fit, Xt):
    """``fit()`` then ``predict(Xt, return_std=True)`` on what it returns, timed together.

    Returns ``(seconds, mean, model)``: the one timing block every library goes through.
    """
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fit()
        mean, _std = model.predict(Xt, return_std=True)
    return time.perf_counter() - t0, mean, model


def evals_note(counter: Counter) -> str:
    per = counter.seconds / counter.evaluations if counter.evaluations else float("nan")
    return f"{counter.evaluations} evals, {1e3 * per:.0f} ms/eval"


def run_difflens(X, y, Xt, restarts: int, seed: int):
    from difflens.gp import GaussianProcess, SquaredExponential

    dim = X.shape[1]

    def fit():
        gp = GaussianProcess(SquaredExponential(torch.ones(dim) if dim > 1 else 1.0, 1.0), noise_variance=1e-2,
                             n_restarts=restarts)
        return gp.fit(X, y, generator=torch.Generator().manual_seed(seed))

    seconds, mean, gp = timed(fit, Xt)
    hp = gp.kernel.hyperparameters()
    counter = Counter()  # the engine's wall time holds the evaluations (and L-BFGS's own small cost)
    counter.evaluations, counter.seconds = gp.fit_info_["evaluations"], gp.fit_info_["seconds"]
    return (seconds, mean, (hp["lengthscale"].reshape(-1).numpy(), float(hp["variance"]),
                            float(gp.noise_variance.detach())), counter)


def sklearn_style_kernel(module, dim: int):
    """``ConstantKernel(1) * RBF(1, ...) + WhiteKernel(1e-2)`` from scikit-learn's or difflens's kernels."""
    return module.ConstantKernel(1.0) * module.RBF(np.ones(dim) if dim > 1 else 1.0) + module.WhiteKernel(1e-2)


def sklearn_style_hyperparameters(kernel):
    return (np.atleast_1d(kernel.k1.k2.length_scale), float(kernel.k1.k1.constant_value),
            float(kernel.k2.noise_level) + 1e-10)


def run_regressor(X, y, Xt, restarts: int, seed: int):
    """difflens's scikit-learn-convention estimator, with the very kernel and alpha given to scikit-learn."""
    import difflens.gp.sklearn_kernels as kernels
    from difflens.gp import GaussianProcessRegressor

    counter = Counter()

    def fit():
        gpr = GaussianProcessRegressor(sklearn_style_kernel(kernels, X.shape[1]), alpha=1e-10,
                                       n_restarts_optimizer=restarts, random_state=seed)
        gpr._lml = counter.wrap(gpr._lml)  # counts every LML evaluation of the fit
        return gpr.fit(X, y)

    seconds, mean, gpr = timed(fit, Xt)
    # _lml is the forward pass only: the evaluations' time (gradients included) is the engine's wall time
    # (of the best run only when there are restarts)
    counter.seconds = gpr.optimization.history.seconds if gpr.optimization is not None else 0.0
    return seconds, mean, sklearn_style_hyperparameters(gpr.kernel_), counter


def run_sklearn(X, y, Xt, restarts: int, seed: int):
    import scipy.optimize
    from sklearn.gaussian_process import GaussianProcessRegressor, kernels

    counter = Counter()

    def lbfgsb(obj_func, initial_theta, bounds):
        """scikit-learn's own "fmin_l_bfgs_b" call, with the objective counted."""
        res = scipy.optimize.minimize(counter.wrap(obj_func), initial_theta, method="L-BFGS-B", jac=True,
                                      bounds=bounds)
        return res.x, res.fun

    def fit():
        return GaussianProcessRegressor(sklearn_style_kernel(kernels, X.shape[1]), alpha=1e-10, optimizer=lbfgsb,
                                        n_restarts_optimizer=restarts, random_state=seed).fit(X, y)

    seconds, mean, gpr = timed(fit, Xt)
    return seconds, mean, sklearn_style_hyperparameters(gpr.kernel_), counter


def run_gpytorch(X, y, Xt, restarts: int, seed: int, steps: int = 50):
    import gpytorch

    dim = X.shape[1]
    Xtr = torch.as_tensor(X, dtype=torch.float64)
    ytr = torch.as_tensor(y, dtype=torch.float64)

    class Model(gpytorch.models.ExactGP):
        def __init__(self, x, t, likelihood):
            super().__init__(x, t, likelihood)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(
                gpytorch.kernels.RBFKernel(ard_num_dims=dim if dim > 1 else None))

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    counter = Counter()

    class Fitted:
        def __init__(self, model, likelihood):
            self.model, self.likelihood = model, likelihood

        def predict(self, Xt, return_std=True):
            self.model.eval()
            self.likelihood.eval()
            with torch.no_grad():
                pred = self.model(torch.as_tensor(Xt, dtype=torch.float64))
                return pred.mean.numpy(), pred.variance.sqrt().numpy()

    def fit():
        likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
        model = Model(Xtr, ytr, likelihood).double()
        model.covar_module.base_kernel.lengthscale = torch.ones(dim, dtype=torch.float64)
        model.covar_module.outputscale = 1.0
        likelihood.noise = 1e-2
        model.train()
        likelihood.train()
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)

        def step():
            opt.zero_grad()
            loss = -mll(model(Xtr), ytr)
            loss.backward()
            opt.step()

        # GPyTorch's own recipe: a fixed number of Adam steps (this is the peer's loop, not difflens code);
        # one step is one LML evaluation with its gradient
        step = counter.wrap(step)
        for _ in range(steps):
            step()
        return Fitted(model, likelihood)

    seconds, mean, fitted = timed(fit, Xt)
    model, likelihood = fitted.model, fitted.likelihood
    hp = (model.covar_module.base_kernel.lengthscale.detach().reshape(-1).numpy(),
          float(model.covar_module.outputscale.detach()), float(likelihood.noise.detach()))
    return seconds, mean, hp, counter


def per_evaluation(X, y, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """``{library: [(cpu seconds, wall seconds), ...]}`` of one LML value-and-gradient evaluation each.

    All three at the same hyperparameters (the starting point of the fits), in turn, ``repeats``
    times after one warm-up call: difflens's ``GaussianProcess`` (``-LML`` and autograd, as in its
    fit), its ``GaussianProcessRegressor`` and scikit-learn's, through their
    ``log_marginal_likelihood(theta, eval_gradient=True)``. With one thread, CPU time is what the
    evaluation costs whatever else runs on the machine.
    """
    from sklearn.gaussian_process import GaussianProcessRegressor as SkRegressor
    from sklearn.gaussian_process import kernels as skernels

    import difflens.gp.sklearn_kernels as dkernels
    from difflens.gp import GaussianProcess, GaussianProcessRegressor, SquaredExponential

    dim = X.shape[1]
    gp = GaussianProcess(SquaredExponential(torch.ones(dim) if dim > 1 else 1.0, 1.0), noise_variance=1e-2,
                         optimize=False).fit(X, y)
    params = [p for p in gp.parameters() if p.requires_grad]
    ours = GaussianProcessRegressor(sklearn_style_kernel(dkernels, dim), alpha=1e-10, optimizer=None).fit(X, y)
    theirs = SkRegressor(sklearn_style_kernel(skernels, dim), alpha=1e-10, optimizer=None).fit(X, y)
    calls = {
        "difflens": lambda: torch.autograd.grad(-gp._lml_tensor(), params),
        "regressor": lambda: ours.log_marginal_likelihood(ours.kernel_.theta, eval_gradient=True),
        "sklearn": lambda: theirs.log_marginal_likelihood(theirs.kernel_.theta, eval_gradient=True),
    }
    out: dict[str, list[tuple[float, float]]] = {name: [] for name in calls}
    for name, call in calls.items():
        call()
    for _ in range(repeats):
        for name, call in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            out[name].append((time.process_time() - c0, time.perf_counter() - t0))
    return out


def main_per_evaluation(args) -> int:
    print(f"one LML value + gradient at the fits' starting point, {args.repeats} repeats each (min / median), "
          f"torch threads {torch.get_num_threads()}; the CPU-time ratios need --threads 1", flush=True)
    for dim in args.dims:
        for n in args.sizes:
            X, y, _, _ = make_data(n, dim, args.seed, args.n_test)
            times = per_evaluation(X, y, args.repeats)
            cpu = {k: sorted(c for c, _ in v) for k, v in times.items()}
            wall = {k: sorted(w for _, w in v) for k, v in times.items()}
            for name in times:
                print(f"D={dim} N={n} {name:9} cpu {1e3 * cpu[name][0]:7.0f} / {1e3 * np.median(cpu[name]):7.0f} ms"
                      f"   wall {1e3 * wall[name][0]:7.0f} / {1e3 * np.median(wall[name]):7.0f} ms")
            for ours in ("difflens", "regressor"):
                print(f"D={dim} N={n} scikit-learn / {ours}: cpu {cpu['sklearn'][0] / cpu[ours][0]:.2f}x (min), "
                      f"{np.median(cpu['sklearn']) / np.median(cpu[ours]):.2f}x (median); wall "
                      f"{np.median(wall['sklearn']) / np.median(wall[ours]):.2f}x (median)", flush=True)
    return 0


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
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="data seeds; with several, the ratios are summarised as mean +/- std over them")
    p.add_argument("--lapack-threads", type=int, default=None,
                   help="difflens.gp.linalg.LAPACK_THREADS, the threads of difflens's potrf/potri (default 1)")
    p.add_argument("--per-evaluation", action="store_true",
                   help="time single LML evaluations (CPU and wall) of difflens and scikit-learn instead of fits")
    p.add_argument("--repeats", type=int, default=5, help="evaluations per library with --per-evaluation")
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

    if args.lapack_threads:
        import difflens.gp.linalg

        difflens.gp.linalg.LAPACK_THREADS = args.lapack_threads
    args.seed = args.seeds[0]
    if args.per_evaluation:
        return main_per_evaluation(args)
    import sklearn

    print(f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, torch threads {torch.get_num_threads()}, "
          f"restarts {args.restarts}, "
          f"{args.n_test} test points, float64 CPU", flush=True)
    results: dict[tuple[int, int, int], dict[str, tuple[float, Counter]]] = {}
    header = (f"{'D':>2} {'N':>6} {'library':9} {'seconds':>9} {'LML':>12} {'test RMSE':>10} {'x difflens':>10} "
              f"{'evals':>5} {'ms/eval':>8}")
    print(header)
    print("-" * len(header))
    for dim in args.dims:
        for n in args.sizes:
            for seed in args.seeds:
                X, y, Xt, ft = make_data(n, dim, seed, args.n_test)
                for name in ["difflens", *args.peers]:
                    seconds, mean, (ls, var, noise), counter = RUNNERS[name](X, y, Xt, args.restarts, seed)
                    lml = exact_lml(X, y, torch.as_tensor(ls) if dim > 1 else float(ls[0]), var, noise)
                    rmse = float(np.sqrt(np.mean((np.asarray(mean) - ft) ** 2)))
                    results.setdefault((dim, n, seed), {})[name] = (seconds, counter)
                    ratio = seconds / results[(dim, n, seed)]["difflens"][0]
                    per = 1e3 * counter.seconds / counter.evaluations if counter.seconds else float("nan")
                    print(f"{dim:>2} {n:>6} {name:9} {seconds:9.2f} {lml:12.3f} {rmse:10.4f} {ratio:10.2f} "
                          f"{counter.evaluations:5d} {per:8.0f}" + (f"  seed {seed}" if len(args.seeds) > 1 else ""),
                          flush=True)
    print("\nratios peer / difflens: of the whole fit + predict, and of the time per LML evaluation "
          "(evaluations' seconds / their number; less sensitive to the number of evaluations and to load)")
    for (dim, n, seed), rows in results.items():
        for ours in ("difflens", "regressor"):
            if "sklearn" not in rows or ours not in rows:
                continue
            (t_sk, c_sk), (t_us, c_us) = rows["sklearn"], rows[ours]
            per = (c_sk.seconds / c_sk.evaluations) / (c_us.seconds / c_us.evaluations)
            label = "GaussianProcess" if ours == "difflens" else "GaussianProcessRegressor"
            print(f"D={dim} N={n} seed {seed}: scikit-learn / {label} = {t_sk / t_us:.2f}x total, {per:.2f}x per "
                  f"evaluation ({c_sk.evaluations} vs {c_us.evaluations} evaluations)")
    if len(args.seeds) > 1:
        print(f"\nover {len(args.seeds)} data seeds: mean +/- std (min - max) of the ratio of totals")
        for dim in args.dims:
            for n in args.sizes:
                for ours in ("difflens", "regressor"):
                    rows = [results[(dim, n, s)] for s in args.seeds]
                    if "sklearn" not in rows[0] or ours not in rows[0]:
                        continue
                    r = np.array([row["sklearn"][0] / row[ours][0] for row in rows])
                    label = "GaussianProcess" if ours == "difflens" else "GaussianProcessRegressor"
                    print(f"D={dim} N={n}: scikit-learn / {label} = {r.mean():.2f} +/- {r.std(ddof=1):.2f}x "
                          f"({r.min():.2f} - {r.max():.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
