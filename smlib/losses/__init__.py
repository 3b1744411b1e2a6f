"""Losses on embedding tensors (never on models): one InfoNCE underneath all of them.

- infonce.py: info_nce, MatryoshkaInfoNCE (within-domain), PrefixInfoNCE and PrefixMSE (cross-domain)
- adversarial.py: gradient reversal and DomainAdversarialLoss
- step.py: StepEmbeddings, what a training step hands every term
- combined.py: the term registry (register_loss_term), CombinedLoss and build_loss
"""
from .adversarial import DomainAdversarialLoss, grad_reverse
from .combined import LOSS_TERMS, CombinedLoss, build_loss, loss_part_names, loss_weight_keys, register_loss_term, term_weight
from .infonce import MatryoshkaInfoNCE, PrefixInfoNCE, PrefixMSE, info_nce
from .step import StepEmbeddings

__all__ = ["LOSS_TERMS", "CombinedLoss", "DomainAdversarialLoss", "MatryoshkaInfoNCE", "PrefixInfoNCE", "PrefixMSE",
           "StepEmbeddings", "build_loss", "grad_reverse", "info_nce", "loss_part_names", "loss_weight_keys",
           "register_loss_term", "term_weight"]
