"""Losses on embedding tensors (never on models): one InfoNCE underneath all of them."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .embeddings import truncate_normalize


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of query i against all keys, where keys[i] is its positive (both L2-normalised)."""
    logits = query @ keys.T / temperature  # (B, M), M >= B
    return F.cross_entropy(logits, torch.arange(query.shape[0], device=query.device))


class MatryoshkaInfoNCE(nn.Module):
    """InfoNCE at every Matryoshka dim with in-batch negatives, averaged over dims."""

    def __init__(self, matryoshka_dims: list[int], temperature: float):
        super().__init__()
        self.matryoshka_dims = list(matryoshka_dims)
        self.temperature = temperature

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        losses = []
        for d in self.matryoshka_dims:
            keys = torch.cat([truncate_normalize(positive, d), truncate_normalize(negative, d)])  # (2B, d)
            losses.append(info_nce(truncate_normalize(anchor, d), keys, self.temperature))
        return torch.stack(losses).mean()


class PrefixInfoNCE(nn.Module):
    """Symmetric InfoNCE on the first prefix_dim dims: dating->hiring and hiring->dating."""

    def __init__(self, prefix_dim: int, temperature: float):
        super().__init__()
        self.prefix_dim = prefix_dim
        self.temperature = temperature

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        a = truncate_normalize(anchor, self.prefix_dim)  # (B, K)
        p = truncate_normalize(positive, self.prefix_dim)  # (B, K)
        return 0.5 * (info_nce(a, p, self.temperature) + info_nce(p, a, self.temperature))


class PrefixMSE(nn.Module):
    """Squared distance between normalised prefixes, summed over the K dims and averaged over pairs.

    Pulls pairs together and pushes nothing apart. Summing over dims (not averaging over B x K, as
    F.mse_loss does) keeps its gradient on the scale of the InfoNCE terms, so v3_mse is a real ablation.
    """

    def __init__(self, prefix_dim: int):
        super().__init__()
        self.prefix_dim = prefix_dim

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        a = truncate_normalize(anchor, self.prefix_dim)  # (B, K)
        p = truncate_normalize(positive, self.prefix_dim)  # (B, K)
        return (a - p).pow(2).sum(dim=1).mean()


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


def grad_reverse(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by -lam on the way back."""
    return _GradReverse.apply(x, lam)


class DomainAdversarialLoss(nn.Module):
    """A domain classifier on the prefix dims behind gradient reversal: it learns, the encoder unlearns."""

    def __init__(self, input_dim: int, hidden_dim: int, grl_lambda: float):
        super().__init__()
        self.input_dim = input_dim
        self.grl_lambda = grl_lambda
        self.classifier = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1))

    def forward(self, embeddings: torch.Tensor, domain_labels: torch.Tensor) -> torch.Tensor:
        x = grad_reverse(truncate_normalize(embeddings, self.input_dim), self.grl_lambda)  # (N, K)
        logits = self.classifier(x).squeeze(-1)  # (N,)
        return F.binary_cross_entropy_with_logits(logits, domain_labels.float())

    @torch.no_grad()
    def accuracy(self, embeddings: torch.Tensor, domain_labels: torch.Tensor) -> torch.Tensor:
        """Share of embeddings whose domain the classifier gets right (0.5 = it cannot tell)."""
        logits = self.classifier(truncate_normalize(embeddings, self.input_dim)).squeeze(-1)  # (N,)
        return ((logits > 0).float() == domain_labels.float()).float().mean()


class CombinedLoss(nn.Module):
    """Weighted sum of the within-domain, cross-domain and adversarial terms; returns each by name.

    For the adversarial condition it also reports the domain classifier's batch accuracy
    ("domain_accuracy", not part of the total).
    """

    def __init__(self, within: nn.Module, cross: nn.Module | None, adversarial: nn.Module | None,
                 within_weight: float, cross_weight: float, adversarial_weight: float):
        super().__init__()
        self.within, self.cross, self.adversarial = within, cross, adversarial
        self.weights = {"within": within_weight, "cross": cross_weight, "adversarial": adversarial_weight}

    def forward(self, anchor, positive, negative, cross_dating=None, cross_hiring=None) -> dict[str, torch.Tensor]:
        """anchor/positive/negative: task embeddings (B, D); cross_*: identity embeddings (B, K)."""
        parts = {"within": self.within(anchor, positive, negative)}
        if self.cross is not None and cross_dating is not None:
            parts["cross"] = self.cross(cross_dating, cross_hiring)
            if self.adversarial is not None:
                both = torch.cat([cross_dating, cross_hiring])  # (2B, K)
                labels = torch.cat([torch.zeros(len(cross_dating)), torch.ones(len(cross_hiring))]).to(both.device)
                parts["adversarial"] = self.adversarial(both, labels)
        parts["total"] = sum(self.weights[name] * value for name, value in parts.items())
        if "adversarial" in parts:
            parts["domain_accuracy"] = self.adversarial.accuracy(both, labels)
        return parts


def build_loss(params) -> CombinedLoss:
    """The condition's CombinedLoss from its params."""
    lp, mp = params.loss, params.model
    identity_dim = mp.identity_dim
    within = MatryoshkaInfoNCE(mp.matryoshka_dims, lp.temperature)
    cross = {"infonce": lambda: PrefixInfoNCE(identity_dim, lp.temperature),
             "mse": lambda: PrefixMSE(identity_dim), "none": lambda: None}[lp.cross_domain]()
    adversarial = (DomainAdversarialLoss(identity_dim, mp.adversarial_hidden_dim, lp.grl_lambda)
                   if mp.architecture == "adversarial" else None)
    return CombinedLoss(within, cross, adversarial, lp.within_weight, lp.cross_weight, lp.adversarial_weight)
