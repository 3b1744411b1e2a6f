"""The metrics every run records: registered functions of its saved validation embeddings, with how the tables
and figures show each (label, summary column, interval), plus metrics derived from the recorded ones.

Computing a metric is one @embedding_metric function; showing it is its Shown entries. Every new run computes
every registered metric, and `python -m smlib.study --recompute-metrics` brings a new one to the whole record.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .domains import DOMAINS
from .embeddings import truncate_normalize
from .invariance import (
    CKA_NULL_PERMUTATIONS,
    cka_debiased,
    cka_null,
    domain_probe_accuracy,
    one_to_one_metrics,
    proxy_a_distance,
)
from .metrics import (
    DIRECTIONS,
    bootstrap_ci,
    both_ways,
    cka_across_dims,
    cosine_similarities,
    match_summary,
    mean_both_ways,
    prefix_variance,
    triplet_accuracy,
)


def prefix_is_nested(emb: dict[str, np.ndarray]) -> bool:
    """True if the identity embedding is the first K dims of the full one (Matryoshka), False for a separate head."""
    k = emb["dating_prefix"].shape[1]
    if k > emb["dating"].shape[1]:
        return False
    for domain in DOMAINS:
        head = torch.from_numpy(np.asarray(emb[domain], dtype=np.float32))
        nested = truncate_normalize(head, k).numpy()
        if not np.allclose(nested, emb[f"{domain}_prefix"], atol=1e-4):
            return False
    return True


def identity_space(emb: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """(dating, hiring) in a model's identity space, whose dims 0:d are what '@d' metrics read: the full embedding
    for a Matryoshka model, the separate identity head for projection_heads."""
    space = "" if prefix_is_nested(emb) else "_prefix"
    return (torch.from_numpy(np.asarray(emb[f"dating{space}"])), torch.from_numpy(np.asarray(emb[f"hiring{space}"])))


def identity_space_cka(emb: dict[str, np.ndarray], matryoshka_dims: list[int]) -> dict[str, float | None]:
    """cka@d of dating vs hiring in each model's identity space.

    Matryoshka models: dims 0:d of the full embedding. A model with a separate identity head
    (projection_heads): dims 0:d of that head, and None (n/a) for d beyond its width.
    """
    dating, hiring = identity_space(emb)
    fits = [d for d in matryoshka_dims if d <= dating.shape[1]]
    values = cka_across_dims(dating, hiring, fits)
    return {f"cka@{d}": values.get(d) for d in matryoshka_dims}


def retrieval_metrics(sims: torch.Tensor, n_resamples: int, seed: int, prefix: str,
                      margin: bool = False) -> dict[str, float]:
    """Top-1, MRR, recall@5/10 (with bootstrap 95% intervals for top-1 and MRR) of the diagonal matches,
    and with margin=True the mean margin; all from one metrics.match_summary of sims."""
    s = match_summary(sims)
    out = {f"{prefix}top1": s.top1.mean().item(), f"{prefix}mrr": s.reciprocal_rank.mean().item(),
           f"{prefix}recall@5": s.recall(5).mean().item(), f"{prefix}recall@10": s.recall(10).mean().item()}
    for name, values in (("top1", s.top1), ("mrr", s.reciprocal_rank)):
        low, high, method = bootstrap_ci(values.cpu(), n_resamples, seed, with_method=True)
        out[f"{prefix}{name}_ci_low"], out[f"{prefix}{name}_ci_high"] = low, high
        out[f"{prefix}{name}_ci_bca"] = float(method == "BCa")  # 0: BCa undefined here, percentile interval
    if margin:
        out[f"{prefix}margin"] = s.margin.mean().item()
    return out


def cross_domain_metrics(dating: torch.Tensor, hiring: torch.Tensor | None, n_resamples: int, seed: int,
                         prefix: str) -> dict[str, float]:
    """Both directions of cross-domain retrieval for row-aligned dating/hiring embeddings (one similarity
    matrix: hiring -> dating reads its transpose). hiring None: `dating` already is that (N, N) matrix."""
    sims = dating if hiring is None else cosine_similarities(dating, hiring)  # (N, N)
    out = {}
    for direction, s in zip(DIRECTIONS, both_ways(sims), strict=False):
        out |= retrieval_metrics(s, n_resamples, seed, f"{prefix}{direction}_", margin=True)
    return out


def retrieval_keys(prefix: str) -> list[str]:
    """The keys retrieval_metrics(..., prefix, margin=True) writes (what metrics_table shows of one space and
    direction)."""
    return [f"{prefix}{k}" for k in ("top1", "mrr", "recall@5", "recall@10", "margin", "top1_ci_low",
                                     "top1_ci_high", "top1_ci_bca", "mrr_ci_low", "mrr_ci_high", "mrr_ci_bca")]


@dataclass
class SavedRun:
    """What every embedding metric reads: a run's validation embeddings (as saved in embeddings.npz) and the
    evaluation settings of its params."""

    emb: dict[str, np.ndarray]
    matryoshka_dims: list[int]
    n_resamples: int  # eval.bootstrap_resamples
    seed: int

    def tensor(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.emb[key]))


@dataclass(frozen=True)
class Shown:
    """How the tables and figures show one metric key: its label, whether it is a column of the summary table,
    and whether it gets a headline 95% interval over seeds."""

    key: str
    label: str
    summary: bool = False
    interval: bool = False


EMBEDDING_METRICS: list = []  # every function metrics_from_embeddings runs, in order (see embedding_metric)
DERIVED_METRICS: dict = {}  # key -> fn(row of recorded metrics) -> value, computed when the tables are built
SHOWN: dict[str, Shown] = {}  # key -> how it is shown, in registration order (the tables' column order)


def embedding_metric(fn=None, *, shows: tuple[Shown, ...] = ()):
    """Register fn(SavedRun) -> {name: value} as an evaluation metric: every new run computes it, and
    `python -m smlib.study --recompute-metrics` brings it to every recorded run from its embeddings.npz.

    shows: how some of its keys appear in the tables and figures (label, summary column, interval); a key
    without one is kept in metrics.json and results_long.csv only. Use bare (@embedding_metric) or with
    shows (@embedding_metric(shows=(Shown(...), ...)))."""
    def register(f):
        EMBEDDING_METRICS.append(f)
        for s in shows:
            SHOWN[s.key] = s
        return f

    return register(fn) if fn is not None else register


def derived_metric(shown: Shown):
    """Register fn(row) -> value, a metric computed from a run's recorded metrics when the tables are built (not
    stored in metrics.json, so registering one rewrites no record): shown.key becomes a column of every row."""
    def register(fn):
        DERIVED_METRICS[shown.key] = fn
        SHOWN[shown.key] = shown
        return fn

    return register


def summary_metrics() -> list[str]:
    """The summary table's metric columns, in registration order."""
    return [k for k, s in SHOWN.items() if s.summary]


