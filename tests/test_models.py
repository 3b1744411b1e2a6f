"""The shared encoder (tiny in-process BERT): shapes, normalisation, order, checkpoints."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import fast_params
from transformers import AutoModel

from smlib.config import conditions
from smlib.losses import build_loss
from smlib.models import CheckpointError, ProjectionHeadsModel, build_model, load_checkpoint, save_checkpoint

CONDITIONS = conditions()  # every params/conditions/*.yaml

TEXTS = [
    "Hi! I'm a curious teacher from Denver who loves hiking.",
    "Skilled in Python and API design.",
    "Quiet bookworm, calm and even-keeled, looking for a long-term relationship with someone kind and honest.",
    "Nurse.",
    "A focused individual contributor with ten years in finance and a love of Excel.",
]


@pytest.fixture(scope="module")
def models():
    """One model per condition (built lazily, shared within this module)."""
    cache = {}

    def get(condition):
        if condition not in cache:
            cache[condition] = build_model(fast_params(condition, train__device="cpu"))
        return cache[condition]

    return get


@pytest.mark.parametrize("condition", CONDITIONS)
def test_encode_prefix_has_k_columns_and_unit_rows(models, condition):
    model = models(condition)
    params = fast_params(condition)
    k = params.model.identity_dim
    prefix = model.encode_prefix(TEXTS, "dating")
    assert prefix.shape == (len(TEXTS), k)
    assert torch.allclose(prefix.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    full = model.encode(TEXTS, "hiring")
    assert full.shape == (len(TEXTS), model.embedding_dim) and model.embedding_dim == 384
    assert torch.allclose(full.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert model.identity_dim == k
    assert isinstance(model, ProjectionHeadsModel) == (condition == "projection_heads")
    if condition != "projection_heads":  # the prefix is the leading dims of the raw embedding, re-normalised
        assert torch.allclose(prefix, torch.nn.functional.normalize(model.encode(TEXTS, "dating")[:, :k], dim=1), atol=1e-5)


@pytest.mark.parametrize("dim", [32, 64, 128, 384])
def test_encode_at_dim_width_and_norm(models, dim):
    model = models("v3_contrastive")
    out = model.encode_at_dim(TEXTS, "dating", dim)
    assert out.shape == (len(TEXTS), dim)
    assert torch.allclose(out.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    full = model.encode(TEXTS, "dating")
    assert torch.allclose(out, torch.nn.functional.normalize(full[:, :dim], dim=1), atol=1e-5)


def test_encode_restores_training_mode_and_is_deterministic(models):
    model = models("v3_contrastive")
    model.train()
    a = model.encode(TEXTS, "dating")
    assert model.training
    b = model.encode(TEXTS, "dating")
    assert torch.equal(a, b)  # eval mode inside encode: no dropout
    model.eval()


@pytest.mark.parametrize("chunk", [2, 16])
def test_embed_preserves_input_order(models, chunk):
    model = models("v3_contrastive")
    model.eval()
    with torch.no_grad():
        together = model.embed(TEXTS, chunk=chunk)
        alone = torch.cat([model.embed([t], chunk=chunk) for t in TEXTS])
    assert together.shape == (len(TEXTS), 384)
    assert torch.allclose(together, alone, atol=1e-5)
    assert not torch.allclose(together[0], together[1], atol=1e-3)  # different texts differ


def test_same_seed_same_weights_different_seed_differs(models):
    a = models("v3_contrastive")
    b = build_model(fast_params("v3_contrastive"))
    c = build_model(fast_params("v3_contrastive", seed=7))
    assert torch.equal(a.encode(TEXTS[:2], "dating"), b.encode(TEXTS[:2], "dating"))
    assert not torch.allclose(a.encode(TEXTS[:2], "dating"), c.encode(TEXTS[:2], "dating"))


@pytest.mark.parametrize("condition", ["projection_heads", "adversarial"])
def test_checkpoint_round_trip(tmp_path, condition):
    params = fast_params(condition)
    model = build_model(params)
    loss = build_loss(params)
    with torch.no_grad():  # make sure the heads are not their init values
        for p in list(model.parameters())[-2:] + list(loss.parameters()):
            p.add_(0.01 * torch.randn_like(p))
    folder = save_checkpoint(model, loss, params, tmp_path / "ckpt")
    model2, loss2, params2 = load_checkpoint(folder, params)
    assert params2 == params
    assert torch.allclose(model.encode(TEXTS, "dating"), model2.encode(TEXTS, "dating"), atol=1e-6)
    assert torch.allclose(model.encode_prefix(TEXTS, "hiring"), model2.encode_prefix(TEXTS, "hiring"), atol=1e-6)
    s1, s2 = loss.state_dict(), loss2.state_dict()
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert type(model2) is type(model)
    if condition == "projection_heads":  # params=None loads whatever was saved
        model3, _, saved = load_checkpoint(folder)
        assert saved.hash() == params.hash()
        assert torch.allclose(model.encode(TEXTS[:2], "dating"), model3.encode(TEXTS[:2], "dating"), atol=1e-6)


@pytest.mark.parametrize("trainable_layers", [0, 1])
def test_checkpoint_round_trip_with_a_cached_trunk(tmp_path, trainable_layers):
    """A model trained with a frozen trunk (and, for 0, a pooling adapter) saves and loads as before."""
    params = fast_params("projection_heads", train__trainable_layers=trainable_layers)
    model = build_model(params)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.01 * torch.randn_like(p))
    folder = save_checkpoint(model, build_loss(params), params, tmp_path / "ckpt")
    model2, _, _ = load_checkpoint(folder, params)
    assert (model2.adapter is not None) == (trainable_layers == 0)
    assert torch.allclose(model.encode(TEXTS, "dating"), model2.encode(TEXTS, "dating"), atol=1e-6)
    assert torch.allclose(model.encode_prefix(TEXTS, "hiring"), model2.encode_prefix(TEXTS, "hiring"), atol=1e-6)


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory, models):
    params = fast_params("v3_contrastive", train__device="cpu")
    model = models("v3_contrastive")
    folder = save_checkpoint(model, build_loss(params), params, tmp_path_factory.mktemp("ckpt") / "v3")
    return folder, params, model


def test_checkpoint_with_other_params_names_the_key(saved_checkpoint):
    folder, params, _ = saved_checkpoint
    other = fast_params("v3_contrastive", train__device="cpu", train__lr=0.5)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(folder, other)
    assert "train.lr" in str(e.value)


def test_checkpoint_without_params_json_is_rejected(saved_checkpoint, tmp_path):
    import shutil

    folder = shutil.copytree(saved_checkpoint[0], tmp_path / "broken")
    (folder / "params.json").unlink()
    with pytest.raises(CheckpointError, match="params.json"):
        load_checkpoint(folder)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "no_such_folder")


def test_checkpoint_with_corrupt_params_json_is_rejected(saved_checkpoint, tmp_path):
    import shutil

    folder = shutil.copytree(saved_checkpoint[0], tmp_path / "corrupt")
    d = json.loads((folder / "params.json").read_text())
    d["train"]["nonsense"] = 1
    (folder / "params.json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError):
        load_checkpoint(folder)


def test_saved_encoder_loads_with_plain_transformers(saved_checkpoint):
    folder, params, model = saved_checkpoint
    plain = AutoModel.from_pretrained(folder / "encoder").eval()
    model.eval()
    batch = model.tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model.transformer(**batch).last_hidden_state
        theirs = plain(**batch).last_hidden_state
    assert torch.allclose(ours, theirs, atol=1e-5)
