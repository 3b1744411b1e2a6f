"""Measurements a reviewer asks for beside top-1: debiased CKA read against a permutation null, how well a probe
tells the domains apart from the identity dims, one-to-one matching, hubness, and post-hoc alignments of frozen
embeddings (orthogonal Procrustes, CCA). Torch or numpy in, Python floats or arrays out.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.stats import skew

from .embeddings import check_pair
from .limits import HSIC_ROWS, JACKKNIFE_ROWS

CKA_NULL_PERMUTATIONS = 200  # hiring rows shuffled across people; the null's seed is the run's
PROBE_FOLDS = 5
PROBE_C = 1.0  # fixed (no inner search): the probe is a measurement, the same for every run
HUBNESS_K = 10


def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x @ x.T  # (N, N) linear kernel


def hsic_unbiased(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """The unbiased HSIC estimator of Song et al. (2012) for two (N, N) Gram matrices, N >= 4."""
    n = K.shape[0]
    if n < HSIC_ROWS:
        raise ValueError(f"the unbiased HSIC needs at least {HSIC_ROWS} rows, got {n}")
    K = K.clone()
    L = L.clone()
    K.fill_diagonal_(0)
    L.fill_diagonal_(0)
    ones = torch.ones(n, dtype=K.dtype, device=K.device)
    kl = K @ L
    term = torch.trace(kl) + (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2)) - 2 * (ones @ kl @ ones) / (n - 2)
    return term / (n * (n - 3))


def cka_debiased(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear CKA from the unbiased HSIC: near 0 for independent representations at any width (it can be slightly
    negative), 1 for identical ones. The biased estimator rises with width when rows are few (0.72 for two
    independent 150 x 384 Gaussian matrices)."""
    check_pair(X, Y, HSIC_ROWS, "debiased CKA")
    K, L = _gram(X), _gram(Y.to(X.device))
    return _cka_from_grams(K, L)


def _cka_from_grams(K: torch.Tensor, L: torch.Tensor) -> float:
    denom = torch.sqrt(hsic_unbiased(K, K) * hsic_unbiased(L, L))
    return float(hsic_unbiased(K, L) / denom) if denom > 0 else float("nan")


def cka_debiased_interval(X: torch.Tensor, Y: torch.Tensor) -> tuple[float, float]:
    """Normal 95% interval of debiased CKA from its leave-one-person-out jackknife (rows are people)."""
    check_pair(X, Y, JACKKNIFE_ROWS, "the jackknife of debiased CKA")
    K, L = _gram(X), _gram(Y.to(X.device))
    n = K.shape[0]
    everyone = torch.arange(n)
    values = np.asarray([_cka_from_grams(K[keep][:, keep], L[keep][:, keep])
                         for keep in (everyone[everyone != i] for i in range(n))])
    se = float(np.sqrt((n - 1) / n * np.sum((values - values.mean()) ** 2)))
    full = _cka_from_grams(K, L)
    return full - 1.96 * se, full + 1.96 * se


CKA_ROWS = 2  # the biased estimator: centring leaves nothing of one row


