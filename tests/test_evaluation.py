"""The evaluator end to end: each condition's smoke-trained model writes both files, and they agree."""
from __future__ import annotations

import json

import numpy as np
import pytest

from smlib.config import CONDITIONS
from smlib.data import build_dataset
from smlib.evaluation import EMBEDDING_KEYS, evaluate, load_embeddings, metrics_from_embeddings, reference_rows
from smlib.training import train

from conftest import fast_params


@pytest.fixture(scope="module")
def dataset():
    return build_dataset(fast_params("v3_contrastive"))


@pytest.mark.parametrize("condition", CONDITIONS)
def test_each_condition_writes_metrics_and_embeddings_that_agree(condition, dataset, tmp_path):
    params = fast_params(condition)
    model = train(params, dataset, progress=False).model
    record = evaluate(model, dataset, params, out_dir=tmp_path)

    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["params_hash"] == params.hash() and saved["condition"] == condition
    emb = load_embeddings(tmp_path / "embeddings.npz")
    assert set(EMBEDDING_KEYS) <= set(emb)
    n_val = len(dataset.split["val"])
    assert emb["dating"].shape == (n_val, model.embedding_dim)
    assert emb["dating_prefix"].shape == (n_val, model.prefix_dim)
    np.testing.assert_array_equal(emb["person_ids"], dataset.split["val"])

    again = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
    assert again.keys() == saved["metrics"].keys() == record["metrics"].keys()
    for key, value in saved["metrics"].items():
        assert again[key] == pytest.approx(value, abs=1e-6), key


def test_projection_heads_metrics_use_the_identity_head(dataset, tmp_path):
    """Defect 2 of the original: cross-domain metrics must come from encode_prefix (the identity head)."""
    params = fast_params("projection_heads")
    model = train(params, dataset, progress=False).model
    evaluate(model, dataset, params, out_dir=tmp_path)
    emb = load_embeddings(tmp_path / "embeddings.npz")
    texts = [dataset.text("dating", i) for i in dataset.split["val"]]
    np.testing.assert_allclose(emb["dating_prefix"], model.encode_prefix(texts, "dating").numpy(), atol=2e-3)
    sliced = model.encode_at_dim(texts, "dating", model.prefix_dim).numpy()
    assert not np.allclose(emb["dating_prefix"], sliced, atol=1e-2)


def test_reference_rows(dataset):
    params = fast_params("v3_contrastive")
    rows = {r["condition"]: r for r in reference_rows(dataset, params)}
    n = len(dataset.split["val"])
    assert rows["chance"]["prefix_d2h_top1"] == pytest.approx(1 / n)
    assert rows["tfidf"]["prefix_d2h_top1"] > 0.5  # the verbatim smoke texts leak by string
    assert 0 < rows["ceiling"]["prefix_d2h_top1"] <= 1
