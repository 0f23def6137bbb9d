import os
import signal

import pytest
import torch

from difflens.engine import (
    CheckpointError,
    GradientNorm,
    LossChange,
    NonFiniteLossError,
    Optimization,
    TimeBudget,
)

TARGET = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)


class Counter:
    """A minimal tracked-state object: counts loss evaluations, as a batch sampler would."""

    def __init__(self):
        self.n = 0

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, sd):
        self.n = sd["n"]


def quadratic(x=None, **kw):
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True) if x is None else x
    opt = Optimization([x], lambda: ((x - TARGET) ** 2).sum(), **kw)
    return x, opt


def test_adam_converges_and_records_history():
    x, opt = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.1))
    opt.run(500)
    assert opt.stop_reason == "max_iter" and opt.iteration == 500
    torch.testing.assert_close(x.detach(), TARGET, atol=1e-4, rtol=0)
    h = opt.history
    assert h.loss.shape == (500,) and h.grad_norm.shape == (500,) and h.change_norm.shape == (500,)
    # the first recorded loss is the loss at the start, before any step
    assert h.loss[0].item() == pytest.approx(float((TARGET**2).sum()))
    # gradient of sum (x - t)^2 at x=0 is -2t
    assert h.grad_norm[0].item() == pytest.approx(float((2 * TARGET).norm()))
    # first Adam step moves every coordinate by lr
    assert h.change_norm[0].item() == pytest.approx(0.1 * 2, rel=1e-6)


def test_lbfgs_with_closure_solves_quadratic_in_one_step():
    x, opt = quadratic(optimizer=lambda p: torch.optim.LBFGS(p, line_search_fn="strong_wolfe"))
    opt.run(2)
    torch.testing.assert_close(x.detach(), TARGET, atol=1e-10, rtol=0)


def test_resume_equals_uninterrupted_run():
    x1, a = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    a.run(37)
    a.run(63)
    x2, b = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    b.run(100)
    assert torch.equal(x1, x2)
    assert torch.equal(a.history.loss, b.history.loss)


def test_save_load_round_trip_resumes_identically(tmp_path):
    x1, a = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.05), snapshot_every=10)
    a.run(40)
    a.save(tmp_path / "run.pt", extra={"note": "hi"})
    a.run(60)

    x2, b = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.05), snapshot_every=10)
    extra = b.load(tmp_path / "run.pt", map_location="cpu")
    assert extra == {"note": "hi"} and b.iteration == 40 and len(b.history) == 40
    assert b.history.snapshot_iterations == [0, 10, 20, 30, 40]
    b.run(60)
    assert torch.equal(x1, x2)
    assert torch.equal(a.history.loss, b.history.loss)
    assert a.history.snapshot_iterations == b.history.snapshot_iterations


def test_load_rejects_mismatched_and_corrupt_files(tmp_path):
    _, a = quadratic()
    a.run(3)
    a.save(tmp_path / "ok.pt")
    y = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    other = Optimization([y], lambda: (y**2).sum())
    with pytest.raises(CheckpointError, match="shapes"):
        other.load(tmp_path / "ok.pt")
    _, sgd = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    with pytest.raises(CheckpointError, match="SGD"):
        sgd.load(tmp_path / "ok.pt")
    (tmp_path / "bad.pt").write_bytes(open(tmp_path / "ok.pt", "rb").read()[:100])
    with pytest.raises(CheckpointError, match="bad.pt"):
        a.load(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        a.load(tmp_path / "missing.pt")


def test_loss_change_absolute_and_relative():
    _, opt = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1), stop_rules=[LossChange(1e-6, window=3)])
    opt.run(1000)
    assert opt.stop_reason == "loss_change"
    L = opt.history.loss
    assert abs(L[-1] - L[-4]) < 1e-6 and abs(L[-2] - L[-5]) >= 1e-6
    _, rel = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
                       stop_rules=[LossChange(1e-2, window=1, relative=True)])
    rel.run(1000)
    L = rel.history.loss
    assert rel.stop_reason == "loss_change"
    assert abs(L[-1] - L[-2]) / abs(L[-2]) < 1e-2 <= abs(L[-2] - L[-3]) / abs(L[-3])