def interval_metrics() -> list[str]:
    """The metrics with a headline 95% interval over seeds, in registration order."""
    return [k for k, s in SHOWN.items() if s.interval]


def metric_label(key: str) -> str:
    """How a metric key reads on an axis or in a legend (the key itself if it registered no label)."""
    return SHOWN[key].label if key in SHOWN else key


def add_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """Every registered derived metric as a column of a frame of runs, where its inputs are there."""
    for key, fn in DERIVED_METRICS.items():
        try:
            frame[key] = [fn(row) for row in frame.to_dict("records")]
        except KeyError:  # an input metric the frame does not hold
            continue
    return frame


@derived_metric(Shown("prefix_top1", "identity top-1 (mean of both directions)", interval=True))
def _prefix_top1(row) -> float:
    """The headline: identity top-1, mean of dating -> hiring and hiring -> dating."""
    return mean_both_ways(row["prefix_d2h_top1"], row["prefix_h2d_top1"])


@embedding_metric
def _counts(run: SavedRun) -> dict:
    return {"n_val_people": len(run.emb["person_ids"]),
            **{f"n_val_triplets_{d}": len(run.emb[f"triplets_{d}"]) for d in DOMAINS}}


@embedding_metric(shows=(Shown("prefix_d2h_top1", "identity top-1, dating -> hiring", summary=True),
                         Shown("prefix_h2d_top1", "identity top-1, hiring -> dating", summary=True),
                         Shown("prefix_d2h_mrr", "identity MRR, dating -> hiring", summary=True),
                         Shown("full_d2h_top1", "full-embedding top-1, dating -> hiring", summary=True)))
def _cross_domain(run: SavedRun) -> dict:
    """Both directions of cross-domain retrieval on the identity space (prefix_) and the full embedding (full_)."""
    return {**cross_domain_metrics(run.tensor("dating_prefix"), run.tensor("hiring_prefix"), run.n_resamples,
                                   run.seed, "prefix_"),
            **cross_domain_metrics(run.tensor("dating"), run.tensor("hiring"), run.n_resamples, run.seed, "full_")}


def triplet_rows(emb: dict[str, np.ndarray], domain: str) -> torch.Tensor:
    """(T, 3) long: the rows of embeddings.npz that each saved validation triplet (anchor, positive, negative
    person ids) of a domain points at."""
    row = {int(pid): r for r, pid in enumerate(emb["person_ids"].tolist())}
    return torch.tensor([[row[int(i)] for i in t3] for t3 in emb[f"triplets_{domain}"]], dtype=torch.long)


