"""Retrieval, triplet, cross-domain and representation metrics: torch tensors in, Python floats out.

Similarity is cosine throughout: every function slices first, then L2-normalises.
Rows of a dating and a hiring matrix are aligned by person (row i of both is the same person).
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .embeddings import check_dim, check_matrix, check_pair, truncate_normalize  # noqa: F401 - truncate_normalize re-exported
from .invariance import CKA_ROWS, cka_biased, cka_debiased  # noqa: F401 - CKA_ROWS: part of this API


def _as_list(ids) -> list:
    """Ids (list, tuple, numpy array or tensor) as a plain Python list."""
    if isinstance(ids, (torch.Tensor, np.ndarray)):
        return ids.tolist()
    return list(ids)


def _match_indices(query_ids, gallery_ids, n_query: int, n_gallery: int) -> list[int]:
    """Gallery row index of each query's true match; ValueError on bad lengths, duplicates or misses."""
    query_ids, gallery_ids = _as_list(query_ids), _as_list(gallery_ids)
    if len(query_ids) != n_query:
        raise ValueError(f"query has {n_query} rows but {len(query_ids)} query_ids")
    if len(gallery_ids) != n_gallery:
        raise ValueError(f"gallery has {n_gallery} rows but {len(gallery_ids)} gallery_ids")
    row_of = {gid: row for row, gid in enumerate(gallery_ids)}
    if len(row_of) != len(gallery_ids):
        raise ValueError("gallery_ids contain duplicates: each query needs exactly one true match")
    missing = [qid for qid in query_ids if qid not in row_of]
    if missing:
        raise ValueError(f"{len(missing)} query ids have no match in the gallery, e.g. {missing[:5]}")
    return [row_of[qid] for qid in query_ids]


def cosine_similarities(query, gallery, dim: int | None = None) -> torch.Tensor:
    """Cosine similarity (float64) of every query row to every gallery row, on the first `dim` columns.

    Every similarity of embeddings that a rank is read from comes from here (the reference matchers' come saved,
    as float32 matrices in reference_sims.npz). It is float64 so that a ranking does not depend on the CPU:
    float32 matrix products sum in a different order on AVX2, AVX512 and AMX kernels (~1e-7 apart), enough to
    swap a near-tie and move a recorded recall when a record is recomputed on another machine.
    """
    query, gallery = torch.as_tensor(query), torch.as_tensor(gallery)
    check_matrix("query", query)
    check_matrix("gallery", gallery)
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query width {query.shape[1]} != gallery width {gallery.shape[1]}")
    q = truncate_normalize(query.double(), dim)  # (N, d)
    g = truncate_normalize(gallery.double(), dim).to(q.device)  # (M, d)
    return q @ g.T  # (N, M)


