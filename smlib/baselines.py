"""Lexical baselines for cross-domain matching: TF-IDF similarity, rank metrics, and the identifiability ceiling."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from .data.schema import PersonSchema
from .data.texts import revealed_signature
from .metrics import mean_both_ways, top1_both_ways

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


def identifiability_ceiling(people: Sequence[PersonSchema], variant: str) -> float:
    """Best top-1 any matcher can reach from the shared attributes: mean of 1 / (people sharing one's signature)."""
    signatures = [revealed_signature(p, variant) for p in people]
    counts = Counter(signatures)
    return float(np.mean([1.0 / counts[s] for s in signatures]))


DENSE_LIMIT = 50_000_000  # a sparse matrix of at most this many cells is densified once, not batch by batch


def _features(x):
    """Features as kept for training: a dense float32 tensor; a scipy sparse matrix too when it has at most
    DENSE_LIMIT cells (the same values, converted once instead of once per batch), else sparse CSR."""
    if hasattr(x, "tocsr"):
        if x.shape[0] * x.shape[1] <= DENSE_LIMIT:
            return torch.from_numpy(np.asarray(x.toarray(), dtype=np.float32))
        return x.tocsr().astype(np.float32)
    return torch.as_tensor(np.asarray(x, dtype=np.float32))


def _dense_rows(x, idx=None) -> torch.Tensor:
    """Rows idx (all if None) as a dense float32 tensor (B, F); sparse rows are densified only for the batch."""
    if isinstance(x, torch.Tensor):
        return x if idx is None else x[torch.as_tensor(idx)]
    rows = x if idx is None else x[np.asarray(idx)]
    return torch.from_numpy(np.asarray(rows.toarray(), dtype=np.float32))


class PairMap(torch.nn.Module):
    """One linear map per domain onto a shared out_dim space: the trained reference a prefix must beat."""

    def __init__(self, dating_dim: int, hiring_dim: int, out_dim: int):
        super().__init__()
        self.dating = torch.nn.Linear(dating_dim, out_dim)
        self.hiring = torch.nn.Linear(hiring_dim, out_dim)

    def forward(self, dating: torch.Tensor, hiring: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dating(dating), self.hiring(hiring)  # (B, K) each


def train_pair_map(dating, hiring, out_dim: int = 64, temperature: float = 0.07, lr: float = 1e-2,
                   epochs: int = 30, batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0,
                   on_epoch=None) -> PairMap:
    """Fit a linear map per domain with the symmetric prefix InfoNCE on row-aligned pairs (row i = one person).

    Features may be dense arrays or scipy sparse matrices (TF-IDF; each batch is densified on its own, so wide
    vocabularies stay cheap); nothing about the task is in them.
    on_epoch(epochs_done, model) is called after each epoch (model selection on held-out rows).
    """
    from .losses import PrefixInfoNCE

    d, h = _features(dating), _features(hiring)
    if d.shape[0] != h.shape[0] or d.shape[0] < 2:
        raise ValueError(f"need >= 2 row-aligned pairs, got {d.shape[0]} dating and {h.shape[0]} hiring rows")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PairMap(d.shape[1], h.shape[1], out_dim)
    loss_fn = PrefixInfoNCE(out_dim, temperature)
    try:  # the fused kernel is ~4x faster on a wide TF-IDF map's weights (same update rule)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = d.shape[0]
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen).numpy()
        for start in range(0, n - 1, batch_size):
            idx = np.sort(order[start:start + batch_size])
            if len(idx) < 2:
                continue
            zd, zh = model(_dense_rows(d, idx), _dense_rows(h, idx))  # (B, K) each
            loss = loss_fn(zd, zh)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if on_epoch is not None:
            model.eval()
            on_epoch(epoch + 1, model)
            model.train()
    return model.eval()


@torch.no_grad()
def pair_map_similarity(model: PairMap, dating, hiring) -> np.ndarray:
    """Cosine similarities (N_dating, N_hiring) of two domains' features under a trained PairMap."""
    zd, zh = model(_dense_rows(_features(dating)), _dense_rows(_features(hiring)))
    zd, zh = torch.nn.functional.normalize(zd, dim=1), torch.nn.functional.normalize(zh, dim=1)
    return (zd @ zh.T).numpy()


def _mean_top1(sim: np.ndarray) -> float:
    """Top-1 of the diagonal match, mean of both directions (rows -> columns and back)."""
    return mean_both_ways(*(t.mean().item() for t in top1_both_ways(torch.as_tensor(sim, dtype=torch.float64))))


# The selection grids (scores on held-out training people pick from them; the record keeps every score).
SELECTION_LRS = (1e-3, 3e-3, 1e-2, 3e-2)  # dense features (frozen_probe)
SELECTION_EPOCHS = (10, 20, 40, 80)
TFIDF_SELECTION_LRS = (1e-3, 3e-3, 1e-2)  # TF-IDF maps overfit at higher lr (benchmarks/trained_reference_grid.py)
SELECTION_MIN_DFS = (1, 3, 10, 30)


def _holdout_split(n: int, holdout_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random slice of n training rows held out for model selection, and the rest (both sorted)."""
    n_hold = max(2, int(round(n * holdout_fraction)))
    if n - n_hold < 2:
        raise ValueError(f"{n} training rows are too few to hold out {n_hold} for model selection")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:n_hold]), np.sort(order[n_hold:])


def _holdout_grid(dating, hiring, hold, fit, lrs, checkpoints, seed, dev=None, **kw) -> dict[str, dict[str, float]]:
    """Held-out top-1 (mean of both directions) after each checkpoint epoch, for every lr: {lr: {epochs: top1}}.

    dev: (dating, hiring) rows of the dev slice (smlib.selection) to score on instead; then every row given fits."""
    scores: dict[str, dict[str, float]] = {}
    score_d, score_h = dev if dev is not None else (dating[hold], hiring[hold])
    fit_d, fit_h = (dating, hiring) if dev is not None else (dating[fit], hiring[fit])
    for lr in lrs:
        row: dict[str, float] = {}

        def score(done: int, model: PairMap, row=row) -> None:
            if done in checkpoints:
                row[str(done)] = _mean_top1(pair_map_similarity(model, score_d, score_h))

        train_pair_map(fit_d, fit_h, lr=lr, epochs=checkpoints[-1], seed=seed, on_epoch=score, **kw)
        scores[str(lr)] = row
    return scores


def _held_out(n: int, holdout_fraction: float, seed: int, n_dev: int | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(held-out rows, fit rows, how the choice was scored): a slice of the training rows, or the dev slice's n_dev."""
    if n_dev is not None:
        return np.arange(0), np.arange(n), {"chosen_on": "dev slice", "n_fit": n, "n_holdout": n_dev}
    hold, fit = _holdout_split(n, holdout_fraction, seed)
    return hold, fit, {"n_fit": int(len(fit)), "n_holdout": int(len(hold))}  # (the record's keys before dev slices)


def _best(grids: dict[str, dict[str, dict[str, float]]]) -> tuple[str, float, int, float]:
    """The (feature set, lr, epochs, score) with the best held-out score, the first in grid order on ties."""
    best = ("", 0.0, 0, -1.0)
    for name, grid in grids.items():
        for lr, row in grid.items():
            for e, score in row.items():
                if score > best[3]:
                    best = (name, float(lr), int(e), score)
    return best


def select_pair_map(dating, hiring, lrs: Sequence[float] = SELECTION_LRS, epochs: Sequence[int] = SELECTION_EPOCHS,
                    holdout_fraction: float = 0.15, seed: int = 0, dev=None, **kw) -> tuple[PairMap, dict]:
    """Choose lr and epochs on a held-out slice of the training rows, then refit on all of them.

    The held-out slice is a seeded random 15% of the rows given (never validation people). Every lr trains
    once for max(epochs) epochs on the rest, scored (top-1, mean of both directions) after each listed epoch;
    the best (lr, epochs), the first in grid order on ties, is refit on every row. Returns the model and the
    record of the choice (the whole grid of held-out scores included). dev: (dating, hiring) rows of the dev slice
    to choose on instead (smlib.selection); every training row then fits the grid.
    """
    hold, fit, how = _held_out(int(dating.shape[0]), holdout_fraction, seed, None if dev is None else int(dev[0].shape[0]))
    checkpoints = sorted(set(int(e) for e in epochs))
    grid = _holdout_grid(dating, hiring, hold, fit, lrs, checkpoints, seed, dev, **kw)
    _, lr, n_epochs, score = _best({"": grid})
    model = train_pair_map(dating, hiring, lr=lr, epochs=n_epochs, seed=seed, **kw)
    return model, {"lr": lr, "epochs": n_epochs, "holdout_top1": score, **how, "holdout_top1_by_lr_and_epochs": grid}


def select_tfidf_map(dating_texts: Sequence[str], hiring_texts: Sequence[str], analyzer: str,
                     ngram_range: tuple[int, int], min_dfs: Sequence[int] = SELECTION_MIN_DFS,
                     lrs: Sequence[float] = TFIDF_SELECTION_LRS, epochs: Sequence[int] = SELECTION_EPOCHS,
                     holdout_fraction: float = 0.15, seed: int = 0, dev_texts=None, **kw):
    """A TF-IDF vocabulary and a PairMap on it, both chosen on held-out training rows (or on dev_texts, the dev
    slice's (dating, hiring) texts, which the vocabulary is not fit on).

    The texts are the training people's, row i of each domain one person. For each min_df (documents a term
    must occur in, over both domains' training texts; fit without labels) the lr x epochs grid of
    select_pair_map runs on the same held-out slice; min_df prunes the terms only one or two people use, which
    a map can only memorise. A min_df that prunes every term is skipped. The best (min_df, lr, epochs) is refit
    on every row. Returns (vectorizer, model, record of the choice).
    """
    n = len(dating_texts)
    if len(hiring_texts) != n:
        raise ValueError(f"need row-aligned texts, got {n} dating and {len(hiring_texts)} hiring")
    hold, fit, how = _held_out(n, holdout_fraction, seed, None if dev_texts is None else len(dev_texts[0]))
    checkpoints = sorted(set(int(e) for e in epochs))
    corpus = list(dating_texts) + list(hiring_texts)
    vectorizers, grids = {}, {}
    for min_df in min_dfs:
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=tuple(ngram_range), min_df=int(min_df))
        try:
            both = vec.fit_transform(corpus).tocsr()  # (2N, V): dating rows, then hiring rows
        except ValueError:  # "After pruning, no terms remain": too few documents for this min_df
            continue
        d, h = both[:n], both[n:]
        vectorizers[str(min_df)] = (vec, d, h)
        dev = None if dev_texts is None else tuple(vec.transform(t).tocsr() for t in dev_texts)
        grids[str(min_df)] = _holdout_grid(d, h, hold, fit, lrs, checkpoints, seed, dev, **kw)
    if not grids:
        raise ValueError(f"no min_df in {tuple(min_dfs)} leaves any term in {len(corpus)} training texts")
    min_df, lr, n_epochs, score = _best(grids)
    vec, d, h = vectorizers[min_df]
    model = train_pair_map(d, h, lr=lr, epochs=n_epochs, seed=seed, **kw)
    return vec, model, {"min_df": int(min_df), "lr": lr, "epochs": n_epochs, "holdout_top1": score, **how,
                        "features": int(len(vec.vocabulary_)), "holdout_top1_by_min_df_lr_and_epochs": grids}