def test_gradient_norm_rule_and_min_iter():
    _, opt = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1), stop_rules=[GradientNorm(1e-3)])
    opt.run(1000)
    assert opt.stop_reason == "grad_norm"
    assert opt.history.grad_norm[-1] < 1e-3 <= opt.history.grad_norm[-2]
    _, late = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1), stop_rules=[GradientNorm(1e3)],
                        min_iter=25)
    late.run(1000)
    assert late.stop_reason == "grad_norm" and late.iteration == 25


def test_time_budget():
    _, opt = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=1e-6), stop_rules=[TimeBudget(0.2)])
    opt.run(10_000_000)
    assert opt.stop_reason == "time_budget" and opt.iteration < 10_000_000


def test_check_every_defers_stop_to_check_points():
    _, opt = quadratic(optimizer=lambda p: torch.optim.SGD(p, lr=0.1), stop_rules=[GradientNorm(1e3)],
                       check_every=7)
    opt.run(100)
    assert opt.iteration == 7


def test_scheduler_reduce_on_plateau_lowers_lr():
    x = torch.ones(2, requires_grad=True)
    opt = Optimization([x], lambda: (x * 0).sum() + 1.0, optimizer=lambda p: torch.optim.SGD(p, lr=1.0),
                       scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2, factor=0.5))
    opt.run(10)
    assert opt.history.lr[0] == 1.0 and opt.history.lr[-1] < 1.0


def test_non_finite_loss_restores_last_good_state_and_keeps_history():
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)

    def loss():  # finite while x < 1.5, NaN beyond
        return torch.where(x < 1.5, (x - 3) ** 2, torch.full_like(x, float("nan"))).sum()

    opt = Optimization([x], loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.05))
    with pytest.raises(NonFiniteLossError, match="iteration") as err:
        opt.run(100)
    bad = err.value.iteration
    assert len(opt.history) == opt.iteration == bad - 1
    assert torch.isfinite(opt.history.loss).all()
    assert x.item() < 1.5 and torch.isfinite(loss())


def test_ctrl_c_finishes_step_and_writes_checkpoint(tmp_path):
    def press_ctrl_c(o):
        if o.iteration == 5:
            os.kill(os.getpid(), signal.SIGINT)

    path = tmp_path / "ck.pt"
    x, opt = quadratic(callbacks=[press_ctrl_c], checkpoint_path=path)
    opt.run(100)
    assert opt.stop_reason == "interrupted" and opt.iteration == 5 and len(opt.history) == 5
    y, again = quadratic()
    again.load(path)
    assert torch.equal(y, x) and again.iteration == 5


def test_keyboard_interrupt_inside_loss_rolls_back_the_partial_step():
    x = torch.zeros(3, requires_grad=True)
    calls = [0]

    def loss():
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return ((x - 1) ** 2).sum()

    opt = Optimization([x], loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    opt.run(10)
    assert opt.stop_reason == "interrupted" and opt.iteration == 3 and len(opt.history) == 3
    torch.testing.assert_close(x.detach(), torch.full((3,), 1 - 0.8**3))


def test_per_item_losses_converge_independently_and_freeze():
    # item 0 starts at its optimum, item 1 far from it
    t = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    opt = Optimization([x], lambda: ((x - t) ** 2).sum(1), optimizer=lambda p: torch.optim.Adam(p, lr=0.1),
                       stop_rules=[LossChange(1e-9, window=2)], freeze_converged=True)
    opt.run(5000)
    assert opt.stop_reason == "loss_change"
    assert opt.history.loss.shape[1] == 2 and bool(opt.converged.all())
    # item 0 was frozen early: it never moved from its optimum even though Adam kept momentum
    assert torch.equal(x[0].detach(), torch.zeros(2))
    torch.testing.assert_close(x[1].detach(), t[1], atol=1e-3, rtol=0)


def test_snapshots_and_logged_series():
    x, opt = quadratic(snapshot_every=5, callbacks=[lambda o: o.history.log("x0", o.params[0][0], o.iteration)])
    opt.run(12)
    assert opt.history.snapshot_iterations == [0, 5, 10]
    torch.testing.assert_close(opt.history.snapshots[0][0], torch.zeros(4, dtype=torch.float64))
    assert opt.history.iterations("x0") == list(range(1, 13))
    assert opt.history["x0"].shape == (12,)
    with pytest.raises(KeyError, match="x0"):
        opt.history["nope"]


def test_tracked_state_is_saved_and_restored(tmp_path):
    c = Counter()
    x = torch.zeros(2, requires_grad=True)

    def loss():
        c.n += 1
        return ((x - c.n) ** 2).sum()

    opt = Optimization([x], loss, state={"counter": c})
    opt.run(4)
    opt.save(tmp_path / "s.pt")
    c2 = Counter()
    y = torch.zeros(2, requires_grad=True)
    Optimization([y], loss, state={"counter": c2}).load(tmp_path / "s.pt")
    assert c2.n == 4


def test_module_params_and_to_moves_optimizer_state():
    model = torch.nn.Linear(3, 1)
    data = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    opt = Optimization(model, lambda: model(data).pow(2).mean())
    opt.run(3)
    opt.to("cpu")
    for st in opt.optimizer.state.values():
        assert st["exp_avg"].device.type == "cpu"
    assert len(opt.params) == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"params": []}, "nothing to optimise"),
        ({"params": [torch.zeros(2)]}, "requires_grad"),
        ({"loss_fn": 3}, "callable"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"stop_rules": [lambda o: True]}, "StopRule"),
        ({"check_every": 0}, "check_every"),
    ],
)
def test_bad_arguments_have_clear_errors(kwargs, match):
    x = torch.zeros(2, requires_grad=True)
    args = {"params": [x], "loss_fn": lambda: (x**2).sum(), **kwargs}
    with pytest.raises((ValueError, TypeError), match=match):
        Optimization(**args)