def ranks_from_similarities(sims: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target column; ties are counted against the target."""
    true = sims.gather(1, targets[:, None])  # (N, 1)
    greater = (sims > true).sum(dim=1)  # (N,)
    equal_others = (sims == true).sum(dim=1) - 1  # (N,)
    return 1 + greater + equal_others  # (N,)


@dataclass
class MatchSummary:
    """Where each query's true match stands in the gallery, from one (N, M) similarity matrix.

    Every retrieval number (top-1, MRR, recall@k, margin) and the rank histograms and hardest misses are
    read off this one summary, so they all share ranks_from_similarities' pessimistic tie rule.
    """

    sims: torch.Tensor  # (N, M)
    targets: torch.Tensor  # (N,) the true match's column
    ranks: torch.Tensor  # (N,) 1-based rank of the true match

    @property
    def top1(self) -> torch.Tensor:
        """(N,) 1.0 where the true match ranks first."""
        return (self.ranks == 1).double()

    @property
    def reciprocal_rank(self) -> torch.Tensor:
        return 1.0 / self.ranks.double()  # (N,)

    def recall(self, k: int) -> torch.Tensor:
        """(N,) 1.0 where the true match is among the top k."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        return (self.ranks <= k).double()

    @property
    def true_similarity(self) -> torch.Tensor:
        return self.sims.gather(1, self.targets[:, None]).squeeze(1)  # (N,)

    @property
    def best_wrong(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarity, column) of each query's most similar wrong gallery row."""
        if self.sims.shape[1] < 2:
            raise ValueError("a wrong match needs at least two gallery rows")
        wrong = self.sims.scatter(1, self.targets[:, None], float("-inf"))  # (N, M)
        best = wrong.max(dim=1)
        return best.values, best.indices  # (N,), (N,)

    @property
    def margin(self) -> torch.Tensor:
        """(N,) similarity to the true match minus the best similarity to a wrong one."""
        return self.true_similarity - self.best_wrong[0]


def match_summary(sims, targets=None) -> MatchSummary:
    """The MatchSummary of a similarity matrix (tensor or array); targets default to the diagonal (row i <-> column i)."""
    sims = torch.as_tensor(sims)
    if sims.dim() != 2:
        raise ValueError(f"similarities must be 2-d (queries, gallery), got shape {tuple(sims.shape)}")
    targets = torch.arange(sims.shape[0], device=sims.device) if targets is None else targets
    return MatchSummary(sims, targets, ranks_from_similarities(sims, targets))


DIRECTIONS = ("d2h", "h2d")  # dating -> hiring (rows of a dating x hiring matrix), hiring -> dating (columns)


def both_ways(sims):
    """A dating x hiring similarity matrix read in both DIRECTIONS: (itself, its transpose)."""
    return sims, sims.T


def top1_both_ways(sims) -> tuple[torch.Tensor, torch.Tensor]:
    """Per person (float64, 0 or 1): is the true match first, dating -> hiring and hiring -> dating. The one
    top-1 of training's checks, the reference maps' selection, the paired analyses and the recorded metrics."""
    return tuple(match_summary(s).top1 for s in both_ways(torch.as_tensor(sims)))


def mean_both_ways(d2h, h2d):
    """The headline of any two-direction score: the mean of dating -> hiring and hiring -> dating."""
    return (d2h + h2d) / 2


def summarize_matches(query: torch.Tensor, gallery: torch.Tensor, query_ids, gallery_ids,
                      dim: int | None = None) -> MatchSummary:
    """The MatchSummary of cosine retrieval from query rows to the gallery row with the same id (first dim columns)."""
    sims = cosine_similarities(query, gallery, dim)  # (N, M)
    targets = torch.tensor(_match_indices(query_ids, gallery_ids, query.shape[0], gallery.shape[0]), device=sims.device)
    return match_summary(sims, targets)


def top1_and_mrr(sims) -> tuple[float, float]:
    """Top-1 accuracy and mean reciprocal rank of the diagonal match in each row of a similarity matrix."""
    s = match_summary(torch.as_tensor(sims, dtype=torch.float64) if not torch.is_tensor(sims) else sims)
    return s.top1.mean().item(), s.reciprocal_rank.mean().item()


def true_match_ranks(query: torch.Tensor, gallery: torch.Tensor, query_ids, gallery_ids) -> torch.Tensor:
    """1-based rank of each query's true match (same id) in the gallery, ties counted pessimistically."""
    return summarize_matches(query, gallery, query_ids, gallery_ids).ranks  # (N,)


def per_query_reciprocal_rank(
    query: torch.Tensor, gallery: torch.Tensor, query_ids, gallery_ids
) -> torch.Tensor:
    """1 / rank of each query's true match."""
    return summarize_matches(query, gallery, query_ids, gallery_ids).reciprocal_rank  # (N,)


def recall_at_k(query: torch.Tensor, gallery: torch.Tensor, query_ids, gallery_ids, k: int) -> float:
    """Fraction of queries whose true match is among the top k gallery rows by cosine."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return summarize_matches(query, gallery, query_ids, gallery_ids).recall(k).mean().item()


def mrr(query: torch.Tensor, gallery: torch.Tensor, query_ids, gallery_ids) -> float:
    """Mean reciprocal rank of the true match."""
    return per_query_reciprocal_rank(query, gallery, query_ids, gallery_ids).mean().item()


def triplet_accuracy(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Fraction of triplets with cos(anchor, positive) > cos(anchor, negative)."""
    return triplet_correct(anchor, positive, negative).double().mean().item()


def triplet_correct(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """(N,) bool: whether each triplet has cos(anchor, positive) > cos(anchor, negative)."""
    if not anchor.shape == positive.shape == negative.shape:
        raise ValueError(
            f"anchor, positive and negative shapes differ: "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    a, p, n = truncate_normalize(anchor), truncate_normalize(positive), truncate_normalize(negative)  # (N, d)
    pos_sim = (a * p).sum(dim=1)  # (N,)
    neg_sim = (a * n).sum(dim=1)  # (N,)
    return pos_sim > neg_sim


def _check_aligned(dating: torch.Tensor, hiring: torch.Tensor) -> None:
    """Raise ValueError unless dating and hiring are 2-d with the same shape."""
    check_matrix("dating", dating)
    check_matrix("hiring", hiring)
    if dating.shape != hiring.shape:
        raise ValueError(f"dating shape {tuple(dating.shape)} != hiring shape {tuple(hiring.shape)}")


def cross_domain_accuracy(
    dating: torch.Tensor, hiring: torch.Tensor, person_ids, prefix_dim: int | None = None
) -> float:
    """Top-1 accuracy of dating -> hiring retrieval on the first prefix_dim columns (all when None)."""
    _check_aligned(dating, hiring)
    return summarize_matches(dating, hiring, person_ids, person_ids, prefix_dim).top1.mean().item()


def per_query_margin(
    dating: torch.Tensor, hiring: torch.Tensor, person_ids, prefix_dim: int | None = None
) -> torch.Tensor:
    """Per dating query: similarity to the true hiring match minus the best similarity to a wrong one."""
    _check_aligned(dating, hiring)
    if dating.shape[0] < 2:
        raise ValueError("a margin needs at least two people")
    return summarize_matches(dating, hiring, person_ids, person_ids, prefix_dim).margin  # (N,)


def cross_domain_margin(
    dating: torch.Tensor, hiring: torch.Tensor, person_ids, prefix_dim: int | None = None
) -> float:
    """Mean over dating queries of (similarity to the true match - best similarity to a wrong match)."""
    return per_query_margin(dating, hiring, person_ids, prefix_dim).mean().item()


def cka(X: torch.Tensor, Y: torch.Tensor, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same rows, computed in float64.

    debiased=False: from the biased HSIC (Kornblith et al. 2019's default), which rises with width when rows are
    few; debiased=True: from the unbiased HSIC (Song et al. 2012), near 0 for unrelated representations at any
    width and slightly negative at times. Both estimators live in smlib.invariance with their null and interval."""
    return cka_debiased(X, Y) if debiased else cka_biased(X, Y)


def cka_across_dims(dating: torch.Tensor, hiring: torch.Tensor, dims: Iterable[int]) -> dict[int, float]:
    """Linear CKA of dating[:, :d] vs hiring[:, :d] for each d."""
    _check_aligned(dating, hiring)
    result = {}
    for d in dims:
        check_dim(d, dating.shape[1])
        result[int(d)] = cka(dating[:, :d], hiring[:, :d])
    return result


def prefix_variance(embeddings: torch.Tensor, prefix_dim: int) -> float:
    """Trace of the covariance of the L2-normalised first prefix_dim columns (0 when rows collapse)."""
    z = truncate_normalize(embeddings, prefix_dim).double()  # (N, prefix_dim)
    if z.shape[0] < 2:
        raise ValueError("prefix variance needs at least two rows")
    return z.var(dim=0).sum().item()


def bootstrap_ci(per_query_values, n_resamples: int, seed: int, alpha: float = 0.05,
                 with_method: bool = False):
    """Bootstrap interval of the mean over query people (scipy.stats.bootstrap, fixed seed): BCa, which corrects
    the bias and skew of a mean near 0 or 1, where it is defined; the percentile interval where BCa is not
    (e.g. every value equal, or a single person). Returns (low, high), or (low, high, "BCa"/"percentile")."""
    import warnings

    from scipy import stats

    if isinstance(per_query_values, torch.Tensor):
        per_query_values = per_query_values.detach().cpu().double().numpy()
    values = np.asarray(per_query_values, dtype=np.float64)  # (N,)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"per_query_values must be a non-empty 1-d sequence, got shape {values.shape}")
    if np.ptp(values) == 0:  # no spread: every resample has the same mean; BCa is undefined
        return (float(values[0]), float(values[0])) + (("percentile",) if with_method else ())
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on degenerate data; a NaN bound is handled below
            res = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=1 - alpha,
                                  method=method, rng=np.random.default_rng(seed), vectorized=True)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return (low, high) + ((method,) if with_method else ())
    raise ValueError("the bootstrap interval is undefined for these values")


def dim_sweep(dating: torch.Tensor, hiring: torch.Tensor, dims: int | Sequence[int]) -> pd.DataFrame:
    """CKA (biased and debiased) and top-1 in both directions at each prefix dimension d (the function behind the
    dim slider)."""
    _check_aligned(dating, hiring)
    if isinstance(dims, (int, np.integer)):
        dims = [dims]
    person_ids = torch.arange(dating.shape[0])
    rows = []
    for d in dims:
        check_dim(d, dating.shape[1])
        rows.append(
            {
                "dim": int(d),
                "cka": cka(dating[:, :d], hiring[:, :d]),
                "cka_debiased": cka(dating[:, :d], hiring[:, :d], debiased=True),
                "top1_d2h": cross_domain_accuracy(dating, hiring, person_ids, d),
                "top1_h2d": cross_domain_accuracy(hiring, dating, person_ids, d),
            }
        )
    return pd.DataFrame(rows, columns=["dim", "cka", "cka_debiased", "top1_d2h", "top1_h2d"])


def seed_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over independent runs (seeds).

    NaNs are dropped; with fewer than two values the bounds are NaN (one seed says nothing about spread).
    """
    x = np.asarray([v for v in np.asarray(values, dtype=float).ravel() if np.isfinite(v)])
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size < 2:
        return mean, float("nan"), float("nan")
    from scipy.stats import t  # imported here: scipy.stats costs ~0.5 s at import

    half = float(t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return mean, mean - half, mean + half


def gallery_top1(sims: torch.Tensor, sizes: Sequence[int]) -> dict[int, float]:
    """Expected top-1 of the diagonal match over random galleries of each size that contain the true match.

    A gallery of size g is the true match plus g-1 others drawn without replacement from the N-1 others.
    A query whose true match is beaten or tied by k others (ties count against it, as everywhere) ranks
    first in such a gallery with probability C(N-1-k, g-1) / C(N-1, g-1): the exact mean over all galleries.
    """
    n = sims.shape[0]
    if sims.ndim != 2 or sims.shape[1] != n:
        raise ValueError(f"gallery_top1 needs a square (N, N) similarity matrix, got {tuple(sims.shape)}")
    beaten_by = (ranks_from_similarities(sims, torch.arange(n)) - 1).tolist()  # k per query
    out = {}
    for g in sizes:
        if not 1 <= g <= n:
            raise ValueError(f"gallery size {g} outside 1..{n}")
        total = math.comb(n - 1, g - 1)
        out[int(g)] = float(np.mean([math.comb(n - 1 - k, g - 1) / total for k in beaten_by]))
    return out


def paired_bootstrap_diff(a, b, n_resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of a - b with a percentile interval from a paired bootstrap over people (and seeds).

    a, b: (S, N) per-person values of two methods on the same N people for each of S seeds (or (N,)).
    Each resample draws S seeds with replacement (when S > 1) and, within each, N people with replacement,
    the same draws for a and b (paired). When every resampled difference is equal (e.g. a == b), the
    interval collapses to that value and `degenerate` says so; nothing is NaN.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired values must have one shape, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("paired values must be finite")
    d = a - b  # (S, N)
    s, n = d.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(s, size=(n_resamples, s)) if s > 1 else np.zeros((n_resamples, 1), dtype=int)
    people = rng.integers(n, size=(n_resamples, s, n))
    means = d[seeds[:, :, None], people].mean(axis=(1, 2))  # (R,)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    diff = float(d.mean())
    return {"diff": diff, "low": float(low), "high": float(high),
            "resolved": bool(low > 0 or high < 0), "degenerate": bool(np.ptp(means) == 0),
            "n_seeds": int(s), "n_people": int(n)}
