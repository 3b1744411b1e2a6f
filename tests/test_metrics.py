"""Tests for smlib.metrics on small hand-computed cases and random tensors."""

import math

import numpy as np
import pytest
import torch

from smlib import metrics


def random_pair(n: int = 40, d: int = 16, seed: int = 0, noise: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned dating/hiring matrices: hiring is dating plus noise."""
    generator = torch.Generator().manual_seed(seed)
    dating = torch.randn(n, d, generator=generator)  # (n, d)
    hiring = dating + noise * torch.randn(n, d, generator=generator)  # (n, d)
    return dating, hiring


def test_truncate_normalize_slices_then_normalises():
    x = torch.tensor([[3.0, 4.0, 100.0], [0.0, 2.0, -7.0]])
    out = metrics.truncate_normalize(x, 2)
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    assert torch.allclose(metrics.truncate_normalize(x).norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError):
        metrics.truncate_normalize(x, 4)
    with pytest.raises(ValueError):
        metrics.truncate_normalize(x, 0)


def test_ranks_hand_case_and_pessimistic_ties():
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    gallery = torch.tensor([[2.0, 0.0], [0.8, 0.6]])
    assert metrics.true_match_ranks(query, gallery, [0, 1], [0, 1]).tolist() == [1, 2]
    tied = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    assert metrics.true_match_ranks(query[:1], tied, [0], [0, 1]).tolist() == [2]


def test_similarities_are_float64_so_a_near_tie_is_not_a_float32_tie():
    # cos to the distractor is 1 - 2**-27: float32 rounds it to 1.0 (a tie, counted against the true match);
    # float64 keeps it below the true match's 1.0, whatever the CPU's float32 kernel would have summed
    query = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [1.0, 2.0 ** -13]])
    sims = metrics.cosine_similarities(query, gallery)
    assert sims.dtype == torch.float64
    assert metrics.true_match_ranks(query, gallery, [0], [0, 1]).tolist() == [1]
    assert metrics.cosine_similarities(query.bfloat16(), gallery.numpy()).dtype == torch.float64
    unit = torch.nn.functional.normalize
    expected = unit(query.double(), dim=1) @ unit(gallery.double(), dim=1).T
    assert torch.equal(sims, expected)
    with pytest.raises(ValueError, match="width"):
        metrics.cosine_similarities(query, torch.ones(2, 3))


def test_mrr_and_recall_hand_case():
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    ids = [0, 1]
    assert metrics.mrr(query, gallery, ids, ids) == pytest.approx((1 + 1 / 2) / 2)
    assert metrics.recall_at_k(query, gallery, ids, ids, 1) == pytest.approx(0.5)
    assert metrics.recall_at_k(query, gallery, ids, ids, 2) == pytest.approx(1.0)


def test_perfect_retrieval_gives_mrr_one():
    embeddings = torch.eye(5)  # (5, 5)
    ids = list(range(5))
    assert metrics.mrr(embeddings, 3 * embeddings, ids, ids) == pytest.approx(1.0)
    assert metrics.recall_at_k(embeddings, embeddings, ids, ids, 1) == pytest.approx(1.0)


def test_recall_non_decreasing_in_k_and_one_at_n():
    dating, hiring = random_pair(n=30, noise=2.0)
    ids = torch.arange(30)
    recalls = [metrics.recall_at_k(dating, hiring, ids, ids, k) for k in range(1, 31)]
    assert all(a <= b for a, b in zip(recalls, recalls[1:], strict=False))
    assert recalls[-1] == pytest.approx(1.0)
    ranks = metrics.true_match_ranks(dating, hiring, ids, ids)
    assert metrics.mrr(dating, hiring, ids, ids) == pytest.approx((1.0 / ranks.double()).mean().item())


def test_shuffled_gallery_ids_give_same_answers():
    dating, hiring = random_pair(n=25, noise=1.5, seed=3)
    ids = torch.arange(100, 125)
    perm = torch.randperm(25, generator=torch.Generator().manual_seed(1))
    shuffled, shuffled_ids = hiring[perm], ids[perm]
    assert torch.equal(
        metrics.true_match_ranks(dating, hiring, ids, ids),
        metrics.true_match_ranks(dating, shuffled, ids, shuffled_ids),
    )
    assert metrics.mrr(dating, shuffled, ids.tolist(), shuffled_ids.numpy()) == pytest.approx(
        metrics.mrr(dating, hiring, ids, ids)
    )


def test_bad_ids_and_shapes_raise():
    query, gallery = torch.eye(3), torch.eye(3)
    with pytest.raises(ValueError, match="no match"):
        metrics.recall_at_k(query, gallery, [0, 1, 7], [0, 1, 2], 1)
    with pytest.raises(ValueError, match="duplicates"):
        metrics.mrr(query, gallery, [0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError):
        metrics.mrr(query, gallery, [0, 1], [0, 1, 2])
    with pytest.raises(ValueError):
        metrics.mrr(query, torch.eye(4)[:3], [0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError):
        metrics.cross_domain_accuracy(torch.eye(3), torch.eye(4), [0, 1, 2])
    with pytest.raises(ValueError):
        metrics.triplet_accuracy(torch.eye(3), torch.eye(3), torch.eye(2))


def test_triplet_accuracy_hand_case():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[10.0, 10.0], [0.0, 1.0]])
    negative = torch.tensor([[0.0, 1.0], [1.0, 0.1]])
    assert metrics.triplet_accuracy(anchor, positive, negative) == pytest.approx(0.5)
    assert metrics.triplet_accuracy(anchor, negative, negative) == pytest.approx(0.0)


def test_cross_domain_accuracy_uses_prefix():
    dating = torch.tensor([[1.0, 0.0, 0.0, 3.0], [0.0, 1.0, 3.0, 0.0]])
    hiring = torch.tensor([[1.0, 0.0, 3.0, 0.0], [0.0, 1.0, 0.0, 3.0]])
    ids = [7, 9]
    assert metrics.cross_domain_accuracy(dating, hiring, ids) == pytest.approx(0.0)
    assert metrics.cross_domain_accuracy(dating, hiring, ids, prefix_dim=2) == pytest.approx(1.0)
    assert metrics.cross_domain_accuracy(dating.bfloat16(), hiring.bfloat16(), ids, 2) == pytest.approx(1.0)


def test_cross_domain_margin_hand_case():
    dating = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    hiring = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # query 0: 1 - 0.6 = 0.4; query 1: 0.8 - 0 = 0.8
    assert metrics.cross_domain_margin(dating, hiring, [0, 1]) == pytest.approx(0.6)


def test_margin_positive_exactly_when_top1_right():
    dating, hiring = random_pair(n=300, d=8, noise=1.2, seed=5)
    ids = torch.arange(300)
    margins = metrics.per_query_margin(dating, hiring, ids)
    top1 = metrics.summarize_matches(dating, hiring, ids, ids).top1
    assert 0 < top1.mean().item() < 1
    assert torch.equal(margins > 0, top1 == 1)
    assert metrics.cross_domain_accuracy(dating, hiring, ids) == pytest.approx(top1.mean().item())


def test_cka_identity_rotation_and_scaling():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(50, 10, generator=generator)  # (50, 10)
    Y = torch.randn(50, 6, generator=generator)  # (50, 6)
    Q, _ = torch.linalg.qr(torch.randn(10, 10, generator=generator))  # (10, 10)
    assert metrics.cka(X, X) == pytest.approx(1.0)
    assert metrics.cka(X, X @ Q) == pytest.approx(1.0)
    assert metrics.cka(X, 7.5 * X) == pytest.approx(1.0)
    base = metrics.cka(Y, X)
    assert 0 < base < 1
    assert metrics.cka(Y, X @ Q) == pytest.approx(base)
    assert metrics.cka(0.1 * Y, X) == pytest.approx(base)
    assert metrics.cka(X[:, :6] + 5.0, X[:, :6]) == pytest.approx(1.0)


def test_cka_across_dims_matches_slices():
    dating, hiring = random_pair(n=30, d=16)
    result = metrics.cka_across_dims(dating, hiring, [2, 8, 16])
    assert list(result) == [2, 8, 16]
    for d, value in result.items():
        assert value == pytest.approx(metrics.cka(dating[:, :d], hiring[:, :d]))
    with pytest.raises(ValueError):
        metrics.cka_across_dims(dating, hiring, [17])


def test_prefix_variance():
    identical = torch.tensor([[1.0, 2.0, 3.0]]).repeat(10, 1)  # (10, 3)
    assert metrics.prefix_variance(identical, 2) == pytest.approx(0.0, abs=1e-12)
    opposite = torch.tensor([[5.0, 0.0, 9.0], [-2.0, 0.0, 1.0]])
    # normalised prefix rows are [1, 0] and [-1, 0]: unbiased variances 2 and 0
    assert metrics.prefix_variance(opposite, 2) == pytest.approx(2.0)
    dating, _ = random_pair()
    assert metrics.prefix_variance(dating, 8) > 0


def test_bootstrap_ci_contains_estimate_and_is_deterministic():
    dating, hiring = random_pair(n=200, d=8, noise=1.2, seed=2)
    ids = torch.arange(200)
    for values in (
        metrics.summarize_matches(dating, hiring, ids, ids).top1,
        metrics.per_query_reciprocal_rank(dating, hiring, ids, ids),
    ):
        low, high = metrics.bootstrap_ci(values, 500, seed=0)
        assert low <= values.mean().item() <= high
        assert low < high
        assert metrics.bootstrap_ci(values, 500, seed=0) == (low, high)
        assert metrics.bootstrap_ci(values.numpy(), 500, seed=0) == (low, high)
    assert metrics.bootstrap_ci([0.5] * 10, 100, seed=1) == (0.5, 0.5)


def test_dim_sweep_matches_direct_calls_and_rejects_out_of_range():
    dating, hiring = random_pair(n=40, d=16, noise=1.5)
    ids = torch.arange(40)
    sweep = metrics.dim_sweep(dating, hiring, [1, 3, 8, 16])
    assert list(sweep.columns) == ["dim", "cka", "cka_debiased", "top1_d2h", "top1_h2d"]
    for row in sweep.itertuples():
        assert row.cka == pytest.approx(metrics.cka(dating[:, : row.dim], hiring[:, : row.dim]))
        assert row.cka_debiased == pytest.approx(metrics.cka(dating[:, : row.dim], hiring[:, : row.dim], debiased=True))
        assert row.top1_d2h == pytest.approx(metrics.cross_domain_accuracy(dating, hiring, ids, row.dim))
        assert row.top1_h2d == pytest.approx(metrics.cross_domain_accuracy(hiring, dating, ids, row.dim))
    assert metrics.dim_sweep(dating, hiring, 8).equals(sweep.iloc[[2]].reset_index(drop=True))
    for bad in (0, 17, -1):
        with pytest.raises(ValueError):
            metrics.dim_sweep(dating, hiring, [bad])
    assert all(math.isfinite(value) for value in sweep.to_numpy().ravel())


def test_seed_interval_is_the_student_t_interval_of_the_mean():
    mean, low, high = metrics.seed_interval([0.7, 0.8, 0.9])
    half = 4.302653 * 0.1 / math.sqrt(3)
    assert mean == pytest.approx(0.8) and low == pytest.approx(0.8 - half) and high == pytest.approx(0.8 + half)
    mean, low, high = metrics.seed_interval([0.5, float("nan")])  # NaN dropped: one value, no interval
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in metrics.seed_interval([]))
    assert metrics.seed_interval([0.3, 0.3, 0.3])[1:] == (pytest.approx(0.3), pytest.approx(0.3))


def test_gallery_top1_is_the_exact_mean_over_galleries_that_hold_the_true_match():
    import itertools

    sims = torch.tensor([[0.9, 0.5, 0.1, 0.0],   # true match first: top-1 in every gallery
                         [0.8, 0.6, 0.7, 0.0],   # beaten by 2 others
                         [0.0, 0.0, 0.3, 0.3],   # tied by 1 other: ties count against
                         [0.9, 0.8, 0.7, 0.1]])  # beaten by all 3
    n = 4
    for g in range(1, n + 1):
        brute = []
        for i in range(n):
            others = [j for j in range(n) if j != i]
            hits = [all(sims[i, i] > sims[i, j] for j in sub) for sub in itertools.combinations(others, g - 1)]
            brute.append(sum(hits) / len(hits))
        assert metrics.gallery_top1(sims, [g])[g] == pytest.approx(sum(brute) / n)
    assert metrics.gallery_top1(sims, [1])[1] == 1.0  # alone in its gallery, the true match always wins
    with pytest.raises(ValueError, match="outside"):
        metrics.gallery_top1(sims, [5])


def test_paired_bootstrap_covers_zero_for_identical_methods_and_excludes_it_for_a_clear_gap():
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(3, 150, generator=g) < 0.8).double().numpy()
    same = metrics.paired_bootstrap_diff(a, a)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0 and same["degenerate"] and not same["resolved"]
    worse = a * (torch.rand(3, 150, generator=g) < 0.5).double().numpy()  # loses about half of a's hits
    gap = metrics.paired_bootstrap_diff(a, worse)
    assert gap["resolved"] and 0 < gap["low"] < gap["diff"] < gap["high"]
    noise = (torch.rand(3, 150, generator=g) < 0.8).double().numpy()  # an independent method of equal skill
    close = metrics.paired_bootstrap_diff(a, noise)
    assert close["low"] < 0 < close["high"] and not close["resolved"]
    one_seed = metrics.paired_bootstrap_diff(a[0], worse[0])
    assert one_seed["n_seeds"] == 1 and one_seed["n_people"] == 150
    with pytest.raises(ValueError, match="one shape"):
        metrics.paired_bootstrap_diff(a, a[:2])
    with pytest.raises(ValueError, match="finite"):
        metrics.paired_bootstrap_diff([float("nan")], [0.0])


def test_bootstrap_ci_is_bca_where_defined_and_percentile_where_not():
    from scipy import stats

    near_zero = np.r_[np.ones(2), np.zeros(148)]  # top-1 near 0: where percentile intervals are poor
    low, high, method = metrics.bootstrap_ci(near_zero, 2000, seed=0, with_method=True)
    assert method == "BCa" and 0 <= low < 2 / 150 < high
    ref = stats.bootstrap((near_zero,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(0))
    assert (low, high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert metrics.bootstrap_ci(np.zeros(150), 2000, seed=0, with_method=True) == (0.0, 0.0, "percentile")
    assert metrics.bootstrap_ci([0.25], 100, seed=0, with_method=True) == (0.25, 0.25, "percentile")


def test_every_retrieval_number_comes_from_one_match_summary():
    sims = torch.tensor([[0.9, 0.1, 0.9], [0.2, 0.5, 0.7], [0.3, 0.8, 0.6]])  # row 0 ties its match
    s = metrics.match_summary(sims)
    assert s.ranks.tolist() == [2, 2, 2]  # a tie counts against the true match
    assert s.top1.tolist() == [0, 0, 0] and s.recall(2).tolist() == [1, 1, 1]
    assert s.margin.tolist() == pytest.approx([0.0, -0.2, -0.2])
    assert s.best_wrong[1].tolist() == [2, 2, 1]
    from smlib.evaluation import retrieval_metrics

    m = retrieval_metrics(sims, 100, 0, "")
    assert m["top1"] == 0 and m["mrr"] == pytest.approx(0.5) and m["recall@5"] == 1
