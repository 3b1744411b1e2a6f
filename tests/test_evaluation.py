"""The evaluator end to end: each condition's smoke-trained model writes both files, and they agree."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import fast_params

from smlib.config import conditions
from smlib.data import build_dataset
from smlib.evaluation import EMBEDDING_KEYS, evaluate, load_embeddings, metrics_from_embeddings, reference_rows
from smlib.models import build_model
from smlib.training import train

CONDITIONS = conditions()  # every params/conditions/*.yaml


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
    assert emb["dating_prefix"].shape == (n_val, model.identity_dim)
    np.testing.assert_array_equal(emb["person_ids"], dataset.split["val"])

    again = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
    assert again.keys() == saved["metrics"].keys() == record["metrics"].keys()
    for key, value in saved["metrics"].items():
        assert again[key] == pytest.approx(value, abs=1e-6), key


def test_projection_heads_metrics_use_the_identity_head(dataset, tmp_path):
    """Defect 2 of the original (docs/design.md): cross-domain metrics must come from encode_prefix (the identity head)."""
    params = fast_params("projection_heads")
    model = train(params, dataset, progress=False).model
    evaluate(model, dataset, params, out_dir=tmp_path)
    emb = load_embeddings(tmp_path / "embeddings.npz")
    texts = [dataset.text("dating", i) for i in dataset.split["val"]]
    np.testing.assert_allclose(emb["dating_prefix"], model.encode_prefix(texts, "dating").numpy(), atol=2e-3)
    sliced = model.encode_at_dim(texts, "dating", model.identity_dim).numpy()
    assert not np.allclose(emb["dating_prefix"], sliced, atol=1e-2)


def test_cka_is_measured_in_each_models_identity_space():
    """projection_heads: cka@d on its identity head (n/a beyond its width), never on the task head."""
    from smlib.evaluation import metrics_from_embeddings
    from smlib.metrics import cka, truncate_normalize

    torch.manual_seed(3)
    n = 20
    full = {d: truncate_normalize(torch.randn(n, 384)) for d in ("dating", "hiring")}
    head = {d: truncate_normalize(torch.randn(n, 64)) for d in ("dating", "hiring")}
    trip = np.array([[0, 1, 2], [3, 4, 5]])
    base = {"person_ids": np.arange(n), "triplets_dating": trip, "triplets_hiring": trip,
            "dating": full["dating"].numpy(), "hiring": full["hiring"].numpy()}
    heads = {**base, "dating_prefix": head["dating"].numpy(), "hiring_prefix": head["hiring"].numpy()}
    m = metrics_from_embeddings(heads, [32, 64, 128, 256, 384], 20, 0)
    assert m["cka@32"] == pytest.approx(cka(head["dating"][:, :32], head["hiring"][:, :32]))
    assert m["cka@64"] == pytest.approx(cka(head["dating"], head["hiring"]))
    assert m["cka@128"] is None and m["cka@384"] is None
    nested = {**base, "dating_prefix": truncate_normalize(full["dating"], 64).numpy(),
              "hiring_prefix": truncate_normalize(full["hiring"], 64).numpy()}
    m = metrics_from_embeddings(nested, [32, 64, 128, 256, 384], 20, 0)
    assert m["cka@128"] == pytest.approx(cka(full["dating"][:, :128], full["hiring"][:, :128]))


def test_evaluation_encodes_in_eval_batch_size_chunks(dataset):
    """eval.batch_size is the number of texts per encoder pass when embedding validation people."""
    from smlib.evaluation import embed_validation

    params = fast_params("v3_contrastive", eval__batch_size=5)
    model = build_model(params)
    seen = []
    real = model._chunks

    def recording_chunks(lengths, chunk=None):
        chunks, inverse = real(lengths, chunk)
        seen.append(max(len(c) for c in chunks))
        return chunks, inverse

    model._chunks = recording_chunks
    evaluate(model, dataset, params)
    assert seen and set(seen) == {5}  # the validation people are more than 5: every pass holds 5 texts
    assert model.encode_chunk == params.train.encode_chunk  # the model's own chunk is never changed
    embed_validation(model, dataset)
    assert seen[-1] == min(params.train.encode_chunk, len(dataset.split["val"]))


def test_reference_rows(dataset):
    params = fast_params("v3_contrastive")
    rows = {r["condition"]: r for r in reference_rows(dataset, params)}
    n = len(dataset.split["val"])
    assert rows["chance"]["prefix_d2h_top1"] == pytest.approx(1 / n)
    assert rows["tfidf"]["prefix_d2h_top1"] > 0.5  # the verbatim smoke texts leak by string
    assert 0 < rows["ceiling"]["prefix_d2h_top1"] <= 1
