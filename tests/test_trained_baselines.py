"""Trained reference maps: a linear map per domain learns a lookup between two vocabularies."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import fast_params

from smlib import references
from smlib.baselines import pair_map_similarity, select_pair_map, select_tfidf_map, train_pair_map
from smlib.metrics import top1_and_mrr
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


def _toy_texts(n_people=150, n_traits=30, seed=0):
    """Dating names trait t 'dt', hiring names it 'h<perm t>'; every person also has one word no one else uses."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_traits)
    dating, hiring = [], []
    for i in range(n_people):
        ts = rng.choice(n_traits, size=4, replace=False)
        dating.append(" ".join([f"d{t}x" for t in ts] + [f"only{i}dating"]))
        hiring.append(" ".join([f"h{perm[t]}y" for t in ts] + [f"only{i}hiring"]))
    return dating, hiring


def test_select_tfidf_map_chooses_the_vocabulary_on_held_out_rows_and_skips_empty_ones():
    dating, hiring = _toy_texts()
    train, val = slice(0, 120), slice(120, 150)
    vec, model, chosen = select_tfidf_map(dating[train], hiring[train], "word", (1, 1), min_dfs=(1, 2, 10_000),
                                          lrs=(1e-2,), epochs=(5, 30), out_dim=16, batch_size=32, seed=2)
    grid = chosen["holdout_top1_by_min_df_lr_and_epochs"]
    assert set(grid) == {"1", "2"}  # min_df 10000 prunes every term: skipped, not an error
    best = max(v for by_lr in grid.values() for row in by_lr.values() for v in row.values())
    assert chosen["holdout_top1"] == best == grid[str(chosen["min_df"])][str(chosen["lr"])][str(chosen["epochs"])]
    assert chosen["n_fit"] + chosen["n_holdout"] == 120
    assert chosen["min_df"] == 2  # the words only one person uses are memorised by min_df 1, and pruned by 2
    assert not any(w.startswith("only") for w in vec.vocabulary_) and chosen["features"] == 60
    sims = pair_map_similarity(model, vec.transform(dating[val]), vec.transform(hiring[val]))
    assert top1_and_mrr(sims)[0] > 0.8 and top1_and_mrr(sims.T)[0] > 0.8  # validation people were never seen


def test_select_tfidf_map_refuses_when_no_min_df_leaves_a_term():
    dating, hiring = _toy_texts(n_people=20)
    with pytest.raises(ValueError, match="min_df"):
        select_tfidf_map(dating, hiring, "word", (1, 1), min_dfs=(500,), lrs=(1e-2,), epochs=(1,))
    with pytest.raises(ValueError, match="row-aligned"):
        select_tfidf_map(dating, hiring[:-1], "word", (1, 1))


def test_trained_reference_rows_learn_only_from_training_people(smoke_dataset, monkeypatch):
    dataset = smoke_dataset
    params = fast_params("v3_contrastive")
    seen, seen_texts = [], []
    real, real_tfidf = references.select_pair_map, references.select_tfidf_map
    fast = {"lrs": (1e-2,), "epochs": (2,)}

    def spy(dating, hiring, **kw):
        seen.append((dating.shape[0], hiring.shape[0]))
        return real(dating, hiring, **fast, **{k: v for k, v in kw.items() if k not in fast})

    def spy_tfidf(dating, hiring, analyzer, ngrams, **kw):
        seen_texts.append((list(dating), list(hiring), analyzer))
        return real_tfidf(dating, hiring, analyzer, ngrams, min_dfs=(1, 3), **fast,
                          **{k: v for k, v in kw.items() if k not in fast})

    monkeypatch.setattr(references, "select_pair_map", spy)
    monkeypatch.setattr(references, "select_tfidf_map", spy_tfidf)
    selection = {}
    rows = {r["condition"]: r for r in references.reference_rows(dataset, params, zero_shot_model=build_model(params),
                                                      selection=selection)}
    train_ids = dataset.split["train"]
    assert seen == [(len(train_ids), len(train_ids))]  # frozen probe: training people only
    assert [a for _, _, a in seen_texts] == ["word", "char_wb"]
    for dating, hiring, _ in seen_texts:  # TF-IDF maps: the training people's texts, row i = one person
        assert dating == [dataset.text("dating", i) for i in train_ids]
        assert hiring == [dataset.text("hiring", i) for i in train_ids]
    for name in ("tfidf_trained_word", "tfidf_trained_char", "frozen_probe"):
        assert 0 <= rows[name]["prefix_d2h_top1"] <= 1 and "prefix_h2d_mrr" in rows[name]
        assert rows[name]["prefix_d2h_top1_ci_low"] <= rows[name]["prefix_d2h_top1"] <= rows[name]["prefix_d2h_top1_ci_high"]
        assert selection[name]["lr"] == 1e-2 and selection[name]["epochs"] == 2
    for name in ("tfidf_trained_word", "tfidf_trained_char"):
        assert selection[name]["min_df"] in (1, 3)
    assert selection["frozen_probe"]["features"] == build_model(params).encode(["x"], "dating").shape[1]
    table = references.selection_table(selection)
    assert list(table.index) == ["tfidf_trained_word", "tfidf_trained_char", "frozen_probe"]
    assert {"lr", "epochs", "min_df", "holdout_top1"} <= set(table.columns)
    assert not [c for c in table.columns if c.startswith("holdout_top1_by")]  # the grids stay in references.json


def test_reference_similarities_are_saved_and_reproduce_the_rows(smoke_dataset, tmp_path):
    from smlib.metrics import top1_and_mrr as t1

    params = fast_params("v3_contrastive")
    sims, selection = {}, {}
    rows = references.reference_rows(smoke_dataset, params, zero_shot_model=build_model(params), selection=selection,
                                     sims=sims)
    references.write_references(rows, params, tmp_path, selection, sims, smoke_dataset.split["val"])
    saved = np.load(tmp_path / "reference_sims.npz")
    assert saved["person_ids"].tolist() == list(smoke_dataset.split["val"])
    by_name = {r["condition"]: r for r in rows}
    for name in ("tfidf", "tfidf_trained_word", "tfidf_trained_char", "zero_shot", "frozen_probe"):
        assert saved[name].shape == (len(smoke_dataset.split["val"]),) * 2
        assert t1(saved[name])[0] == pytest.approx(by_name[name]["prefix_d2h_top1"])
        assert t1(saved[name].T)[0] == pytest.approx(by_name[name]["prefix_h2d_top1"])
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(ValueError, match="person_ids"):
        references.write_references(rows, params, tmp_path, selection, sims)
