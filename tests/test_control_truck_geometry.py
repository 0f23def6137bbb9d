"""The truck's kinematics against Nguyen & Widrow's discrete equations, and its invariants."""

import math

import pytest
import torch

from difflens.control import ClippedAdam, Truck, unroll_truck


def _nguyen_widrow_step(s, phi, r, dc, dt):
    """The published atan2 form, written out with plain floats (independent of the tensor code)."""
    x, y, tc, tt = s
    A = r * math.cos(phi)
    B = A * math.cos(tc - tt)
    C = A * math.sin(tc - tt)
    return (x - B * math.cos(tt), y - B * math.sin(tt),
            math.atan2(dc * math.sin(tc) - r * math.cos(tc) * math.sin(phi), dc * math.cos(tc) + r * math.sin(tc) * math.sin(phi)),
            math.atan2(dt * math.sin(tt) - C * math.cos(tt), dt * math.cos(tt) + C * math.sin(tt)))


def test_step_equals_the_published_atan2_equations():
    e = Truck()
    g = torch.Generator().manual_seed(0)
    s = e.sample_starts(50, g)
    phi = (torch.rand(50, 1, generator=g, dtype=torch.float64) * 2 - 1) * math.radians(70)
    ours = e.step(s, phi)
    for b in range(50):
        ref = _nguyen_widrow_step(s[b].tolist(), float(phi[b]), e.speed, e.cab_length, e.trailer_length)
        assert ours[b, :2].tolist() == pytest.approx(ref[:2], abs=1e-14)
        for k in (2, 3):  # angles agree modulo 2 pi (ours are unwrapped)
            d = float(ours[b, k]) - ref[k]
            assert abs(math.remainder(d, 2 * math.pi)) < 1e-13


def test_mirror_symmetry():
    """Reflecting y, both angles and the steering gives the reflected next state."""
    e = Truck()
    g = torch.Generator().manual_seed(1)
    s = e.sample_starts(20, g)
    phi = (torch.rand(20, 1, generator=g, dtype=torch.float64) * 2 - 1)
    m = torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64)
    assert torch.allclose(e.step(s * m, -phi), e.step(s, phi) * m, atol=1e-14)


def test_backing_with_straight_wheels_folds_the_hitch_until_it_jackknifes():
    """Backing is unstable: with the wheels straight a small hitch angle grows every step."""
    e = Truck()
    s = torch.tensor([[30.0, 0.0, 0.2, 0.0]], dtype=torch.float64)
    zero = torch.zeros(1, 1, dtype=torch.float64)
    hitch = [0.2]
    for _ in range(200):
        s = e.step(s, zero)
        hitch.append(float(s[0, 2] - s[0, 3]))
        if bool(e.jackknifed(s).any()):
            break
    assert all(b > a for a, b in zip(hitch, hitch[1:]))
    assert bool(e.jackknifed(s).all()) and hitch[-1] > math.pi / 2


def test_jackknife_and_wall_define_the_valid_set():
    e = Truck()
    s = torch.tensor([[1.0, 0.0, math.radians(89.0), 0.0], [1.0, 0.0, math.radians(91.0), 0.0],
                      [1.0, 0.0, -math.radians(91.0), 0.0], [-0.01, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert e.jackknifed(s).tolist() == [False, True, True, False]
    assert e.valid(s).tolist() == [True, False, False, False]
    e.check_state(s[:1])
    with pytest.raises(ValueError, match="jack-knifed"):
        e.check_state(s[1:2])
    with pytest.raises(ValueError, match="outside the valid set"):
        e.check_state(s[3:])


def test_wall_contact_is_interpolated_on_the_wall_and_freezes_the_state():
    e = Truck()
    s0 = torch.tensor([[0.95, 0.3, 0.3, 0.25]], dtype=torch.float64)
    out = unroll_truck(e, e.step, s0, lambda s: torch.full((s.shape[0], 1), 0.2, dtype=s.dtype), 40)
    assert bool(out["reached_wall"][0]) and not bool(out["jackknifed"][0])
    assert float(out["final"][0, 0]) == pytest.approx(0.0, abs=1e-12)
    n = int(out["steps"][0])
    assert torch.equal(out["states"][0, n], out["final"][0])  # held at the contact pose afterwards
    assert torch.equal(out["states"][0, -1], out["final"][0])


def test_clipped_adam_bounds_the_step():
    w = torch.zeros(3, requires_grad=True)
    opt = ClippedAdam([w], lr=0.1, max_norm=1e-3)

    def closure():
        opt.zero_grad()
        loss = 1e6 * (w - 1).pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert float(torch.linalg.vector_norm(w.grad)) <= 1e-3 * (1 + 1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        ClippedAdam([w], max_norm=0.0)


def test_target_conditioned_policy_shapes_gradients_and_errors():
    from difflens.control import Policy, TruckTraining, evaluate_truck, with_target

    e = Truck()
    pol = Policy(5, e.low, e.high, hidden=8, generator=torch.Generator().manual_seed(0))
    s = e.sample_starts(6, torch.Generator().manual_seed(1))
    ty = torch.linspace(-1, 1, 6, dtype=torch.float64).requires_grad_(True)
    a = with_target(pol, ty)(s)
    assert a.shape == (6, 1) and bool((a.abs() <= e.high).all())
    (g,) = torch.autograd.grad(a.sum(), ty)
    assert bool((g != 0).all())  # the action depends on where the dock is
    # the same state with a different dock gets a different action
    assert not torch.allclose(with_target(pol, ty.detach())(s), with_target(pol, -ty.detach())(s))
    with pytest.raises(ValueError, match="target_y"):
        with_target(pol, ty[:, None])
    with pytest.raises(ValueError, match="5 inputs"):
        TruckTraining(e, Policy(4, e.low, e.high, hidden=8), target_range=(-1, 1))
    with pytest.raises(ValueError, match="target_range"):
        TruckTraining(e, pol)
    with pytest.raises(ValueError, match="lo <= hi"):
        TruckTraining(e, pol, target_range=(1, -1))
    with pytest.raises(ValueError, match="target_y must have shape"):
        evaluate_truck(e, pol, s, target_y=ty.detach()[:3])


def test_target_conditioned_training_measures_the_error_to_each_dock():
    """A truck backed straight from (x, y_t) with a zero policy docks exactly at its own target y_t."""
    from difflens.control import Policy, TruckTraining, evaluate_truck

    e = Truck()
    s = torch.tensor([[1.0, 0.7, 0.0, 0.0], [1.0, -0.4, 0.0, 0.0]], dtype=torch.float64)
    straight = lambda x: torch.zeros(x.shape[0], 1, dtype=x.dtype)
    hit = evaluate_truck(e, straight, s, target_y=torch.tensor([0.7, -0.4], dtype=torch.float64))
    miss = evaluate_truck(e, straight, s)
    assert hit["success"].tolist() == [True, True] and float(hit["position_error"].max()) < 1e-12
    assert miss["success"].tolist() == [False, False]
    pol = Policy(5, e.low, e.high, hidden=8, generator=torch.Generator().manual_seed(0))
    tr = TruckTraining(e, pol, batch_size=8, max_steps=40, target_range=(-1.0, 1.0), clip_grad=1.0, root=True,
                       generator=torch.Generator().manual_seed(2))
    tr.train(3)
    assert tr.optimization.iteration == 3 and bool(torch.isfinite(tr.optimization.history.loss).all())
