"""Trained reference maps: a linear map per domain learns a lookup between two vocabularies."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import fast_params
from smlib import evaluation
from smlib.baselines import pair_map_similarity, select_pair_map, top1_and_mrr, train_pair_map
from smlib.models import build_model


def _permuted_vocabulary_toy(n_people=120, n_traits=40, seed=0):
    """Each person has 4 of n_traits; dating writes trait t as word t, hiring as word perm[t] (disjoint vocabularies)."""
    rng = np.random.default_rng(seed)
    traits = [rng.choice(n_traits, size=4, replace=False) for _ in range(n_people)]
    perm = rng.permutation(n_traits)
    dating = np.zeros((n_people, n_traits), dtype=np.float32)
    hiring = np.zeros((n_people, n_traits), dtype=np.float32)
    for i, ts in enumerate(traits):
        dating[i, ts] = 1.0
        hiring[i, perm[ts]] = 1.0
    return dating, hiring


@pytest.mark.parametrize("sparse", [False, True])
def test_a_linear_map_learns_a_permuted_vocabulary(sparse):
    dating, hiring = _permuted_vocabulary_toy()
    train, val = slice(0, 90), slice(90, 120)
    assert top1_and_mrr(dating[val] @ hiring[val].T)[0] < 0.2  # no shared words: string matching fails
    d, h = (sp.csr_matrix(dating), sp.csr_matrix(hiring)) if sparse else (dating, hiring)
    model = train_pair_map(d[train], h[train], out_dim=16, epochs=60, batch_size=32, lr=2e-2, seed=1)
    top1, mrr = top1_and_mrr(pair_map_similarity(model, d[val], h[val]))
    assert top1 == 1.0, (top1, mrr)


def test_pair_map_is_deterministic_for_a_seed():
    dating, hiring = _permuted_vocabulary_toy(n_people=40)
    a = pair_map_similarity(train_pair_map(dating, hiring, out_dim=8, epochs=3, seed=5), dating, hiring)
    b = pair_map_similarity(train_pair_map(dating, hiring, out_dim=8, epochs=3, seed=5), dating, hiring)
    np.testing.assert_array_equal(a, b)


def test_pair_map_needs_aligned_pairs():
    with pytest.raises(ValueError, match="row-aligned"):
        train_pair_map(np.zeros((3, 4)), np.zeros((2, 4)))


def test_select_pair_map_chooses_on_held_out_training_rows_and_refits_on_all():
    dating, hiring = _permuted_vocabulary_toy(n_people=160)
    train, val = slice(0, 120), slice(120, 160)
    model, chosen = select_pair_map(dating[train], hiring[train], lrs=(1e-4, 2e-2), epochs=(2, 40), out_dim=16,
                                    batch_size=32, seed=3)
    assert chosen["n_fit"] + chosen["n_holdout"] == 120 and chosen["n_holdout"] == 18
    grid = chosen["holdout_top1_by_lr_and_epochs"]
    assert set(grid) == {"0.0001", "0.02"} and all(set(v) == {"2", "40"} for v in grid.values())
    best = max(v for row in grid.values() for v in row.values())
    assert chosen["holdout_top1"] == best == grid[str(chosen["lr"])][str(chosen["epochs"])]
    assert (chosen["lr"], chosen["epochs"]) == (2e-2, 40)  # a tiny lr for 2 epochs learns nothing
    assert top1_and_mrr(pair_map_similarity(model, dating[val], hiring[val]))[0] == 1.0


def test_select_pair_map_needs_enough_rows():
    dating, hiring = _permuted_vocabulary_toy(n_people=3)
    with pytest.raises(ValueError, match="too few"):
        select_pair_map(dating, hiring)


def test_trained_reference_rows_learn_only_from_training_people(smoke_dataset, monkeypatch):
    dataset = smoke_dataset
    params = fast_params("v3_contrastive")
    seen = []
    real = evaluation.select_pair_map

    def spy(dating, hiring, **kw):
        seen.append((dating.shape[0], hiring.shape[0]))
        return real(dating, hiring, lrs=(1e-2,), epochs=(2,), **{k: v for k, v in kw.items() if k not in ("lrs", "epochs")})

    monkeypatch.setattr(evaluation, "select_pair_map", spy)
    selection = {}
    rows = {r["condition"]: r for r in evaluation.reference_rows(dataset, params, zero_shot_model=build_model(params),
                                                      selection=selection)}
    n_train = len(dataset.split["train"])
    assert seen == [(n_train, n_train)] * 3  # word, char, frozen probe: training people only
    for name in ("tfidf_trained_word", "tfidf_trained_char", "frozen_probe"):
        assert 0 <= rows[name]["prefix_d2h_top1"] <= 1 and "prefix_h2d_mrr" in rows[name]
        assert rows[name]["prefix_d2h_top1_ci_low"] <= rows[name]["prefix_d2h_top1"] <= rows[name]["prefix_d2h_top1_ci_high"]
        assert selection[name]["lr"] == 1e-2 and selection[name]["epochs"] == 2
    assert selection["frozen_probe"]["features"] == build_model(params).encode(["x"], "dating").shape[1]


def test_reference_similarities_are_saved_and_reproduce_the_rows(smoke_dataset, tmp_path):
    from smlib.baselines import top1_and_mrr as t1

    params = fast_params("v3_contrastive")
    sims, selection = {}, {}
    rows = evaluation.reference_rows(smoke_dataset, params, zero_shot_model=build_model(params), selection=selection,
                                     sims=sims)
    evaluation.write_references(rows, params, tmp_path, selection, sims, smoke_dataset.split["val"])
    saved = np.load(tmp_path / "reference_sims.npz")
    assert saved["person_ids"].tolist() == list(smoke_dataset.split["val"])
    by_name = {r["condition"]: r for r in rows}
    for name in ("tfidf", "tfidf_trained_word", "tfidf_trained_char", "zero_shot", "frozen_probe"):
        assert saved[name].shape == (len(smoke_dataset.split["val"]),) * 2
        assert t1(saved[name])[0] == pytest.approx(by_name[name]["prefix_d2h_top1"])
        assert t1(saved[name].T)[0] == pytest.approx(by_name[name]["prefix_h2d_top1"])
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ValueError, match="person_ids"):
        evaluation.write_references(rows, params, tmp_path, selection, sims)
