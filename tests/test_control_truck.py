"""difflens.control: truck kinematics, learned forward models, policies trained through them, the study."""

import json
import math

import pytest
import torch

from difflens.control import (Ensemble, ForwardModel, ModelFit, Policy, Truck, TruckTraining, evaluate_truck,
                              random_transitions, unroll_truck)
from difflens.engine import Optimization

from interrupts import InterruptAt


def test_straight_backing_moves_the_rear_by_the_speed():
    e = Truck()
    s = torch.tensor([[3.0, 0.5, 0.0, 0.0]], dtype=torch.float64)
    s2 = e.step(s, torch.zeros(1, 1, dtype=torch.float64))
    assert torch.allclose(s2, torch.tensor([[3.0 - e.speed, 0.5, 0.0, 0.0]], dtype=torch.float64))
    # steering turns the cab, which then pulls the trailer round; the hitch stays rigid
    s3 = e.step(s, torch.full((1, 1), 0.5, dtype=torch.float64))
    assert float(s3[0, 2]) == pytest.approx(-math.atan(e.speed * math.sin(0.5) / e.cab_length))
    # actions beyond +-70 degrees are clipped
    assert torch.equal(e.step(s, torch.full((1, 1), 3.0, dtype=torch.float64)),
                       e.step(s, torch.full((1, 1), math.radians(70), dtype=torch.float64)))


def test_unroll_stops_at_the_wall_interpolated_and_flags_jackknifes():
    e = Truck()
    s0 = torch.tensor([[1.05, 0.2, 0.0, 0.0], [2.0, 0.0, 1.2, 0.0]], dtype=torch.float64)
    out = unroll_truck(e, e.step, s0, lambda s: torch.zeros(s.shape[0], 1, dtype=s.dtype), 30)
    assert bool(out["reached_wall"][0]) and float(out["final"][0, 0]) == pytest.approx(0.0, abs=1e-12)
    assert float(out["final"][0, 1]) == pytest.approx(0.2)
    assert int(out["steps"][0]) == 11
    # a cab at 69 degrees to the trailer, steering straight, folds further: a jack-knife, not a docking
    assert bool(out["jackknifed"][1]) and not bool(out["reached_wall"][1])
    ok = e.success(out["final"], out["reached_wall"], out["jackknifed"])
    assert ok.tolist() == [False, False]  # 0.2 trailer lengths off the target


def test_start_poses_are_valid_and_inside_their_region():
    e = Truck()
    s = e.sample_starts(500, torch.Generator().manual_seed(0))
    e.check_state(s)
    assert float(s[:, 0].min()) >= 1.5 and float(s[:, 0].max()) <= 4.0
    assert float((s[:, 2] - s[:, 3]).abs().max()) <= math.radians(45) + 1e-12
    out = e.sample_starts(500, torch.Generator().manual_seed(0), region="outside")
    assert float(out[:, 0].min()) >= 4.0 and float(out[:, 1].abs().min()) >= 2.0
    with pytest.raises(ValueError, match="region"):
        e.sample_starts(3, region="moon")


def _transitions(n=3000, seed=0):
    e = Truck()
    g = torch.Generator().manual_seed(seed)
    s = e.sample_starts(n, g)
    return e, random_transitions(e.step, s, e.low, e.high, g)


def test_forward_model_learns_the_truck_and_resumes_exactly(tmp_path):
    e, (S, A, S2) = _transitions()
    make = lambda: ModelFit(ForwardModel(4, 1, hidden=32, generator=torch.Generator().manual_seed(1)), S, A, S2,
                            batch_size=128, generator=torch.Generator().manual_seed(2))
    full = make()
    before = full.held_out_error()
    full.fit(60)
    assert isinstance(full.optimization, Optimization)
    assert full.held_out_error() < 0.5 * before
    ck = tmp_path / "fit.pt"
    part = make()
    part.optimization.configure(callbacks=[InterruptAt(25)])
    try:
        part.fit(60, checkpoint_path=ck)
    except KeyboardInterrupt:
        pass
    assert part.optimization.iteration < 60
    resumed = make().fit(60, checkpoint_path=ck, resume=True)
    for p, q in zip(full.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)


