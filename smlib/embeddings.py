"""Embedding helpers shared by the models, the losses and the metrics: pooling a text's token states into one vector
(the one pooling every path uses), slicing a Matryoshka prefix and L2-normalising."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def mean_pool(states: torch.Tensor, segment: torch.Tensor, n_texts: int) -> torch.Tensor:
    """The pooling of every path (training, evaluation, the fast path; export declares it as
    sentence_transformers_pooling): the mean of each text's token states, summed in float32.

    states (N, H): real tokens only, of any dtype; segment (N,): the text each row belongs to, 0..n_texts-1.
    Returns (n_texts, H) float32 (a text without tokens is zeros)."""
    sums = torch.zeros(n_texts, states.shape[-1], dtype=torch.float32, device=states.device)
    sums = sums.index_add(0, segment, states.float())
    counts = torch.zeros(n_texts, dtype=torch.float32, device=states.device)
    counts = counts.index_add(0, segment, torch.ones(len(segment), dtype=torch.float32, device=states.device))
    return sums / counts.clamp(min=1)[:, None]


def mean_pool_padded(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """mean_pool of padded states: hidden (C, T, H) with attention_mask (C, T), 1 at real tokens -> (C, H)."""
    keep = attention_mask.bool()
    segment = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(keep)[keep]
    return mean_pool(hidden[keep], segment, hidden.shape[0])


def sentence_transformers_pooling(width: int) -> dict:
    """The sentence-transformers Pooling config (1_Pooling/config.json) that computes mean_pool."""
    return {"word_embedding_dimension": width, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}


def check_dim(dim: int, width: int) -> None:
    """Raise ValueError unless 1 <= dim <= width."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= width:
        raise ValueError(f"dimension must be an int in [1, {width}], got {dim!r}")


def check_matrix(name: str, x: torch.Tensor) -> None:
    """Raise ValueError unless x is a 2-d tensor."""
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-d (rows, dims), got shape {tuple(x.shape)}")


def check_pair(X: torch.Tensor, Y: torch.Tensor, min_rows: int, what: str) -> None:
    """Raise one ValueError unless X and Y are 2-d, finite, with the same rows (at least min_rows) and columns."""
    check_matrix("X", X)
    check_matrix("Y", Y)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{what} needs the same people (rows) on both sides: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    if X.shape[0] < min_rows:
        raise ValueError(f"{what} needs at least {min_rows} rows (people), got {X.shape[0]}")
    for name, m in (("X", X), ("Y", Y)):
        if m.shape[1] == 0:
            raise ValueError(f"{what}: {name} has no columns")
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{what}: {name} holds {int((~torch.isfinite(m)).sum())} NaN or infinite value(s)")


def truncate_normalize(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Keep the first `dim` columns (all when None), then L2-normalise each row in at least float32."""
    check_matrix("embeddings", x)
    if dim is not None:
        check_dim(dim, x.shape[1])
        x = x[:, :dim]  # (N, dim)
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    return F.normalize(x, dim=1)  # (N, d)
