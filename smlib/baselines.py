"""Lexical baselines for cross-domain matching: TF-IDF similarity, rank metrics, and the identifiability ceiling."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from .data.schema import PersonSchema
from .data.texts import revealed_signature
from .metrics import ranks_from_similarities

DEFAULT_NGRAM_RANGES = {"word": (1, 2), "char_wb": (3, 5)}


def tfidf_similarity(dating_texts: Sequence[str], hiring_texts: Sequence[str], analyzer: str = "char_wb",
                     ngram_range: tuple[int, int] | None = None) -> np.ndarray:
    """Cosine similarities (N_dating, N_hiring) of TF-IDF vectors fit on both sides' texts."""
    if analyzer not in DEFAULT_NGRAM_RANGES:
        raise ValueError(f"unknown analyzer {analyzer!r}; expected one of {tuple(DEFAULT_NGRAM_RANGES)}")
    vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range or DEFAULT_NGRAM_RANGES[analyzer])
    vectorizer.fit(list(dating_texts) + list(hiring_texts))
    dating = vectorizer.transform(dating_texts)  # (N, V), rows L2-normalised
    hiring = vectorizer.transform(hiring_texts)  # (N, V)
    return (dating @ hiring.T).toarray()


def true_match_ranks(sim: np.ndarray) -> np.ndarray:
    """1-based rank of the diagonal entry in each row; ties count against it."""
    sims = torch.as_tensor(np.asarray(sim, dtype=float))  # (N, N)
    return ranks_from_similarities(sims, torch.arange(sims.shape[0])).numpy()


def top1_and_mrr(sim: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and mean reciprocal rank of the true match in each row."""
    ranks = true_match_ranks(sim)
    return float(np.mean(ranks == 1)), float(np.mean(1.0 / ranks))


def identifiability_ceiling(people: Sequence[PersonSchema], variant: str) -> float:
    """Best top-1 any matcher can reach from the shared attributes: mean of 1 / (people sharing one's signature)."""
    signatures = [revealed_signature(p, variant) for p in people]
    counts = Counter(signatures)
    return float(np.mean([1.0 / counts[s] for s in signatures]))


def _as_tensor(x) -> torch.Tensor:
    """A dense tensor, or a scipy sparse matrix as a torch sparse COO tensor (float32)."""
    if hasattr(x, "tocoo"):
        x = x.tocoo().astype(np.float32)
        indices = torch.from_numpy(np.vstack([x.row, x.col]).astype(np.int64))
        return torch.sparse_coo_tensor(indices, torch.from_numpy(x.data), size=x.shape, check_invariants=True).coalesce()
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


class PairMap(torch.nn.Module):
    """One linear map per domain onto a shared out_dim space: the trained reference a prefix must beat."""

    def __init__(self, dating_dim: int, hiring_dim: int, out_dim: int):
        super().__init__()
        self.dating = torch.nn.Linear(dating_dim, out_dim)
        self.hiring = torch.nn.Linear(hiring_dim, out_dim)

    @staticmethod
    def _apply(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
        out = torch.sparse.mm(x, layer.weight.T) if x.layout != torch.strided else x @ layer.weight.T  # (N, K)
        return out + layer.bias

    def forward(self, dating: torch.Tensor, hiring: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._apply(self.dating, dating), self._apply(self.hiring, hiring)


def train_pair_map(dating, hiring, out_dim: int = 64, temperature: float = 0.07, lr: float = 1e-2,
                   epochs: int = 30, batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0,
                   on_epoch=None) -> PairMap:
    """Fit a linear map per domain with the symmetric prefix InfoNCE on row-aligned pairs (row i = one person).

    Features may be dense arrays or scipy sparse matrices (TF-IDF); nothing about the task is in them.
    on_epoch(epochs_done, model) is called after each epoch (model selection on held-out rows).
    """
    from .losses import PrefixInfoNCE

    d, h = _as_tensor(dating), _as_tensor(hiring)
    if d.shape[0] != h.shape[0] or d.shape[0] < 2:
        raise ValueError(f"need >= 2 row-aligned pairs, got {d.shape[0]} dating and {h.shape[0]} hiring rows")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PairMap(d.shape[1], h.shape[1], out_dim)
    loss_fn = PrefixInfoNCE(out_dim, temperature)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = d.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - 1, batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:
                continue
            zd, zh = model(_rows(d, idx), _rows(h, idx))  # (B, K) each
            loss = loss_fn(zd, zh)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if on_epoch is not None:
            model.eval()
            on_epoch(epoch + 1, model)
            model.train()
    return model.eval()


def _rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows idx of a dense or sparse COO tensor (sparse stays sparse)."""
    return x[idx] if x.layout == torch.strided else x.index_select(0, idx)


@torch.no_grad()
def pair_map_similarity(model: PairMap, dating, hiring) -> np.ndarray:
    """Cosine similarities (N_dating, N_hiring) of two domains' features under a trained PairMap."""
    zd, zh = model(_as_tensor(dating), _as_tensor(hiring))
    zd, zh = torch.nn.functional.normalize(zd, dim=1), torch.nn.functional.normalize(zh, dim=1)
    return (zd @ zh.T).numpy()


def _mean_top1(sim: np.ndarray) -> float:
    """Top-1 of the diagonal match, mean of both directions (rows -> columns and back)."""
    return (top1_and_mrr(sim)[0] + top1_and_mrr(sim.T)[0]) / 2


def select_pair_map(dating, hiring, lrs: Sequence[float] = (3e-3, 1e-2, 3e-2),
                    epochs: Sequence[int] = (5, 10, 20, 40), holdout_fraction: float = 0.15, seed: int = 0,
                    **kw) -> tuple[PairMap, dict]:
    """Choose lr and epochs on a held-out slice of the training rows, then refit on all of them.

    The held-out slice is a seeded random 15% of the rows given (never validation people). Every lr trains
    once for max(epochs) epochs on the rest, scored (top-1, mean of both directions) after each listed epoch;
    the best (lr, epochs), the first in grid order on ties, is refit on every row. Returns the model and the
    record of the choice (the whole grid of held-out scores included).
    """
    n = np.asarray(dating.shape)[0]
    n_hold = max(2, int(round(n * holdout_fraction)))
    if n - n_hold < 2:
        raise ValueError(f"{n} training rows are too few to hold out {n_hold} for model selection")
    order = np.random.default_rng(seed).permutation(n)
    hold, fit = np.sort(order[:n_hold]), np.sort(order[n_hold:])
    checkpoints = sorted(set(int(e) for e in epochs))
    scores: dict[str, dict[str, float]] = {}
    for lr in lrs:
        row: dict[str, float] = {}

        def score(done: int, model: PairMap, row=row) -> None:
            if done in checkpoints:
                row[str(done)] = _mean_top1(pair_map_similarity(model, dating[hold], hiring[hold]))

        train_pair_map(dating[fit], hiring[fit], lr=lr, epochs=checkpoints[-1], seed=seed, on_epoch=score, **kw)
        scores[str(lr)] = row
    best_lr, best_epochs, best = lrs[0], checkpoints[0], -1.0
    for lr in lrs:
        for e in checkpoints:
            if scores[str(lr)][str(e)] > best:
                best_lr, best_epochs, best = lr, e, scores[str(lr)][str(e)]
    model = train_pair_map(dating, hiring, lr=best_lr, epochs=best_epochs, seed=seed, **kw)
    return model, {"lr": best_lr, "epochs": best_epochs, "holdout_top1": best, "n_fit": int(len(fit)),
                   "n_holdout": int(n_hold), "holdout_top1_by_lr_and_epochs": scores}
