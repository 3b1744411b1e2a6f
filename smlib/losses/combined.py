"""The loss of a condition: the registered terms its params use, each with its weight, summed.

A term is one class registered with @register_loss_term: its `name` (the history column), the `weight_key`
of its weight among the params' `loss` keys (a new key is accepted by the params once registered; its
default_weight applies where a params file leaves it out), and `from_params(params)`, which builds the
module computing it (anything with step_loss(StepEmbeddings) -> scalar) or returns None where the condition
does not use it. A module with `needs_pairs = True` is skipped in steps without a cross-domain batch; one with
`diagnostics(StepEmbeddings) -> {name: value}` (and their `diagnostic_names`) reports those beside the losses,
not in the total.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .adversarial import DomainAdversarialLoss
from .infonce import MatryoshkaInfoNCE, PrefixInfoNCE, PrefixMSE
from .step import StepEmbeddings

LOSS_TERMS: dict[str, type] = {}  # name -> the registered term class, in registration order (= history column order)


def register_loss_term(cls: type) -> type:
    """Register a loss term class (see the module docstring); returns it unchanged."""
    for attr in ("name", "weight_key", "from_params"):
        if not hasattr(cls, attr):
            raise TypeError(f"loss term {cls.__name__} lacks {attr!r}")
    if cls.name in ("total",) or cls.name in LOSS_TERMS and LOSS_TERMS[cls.name] is not cls:
        raise ValueError(f"a loss term named {cls.name!r} is already registered")
    LOSS_TERMS[cls.name] = cls
    return cls


def loss_weight_keys() -> dict[str, float]:
    """Every registered term's weight key under `loss`, with its default weight."""
    return {t.weight_key: float(getattr(t, "default_weight", 0.0)) for t in LOSS_TERMS.values()}


def term_weight(params, term: type) -> float:
    """A term's weight in these params (its default where the params do not set it)."""
    return float(getattr(params.loss, term.weight_key, getattr(term, "default_weight", 0.0)))


def loss_part_names() -> tuple[str, ...]:
    """Every column a loss can write into history.csv, in order: the registered terms, then the total."""
    return (*LOSS_TERMS, "total")


@register_loss_term
class WithinTerm(MatryoshkaInfoNCE):
    """Within-domain: Matryoshka InfoNCE of the step's triplets at every Matryoshka dim."""

    name, weight_key = "within", "within_weight"

    @classmethod
    def from_params(cls, params):
        return cls(params.model.matryoshka_dims, params.loss.temperature)


@register_loss_term
class CrossTerm:
    """Cross-domain on the identity space: symmetric InfoNCE (loss.cross_domain infonce), MSE (mse), or none."""

    name, weight_key = "cross", "cross_weight"

    @classmethod
    def from_params(cls, params):
        dim, lp = params.model.identity_dim, params.loss
        return {"infonce": lambda: PrefixInfoNCE(dim, lp.temperature), "mse": lambda: PrefixMSE(dim),
                "none": lambda: None}[lp.cross_domain]()


@register_loss_term
class AdversarialTerm:
    """Domain-adversarial on the identity space (architecture adversarial): a classifier behind gradient reversal."""

    name, weight_key = "adversarial", "adversarial_weight"

    @classmethod
    def from_params(cls, params):
        mp = params.model
        if mp.architecture != "adversarial":
            return None
        return DomainAdversarialLoss(mp.identity_dim, mp.adversarial_hidden_dim, params.loss.grl_lambda)


class CombinedLoss(nn.Module):
    """The weighted sum of a condition's loss terms; returns each term by name, the total, and diagnostics.

    Each term is a submodule under its name (loss.within, loss.cross, ...; a registered term the condition does
    not use reads as None), so the state dict of a checkpoint names its parts.
    """

    def __init__(self, terms: dict[str, tuple[nn.Module, float]]):
        super().__init__()
        self.weights: dict[str, float] = {}
        for name, (module, weight) in terms.items():
            self._modules[name] = module  # add_module would refuse: __getattr__ answers None for registered names
            self.weights[name] = float(weight)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in LOSS_TERMS:
                return None
            raise

    @property
    def part_names(self) -> tuple[str, ...]:
        """The loss columns this condition writes: its terms, then the total."""
        return (*self.weights, "total")

    @property
    def reported_names(self) -> tuple[str, ...]:
        """Every column forward returns: the loss parts, then the terms' diagnostics (diagnostic_names)."""
        return (*self.part_names, *(n for t in self.weights for n in getattr(getattr(self, t), "diagnostic_names", ())))

    def forward(self, anchor, positive=None, negative=None, cross_dating=None, cross_hiring=None) -> dict[str, torch.Tensor]:
        """A StepEmbeddings, or its tensors: anchor/positive/negative task embeddings (B, D), cross_* identity (P, K)."""
        e = anchor if isinstance(anchor, StepEmbeddings) else StepEmbeddings(anchor, positive, negative, cross_dating,
                                                                              cross_hiring)
        used = [name for name in self.weights if e.has_pairs or not getattr(getattr(self, name), "needs_pairs", False)]
        parts = {name: getattr(self, name).step_loss(e) for name in used}
        parts["total"] = sum(self.weights[name] * value for name, value in parts.items())
        for name in used:
            report = getattr(getattr(self, name), "diagnostics", None)
            if report is not None:
                parts |= report(e)
        return parts


def build_loss(params) -> CombinedLoss:
    """The condition's CombinedLoss: every registered term its params use, with its weight."""
    terms = {}
    for name, term in LOSS_TERMS.items():
        module = term.from_params(params)
        if module is not None:
            terms[name] = (module, term_weight(params, term))
    return CombinedLoss(terms)
