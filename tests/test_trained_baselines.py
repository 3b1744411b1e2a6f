"""Trained reference maps: a linear map per domain learns a lookup between two vocabularies."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from smlib.baselines import pair_map_similarity, top1_and_mrr, train_pair_map


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
