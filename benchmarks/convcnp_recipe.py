"""ConvCNP training recipe on SE tasks: the gap to the exact-GP oracle against steps for one configuration.

One U-Net ConvCNP trained on its targets only, for ``--steps`` steps of one cosine schedule
(peak ``--lr``, decayed to ``lr * --final``), scored after each of ``--chunks`` chunks on
``--tasks`` held-out tasks (the same tasks as ``benchmarks/neural_process.py --seed 0`` for
the kernel ``se``). Prints the gap with its 95% interval over tasks, 2σ coverage and the
training time per step (wall, so it depends on the machine's load).

    python benchmarks/convcnp_recipe.py --steps 3000 --chunks 3 --final 0.01
"""

from __future__ import annotations

import argparse

import torch

from difflens.gp.neural import (
    KERNEL_NAMES,
    ConvCNP,
    GPTaskSampler,
    NeuralProcessTrainer,
    oracle_log_likelihood,
    task_kernel,
)
from neural_process import train_in_chunks  # the sibling benchmark script (same folder)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--chunks", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--final", type=float, default=0.01, help="final over peak learning rate")
    p.add_argument("--batch", type=int, default=16, help="tasks per step")
    p.add_argument("--ppu", type=float, default=32, help="grid points per unit of x")
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--tasks", type=int, default=1024, help="held-out tasks")
    p.add_argument("--seed", type=int, default=0, help="initial weights (the sampler's seed is 2000 + seed)")
    p.add_argument("--kernel", default="se", choices=KERNEL_NAMES)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    kernel = task_kernel(a.kernel)
    held_sampler = GPTaskSampler(a.kernel, torch.Generator().manual_seed(10_000 + KERNEL_NAMES.index(a.kernel)))
    held = [held_sampler.sample(batch_size=min(16, a.tasks - i)) for i in range(0, a.tasks, 16)]
    oracle = torch.cat([oracle_log_likelihood(kernel, 0.02, *t.to(dtype=torch.float64)) for t in held])
    model = ConvCNP(points_per_unit=a.ppu, channels=a.channels, levels=a.levels,
                    generator=torch.Generator().manual_seed(a.seed))
    sampler = GPTaskSampler(a.kernel, torch.Generator().manual_seed(2000 + a.seed), batch_size=a.batch)
    trainer = NeuralProcessTrainer(model, sampler, lr=a.lr, steps=a.steps, lr_final_fraction=a.final,
                                   include_context=False)
    print(f"{vars(a)}\n{'steps':>6} {'train s':>8} {'gap':>7} {'95% CI':>17} {'2sig':>6} {'ms/step':>8}")
    for ev, g, half in train_in_chunks(model, trainer, held, oracle, a.steps, a.chunks):
        it = trainer.optimization.iteration
        print(f"{it:>6} {trainer.seconds:>8.1f} {g:>7.4f} [{g - half:>7.4f}, {g + half:>7.4f}] "
              f"{float(ev['in_2sigma'].mean()):>6.3f} {1000 * trainer.seconds / it:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
