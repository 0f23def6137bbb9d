"""difflens.control: environments, LQR against SciPy, MPC on the engine."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from difflens.control import (MPC, Car, ControlledLorenz, Pendulum, PlanBlowUpError, PointMass, TrajectoryOptimizer,
                              Truck, dare, linearize, lqr)
from difflens.engine import Optimization


def test_point_mass_lqr_equals_scipy_riccati():
    e = PointMass()
    K, P = lqr(e.A, e.B, e.Q, e.R)
    Ps = scipy.linalg.solve_discrete_are(*(M.numpy() for M in (e.A, e.B, e.Q, e.R)))
    Ks = np.linalg.solve(e.R.numpy() + e.B.numpy().T @ Ps @ e.B.numpy(), e.B.numpy().T @ Ps @ e.A.numpy())
    assert np.abs(P.numpy() - Ps).max() <= 1e-8 * np.abs(Ps).max()
    assert np.abs(K.numpy() - Ks).max() <= 1e-8 * np.abs(Ks).max()


def test_linearised_pendulum_lqr_equals_scipy_and_stabilises():
    p = Pendulum()
    z = torch.zeros(2, dtype=torch.float64)
    A, B = linearize(p.step, z, torch.zeros(1, dtype=torch.float64))
    assert float(torch.linalg.eigvals(A).abs().max()) > 1  # upright is unstable
    Q, R = torch.diag(torch.tensor([1.0, 0.1], dtype=torch.float64)), torch.tensor([[0.01]], dtype=torch.float64)
    K, P = lqr(A, B, Q, R)
    Ps = scipy.linalg.solve_discrete_are(A.numpy(), B.numpy(), Q.numpy(), R.numpy())
    assert np.abs(P.numpy() - Ps).max() <= 1e-8 * np.abs(Ps).max()
    s = p.sample_starts(16, torch.Generator().manual_seed(0))
    for _ in range(200):
        s = p.step(s, -s @ K.T)
    assert float(s.abs().max()) < 1e-3


def test_dare_rejects_bad_matrices():
    A = torch.eye(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="shapes"):
        dare(A, torch.ones(3, 1, dtype=torch.float64), A, torch.eye(1, dtype=torch.float64))
    with pytest.raises(ValueError, match="NaN"):
        dare(A * math.nan, torch.ones(2, 1, dtype=torch.float64), A, torch.eye(1, dtype=torch.float64))


def test_long_horizon_mpc_converges_to_the_lqr_action():
    e = PointMass(a_max=1e3)
    K, P = lqr(e.A, e.B, e.Q, e.R)
    s0 = e.sample_starts(8, torch.Generator().manual_seed(1)) * 0.2
    tr = TrajectoryOptimizer(e.step, e.cost, s0, 40, e.low, e.high, terminal=lambda s: ((s @ P) * s).sum(-1))
    tr.solve(30)
    assert isinstance(tr.optimization, Optimization)
    lqr_action = -s0 @ K.T
    assert float((tr.actions[:, 0] - lqr_action).abs().max()) < 1e-3 * float(lqr_action.abs().max()) + 1e-4


def test_plans_stay_inside_bounds_and_warm_start_outside_is_clipped():
    e = Car()
    s0 = e.sample_starts(4, torch.Generator().manual_seed(0))
    init = torch.full((4, 5, 2), 10.0, dtype=torch.float64)  # far outside the bounds
    tr = TrajectoryOptimizer(e.step, e.cost, s0, 5, e.low, e.high, init=init)
    assert bool((tr.actions <= e.high).all()) and torch.allclose(tr.actions, e.high.expand(4, 5, 2))
    tr.solve(3)
    assert bool((tr.actions <= e.high).all() and (tr.actions >= e.low).all())
    assert torch.equal(e.step(s0, init[:, 0]), e.step(s0, e.high.expand(4, 2)))  # step clips actions


def test_multi_start_solves_all_initial_plans_in_one_batch_and_keeps_each_starts_best():
    e = Car()
    s0 = torch.tensor([[0.0, 0.0, 0.0, 1.0], [0.0, 0.8, 0.0, 1.0], [0.0, -0.5, 0.1, 0.5]], dtype=torch.float64)
    H, term = 10, lambda s: 10 * e.terminal_cost(s)
    inits = torch.zeros(3, 3, H, 2, dtype=torch.float64)
    inits[1, ..., 1], inits[2, ..., 1] = e.high[1], e.low[1]  # straight, full lock left, full lock right
    tr = TrajectoryOptimizer(e.step, e.cost, s0, H, e.low, e.high, terminal=term, init=inits)
    tr.solve(4)
    costs = tr.plan_costs()
    assert costs.shape == (3, 3) and tr.plans.shape == (3, 3, H, 2)
    for k in range(3):  # every row is its own start's plan: evaluated alone it costs the same
        alone = TrajectoryOptimizer(e.step, e.cost, s0, H, e.low, e.high, terminal=term, init=tr.plans[k])
        assert torch.allclose(alone.cost_of_plan(), costs[k], rtol=1e-12)
    best = costs.argmin(0)
    assert torch.equal(tr.actions, tr.plans[best, torch.arange(3)])
    assert torch.equal(tr.cost_of_plan(), costs.min(0).values)
    # one initial plan given as (1, B, H, m) is the plain solve
    one = TrajectoryOptimizer(e.step, e.cost, s0, H, e.low, e.high, terminal=term, init=inits[:1]).solve(3)
    plain = TrajectoryOptimizer(e.step, e.cost, s0, H, e.low, e.high, terminal=term, init=inits[0]).solve(3)
    assert torch.equal(one.actions, plain.actions)
    with pytest.raises(ValueError, match="initial plans per start"):
        TrajectoryOptimizer(e.step, e.cost, s0, H, e.low, e.high, init=inits[:, :2])


def test_mpc_drives_the_car_around_the_obstacle_to_the_target():
    e = Car()
    s0 = torch.tensor([[0.0, 0.1, 0.0, 1.0]], dtype=torch.float64)
    mpc = MPC(e.step, e.cost, 8, e.low, e.high, terminal=lambda s: 10 * e.terminal_cost(s), iterations=2)
    out = mpc.run(s0, 45)
    S = out["states"]
    assert float(e.obstacle_depth(S).max()) < 0  # never inside the obstacle
    assert float((S[:, -1, :2] - e.target).norm(dim=-1).max()) < 1.0
    assert isinstance(mpc.optimization, Optimization)


def test_mpc_resume_gives_the_same_trajectory(tmp_path):
    e = Car()
    s0 = e.sample_starts(3, torch.Generator().manual_seed(2))
    make = lambda: MPC(e.step, e.cost, 5, e.low, e.high, iterations=2)
    full = make().run(s0, 6)
    ck = tmp_path / "mpc.pt"
    make().run(s0, 3, checkpoint_path=ck)  # stops after 3 steps
    resumed = make().run(s0, 6, checkpoint_path=ck, resume=True)
    assert torch.equal(full["states"], resumed["states"]) and torch.equal(full["actions"], resumed["actions"])


def test_bad_inputs_are_named():
    e = Car()
    s0 = torch.tensor([[5.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="horizon"):
        TrajectoryOptimizer(e.step, e.cost, s0, 0, e.low, e.high)
    with pytest.raises(ValueError, match="horizon"):
        MPC(e.step, e.cost, 0, e.low, e.high)
    with pytest.raises(ValueError, match="outside the valid set"):
        e.check_state(s0)
    with pytest.raises(ValueError, match="NaN"):
        TrajectoryOptimizer(e.step, e.cost, s0 * math.nan, 3, e.low, e.high)
    with pytest.raises(ValueError, match="outside the valid set"):
        Truck().check_state(torch.tensor([[1.0, 0.0, 2.0, 0.0]], dtype=torch.float64))  # jack-knifed
    with pytest.raises(ValueError, match="shape"):
        Truck().check_state(torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="lobe"):
        ControlledLorenz(lobe=0)


def test_blow_up_during_planning_names_the_step_and_keeps_the_plan():
    e = PointMass()

    def explosive(s, a):  # blows up once the state passes 1e3
        s2 = e.step(s, a) * 30.0
        return torch.where(s2.abs() > 1e6, torch.full_like(s2, math.inf), s2)

    s0 = torch.ones(2, 4, dtype=torch.float64)
    tr = TrajectoryOptimizer(explosive, e.cost, s0, 10, e.low, e.high)
    with pytest.raises(PlanBlowUpError, match="step 4") as info:
        tr.solve(2)
    assert info.value.step == 4
    assert torch.equal(info.value.plan, tr.actions)
    assert bool(torch.isfinite(tr.actions).all())


def test_disagreement_cost_is_the_weighted_ensemble_variance_along_the_plan():
    from difflens.control import Ensemble, ForwardModel, disagreement_cost

    ens = Ensemble([ForwardModel(4, 2, hidden=8, generator=torch.Generator().manual_seed(k)) for k in range(3)])
    states = torch.randn(2, 6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    actions = torch.rand(2, 5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        preds = torch.stack([m(states[:, :-1], actions) for m in ens.members])
        expected = 3.0 * preds.var(0, unbiased=False).sum(-1).sum(1)
        assert torch.allclose(disagreement_cost(ens, 3.0)(states, actions), expected)
    with pytest.raises(ValueError, match="weight"):
        disagreement_cost(ens, -1.0)
