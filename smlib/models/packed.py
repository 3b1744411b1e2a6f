"""BERT blocks over packed tokens: a step's texts as one (tokens, H) matrix, no padding outside attention.

Every part of a BERT block but attention works token by token (the projections, the feed-forward, the
LayerNorms, dropout), so it can run on the step's real tokens stacked into one matrix: one large matrix
multiply per weight instead of one per padded chunk, and no work on padding. Only attention needs the
texts apart; there the tokens are scattered into a (texts, longest, H) grid, attended with a key-padding
mask, and gathered back. Mean pooling is a segment sum. The math is BertLayer's (dense, dropout,
LayerNorm of the residual; softmax(QK^T / sqrt(d)) V with attention dropout), so in fp32 a block gives
the padded path's output within float rounding; in training mode the dropout masks are drawn in another
order (and by smlib's faster `dropout`), so runs are equivalent in distribution, not bit for bit.

`packable(layer)` says whether a block has BertLayer's parts (BERT, MiniLM, BGE, E5 ...); other encoders
keep the padded path (embed_states). Both forwards start from cached trunk states (smlib.trunk_cache) and end in
the model's own pooling adapter, so they give the model's `embed` of the same texts.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..embeddings import mean_pool, mean_pool_padded
from .shared import autocast, encoder_layers

PACK_TEXTS = 256  # texts per packed group: bounds the attention grid (texts x longest x H)


def span_rows(starts: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The rows start_i .. start_i + length_i - 1 of every span, span after span: (sum of lengths,)."""
    offsets = torch.cumsum(lengths, 0) - lengths  # where each span begins in the output
    return torch.repeat_interleave(starts - offsets, lengths) + torch.arange(int(lengths.sum()))


@dataclass(frozen=True)
class Bucket:
    """A run of consecutive texts attended together: packed rows [start, end), padded to `longest` tokens."""

    start: int
    end: int
    n_texts: int
    longest: int
    grid_index: torch.Tensor  # (end - start,) row * longest + position: each token's cell in the bucket's grid
    key_mask: torch.Tensor  # (n_texts, 1, 1, longest) True where a key is a real token


