"""Clustering-aware fine-tuning of codes: the soft assignments and sharpened targets of DEC / IDEC.

Deep embedded clustering (Xie, Girshick & Farhadi, 2016) keeps ``K`` centres
``mu_j`` in code space and scores each code ``z_i`` with a Student-t kernel,

    q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha + 1) / 2),  normalised over j,

then sharpens those assignments into targets that favour confident members
and balance cluster sizes,

    p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'),   f_j = sum_i q_ij,

and trains the encoder and the centres on ``KL(P || Q)``. Improved DEC (Guo,
Gao, Liu & Yin, 2017) keeps the reconstruction loss beside it so the codes stay
faithful to the images; that is how :class:`~difflens.draw.train.DrawTrainer`
uses :class:`ClusterHead`: the codes remain drawing commands that reproduce
the digit, and they are pulled towards ``K`` centres.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["ClusterHead", "soft_assignments", "target_distribution"]


def soft_assignments(codes: Tensor, centres: Tensor, alpha: float = 1.0) -> Tensor:
    """Student-t soft assignments ``q`` ``(N, K)`` of codes ``(N, D)`` to centres ``(K, D)``; rows sum to 1."""
    if codes.ndim != 2 or centres.ndim != 2 or codes.shape[1] != centres.shape[1]:
        raise ValueError(f"codes (N, D) and centres (K, D) must share D, got {tuple(codes.shape)} and "
                         f"{tuple(centres.shape)}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    d2 = ((codes[:, None, :] - centres[None, :, :]) ** 2).sum(-1)  # (N, K), exact (cdist's mm form is not)
    logits = -0.5 * (alpha + 1.0) * torch.log1p(d2 / alpha)
    return torch.softmax(logits, dim=1)


def target_distribution(q: Tensor) -> Tensor:
    """DEC's sharpened targets ``p`` ``(N, K)`` from soft assignments ``q`` ``(N, K)``; rows sum to 1."""
    if q.ndim != 2:
        raise ValueError(f"q must have shape (N, K), got {tuple(q.shape)}")
    weight = q ** 2 / q.sum(0, keepdim=True).clamp_min(torch.finfo(q.dtype).tiny)
    return weight / weight.sum(1, keepdim=True)


class ClusterHead(nn.Module):
    """``K`` learnable centres ``(K, D)`` in code space with DEC's assignments and KL loss.

    ``targets`` is a buffer ``(N, K)`` for the training set's sharpened targets
    (:meth:`update_targets`), so a checkpoint of the module holds them too.
    Build one with :meth:`from_kmeans` on the codes of the training images.
    """

    def __init__(self, centres: Tensor, alpha: float = 1.0):
        super().__init__()
        if centres.ndim != 2 or len(centres) < 2:
            raise ValueError(f"centres must have shape (K >= 2, D), got {tuple(centres.shape)}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.centres = nn.Parameter(centres.detach().clone())
        self.alpha = float(alpha)
        self.register_buffer("targets", torch.empty(0, len(centres), dtype=centres.dtype,
                                                    device=centres.device))

    @property
    def n_clusters(self) -> int:
        return len(self.centres)

    @classmethod
    def from_kmeans(cls, codes: Tensor, n_clusters: int, generator: torch.Generator | None = None,
                    n_init: int = 20, alpha: float = 1.0) -> ClusterHead:
        """Centres from scikit-learn k-means on ``codes`` ``(N, D)`` (its seed drawn from ``generator``)."""
        from sklearn.cluster import KMeans

        if codes.ndim != 2 or not 2 <= int(n_clusters) <= len(codes):
            raise ValueError(f"need codes (N, D) and 2 <= n_clusters <= N, got {tuple(codes.shape)} and "
                             f"{n_clusters}")
        seed = int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)) if generator is not None else 0
        x = codes.detach().to("cpu", torch.float64).numpy()
        km = KMeans(n_clusters=int(n_clusters), n_init=int(n_init), random_state=seed).fit(x)
        centres = torch.as_tensor(np.asarray(km.cluster_centers_), dtype=codes.dtype, device=codes.device)
        return cls(centres, alpha=alpha)

    def assignments(self, codes: Tensor) -> Tensor:
        """Soft assignments ``(N, K)`` of ``codes`` ``(N, D)``."""
        return soft_assignments(codes, self.centres, self.alpha)

    def predict(self, codes: Tensor) -> Tensor:
        """Hard cluster index ``(N,)`` of each code."""
        with torch.no_grad():
            return self.assignments(codes).argmax(1)

    def update_targets(self, codes: Tensor) -> Tensor:
        """Recompute and store the sharpened targets of the training codes ``(N, D)``; returns them."""
        with torch.no_grad():
            self.targets = target_distribution(self.assignments(codes.detach())).detach()
        return self.targets

    def loss(self, codes: Tensor, index: Tensor) -> Tensor:
        """``KL(P[index] || Q(codes))`` averaged over the batch: ``codes`` ``(B, D)``, ``index`` ``(B,)``."""
        if self.targets.numel() == 0:
            raise RuntimeError("ClusterHead.loss needs targets: call update_targets(train_codes) first")
        q = self.assignments(codes)
        p = self.targets[index.to(self.targets.device)]
        return (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(1).mean()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the targets buffer's size is known only once a training set has been seen
        key = prefix + "targets"
        if key in state_dict:
            self.targets = torch.empty_like(state_dict[key], device=self.centres.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
