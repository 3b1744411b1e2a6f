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
