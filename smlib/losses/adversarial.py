"""The domain-adversarial term: a domain classifier on the identity dims behind gradient reversal (Ganin et al.)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..embeddings import truncate_normalize
from .step import StepEmbeddings


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

    needs_pairs = True  # it tells a step's cross-domain dating texts from their hiring texts
    diagnostic_names = ("domain_accuracy",)

    def step_loss(self, e: StepEmbeddings) -> torch.Tensor:
        return self(*e.domain_batch())

    def diagnostics(self, e: StepEmbeddings) -> dict[str, torch.Tensor]:
        """The classifier's batch accuracy (reported beside the losses, not part of the total)."""
        return {"domain_accuracy": self.accuracy(*e.domain_batch())}

    def forward(self, embeddings: torch.Tensor, domain_labels: torch.Tensor) -> torch.Tensor:
        x = grad_reverse(truncate_normalize(embeddings, self.input_dim), self.grl_lambda)  # (N, K)
        logits = self.classifier(x).squeeze(-1)  # (N,)
        return F.binary_cross_entropy_with_logits(logits, domain_labels.float())

    @torch.no_grad()
    def accuracy(self, embeddings: torch.Tensor, domain_labels: torch.Tensor) -> torch.Tensor:
        """Share of embeddings whose domain the classifier gets right (0.5 = it cannot tell)."""
        logits = self.classifier(truncate_normalize(embeddings, self.input_dim)).squeeze(-1)  # (N,)
        return ((logits > 0).float() == domain_labels.float()).float().mean()