def test_ensemble_disagrees_more_off_the_training_data():
    e, (S, A, S2) = _transitions(2000)
    ens = Ensemble([ForwardModel(4, 1, hidden=32, generator=torch.Generator().manual_seed(k)) for k in range(3)])
    ModelFit(ens, S, A, S2, batch_size=128, generator=torch.Generator().manual_seed(5)).fit(80)
    far = S.clone()
    far[:, 0] += 20.0  # 20 trailer lengths beyond any training state
    with torch.no_grad():
        assert float(ens.disagreement(far, A).mean()) > 10 * float(ens.disagreement(S, A).mean())


def test_model_fit_rejects_mismatched_transitions():
    e, (S, A, S2) = _transitions(100)
    with pytest.raises(ValueError, match="transitions"):
        ModelFit(ForwardModel(4, 1), S, A[:50], S2)
    with pytest.raises(ValueError, match="NaN"):
        ModelFit(ForwardModel(4, 1), S * math.nan, A, S2)


def test_policy_trained_through_the_truck_improves_docking_and_resumes_exactly(tmp_path):
    e = Truck()
    starts = e.sample_starts(64, torch.Generator().manual_seed(9))
    scale = torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64)
    make = lambda: TruckTraining(e, Policy(4, e.low, e.high, hidden=16, scale=scale,
                                           generator=torch.Generator().manual_seed(3)),
                                 batch_size=16, lr=1e-2, max_steps=60, ramp=20,
                                 generator=torch.Generator().manual_seed(4))
    tr = make()
    err0 = evaluate_truck(e, tr.policy, starts, max_steps=60)["position_error"].mean()
    tr.train(20)
    err1 = evaluate_truck(e, tr.policy, starts, max_steps=60)["position_error"].mean()
    assert float(err1) < float(err0)
    ck = tmp_path / "policy.pt"
    part = make()
    part.train(8, checkpoint_path=ck)
    resumed = make()
    resumed.optimization.configure(checkpoint_path=ck)
    resumed.optimization.load(ck)
    resumed.train(12, checkpoint_path=ck)
    for p, q in zip(tr.policy.parameters(), resumed.policy.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="outside the valid set"):
        evaluate_truck(e, tr.policy, torch.tensor([[-1.0, 0.0, 0.0, 0.0]], dtype=torch.float64))


TINY = {"lqr_horizon": 5, "fit_steps": 20, "transitions": 500, "train_steps": 3, "ramp": 3, "eval_starts": 8, "mpc_starts": 1,
        "mpc_horizon": 3, "mpc_steps": 3, "lorenz_starts": 2, "lorenz_time": 1.1, "lorenz_fit_steps": 5,
        "lorenz_horizon": 2, "target_train_steps": 2, "ensemble_members": 2, "ensemble_fit_steps": 3,
        "ensemble_transitions": 200}


def test_tiny_control_study_writes_its_metrics(tmp_path):
    from difflens.studies import run_study

    run_study("control", tmp_path / "out", seed=0, settings=TINY, verbose=False)
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    for key in ("truck_docking_success_rate", "truck_final_position_error", "truck_final_angle_error_deg",
                "mpc_vs_reference_cost_ratio", "lqr_gain_error", "lorenz_control_success_rate_emulator"):
        assert key in m
    assert m["lqr_gain_error"] < 1e-8 and m["status"] == "complete"
    for key in ("truck_target_docking_success_rate", "truck_target_docking_success_rate_at_origin",
                "planning_inside_region_plain", "planning_inside_region_penalised", "planning_model_error_plain",
                "planning_model_error_penalised"):
        assert 0 <= m[key] < math.inf
