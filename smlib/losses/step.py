"""What a training step hands every loss term: its embeddings, laid out by role."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class StepEmbeddings:
    """One step's embeddings: the triplets' task embeddings and, with a cross-domain batch, the pairs' identity
    embeddings (row i of cross_dating and cross_hiring is one person)."""

    anchor: torch.Tensor  # (B, D)
    positive: torch.Tensor  # (B, D)
    negative: torch.Tensor  # (B, D)
    cross_dating: torch.Tensor | None = None  # (P, K)
    cross_hiring: torch.Tensor | None = None  # (P, K)

    @property
    def has_pairs(self) -> bool:
        return self.cross_dating is not None and self.cross_hiring is not None

    def domain_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The pairs' identity embeddings stacked (2P, K) with their domain labels (0 dating, 1 hiring)."""
        both = torch.cat([self.cross_dating, self.cross_hiring])  # (2P, K)
        labels = torch.cat([torch.zeros(len(self.cross_dating)), torch.ones(len(self.cross_hiring))]).to(both.device)
        return both, labels
