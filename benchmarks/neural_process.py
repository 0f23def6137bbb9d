"""Neural processes against the exact GP oracle: the log-likelihood gap on held-out tasks, and prediction speed.

Trains each model on GP-prior tasks in chunks of steps (one schedule over all of them, so the
chunks equal one run), and after each chunk measures the gap to the oracle on held-out tasks
against the training time so far (``optimization.history.seconds``). Then times prediction
from 10,000 context points: the exact GP (one float64 Cholesky of the context covariance,
``oracle_predict``, and ``difflens.gp.GaussianProcess`` fit + predict with fixed
hyperparameters) against the trained models.

    python benchmarks/neural_process.py --steps 4000 --chunks 8 --kernels se matern52 --tasks 1024 --threads 1

Models: cnp, acnp, convcnp (the U-Net ConvCNP), convcnp_dilated (the dilated-CNN ConvCNP of earlier
versions). ``ms/step`` is the training time per step (Adam step on 16 tasks, task sampling included).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from difflens.gp import GaussianProcess
from difflens.gp.neural import (
    CNP,
    KERNEL_NAMES,
    AttentiveCNP,
    ConvCNP,
    GPTaskSampler,
    NeuralProcessTrainer,
    evaluate_model,
    oracle_log_likelihood,
    oracle_predict,
    task_kernel,
)

NOISE = 0.02


def make(name, seed):
    g = torch.Generator().manual_seed(seed)
    return {"cnp": lambda: CNP(generator=g), "acnp": lambda: AttentiveCNP(hidden=64, heads=4, generator=g),
            "convcnp": lambda: ConvCNP(generator=g), "convcnp_dilated": lambda: ConvCNP(cnn="dilated", generator=g)}[name]()


def batches(kernel, n, seed):
    s = GPTaskSampler(kernel, torch.Generator().manual_seed(seed))
    return [s.sample(batch_size=min(16, n - i)) for i in range(0, n, 16)]


def timed(fn, repeats=3):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def train_in_chunks(model, trainer, held, oracle, steps: int, chunks: int):
    """Train ``steps`` steps in ``chunks`` chunks of one schedule; after each, yield ``(ev, gap, half)``.

    ``ev`` is :func:`evaluate_model` on the held-out tasks, ``gap`` the mean gap to ``oracle``
    (nats per target point) and ``half`` its 95% half-width over tasks.
    """
    per = steps // chunks
    for c in range(chunks):
        model.train()
        trainer.fit(per if c < chunks - 1 else steps - per * (chunks - 1))
        model.eval()
        ev = evaluate_model(model, held)
        gap = oracle - ev["ll"]
        yield ev, float(gap.mean()), 1.96 * float(gap.std()) / len(gap) ** 0.5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernels", nargs="+", default=["se", "matern52"])
    p.add_argument("--models", nargs="+", default=["cnp", "convcnp"])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final-fraction", type=float, default=0.01,
                   help="final over peak learning rate of the cosine schedule (earlier versions: 0.1)")
    p.add_argument("--tasks", type=int, default=1024)
    p.add_argument("--context", type=int, default=10000, help="context size of the speed comparison (0: skip it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--context-in-loss", nargs="*", default=["cnp", "acnp"],
                   help="models whose training loss also predicts the context points (Garnelo et al.); the others "
                        "are trained on the targets only, as they are evaluated")
    p.add_argument("--skip-training", action="store_true", help="only the speed comparison (untrained models)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} thread(s), seed {a.seed}, noise std {NOISE}")
    trained = {}
    if not a.skip_training:
        for kname in a.kernels:
            ki = KERNEL_NAMES.index(kname)  # seeds follow the kernel, not its place in --kernels
            kernel = task_kernel(kname)
            held = batches(kname, a.tasks, 10_000 + a.seed * 100 + ki)
            oracle = torch.cat([oracle_log_likelihood(kernel, NOISE, *t.to(dtype=torch.float64)) for t in held])
            print(f"\n{kname}: {a.tasks} held-out tasks (3-50 context, 50 targets); oracle LL/point "
                  f"{float(oracle.mean()):.4f}")
            print(f"{'model':<8} {'steps':>6} {'train s':>8} {'LL/pt':>8} {'gap':>7} {'95% CI':>17} "
                  f"{'1sig':>6} {'2sig':>6} {'ms/step':>8}")
            for mi, mname in enumerate(a.models):
                model = make(mname, 1000 * a.seed + 10 * ki + mi)
                sampler = GPTaskSampler(kname, torch.Generator().manual_seed(2000 * a.seed + 10 * ki + mi))
                trainer = NeuralProcessTrainer(model, sampler, lr=a.lr, steps=a.steps,
                                               lr_final_fraction=a.lr_final_fraction,
                                               include_context=mname in a.context_in_loss)
                for ev, g, half in train_in_chunks(model, trainer, held, oracle, a.steps, a.chunks):
                    print(f"{mname:<8} {trainer.optimization.iteration:>6} {trainer.seconds:>8.1f} "
                          f"{float(ev['ll'].mean()):>8.4f} {g:>7.4f} [{g - half:>7.4f}, {g + half:>7.4f}] "
                          f"{float(ev['in_1sigma'].mean()):>6.3f} {float(ev['in_2sigma'].mean()):>6.3f} "
                          f"{1000 * trainer.seconds / trainer.optimization.iteration:>8.1f}", flush=True)
                trained[(mname, kname)] = model

    # -- speed at a large context ---------------------------------------------------------------------------
    if a.context <= 0:
        return
    n = a.context
    g = torch.Generator().manual_seed(a.seed)
    xc = 4 * torch.rand(1, n, 1, generator=g) - 2
    yc = torch.sin(3 * xc) + NOISE * torch.randn(1, n, 1, generator=g)
    xt = torch.linspace(-2, 2, 100).reshape(1, -1, 1)
    kernel = task_kernel("se")
    exact = timed(lambda: oracle_predict(kernel, NOISE, xc, yc, xt), repeats=2)

    def gp_fit_predict():
        gp = GaussianProcess(task_kernel("se"), noise_variance=NOISE ** 2, optimize=False)
        gp.fit(xc[0].double(), yc[0, :, 0].double())
        gp.predict(xt[0].double(), return_std=True)

    exact_gp = timed(gp_fit_predict, repeats=2)
    print(f"\nprediction of 100 targets from {n} context points, {a.threads} thread(s) (median of repeats)")
    best = min(exact, exact_gp)  # ratios against the faster exact method
    print(f"{'method':<40} {'ms':>10} {'faster exact GP / method':>25}")
    print(f"{'exact GP (oracle_predict, f64)':<40} {1000 * exact:>10.1f} {best / exact:>25.2f}")
    print(f"{'difflens.gp.GaussianProcess fit+predict':<40} {1000 * exact_gp:>10.1f} {best / exact_gp:>25.2f}")
    for mname in a.models:
        model = trained.get((mname, a.kernels[0])) or make(mname, 0)
        with torch.no_grad():
            model(xc, yc, xt)
            t = timed(lambda model=model: model(xc, yc, xt), repeats=5)
        print(f"{mname:<40} {1000 * t:>10.2f} {best / t:>25.1f}")


if __name__ == "__main__":
    main()
