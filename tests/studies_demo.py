"""Small studies used by the study-runner tests (imported in-process and by subprocesses)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from difflens.engine import Optimization  # noqa: E402
from difflens.studies import study  # noqa: E402
from difflens.studies.settings import StudySettings, setting  # noqa: E402


@dataclass(frozen=True)
class DemoSettings(StudySettings):
    PRESETS = {"quick": {"scale": 0.5}}
    scale: float = setting(1.0, "a scale", minimum=0.0)
    fail: bool = setting(False, "raise an error after the first section")


@study("_demo", title="Demo study", settings=DemoSettings, headline=(("first", "first draw"),), figure="line",
       order=999)
def _demo(ctx):
    g = ctx.generator()
    ctx.heading("numbers")
    x = torch.rand(3, generator=g)
    ctx.metric("first", x[0])
    ctx.metric("vector", x)
    ctx.metric("scale", ctx.settings.scale)
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.figure("line", fig, "a line")
    ctx.table([[1, 2.5]], ["a", "b"], "a table")
    if ctx.settings.fail:
        raise RuntimeError("asked to fail")


@study("_broken", title="Broken study", settings=DemoSettings, order=1000)
def _broken(ctx):
    ctx.metric("before_error", 1)
    raise RuntimeError("boom")


class Sampler:
    """Minibatch indices from an explicit generator, saved and restored with the run."""

    def __init__(self, n: int, batch: int, seed: int) -> None:
        self.n, self.batch = n, batch
        self.g = torch.Generator().manual_seed(seed)

    def draw(self) -> torch.Tensor:
        return torch.randint(0, self.n, (self.batch,), generator=self.g)

    def state_dict(self):
        return {"g": self.g.get_state()}

    def load_state_dict(self, sd):
        self.g.set_state(sd["g"])


@dataclass(frozen=True)
class TrainSettings(StudySettings):
    PRESETS = {"quick": {"iterations": 40, "delay": 0.02}}
    iterations: int = setting(200, "SGD steps per phase", minimum=1)
    delay: float = setting(0.0, "seconds slept per step (to give signals time to arrive)", minimum=0.0)
    figures: int = setting(2, "figures written after training", minimum=0)


@study("_train", title="Two trained phases", settings=TrainSettings, order=1001)
def _train(ctx):
    s = ctx.settings
    g = ctx.generator(0)
    X = torch.randn(256, 8, generator=g, dtype=torch.float64)
    w_true = torch.randn(8, generator=g, dtype=torch.float64)
    y = X @ w_true + 0.1 * torch.randn(256, generator=g, dtype=torch.float64)
    for phase in ("first", "second"):
        ctx.heading(f"phase {phase}")
        w = torch.zeros(8, dtype=torch.float64, requires_grad=True)
        sampler = Sampler(256, 16, ctx.seed + (phase == "second"))

        def loss(w=w, sampler=sampler):
            i = sampler.draw()
            if s.delay:
                time.sleep(s.delay)
            return ((X[i] @ w - y[i]) ** 2).mean()

        opt = Optimization([w], loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
                           state={"sampler": sampler})
        opt.configure(checkpoint_path=ctx.checkpoint(phase), progress=ctx.progress_label(f"phase {phase}"))
        with ctx.phase(f"training, phase {phase}"):
            opt.run(s.iterations, resume=ctx.resume)
        ctx.metric(f"{phase}.final_loss", opt.history.loss[-1])
        ctx.metric(f"{phase}.weights", w.detach())
        ctx.metric(f"{phase}.iterations", opt.iteration)
        ctx.metric(f"{phase}.seconds", opt.history.seconds)
    for k in range(s.figures):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.imshow(torch.rand(200, 200, generator=g).numpy())
        ctx.figure(f"noise_{k}", fig, f"noise image {k}")
