"""InfoNCE and its uses: the Matryoshka within-domain loss and the cross-domain prefix losses (and the MSE ablation)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..embeddings import truncate_normalize
from .step import StepEmbeddings


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

    def step_loss(self, e: StepEmbeddings) -> torch.Tensor:
        return self(e.anchor, e.positive, e.negative)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        losses = []
        for d in self.matryoshka_dims:
            keys = torch.cat([truncate_normalize(positive, d), truncate_normalize(negative, d)])  # (2B, d)
            losses.append(info_nce(truncate_normalize(anchor, d), keys, self.temperature))
        return torch.stack(losses).mean()


class PrefixInfoNCE(nn.Module):
    """Symmetric InfoNCE on the first prefix_dim dims: dating->hiring and hiring->dating."""

    needs_pairs = True  # a step's cross-domain pairs

    def step_loss(self, e: StepEmbeddings) -> torch.Tensor:
        return self(e.cross_dating, e.cross_hiring)

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

    needs_pairs = True

    def step_loss(self, e: StepEmbeddings) -> torch.Tensor:
        return self(e.cross_dating, e.cross_hiring)

    def __init__(self, prefix_dim: int):
        super().__init__()
        self.prefix_dim = prefix_dim

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        a = truncate_normalize(anchor, self.prefix_dim)  # (B, K)
        p = truncate_normalize(positive, self.prefix_dim)  # (B, K)
        return (a - p).pow(2).sum(dim=1).mean()
