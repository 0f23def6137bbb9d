"""The marker renderer against the per-marker formula, its joins, gradients and the gesture maths."""

from __future__ import annotations

import math

import pytest
import torch

from difflens.draw.renderer import (
    JOINS,
    MarkerRenderer,
    gesture_positions,
    join_markers,
    render_markers,
)


def _direct(positions, sizes, intensities, h, w):
    """Per-marker images by the textbook formula, one pixel at a time: (P, H, W)."""
    out = torch.zeros(len(sizes), h, w, dtype=torch.float64)
    for p in range(len(sizes)):
        x, y = float(positions[p, 0]), float(positions[p, 1])
        s, a = float(sizes[p]), float(intensities[p])
        for i in range(h):
            for j in range(w):
                d2 = (j + 0.5 - x) ** 2 + (i + 0.5 - y) ** 2
                out[p, i, j] = a * math.exp(-d2 / (2 * s * s))
    return out


@pytest.fixture
def markers():
    g = torch.Generator().manual_seed(3)
    h, w = 9, 11
    pos = torch.rand(4, 2, generator=g, dtype=torch.float64) * torch.tensor([w, h], dtype=torch.float64)
    size = 0.5 + 2 * torch.rand(4, generator=g, dtype=torch.float64)
    amp = 0.2 + 0.7 * torch.rand(4, generator=g, dtype=torch.float64)
    return pos, size, amp, h, w


def test_values_match_direct_formula(markers):
    pos, size, amp, h, w = markers
    per = _direct(pos, size, amp, h, w)
    torch.testing.assert_close(render_markers(pos, size, amp, (h, w), "max"), per.max(0).values)
    torch.testing.assert_close(render_markers(pos, size, amp, (h, w), "sum"), per.sum(0))
    torch.testing.assert_close(render_markers(pos, size, amp, (h, w), "softor"), 1 - (1 - per).prod(0))
    tau = 0.1
    lse = tau * (torch.logsumexp(per / tau, 0) - math.log(len(size)))
    torch.testing.assert_close(render_markers(pos, size, amp, (h, w), "logsumexp", tau), lse)


def test_single_marker_all_joins_agree_except_logsumexp_bias(markers):
    pos, size, amp, h, w = markers
    one = [render_markers(pos[:1], size[:1], amp[:1], (h, w), j) for j in ("max", "softor", "sum")]
    torch.testing.assert_close(one[0], one[1])
    torch.testing.assert_close(one[0], one[2])
    # logsumexp of one marker is the identity too
    torch.testing.assert_close(render_markers(pos[:1], size[:1], amp[:1], (h, w), "logsumexp"), one[0])


def test_join_ordering(markers):
    pos, size, amp, h, w = markers
    mx, so, sm = (render_markers(pos, size, amp, (h, w), j) for j in ("max", "softor", "sum"))
    lse = render_markers(pos, size, amp, (h, w), "logsumexp", 0.05)
    mean = _direct(pos, size, amp, h, w).mean(0)
    assert bool((mx <= so + 1e-12).all()) and bool((so <= sm + 1e-12).all())
    assert bool((lse <= mx + 1e-12).all()) and bool((lse >= mean - 1e-12).all())
    # a colder logsumexp is closer to the max
    cold = render_markers(pos, size, amp, (h, w), "logsumexp", 1e-3)
    assert (cold - mx).abs().max() < (lse - mx).abs().max()
    assert (cold - mx).abs().max() < 1e-3 * math.log(4) + 1e-9


def test_max_join_gradient_reaches_only_winner_softor_reaches_all():
    pos = torch.tensor([[3.0, 3.0], [12.0, 12.0]], dtype=torch.float64, requires_grad=True)
    size = torch.tensor([1.0, 1.0], dtype=torch.float64)
    # loss at one pixel close to marker 0: under max, marker 1 gets no gradient there
    img = render_markers(pos, size, None, 16, "max")
    img[3, 4].backward()
    assert pos.grad[0].abs().sum() > 0 and pos.grad[1].abs().sum() == 0
    pos.grad = None
    render_markers(pos, size, None, 16, "softor")[3, 4].backward()
    assert pos.grad[1].abs().sum() > 0


