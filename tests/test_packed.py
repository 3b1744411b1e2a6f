"""Packed top blocks (smlib.models.packed): the padded path's embeddings and gradients, on real tokens only."""
from __future__ import annotations

import pytest
import torch
from conftest import fast_params

from smlib.models import build_model
from smlib.models.packed import Packing, dropout, embed_packed, embed_states, packable
from smlib.models.shared import encoder_layers
from smlib.trunk_cache import TrunkCache

TEXTS = ["hello there " * k for k in (1, 3, 7, 12, 2, 5)]


def _model(layers: int, **overrides):
    return build_model(fast_params("v3_contrastive", train__trainable_layers=layers, model__max_length=40, **overrides))


def _states(model) -> list[torch.Tensor]:
    """Each text's trunk states, computed alone (no padding anywhere)."""
    return [model.trunk_states(torch.tensor([t]), torch.ones(1, len(t), dtype=torch.long))[0]
            for t in model.tokenize(TEXTS)]


def _grads(model, out):
    params = [p for p in model.parameters() if p.requires_grad]
    return params, torch.autograd.grad(out.square().sum(), params)


@pytest.mark.parametrize("layers", [1, 2])
def test_packed_blocks_give_the_padded_embeddings_and_gradients(layers):
    model = _model(layers)
    model.eval()  # no dropout: both paths are deterministic
    states = _states(model)
    lengths = torch.tensor([len(s) for s in states])
    padded = embed_states(model, states)
    packed = embed_packed(model, torch.cat(states), lengths)
    assert packed.shape == padded.shape == (len(TEXTS), model.embedding_dim)
    assert torch.allclose(packed, padded, atol=1e-5)
    assert torch.allclose(packed, model.embed(TEXTS), atol=1e-5)  # and the full encoder's, from token ids
    params, g_padded = _grads(model, embed_states(model, states))
    _, g_packed = _grads(model, embed_packed(model, torch.cat(states), lengths))
    for p, a, b in zip(params, g_padded, g_packed, strict=True):
        # (the key bias's gradient is zero in exact arithmetic: softmax ignores a constant per query)
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, float(a.abs().max()))), p.shape


def test_groups_of_texts_and_input_order_are_kept():
    model = _model(1)
    model.eval()
    states = _states(model)
    lengths = torch.tensor([len(s) for s in states])
    whole = embed_packed(model, torch.cat(states), lengths)
    grouped = embed_packed(model, torch.cat(states), lengths, pack_texts=2)  # three length-sorted groups
    assert torch.allclose(grouped, whole, atol=1e-6)
    order = [3, 0, 5, 1, 4, 2]
    shuffled = embed_packed(model, torch.cat([states[i] for i in order]), lengths[order])
    assert torch.allclose(shuffled, whole[order], atol=1e-6)


def test_training_mode_applies_dropout_and_bf16_stays_close():
    model = _model(1)
    states = _states(model)
    flat, lengths = torch.cat(states), torch.tensor([len(s) for s in states])
    model.train()
    assert not torch.allclose(embed_packed(model, flat, lengths), embed_packed(model, flat, lengths))
    model.eval()
    fp32 = embed_packed(model, flat, lengths)
    model.precision = "bf16"
    bf16 = embed_packed(model, flat, lengths)
    assert bf16.dtype == torch.float32 and torch.allclose(bf16, fp32, atol=0.05, rtol=0.05)


def test_a_block_without_bert_parts_keeps_the_padded_path():
    model = _model(1)
    assert all(packable(layer) for layer in encoder_layers(model.transformer))
    assert not packable(torch.nn.TransformerEncoderLayer(32, 2))


def test_packing_and_the_cache_gather():
    packing = Packing.of(torch.tensor([2, 3, 3, 5]), bucket=2)
    assert packing.segment.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]
    first, second = packing.buckets
    assert (first.start, first.end, first.longest, second.start, second.end, second.longest) == (0, 5, 3, 5, 13, 5)
    assert first.grid_index.tolist() == [0, 1, 3, 4, 5]
    assert first.key_mask.view(2, 3).tolist() == [[True, True, False], [True, True, True]]
    assert second.grid_index.tolist() == [0, 1, 2, 5, 6, 7, 8, 9]
    states = torch.arange(12.0).view(6, 2)
    cache = TrunkCache({}, {("dating", 0): (0, 2), ("hiring", 0): (2, 1), ("dating", 1): (3, 3)}, states)
    refs = [("dating", 1), ("dating", 0), ("hiring", 0)]
    packed, lengths = cache.gather(refs)
    assert lengths.tolist() == [3, 2, 1]
    assert torch.equal(packed, torch.cat(cache.get(refs)))


