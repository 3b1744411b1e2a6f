"""Cached-trunk training: the cached path equals the uncached forward; the cache is atomic and never used stale."""
from __future__ import annotations

import pytest
import torch
from conftest import fast_params

from smlib.models import build_model
from smlib.models.packed import embed_states
from smlib.training import train
from smlib.trunk_cache import cache_key, cache_path, cached_embedder, load_or_build_cache, read_cache, write_cache


def _model(trainable_layers, **overrides):
    params = fast_params("v3_contrastive", **{"train__trainable_layers": trainable_layers, "model__max_length": 24,
                                              **overrides})
    return params, build_model(params).eval()


def _plain_forward(model, texts):
    """Mean-pooled output of the unmodified transformer (the reference every path must match)."""
    batch = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model.transformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return model.adapter(pooled) if model.adapter is not None else pooled


@pytest.mark.parametrize("trainable_layers", [0, 1, 2])
def test_cached_path_equals_the_uncached_forward(smoke_dataset, tmp_path, trainable_layers):
    params, model = _model(trainable_layers)
    if model.adapter is not None:  # a non-identity adapter, so the test sees it
        torch.nn.init.normal_(model.adapter.down.weight, std=0.05)
    cache = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    refs = [("dating", i) for i in range(6)] + [("hiring", i) for i in range(6)]
    texts = [smoke_dataset.text(d, i) for d, i in refs]
    with torch.no_grad():
        cached = embed_states(model, cache.get(refs))  # (12, H)
        uncached = model.embed(texts)  # (12, H)
    reference = _plain_forward(model, texts)
    assert torch.allclose(cached, reference, atol=1e-5), (cached - reference).abs().max()
    assert torch.allclose(uncached, reference, atol=1e-5)
    assert not torch.allclose(cached[0], cached[1], atol=1e-3)


def test_cache_holds_every_text_and_freezes_only_the_trunk(smoke_dataset, tmp_path):
    params, model = _model(1)
    cache = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert len(cache) == sum(len(t) for t in smoke_dataset.texts.values())
    layers = model.transformer.encoder.layer
    assert model.cut_layer == len(layers) - 1
    assert not any(p.requires_grad for p in model.transformer.embeddings.parameters())
    assert not any(p.requires_grad for layer in layers[:-1] for p in layer.parameters())
    assert all(p.requires_grad for p in layers[-1].parameters())


def test_trainable_layers_zero_freezes_the_encoder_and_trains_an_adapter(smoke_dataset, tmp_path):
    params = fast_params("v3_contrastive", train__trainable_layers=0)
    result = train(params, smoke_dataset, progress=False, embedder=cached_embedder(tmp_path))
    model = result.model
    assert not any(p.requires_grad for p in model.transformer.parameters())
    assert model.adapter is not None and model.adapter.down.weight.abs().sum() > 0  # it trained away from zero
    assert model.encode(["a text"], "dating").shape == (1, model.embedding_dim)
    assert model.encode_prefix(["a text"], "dating").shape == (1, model.identity_dim)


def test_trainable_layers_beyond_the_encoder_is_one_clear_error():
    with pytest.raises(ValueError, match="trainable_layers=9 is more than the 2 layers"):  # refused by validation
        _model(9)


def test_cache_is_reused_not_recomputed(smoke_dataset, tmp_path, monkeypatch):
    _, model = _model(1)
    load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    import smlib.trunk_cache as tc

    monkeypatch.setattr(tc, "build_cache", lambda *a, **k: pytest.fail("a valid cache was rebuilt"))
    again = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert len(again) > 0


def _path(model, dataset, root):
    return cache_path(cache_key(model, dataset), root)


def test_corrupt_cache_is_detected_and_rebuilt(smoke_dataset, tmp_path):
    _, model = _model(1)
    good = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    path = _path(model, smoke_dataset, tmp_path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside the stored states
    path.write_bytes(bytes(raw))
    assert read_cache(path, cache_key(model, smoke_dataset)) is None
    rebuilt = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert torch.equal(rebuilt.states, good.states)
    path.write_bytes(b"not a torch file")  # truncated / garbage
    assert read_cache(path, cache_key(model, smoke_dataset)) is None
    assert torch.equal(load_or_build_cache(model, smoke_dataset, tmp_path, progress=False).states, good.states)


def test_stale_cache_is_never_used(smoke_dataset, tmp_path):
    """A file at the right path holding another key (other weights, cut or texts) is rebuilt."""
    _, model = _model(1)
    good = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    path = _path(model, smoke_dataset, tmp_path)
    stale = type(good)({**good.key, "texts": "something else"}, good.index, good.states + 1.0)
    write_cache(stale, path)
    again = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert torch.equal(again.states, good.states)


def test_cache_key_depends_on_weights_cut_and_length(smoke_dataset):
    _, m1 = _model(1)
    _, m2 = _model(2)
    _, m3 = _model(1, model__max_length=20)
    keys = [cache_key(m, smoke_dataset) for m in (m1, m2, m3)]
    assert len({cache_path(k, "/x") for k in keys}) == 3
    with torch.no_grad():
        m1.transformer.embeddings.word_embeddings.weight[0] += 1.0
    assert cache_key(m1, smoke_dataset)["encoder"] != keys[0]["encoder"]


def test_cache_write_is_atomic(smoke_dataset, tmp_path, monkeypatch):
    """A write that fails midway leaves no file behind at the cache path (and no temp file)."""
    _, model = _model(1)
    import smlib.trunk_cache as tc

    def failing_save(obj, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(tc.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_training_with_a_cached_trunk_matches_the_uncached_step(smoke_dataset, tmp_path):
    """One step through the cache and one through the full forward give the same loss and update (no dropout)."""
    losses = []
    for use_cache in (True, False):
        params = fast_params("v3_contrastive", train__trainable_layers=1, train__max_steps=1)
        model = build_model(params)
        for m in model.modules():  # dropout off: both paths are then deterministic functions of the weights
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        if not use_cache:
            model.trainable_layers = "all"  # same frozen layers, but every step runs the whole stack
        result = train(params, smoke_dataset, model=model, progress=False, embedder=cached_embedder(tmp_path))
        losses.append(result.history["total"].iloc[0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
