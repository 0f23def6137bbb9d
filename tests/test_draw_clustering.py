"""IDEC pieces: Student-t assignments, sharpened targets, the KL loss, and the fine-tuning phase."""

import numpy as np
import pytest
import torch

from difflens.data import load_digits
from difflens.draw import (
    ClusterHead,
    DrawConfig,
    DrawingAutoencoder,
    DrawTrainer,
    GestureDecoder,
    MLPEncoder,
    run_experiment,
    soft_assignments,
    target_distribution,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("alpha", [1.0, 2.5])
def test_soft_assignments_match_the_formula(alpha):
    z, mu = RNG.standard_normal((7, 3)), RNG.standard_normal((4, 3))
    d2 = ((z[:, None] - mu[None]) ** 2).sum(-1)
    k = (1 + d2 / alpha) ** (-(alpha + 1) / 2)
    expected = k / k.sum(1, keepdims=True)
    q = soft_assignments(torch.tensor(z), torch.tensor(mu), alpha)
    np.testing.assert_allclose(q.numpy(), expected, rtol=1e-12)
    # far from every centre the kernel underflows in a naive form; the log form still sums to 1
    far = soft_assignments(torch.tensor(z) * 1e6, torch.tensor(mu), alpha)
    np.testing.assert_allclose(far.sum(1).numpy(), 1.0, rtol=1e-12)


def test_target_distribution_sharpens_and_balances():
    q = torch.softmax(torch.tensor(RNG.standard_normal((50, 5))), 1)
    p = target_distribution(q)
    w = q.numpy() ** 2 / q.numpy().sum(0)
    np.testing.assert_allclose(p.numpy(), w / w.sum(1, keepdims=True), rtol=1e-12)
    entropy = lambda a: -(a * torch.log(a)).sum(1)
    assert bool((entropy(p) <= entropy(q) + 1e-12).all())
    # a large cluster is down-weighted against a small one at equal confidence
    q2 = torch.tensor([[0.5, 0.5]] + [[0.9, 0.1]] * 9, dtype=torch.float64)
    assert float(target_distribution(q2)[0, 1]) > 0.5
    with pytest.raises(ValueError, match="q must have shape"):
        target_distribution(torch.rand(3))


def test_cluster_loss_is_kl_and_its_gradient_is_exact():
    codes = torch.tensor(RNG.standard_normal((12, 3)), requires_grad=True)
    head = ClusterHead(torch.tensor(RNG.standard_normal((3, 3))))
    with pytest.raises(RuntimeError, match="update_targets"):
        head.loss(codes, torch.arange(12))
    head.update_targets(codes.detach() + 0.3)
    idx = torch.tensor([0, 3, 5, 11])
    p, q = head.targets[idx].numpy(), head.assignments(codes[idx]).detach().numpy()
    expected = (p * np.log(p / q)).sum(1).mean()
    np.testing.assert_allclose(float(head.loss(codes[idx], idx).detach()), expected, rtol=1e-12)
    centres = head.centres.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(soft_assignments, (codes[idx], centres))
    fn = lambda z: head.loss(z, idx)
    assert torch.autograd.gradcheck(fn, (codes[idx],))


def test_from_kmeans_equals_sklearn_and_checks_input():
    from sklearn.cluster import KMeans

    blobs = torch.cat([torch.randn(30, 2, generator=torch.Generator().manual_seed(i), dtype=torch.float64) * 0.1 + c
                       for i, c in enumerate([-3.0, 0.0, 3.0])])
    head = ClusterHead.from_kmeans(blobs, 3)  # no generator: random_state 0
    ref = KMeans(3, n_init=20, random_state=0).fit(blobs.numpy()).cluster_centers_
    np.testing.assert_allclose(head.centres.detach().numpy(), ref, rtol=1e-12)
    labels = head.predict(blobs)
    assert sorted(torch.bincount(labels).tolist()) == [30, 30, 30]
    with pytest.raises(ValueError, match="n_clusters"):
        ClusterHead.from_kmeans(blobs, 1)
    with pytest.raises(ValueError, match="centres"):
        ClusterHead(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="share D"):
        soft_assignments(torch.zeros(3, 2), torch.zeros(4, 3))


def _tuner(x, seed=1):
    dec = GestureDecoder(n_points=6)
    model = DrawingAutoencoder(MLPEncoder(dec.n_raw, hidden=(16,), generator=torch.Generator().manual_seed(0)), dec)
    with torch.no_grad():
        head = ClusterHead.from_kmeans(model.code(x), 4)
    return DrawTrainer(model, x, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(seed),
                       smoothness=1e-3, cluster=head, cluster_weight=0.5)


def test_cluster_phase_resumes_exactly_and_updates_targets(tmp_path):
    x = load_digits(split="train")[0][:64]
    straight = _tuner(x)
    first = straight.cluster.targets.clone()
    straight.run(3)
    assert not torch.equal(first, straight.cluster.targets)  # recomputed after each epoch
    np.testing.assert_allclose(straight.cluster.targets.sum(1).numpy(), 1.0, rtol=1e-6)
    part = _tuner(x).run(1.5)
    part.save(tmp_path / "c.pt")
    resumed = _tuner(x, seed=7)  # other batch order until the checkpoint restores the sampler
    resumed.load(tmp_path / "c.pt")
    resumed.run(1.5)
    for p, q in zip(straight.optimization.params, resumed.optimization.params):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    torch.testing.assert_close(straight.cluster.targets, resumed.cluster.targets, rtol=0, atol=0)
    with pytest.raises(ValueError, match="cluster_weight"):
        DrawTrainer(straight.model, x, cluster=straight.cluster, cluster_weight=-1.0)


def test_run_experiment_with_idec_phase():
    xtr, ytr = load_digits(split="train")
    xte, yte = load_digits(split="test")
    cfg = DrawConfig(n_markers=6, hidden=(32,), epochs=2, cluster_weight=0.1, cluster_epochs=2, kmeans_seeds=(0,))
    res = run_experiment((xtr[:256], ytr[:256]), (xte[:100], yte[:100]), cfg, torch.Generator().manual_seed(0))
    m = res.metrics
    for key in ("kmeans_accuracy_codes_autoencoder", "hungarian_accuracy_codes_autoencoder", "test_mse_autoencoder",
                "kmeans_accuracy_head", "hungarian_accuracy_head", "probe_accuracy_codes_autoencoder"):
        assert 0 <= m[key] <= 1 or key == "test_mse_autoencoder"
    assert m["cluster_epochs"] == 2.0
    assert m["train_seconds"] >= res.trainer.seconds + res.cluster_trainer.seconds - 1e-9
    assert res.cluster_trainer.cluster.n_clusters == 10
    assert "codes_autoencoder" in res.clustering
    # the copy kept from before fine-tuning differs from the fine-tuned model
    diff = [float((a - b).abs().max().detach()) for a, b in zip(res.autoencoder.parameters(), res.model.parameters())]
    assert max(diff) > 0
    with pytest.raises(ValueError, match="cluster_weight"):
        DrawConfig(cluster_weight=-0.1)
    with pytest.raises(ValueError, match="n_clusters"):
        DrawConfig(n_clusters=1)
