"""The seed's Gaussian-process workflow with difflens.gp, as a script.

    python examples/gp_regression.py --out gp-figures

1. condition a squared-exponential GP on the seed's five points one at a time
   (±1, 2, 3σ bands), 2. draw functions from the posterior, 3. vary σ², ℓ and the
   noise, 4. swap in the Brownian kernel, 5. fit the hyperparameters.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch

from difflens.gp import Brownian, GaussianProcess, SquaredExponential
from difflens.plot import gp as plots


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="gp-figures")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    x_values = np.array([0, 0.3, 1, 3.1, 4.7])
    y_values = np.array([1, 0, 1.4, 0, -0.9])
    x = np.arange(-1, 7, 0.1)

    # 1. one more point per panel (the seed adds 3e-7 to the diagonal: here a fixed noise variance)
    panels = []
    for i in range(6):
        gp = GaussianProcess(SquaredExponential(lengthscale=1.0, variance=1.0), noise_variance=3e-7, optimize=False)
        gp.fit(x_values[:i], y_values[:i])
        mean, std = gp.predict(x, return_std=True)
        panels.append({"mean": mean, "std": std, "X": x_values[:i], "y": y_values[:i], "title": f"{i} points"})
    plots.posterior_panels(x, panels).savefig(out / "panels.png", dpi=100)

    # 2. functions drawn from the posterior (explicit generator: reproducible)
    gen = torch.Generator().manual_seed(args.seed)
    draws = gp.sample_y(x, 10, generator=gen)
    plots.posterior_panels(x, [{**panels[-1], "samples": draws, "title": "10 posterior draws"}]).savefig(
        out / "draws.png", dpi=100)

    # 3. the effect of sigma, lengthscale and noise
    rows = {"σ²": [], "ℓ": [], "noise": []}
    for name, (ls, var, noise) in [("σ²", (1, 0.3, 3e-7)), ("σ²", (1, 3, 3e-7)), ("ℓ", (0.3, 1, 3e-7)),
                                   ("ℓ", (3, 1, 3e-7)), ("noise", (1, 1, 0.1)), ("noise", (1, 1, 0.5))]:
        g = GaussianProcess(SquaredExponential(ls, var), noise_variance=noise, optimize=False).fit(x_values, y_values)
        m, s = g.predict(x, return_std=True)
        rows[name].append({"mean": m, "std": s, "X": x_values, "y": y_values,
                           "samples": g.sample_y(x, 3, generator=gen), "title": f"ℓ={ls} σ²={var} noise={noise}"})
    plots.posterior_grid(x, rows).savefig(out / "hyperparameters.png", dpi=100)

    # 4. the Brownian kernel min(x, x')
    b = GaussianProcess(Brownian(), noise_variance=3e-7, optimize=False).fit(x_values, y_values)
    m, s = b.predict(x, return_std=True)
    plots.posterior_panels(x, [{"mean": m, "std": s, "X": x_values, "y": y_values,
                                "samples": b.sample_y(x, 5, generator=gen), "title": "Brownian"}]).savefig(
        out / "brownian.png", dpi=100)

    # 5. fitted hyperparameters (L-BFGS on the log marginal likelihood, through difflens.engine)
    fit = GaussianProcess(SquaredExponential(1.0, 1.0), noise_variance=1e-2).fit(x_values, y_values)
    m, s = fit.predict(x, return_std=True)
    plots.fitted_posterior(x, m, s, x_values, y_values, fit.hyperparameters(),
                           -fit.optimization.history.loss).savefig(out / "fitted.png", dpi=100)
    print("fitted:", fit.hyperparameters(), "LML", round(fit.log_marginal_likelihood(), 4))
    fit.save(out / "fitted_gp.pt")
    again = GaussianProcess.load(out / "fitted_gp.pt")
    assert np.allclose(again.predict(x), m)
    print("figures in", out)


if __name__ == "__main__":
    main()