def test_batch_shapes_and_broadcast():
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(2, 3, 5, 2, generator=g) * 20
    size = torch.ones(2, 3, 5)
    for join in JOINS:
        assert render_markers(pos, size, None, (20, 24), join).shape == (2, 3, 20, 24)
    # one shared set of sizes broadcasts over the batch
    a = render_markers(pos, torch.ones(5), None, (20, 24))
    torch.testing.assert_close(a, render_markers(pos, size, None, (20, 24)))
    # batched result equals item-by-item
    torch.testing.assert_close(a[1, 2], render_markers(pos[1, 2], torch.ones(5), None, (20, 24)))
    r = MarkerRenderer((20, 24), join="softor")
    torch.testing.assert_close(r(pos, size), render_markers(pos, size, None, (20, 24), "softor"))
    assert list(r.parameters()) == []


@pytest.mark.parametrize("join", JOINS)
def test_gradcheck_float64(join):
    g = torch.Generator().manual_seed(1)
    pos = (torch.rand(2, 3, 2, generator=g, dtype=torch.float64) * 7).requires_grad_()
    size = (0.8 + torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    amp = (0.2 + 0.6 * torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, s, a: render_markers(p, s, a, (6, 7), join, 0.2),
                                    (pos, size, amp))


def test_finite_differences_of_a_loss():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(10, 10, generator=g, dtype=torch.float64)
    pos = torch.rand(3, 2, generator=g, dtype=torch.float64) * 10
    size = torch.full((3,), 1.5, dtype=torch.float64)

    def loss(p):
        return ((render_markers(p, size, None, 10, "softor") - target) ** 2).mean()

    p = pos.clone().requires_grad_()
    loss(p).backward()
    eps = 1e-6
    for k in range(3):
        for d in range(2):
            e = torch.zeros_like(pos)
            e[k, d] = eps
            fd = (loss(pos + e) - loss(pos - e)) / (2 * eps)
            assert abs(float(fd) - float(p.grad[k, d])) < 1e-7


def test_gesture_positions_start_cumsum_and_step_bound():
    g = torch.Generator().manual_seed(4)
    vel = torch.tanh(3 * torch.randn(5, 12, 2, generator=g, dtype=torch.float64))
    start = (4.0, 14.0)
    pos = gesture_positions(vel, start, max_step=2.5)
    assert pos.shape == (5, 13, 2)
    torch.testing.assert_close(pos[:, 0], torch.tensor(start, dtype=torch.float64).expand(5, 2))
    # explicit loop: p_k = p_{k-1} + 2.5 v_{k-1}
    expect = [torch.tensor(start, dtype=torch.float64).expand(5, 2)]
    for k in range(12):
        expect.append(expect[-1] + 2.5 * vel[:, k])
    torch.testing.assert_close(pos, torch.stack(expect, 1))
    assert float((pos[:, 1:] - pos[:, :-1]).abs().max()) <= 2.5
    # zero velocity stays at the start point; per-item start points broadcast
    still = gesture_positions(torch.zeros(2, 4, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 1.0)
    torch.testing.assert_close(still, torch.tensor([[1.0, 2.0], [3.0, 4.0]])[:, None].expand(2, 5, 2))


def test_bad_inputs_are_rejected():
    pos, size = torch.zeros(3, 2), torch.ones(3)
    with pytest.raises(ValueError, match="positions"):
        render_markers(torch.zeros(3, 3), size)
    with pytest.raises(ValueError, match="sizes"):
        render_markers(pos, torch.ones(4))
    with pytest.raises(ValueError, match="intensities"):
        render_markers(pos, size, torch.ones(2))
    with pytest.raises(ValueError, match="join"):
        render_markers(pos, size, join="min")
    with pytest.raises(ValueError, match="canvas"):
        render_markers(pos, size, shape=(0, 4))
    with pytest.raises(ValueError, match="max_step"):
        gesture_positions(torch.zeros(2, 2), (0.0, 0.0), 0.0)
    with pytest.raises(ValueError, match="temperature"):
        render_markers(pos, size, join="logsumexp", temperature=0.0)
    with pytest.raises(ValueError, match="join"):
        join_markers(torch.zeros(2, 3, 3), "median")
