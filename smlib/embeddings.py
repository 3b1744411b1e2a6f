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
