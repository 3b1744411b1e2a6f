"""Debiased CKA and its null, the domain probe, one-to-one matching, hubness, the alignment rows, the style table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from smlib import invariance, metrics, plots
from smlib.config import REFERENCE_ROWS, conditions
from smlib.record import iter_datasets, iter_runs

ROOT = Path(__file__).resolve().parent.parent


def _song_unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written out term by term over index tuples (O(n^2) with explicit loops)."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    trace = sum(Kt[i, j] * Lt[j, i] for i in range(n) for j in range(n))
    sum_k = sum(Kt[i, j] for i in range(n) for j in range(n))
    sum_l = sum(Lt[i, j] for i in range(n) for j in range(n))
    row_k = [sum(Kt[i, j] for j in range(n)) for i in range(n)]
    row_l = [sum(Lt[i, j] for j in range(n)) for i in range(n)]
    cross = sum(row_k[i] * row_l[i] for i in range(n))  # 1^T K~ L~ 1 (both symmetric)
    return (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))


def test_debiased_cka_equals_a_direct_unbiased_hsic_on_small_inputs():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 7))
    y[:, :3] += x[:, :3]
    K, L = x @ x.T, y @ y.T
    direct = _song_unbiased_hsic(K, L) / np.sqrt(_song_unbiased_hsic(K, K) * _song_unbiased_hsic(L, L))
    assert metrics.cka(torch.from_numpy(x), torch.from_numpy(y), debiased=True) == pytest.approx(direct, abs=1e-10)
    assert invariance.cka_debiased(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(direct, abs=1e-10)


def test_independent_matrices_read_near_zero_debiased_while_the_biased_estimator_rises_with_width():
    g = torch.Generator().manual_seed(0)
    biased = []
    for d in (32, 64, 128, 384):
        x, y = torch.randn(150, d, generator=g), torch.randn(150, d, generator=g)
        assert abs(metrics.cka(x, y, debiased=True)) < 0.05, d
        biased.append(metrics.cka(x, y))
    assert biased == sorted(biased) and biased[-1] > 0.6  # 0.72 at d = 384 (biased HSIC, 150 rows)


def test_identical_inputs_give_one_and_the_biased_default_is_unchanged():
    x = torch.randn(40, 16, generator=torch.Generator().manual_seed(1))
    assert metrics.cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert metrics.cka(x, x) == pytest.approx(1.0, abs=1e-12)
    y = x + torch.randn(40, 16, generator=torch.Generator().manual_seed(2))
    xc, yc = x.double() - x.double().mean(0), y.double() - y.double().mean(0)
    biased = (torch.linalg.matrix_norm(yc.T @ xc) ** 2 / (torch.linalg.matrix_norm(xc.T @ xc)
                                                         * torch.linalg.matrix_norm(yc.T @ yc))).item()
    assert metrics.cka(x, y) == pytest.approx(biased, rel=1e-12)


def test_the_permutation_null_is_seeded_and_sits_below_a_real_match():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(150, 32, generator=g)
    y = x + 0.7 * torch.randn(150, 32, generator=g)
    null = invariance.cka_null(x, y, 200, seed=7)
    assert len(null) == 200 and np.array_equal(null, invariance.cka_null(x, y, 200, seed=7))
    assert abs(null.mean()) < 0.02 and np.quantile(null, 0.975) < metrics.cka(x, y, debiased=True)


def test_the_jackknife_interval_of_debiased_cka_holds_its_estimate_and_separates_match_from_none():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 16, generator=g)
    independent = invariance.cka_debiased_interval(x, torch.randn(60, 16, generator=g))
    matched = invariance.cka_debiased_interval(x, x + 0.3 * torch.randn(60, 16, generator=g))
    assert independent[0] < 0 < independent[1] < matched[0]
    estimate = invariance.cka_debiased(x, x + 0.0)
    low, high = invariance.cka_debiased_interval(x, x + 0.0)
    assert low <= estimate <= high and high - low < 1e-9  # identical sides: every leave-one-out value is 1
    with pytest.raises(ValueError, match="same people"):
        invariance.cka_debiased_interval(x, x[:59])
    with pytest.raises(ValueError, match="2-d"):
        invariance.cka_debiased_interval(x[0], x[0])


def test_the_domain_probe_reads_one_half_for_one_distribution_and_one_for_separable_domains():
    rng = np.random.default_rng(5)
    same = invariance.domain_probe_accuracy(rng.standard_normal((150, 16)), rng.standard_normal((150, 16)))
    assert abs(same - 0.5) < 0.1
    apart = invariance.domain_probe_accuracy(rng.standard_normal((150, 16)) + 3.0, rng.standard_normal((150, 16)))
    assert apart > 0.95
    assert invariance.proxy_a_distance(0.5) == 0.0 and invariance.proxy_a_distance(1.0) == 2.0


def test_the_probe_keeps_a_persons_two_texts_in_one_fold(monkeypatch):
    """A probe that could see a person's other text in training would read person-specific features."""
    from sklearn import model_selection

    seen = []
    real = model_selection.GroupKFold.split

    def spy(self, x, y, groups):
        for train, test in real(self, x, y, groups):
            seen.append((set(groups[train]), set(groups[test])))
            yield train, test

    monkeypatch.setattr(model_selection.GroupKFold, "split", spy)
    rng = np.random.default_rng(6)
    invariance.domain_probe_accuracy(rng.standard_normal((50, 4)), rng.standard_normal((50, 4)))
    assert len(seen) == invariance.PROBE_FOLDS and all(not (a & b) for a, b in seen)