def test_optimizer_over_other_tensors_is_rejected():
    x, y = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="exactly"):
        Optimization([x], lambda: (x**2).sum(), optimizer=torch.optim.Adam([y]))


def test_loss_must_be_scalar_or_vector():
    x = torch.zeros(2, 2, requires_grad=True)
    opt = Optimization([x], lambda: x**2)
    with pytest.raises(TypeError, match="scalar or"):
        opt.run(1)


def test_non_finite_loss_also_rolls_back_tracked_state():
    c = Counter()
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def loss():
        c.n += 1  # one draw per evaluation, like a batch sampler
        bad = torch.tensor(float("nan"), dtype=torch.float64)
        return torch.where(torch.tensor(c.n > 5), bad, ((x - 1) ** 2).sum())

    opt = Optimization([x], loss, optimizer=lambda p: torch.optim.SGD(p, lr=0.1), state={"sampler": c})
    with pytest.raises(NonFiniteLossError):
        opt.run(20)
    # restored to the state just before the step that produced the last finite loss's successor
    assert opt.iteration == 4 and c.n == 4


def _batchnorm_run():
    torch.manual_seed(0)  # only for the module's default init; the data come from a generator
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1)).double()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 3, generator=g, dtype=torch.float64)
    y = x.sum(1, keepdim=True)
    return net, Optimization(net, lambda: ((net(x) - y) ** 2).mean(), optimizer=lambda p: torch.optim.SGD(p, lr=0.05))


def test_module_buffers_are_saved_loaded_and_rolled_back(tmp_path):
    net, a = _batchnorm_run()
    a.run(5)
    a.save(tmp_path / "bn.pt")
    a.run(5)
    net2, b = _batchnorm_run()
    b.load(tmp_path / "bn.pt")
    assert int(net2[1].num_batches_tracked) == 5  # restored, not the fresh module's 0
    b.run(5)
    assert torch.equal(net[1].running_mean, net2[1].running_mean)
    assert torch.equal(net[1].running_var, net2[1].running_var)
    # a step whose loss is NaN is undone, running statistics included
    net3, c = _batchnorm_run()
    c.run(3)
    c.loss_fn = lambda: net3(torch.full((64, 3), float("nan"), dtype=torch.float64)).mean()
    with pytest.raises(NonFiniteLossError):
        c.run(1)
    net4, d = _batchnorm_run()
    d.run(c.iteration)  # the state the rollback returned to, reached directly
    assert int(net3[1].num_batches_tracked) == c.iteration
    assert torch.equal(net3[1].running_mean, net4[1].running_mean)
    assert torch.equal(net3[1].running_var, net4[1].running_var)
