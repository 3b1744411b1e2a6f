"""Analyses from the committed record: per-person matches, paired differences, gallery curves."""
from __future__ import annotations

import numpy as np
import pytest

from smlib import analysis
from smlib.evaluation import EMBEDDING_KEYS

N = 40


def _emb(rng, noise: float) -> dict:
    dating = rng.normal(size=(N, 16)).astype(np.float32)
    hiring = (dating + noise * rng.normal(size=(N, 16))).astype(np.float32)
    return {"person_ids": np.arange(100, 100 + N), "dating": dating, "hiring": hiring,
            "dating_prefix": dating[:, :8], "hiring_prefix": hiring[:, :8],
            "triplets_dating": np.zeros((1, 3), dtype=np.int64), "triplets_hiring": np.zeros((1, 3), dtype=np.int64)}


def _completed(folder) -> None:
    """A run.json for a hand-made run folder, listing what it holds (smlib reads completed runs only)."""
    import json

    from smlib.record import COMPLETION, sha256

    files = {p.name: sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / COMPLETION).write_text(json.dumps({"params_hash": "hand-made", "files": files}))


@pytest.fixture()
def record(tmp_path):
    """Two seeds of disjoint: v3_contrastive near-perfect, v3_mse noise, a reference matcher in between."""
    rng = np.random.default_rng(0)
    for seed in (42, 43):
        seed_dir = tmp_path / "quick" / "disjoint" / f"seed{seed}"
        for cond, noise in (("v3_contrastive", 0.05), ("v3_mse", 50.0)):
            (seed_dir / cond).mkdir(parents=True)
            np.savez(seed_dir / cond / "embeddings.npz", **_emb(rng, noise))
            _completed(seed_dir / cond)
        ref = _emb(rng, 0.6)
        np.savez(seed_dir / "reference_sims.npz", person_ids=ref["person_ids"],
                 tfidf_trained_char=(ref["dating"] @ ref["hiring"].T).astype(np.float32),
                 zero_shot=rng.normal(size=(N, N)).astype(np.float32))
    assert set(EMBEDDING_KEYS) <= set(_emb(rng, 1.0))
    return tmp_path / "quick"


def test_per_person_top1_averages_both_directions():
    import torch

    # d2h (rows): person 0 hit (1 > 0), person 1 miss (0.5 < 2); h2d (columns): person 0 miss (1 < 2), person 1 hit
    sims = np.array([[1.0, 0.0], [2.0, 0.5]], dtype=np.float32)
    assert analysis.per_person_top1(torch.from_numpy(sims)).tolist() == [0.5, 0.5]
    sims = np.array([[1.0, 0.0], [0.5, 0.8]], dtype=np.float32)  # person 1: d2h hit (0.8 > 0.5), h2d hit (0.8 > 0)
    assert analysis.per_person_top1(torch.from_numpy(sims)).tolist() == [1.0, 1.0]


def test_paired_differences_against_the_proposed_and_the_best_reference(record):
    table = analysis.paired_differences(record, n_resamples=500)
    vs_proposed = table[table.vs == "v3_contrastive"].set_index("method")
    assert vs_proposed.loc["v3_mse", "resolved"] and vs_proposed.loc["v3_mse", "high"] < 0
    assert set(vs_proposed.index) == {"v3_mse", "tfidf_trained_char", "zero_shot"}
    assert (vs_proposed["n_seeds"] == 2).all() and (vs_proposed["n_people"] == N).all()
    best = table[table.vs_role == "best reference"]
    assert set(best.vs) == {"tfidf_trained_char"}  # the better of the two matchers
    assert not table.isna().any().any()


def test_gallery_curves_fall_with_gallery_size_and_end_at_the_full_top1(record):
    curves = analysis.gallery_curves(record, sizes=(2, 10, 20, 500))
    assert sorted(curves.gallery.unique()) == [2, 10, 20, N]  # 500 > N dropped, the full gallery added
    mse = curves[(curves.condition == "v3_mse") & (curves.seed == 42)].set_index("gallery")["top1"]
    assert mse.is_monotonic_decreasing
    import torch

    z = np.load(record / "disjoint" / "seed42" / "reference_sims.npz")
    full = analysis.per_person_top1(torch.from_numpy(z["zero_shot"])).mean()
    got = curves[(curves.condition == "zero_shot") & (curves.seed == 42) & (curves.gallery == N)]["top1"].item()
    assert got == pytest.approx(full)


def test_an_empty_record_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="embeddings.npz"):
        analysis.gallery_curves(tmp_path)


def test_figures_of_the_analyses(record):
    from smlib import plots

    fig = plots.gallery_curves(analysis.gallery_curves(record))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "2 seeds" in ax.get_title()
    assert {line.get_label() for line in ax.lines} >= {"v3_contrastive", "v3_mse", "zero_shot", "tfidf_trained_char"}
    table = analysis.paired_differences(record, n_resamples=200)
    fig = plots.paired_differences(table)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert any("minus v3_contrastive" in t for t in titles) and any("best reference" in t for t in titles)