def test_one_to_one_matching_and_hubness():
    # every profile's best résumé is résumé 0 (a hub): top-1 is 1/n, the assignment still pairs everyone
    n = 6
    sims = torch.eye(n, dtype=torch.float64) * 0.5
    sims[:, 0] += 1.0
    assert metrics.match_summary(sims).top1.mean().item() == pytest.approx(1 / n)
    assert invariance.hungarian_top1(sims) == 1.0
    assert invariance.hubness(sims, k=1) > 1.0  # résumé 0 is everyone's nearest
    assert invariance.hubness(torch.eye(n), k=1) == 0.0  # each résumé picked once


def test_procrustes_recovers_a_rotation_and_cca_a_linear_relation():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((400, 12))
    rotation, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    sims = invariance.procrustes_similarity(x[:300], x[:300] @ rotation, x[300:], x[300:] @ rotation)
    assert metrics.top1_and_mrr(sims)[0] == 1.0
    y = x @ rng.standard_normal((12, 20)) + 0.1 * rng.standard_normal((400, 20))
    sims = invariance.cca_similarity(x[:300], y[:300], x[300:], y[300:], n_components=8)
    assert metrics.top1_and_mrr(sims)[0] > 0.9


def test_no_two_series_share_a_style():
    names = [*conditions(), *REFERENCE_ROWS]
    styles = {n: plots.style(n) for n in names}
    colors = [s["color"] for s in styles.values()]
    assert len(set(colors)) == len(colors), styles
    assert all(styles[c]["linestyle"] == "-" for c in conditions())
    assert all(styles[r]["linestyle"] == "--" for r in REFERENCE_ROWS)
    assert plots.style("some_new_condition")["color"] not in colors


def test_the_cka_figure_draws_the_null_and_the_invariance_figure_the_half_line():
    from smlib import tables

    frame = tables.collect_results(ROOT / "runs" / "smoke")
    fig = plots.cka_vs_dim(frame)
    assert any("null" in str(c.get_label()) for ax in fig.axes for c in ax.collections)
    assert "debiased" in fig.axes[0].get_title()
    fig = plots.domain_invariance(frame)
    assert fig is not None and any(list(line.get_ydata()) == [0.5, 0.5] for line in fig.axes[0].lines)


@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_every_committed_run_has_the_new_measurements(profile):
    runs = list(iter_runs(ROOT / "runs" / profile, "metrics.json"))
    assert runs
    for _, _, _, path in runs:
        m = json.loads(path.read_text())["metrics"]
        for key in ("cka_debiased@32", "cka_debiased_null_high@32", "domain_probe_acc@32", "domain_pad@32",
                    "prefix_hungarian_top1", "prefix_hubness_d2h"):
            assert key in m, (path, key)
    for _, _, path in iter_datasets(ROOT / "runs" / profile, "references.json"):
        rows = {r["condition"]: r for r in json.loads(path.read_text())["rows"]}
        assert {"procrustes", "cca"} <= set(rows), path
        if profile == "quick":  # the control: the untrained encoder's texts are easy to tell apart
            assert rows["zero_shot"]["domain_probe_acc@384"] > 0.9, path
