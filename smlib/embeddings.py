"""Embedding helpers shared by the models, the losses and the metrics: slicing a Matryoshka prefix and L2-normalising."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def check_dim(dim: int, width: int) -> None:
    """Raise ValueError unless 1 <= dim <= width."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= width:
        raise ValueError(f"dimension must be an int in [1, {width}], got {dim!r}")


def check_matrix(name: str, x: torch.Tensor) -> None:
    """Raise ValueError unless x is a 2-d tensor."""
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-d (rows, dims), got shape {tuple(x.shape)}")


def truncate_normalize(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Keep the first `dim` columns (all when None), then L2-normalise each row in at least float32."""
    check_matrix("embeddings", x)
    if dim is not None:
        check_dim(dim, x.shape[1])
        x = x[:, :dim]  # (N, dim)
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    return F.normalize(x, dim=1)  # (N, d)