@embedding_metric(shows=(Shown("triplet_acc_dating", "dating triplet accuracy", summary=True, interval=True),
                         Shown("triplet_acc_hiring", "hiring triplet accuracy", summary=True, interval=True),
                         Shown("prefix_variance_dating", "variance of the dating prefix", summary=True)))
def _within_domain(run: SavedRun) -> dict:
    """Triplet accuracy of the full embedding on validation triplets, and the spread of each domain's prefix."""
    out = {}
    for domain in DOMAINS:
        idx = triplet_rows(run.emb, domain)  # (T, 3)
        x = run.tensor(domain)
        out[f"triplet_acc_{domain}"] = triplet_accuracy(x[idx[:, 0]], x[idx[:, 1]], x[idx[:, 2]])
        prefix = run.tensor(f"{domain}_prefix")
        out[f"prefix_variance_{domain}"] = prefix_variance(prefix, prefix.shape[1])
    return out


@embedding_metric(shows=(Shown("cka@64", "linear CKA (biased HSIC) of dating vs hiring at d = 64"),))
def _cka(run: SavedRun) -> dict:
    width = run.emb["dating"].shape[1]
    return identity_space_cka(run.emb, [d for d in run.matryoshka_dims if d <= width])


def _at_identity_dims(run: SavedRun, at, names: tuple[str, ...]) -> dict:
    """{<name>@d: value} for every Matryoshka d the full embedding has, from at(dating[:, :d], hiring[:, :d]) ->
    {name: value} in the identity space; None beyond that space's width (projection_heads' identity head)."""
    dating, hiring = identity_space(run.emb)
    out = {}
    for d in (d for d in run.matryoshka_dims if d <= run.emb["dating"].shape[1]):
        values = at(dating[:, :d], hiring[:, :d]) if d <= dating.shape[1] else dict.fromkeys(names)
        out |= {f"{name}@{d}": values[name] for name in names}
    return out


@embedding_metric(shows=(Shown("cka_debiased@64", "debiased linear CKA of dating vs hiring at d = 64",
                               summary=True, interval=True),))
def _cka_debiased(run: SavedRun) -> dict:
    """cka_debiased@d (unbiased HSIC) in the identity space, with its permutation null (hiring rows shuffled across
    people, CKA_NULL_PERMUTATIONS draws seeded by the run's seed): the null's 2.5% and 97.5% quantiles."""
    def at(x, y):
        low, high = (float(q) for q in np.quantile(cka_null(x, y, CKA_NULL_PERMUTATIONS, run.seed), [0.025, 0.975]))
        return {"cka_debiased": cka_debiased(x, y), "cka_debiased_null_low": low, "cka_debiased_null_high": high}

    return _at_identity_dims(run, at, ("cka_debiased", "cka_debiased_null_low", "cka_debiased_null_high"))


@embedding_metric(shows=(Shown("domain_probe_acc@64", "domain probe accuracy on dims 0:64 (0.5 = invariant)",
                               summary=True),))
def _domain_probe(run: SavedRun) -> dict:
    """domain_probe_acc@d: a cross-validated probe's accuracy at telling a text's domain from dims 0:d of its
    identity-space embedding (smlib.invariance.domain_probe_accuracy), and domain_pad@d, the proxy A-distance."""
    def at(x, y):
        acc = domain_probe_accuracy(x.numpy(), y.numpy(), seed=run.seed)
        return {"domain_probe_acc": acc, "domain_pad": proxy_a_distance(acc)}

    return _at_identity_dims(run, at, ("domain_probe_acc", "domain_pad"))


@embedding_metric(shows=(Shown("prefix_hungarian_top1", "identity one-to-one matching accuracy", summary=True),))
def _one_to_one(run: SavedRun) -> dict:
    """prefix_hungarian_top1 (the optimal one-to-one assignment of the identity similarities) and
    prefix_hubness_d2h (skewness of how often each résumé is among a profile's HUBNESS_K nearest)."""
    sims = cosine_similarities(run.tensor("dating_prefix"), run.tensor("hiring_prefix"))
    return one_to_one_metrics(sims)


def metrics_from_embeddings(emb: dict[str, np.ndarray], matryoshka_dims: list[int], n_resamples: int,
                            seed: int) -> dict[str, float]:
    """Every registered evaluation metric (EMBEDDING_METRICS) from saved embeddings, so metrics.json can be
    recomputed from embeddings.npz."""
    run = SavedRun(emb, list(matryoshka_dims), n_resamples, seed)
    out: dict[str, float] = {}
    for fn in EMBEDDING_METRICS:
        out |= fn(run)
    return out