def test_fast_dropout_drops_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = dropout(x, 0.1, True)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - 0.1) < 0.003  # p within its binomial noise
    assert torch.allclose(y[kept], torch.full_like(y[kept], 65536 / (65536 - 6554)))
    assert abs(y.mean().item() - 1.0) < 0.005
    assert dropout(x, 0.1, False) is x and dropout(x, 0.0, True) is x
    xb = torch.randn(1001, dtype=torch.bfloat16, requires_grad=True)  # odd sizes, other dtypes, gradients
    yb = dropout(xb, 0.5, True)
    assert yb.dtype == torch.bfloat16 and yb.shape == xb.shape
    yb.sum().backward()
    assert torch.equal(xb.grad != 0, yb.detach() != 0)


def test_the_training_attention_is_the_same_math(monkeypatch):
    """With dropout made the identity, the training path (explicit softmax, masked scores) == SDPA's eval path."""
    from smlib.models import packed

    model = _model(2)
    states = _states(model)
    flat, lengths = torch.cat(states), torch.tensor([len(s) for s in states])
    model.eval()
    want = embed_packed(model, flat, lengths)
    monkeypatch.setattr(packed, "dropout", lambda x, p, training: x)
    model.train()
    assert torch.allclose(embed_packed(model, flat, lengths), want, atol=1e-5)


@pytest.mark.parametrize("condition", ["v3_contrastive", "projection_heads"])
def test_encode_both_is_encode_and_encode_prefix(condition):
    """embed_validation's one pass gives what the two public calls give."""
    model = build_model(fast_params(condition))
    full, prefix = model.encode_both(TEXTS, "dating")
    assert torch.allclose(full, model.encode(TEXTS, "dating"), atol=1e-6)
    assert torch.allclose(prefix, model.encode_prefix(TEXTS, "dating"), atol=1e-6)
    assert prefix.shape == (len(TEXTS), model.identity_dim)


# --- the one pooling ----------------------------------------------------------------------------------------------

def test_mean_pool_is_each_texts_token_mean_in_float32_in_either_layout():
    """Closed form: text 0 = rows [1, 2] and [3, 4], text 1 = [5, 6], text 2 has no token; the padded layout of the
    same states gives the same; bf16 states are summed in float32 (1 + 2^-8 is not a bf16 number, so a bf16 sum of
    256 ones and 256 values 2^-8 would lose the small ones: their float32 mean is (256 + 1) / 512)."""
    from smlib.embeddings import mean_pool, mean_pool_padded

    states = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    pooled = mean_pool(states, torch.tensor([0, 0, 1]), 3)
    assert pooled.dtype == torch.float32 and torch.equal(pooled, torch.tensor([[2.0, 3.0], [5.0, 6.0], [0.0, 0.0]]))
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [99.0, 99.0]]])  # text 1's second token is padding
    assert torch.equal(mean_pool_padded(hidden, torch.tensor([[1, 1], [1, 0]])), pooled[:2])
    small = torch.cat([torch.ones(256, 1), torch.full((256, 1), 2.0 ** -8)]).to(torch.bfloat16)
    assert mean_pool(small, torch.zeros(512, dtype=torch.long), 1).item() == (256 + 256 * 2.0 ** -8) / 512


def test_one_pooling_serves_training_evaluation_the_fast_path_and_export():
    """No other module of smlib defines a pooling (a function named *pool* or *_mean*), and the exported
    sentence-transformers folder declares the pooling the model computes (test_export checks the folder's vectors
    against encode_prefix)."""
    import ast
    import re
    from pathlib import Path

    import smlib
    from smlib.embeddings import sentence_transformers_pooling

    package = Path(smlib.__file__).parent
    pooling = {(p.relative_to(package).as_posix(), node.name) for p in package.rglob("*.py")
               for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.FunctionDef)
               and re.search(r"pool(?!ed)|_mean$", node.name.lower())}  # not `pooled`, which calls the model
    assert pooling == {("embeddings.py", "mean_pool"), ("embeddings.py", "mean_pool_padded"),
                       ("embeddings.py", "sentence_transformers_pooling")}, pooling
    assert sentence_transformers_pooling(384)["pooling_mode_mean_tokens"] is True
    export = (package / "models" / "export.py").read_text()
    assert "sentence_transformers_pooling(hidden)" in export and "pooling_mode_mean_tokens" not in export