def cka_biased(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Linear CKA from the biased HSIC (Kornblith et al. 2019's default), in float64: it rises with width when rows
    are few, so read it against cka_null."""
    check_pair(X, Y, CKA_ROWS, "linear CKA")
    x = X.double()
    y = Y.double().to(x.device)
    x = x - x.mean(dim=0, keepdim=True)  # (N, d1)
    y = y - y.mean(dim=0, keepdim=True)  # (N, d2)
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2  # ()
    norm_x = torch.linalg.matrix_norm(x.T @ x)  # ()
    norm_y = torch.linalg.matrix_norm(y.T @ y)  # ()
    return (cross / (norm_x * norm_y)).item()


def cka_null(X: torch.Tensor, Y: torch.Tensor, n_permutations: int = CKA_NULL_PERMUTATIONS, seed: int = 0,
             debiased: bool = True) -> np.ndarray:
    """The estimator's values with Y's rows shuffled across people (n_permutations, a fixed seed): what CKA reads
    when the two sides share nothing person by person."""
    check_pair(X, Y, HSIC_ROWS if debiased else CKA_ROWS, "the CKA null")
    rng = np.random.default_rng(seed)
    K, L = _gram(X), _gram(Y.to(X.device))
    out = np.empty(n_permutations)
    for i in range(n_permutations):
        perm = torch.from_numpy(rng.permutation(X.shape[0]))
        if debiased:
            out[i] = _cka_from_grams(K, L[perm][:, perm])
        else:
            out[i] = cka_biased(X, Y[perm])
    return out


def domain_probe_accuracy(dating: np.ndarray, hiring: np.ndarray, folds: int = PROBE_FOLDS, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic-regression probe (features standardised, C = PROBE_C) that tells a
    text's domain from its embedding; both texts of a person are in the same fold. 0.5: the domains are
    indistinguishable (invariant); 1.0: fully separable."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    dating, hiring = np.asarray(dating, dtype=np.float64), np.asarray(hiring, dtype=np.float64)
    n = len(dating)
    x = np.concatenate([dating, hiring])  # (2N, d)
    y = np.concatenate([np.zeros(n), np.ones(n)])
    people = np.concatenate([np.arange(n), np.arange(n)])
    order = np.random.default_rng(seed).permutation(n)  # which people share a fold: fixed by the seed
    groups = order[people]
    correct = 0
    for train, test in GroupKFold(n_splits=min(folds, n)).split(x, y, groups):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=2000))
        probe.fit(x[train], y[train])
        correct += int((probe.predict(x[test]) == y[test]).sum())
    return correct / len(x)


def proxy_a_distance(accuracy: float) -> float:
    """Ganin et al.'s proxy A-distance 2 (1 - 2 err) of a domain classifier with this accuracy (err = 1 - acc)."""
    return 2.0 * (1.0 - 2.0 * (1.0 - accuracy))


def hungarian_top1(sims) -> float:
    """Share of people whose two texts the optimal one-to-one assignment of the (N, N) similarity matrix pairs (each
    résumé used once), beside top-1, which lets many profiles pick the same résumé."""
    s = np.asarray(torch.as_tensor(sims, dtype=torch.float64))
    rows, cols = linear_sum_assignment(s, maximize=True)
    return float(np.mean(cols[np.argsort(rows)] == np.arange(s.shape[0])))


def hubness(sims, k: int = HUBNESS_K) -> float:
    """Skewness of the k-occurrence of gallery items (how often each résumé is among a profile's k nearest):
    0 when every résumé is picked about equally often, large when a few hubs are everyone's neighbours."""
    s = torch.as_tensor(sims, dtype=torch.float64)
    k = min(k, s.shape[1])
    counts = np.bincount(s.topk(k, dim=1).indices.reshape(-1).numpy(), minlength=s.shape[1])
    return float(skew(counts)) if counts.std() > 0 else 0.0


def one_to_one_metrics(sims) -> dict[str, float]:
    """prefix_hungarian_top1 and prefix_hubness_d2h of a dating x hiring similarity matrix (runs and reference rows)."""
    return {"prefix_hungarian_top1": hungarian_top1(sims), "prefix_hubness_d2h": hubness(sims)}


def _centred_unit(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    z = np.asarray(x, dtype=np.float64) - mean
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def procrustes_similarity(train_dating, train_hiring, val_dating, val_hiring) -> np.ndarray:
    """Cosine similarities (N_val, N_val) after the orthogonal map R that best rotates the training people's centred,
    normalised dating embeddings onto their hiring ones (argmin ||X R - Y||_F, R orthogonal: R = U V^T of
    X^T Y's SVD)."""
    md, mh = np.mean(train_dating, axis=0), np.mean(train_hiring, axis=0)
    x, y = _centred_unit(train_dating, md), _centred_unit(train_hiring, mh)
    u, _, vt = np.linalg.svd(x.T @ y)
    rotated = _centred_unit(val_dating, md) @ (u @ vt)
    return rotated @ _centred_unit(val_hiring, mh).T


def _inverse_sqrt(c: np.ndarray, ridge: float) -> np.ndarray:
    w, v = np.linalg.eigh(c + ridge * np.trace(c) / len(c) * np.eye(len(c)))
    return (v / np.sqrt(np.maximum(w, 1e-12))) @ v.T


def cca_similarity(train_dating, train_hiring, val_dating, val_hiring, n_components: int = 64,
                   ridge: float = 1e-3) -> np.ndarray:
    """Cosine similarities (N_val, N_val) in the n_components canonical dims of CCA between the training people's
    dating and hiring embeddings, fit on the training people only: the top singular vectors of
    Cxx^-1/2 Cxy Cyy^-1/2 (each covariance with a ridge of `ridge` x its mean eigenvalue, which keeps the
    whitening stable when dims approach the number of people)."""
    x, y = np.asarray(train_dating, dtype=np.float64), np.asarray(train_hiring, dtype=np.float64)
    mx, my = x.mean(axis=0), y.mean(axis=0)
    x, y = x - mx, y - my
    n = len(x)
    wx, wy = _inverse_sqrt(x.T @ x / (n - 1), ridge), _inverse_sqrt(y.T @ y / (n - 1), ridge)
    u, _, vt = np.linalg.svd(wx @ (x.T @ y / (n - 1)) @ wy)
    k = min(n_components, u.shape[1], vt.shape[0])
    zd = (np.asarray(val_dating, dtype=np.float64) - mx) @ (wx @ u[:, :k])  # (N_val, k)
    zh = (np.asarray(val_hiring, dtype=np.float64) - my) @ (wy @ vt[:k].T)  # (N_val, k)
    zd = zd / np.maximum(np.linalg.norm(zd, axis=1, keepdims=True), 1e-12)
    zh = zh / np.maximum(np.linalg.norm(zh, axis=1, keepdims=True), 1e-12)
    return zd @ zh.T