@dataclass(frozen=True)
class Packing:
    """Where each of a step's tokens sits: its text (for pooling) and its attention bucket.

    Texts come in length order (embed_packed sorts them), so a bucket of `bucket` consecutive texts pads
    only to its own longest text: attention's grid, its softmax and its dropout cover little padding."""

    lengths: torch.Tensor  # (C,) tokens per text
    segment: torch.Tensor  # (N,) the text of each packed token
    buckets: tuple[Bucket, ...]

    @classmethod
    def of(cls, lengths: torch.Tensor, device: torch.device | str = "cpu", bucket: int = 16) -> Packing:
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        n = len(lengths)
        starts = torch.cumsum(lengths, 0) - lengths  # (C,) first packed row of each text
        segment = torch.repeat_interleave(torch.arange(n), lengths)  # (N,)
        buckets = []
        for b in range(0, n, max(1, bucket)):
            lens = lengths[b:b + bucket]
            longest, first = int(lens.max()), int(starts[b])
            seg = torch.repeat_interleave(torch.arange(len(lens)), lens)  # (N_b,) text within the bucket
            position = torch.arange(int(lens.sum())) - (torch.cumsum(lens, 0) - lens)[seg]
            key_mask = (torch.arange(longest)[None, :] < lens[:, None])[:, None, None, :]
            buckets.append(Bucket(first, first + int(lens.sum()), len(lens), longest,
                                  (seg * longest + position).to(device), key_mask.to(device)))
        return cls(lengths.to(device), segment.to(device), tuple(buckets))


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout whose mask comes from 16-bit slices of 64-bit random words: one generator call per four
    elements, where torch's dropout makes one per element (~3x faster on a CPU, where that call is the cost).
    The drop probability is p rounded to a multiple of 1/65536 (0.1 -> 0.100006) and kept values are scaled
    by 1 / (1 - that), so the expectation is exact."""
    if not training or p <= 0.0:
        return x
    if x.device.type not in ("cpu", "cuda"):  # 64-bit random words are drawn on CPU and CUDA; elsewhere torch's own
        return F.dropout(x, p, True)
    threshold = round(p * 65536)  # a uniform 16-bit draw below it drops the element
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2 ** 63), 2 ** 63 - 1)
    draws = words.view(torch.int16)[: x.numel()].view(x.shape)
    keep = (draws >= threshold - 32768).to(x.dtype).mul_(65536 / (65536 - threshold))  # 0 or 1 / (1 - p)
    return x * keep  # (a product's backward is one more product; torch.where's was ~5x slower here)


def packable(layer: torch.nn.Module) -> bool:
    """True when a block has BertLayer's parts, so packed_layer computes what it computes."""
    try:
        sa, so, inter, out = layer.attention.self, layer.attention.output, layer.intermediate, layer.output
        parts = (sa.query, sa.key, sa.value, so.dense, so.LayerNorm, inter.dense, out.dense, out.LayerNorm)
    except AttributeError:
        return False
    qkv = (sa.query, sa.key, sa.value)
    return (all(isinstance(p, (torch.nn.Linear, torch.nn.LayerNorm)) for p in parts)
            and all(m.bias is not None and m.out_features == sa.query.in_features for m in qkv)
            and not getattr(layer, "is_decoder", False) and hasattr(sa, "num_attention_heads")
            and getattr(sa, "position_embedding_type", "absolute") == "absolute")


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packing: Packing, heads: int, p: float,
            training: bool, fast_dropout: bool = True) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v within each text, with attention dropout p in training: packed (N, H) in and out."""
    h = q.shape[-1]
    out = []
    for b in packing.buckets:
        def grid(x, b=b):  # the bucket's packed rows -> (texts, heads, longest, d), zeros at padding
            cells = x.new_zeros(b.n_texts * b.longest, h).index_copy(0, b.grid_index, x[b.start:b.end])
            return cells.view(b.n_texts, b.longest, heads, h // heads).transpose(1, 2)

        qg, kg, vg = grid(q), grid(k), grid(v)
        if training and p > 0.0 and fast_dropout:  # SDPA would draw its dropout mask one element at a time
            scores = (qg @ kg.transpose(-1, -2)) * (h // heads) ** -0.5
            scores = scores.masked_fill(~b.key_mask, torch.finfo(scores.dtype).min)
            ctx = dropout(torch.softmax(scores, dim=-1), p, True) @ vg
        else:
            ctx = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=b.key_mask, dropout_p=p if training else 0.0)
        out.append(ctx.transpose(1, 2).reshape(b.n_texts * b.longest, h).index_select(0, b.grid_index))
    return torch.cat(out)  # (N, H)


def packed_layer(layer: torch.nn.Module, x: torch.Tensor, packing: Packing, fast_dropout: bool = True) -> torch.Tensor:
    """One BertLayer over packed tokens x (N, H); fast_dropout False draws torch's own dropout masks (the bench's
    comparison)."""
    sa, so, out = layer.attention.self, layer.attention.output, layer.output
    train = layer.training
    # query, key and value as one matrix multiply (one read and one cast of x, one larger GEMM)
    qkv = F.linear(x, torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]),
                   torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
    q, k, v = qkv.split(x.shape[-1], dim=-1)
    ctx = _attend(q, k, v, packing, sa.num_attention_heads, sa.dropout.p, train, fast_dropout)
    drop = dropout if fast_dropout else (lambda y, p, training: F.dropout(y, p, training))
    h = so.LayerNorm(drop(so.dense(ctx), so.dropout.p, train) + x)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(h))
    return out.LayerNorm(drop(out.dense(inner), out.dropout.p, train) + h)  # (N, H)


def embed_packed(model, tokens: torch.Tensor, lengths, fast_dropout: bool = True,
                 pack_texts: int = PACK_TEXTS) -> torch.Tensor:
    """The model's embedding of texts from their cached trunk states packed into one (N_tokens, H) matrix (text
    after text, `lengths` tokens each): the top blocks run on the real tokens only. Texts go in length-sorted
    groups of up to pack_texts, which bound the attention grid; fast_dropout False draws torch's own dropout masks.
    Blocks that are not packable take embed_states. Returns (C, H) in input order."""
    top = encoder_layers(model.transformer)[model.cut_layer:]
    lengths = torch.as_tensor(lengths, dtype=torch.long)
    if not all(packable(layer) for layer in top):
        return embed_states(model, list(torch.split(tokens, lengths.tolist())))
    starts = torch.cumsum(lengths, 0) - lengths
    groups, inverse = model._chunks(lengths.tolist(), pack_texts)
    pooled = []
    with autocast(model.device, model.precision):
        for idx in groups:
            idx = torch.tensor(idx, dtype=torch.long)
            rows = span_rows(starts[idx], lengths[idx])  # the group's token rows, text after text
            packing = Packing.of(lengths[idx], model.device, model.encode_chunk)
            x = tokens.index_select(0, rows.to(tokens.device)).to(model.device)  # (N_g, H)
            for layer in top:
                x = packed_layer(layer, x, packing, fast_dropout)
            pooled.append(mean_pool(x, packing.segment, len(packing.lengths)))  # (C, H)
    out = model._finish(torch.cat(pooled))  # (C, H) in length order
    return out[inverse.to(out.device)]  # (C, H) in input order


def embed_states(model, states: list[torch.Tensor]) -> torch.Tensor:
    """The model's embedding of texts from their cached trunk states (one (T_i, H) tensor per text): only the top
    blocks run, transformers' own, over padded length-sorted chunks of encode_chunk texts (embed_packed is the
    packed form of the same). Returns (N, H) in input order."""
    chunks, inverse = model._chunks([len(s) for s in states])
    top = encoder_layers(model.transformer)[model.cut_layer:]
    pooled = []
    with autocast(model.device, model.precision):
        for idx in chunks:
            longest = max(len(states[i]) for i in idx)
            hidden = torch.zeros(len(idx), longest, states[idx[0]].shape[-1])  # (C, T, H)
            mask = torch.zeros(len(idx), longest, dtype=torch.long)  # (C, T)
            for row, i in enumerate(idx):
                hidden[row, : len(states[i])] = states[i]
                mask[row, : len(states[i])] = 1
            hidden, mask = hidden.to(model.device), mask.to(model.device)
            pooled.append(mean_pool_padded(model._run_layers(hidden, mask, top), mask))
    out = model._finish(torch.cat(pooled))  # (N, H) in length order
    return out[inverse.to(out.device)]  # (N, H) in input order
