"""The shared encoder and its two head layouts (Matryoshka prefix, separate projection heads)."""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from ..metrics import truncate_normalize
from .encoder import load_encoder


def pick_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available")
    return torch.device(name)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CPU/CUDA for precision 'bf16'; a no-op for fp32 (and on MPS)."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class SharedEmbeddingModel(nn.Module):
    """One transformer for both domains; dims 0:K of its mean-pooled output form the identity prefix."""

    def __init__(self, transformer: nn.Module, tokenizer, prefix_dim: int, matryoshka_dims: list[int],
                 max_length: int, encode_chunk: int = 16, precision: str = "fp32"):
        super().__init__()
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.prefix_dim = prefix_dim
        self.matryoshka_dims = list(matryoshka_dims)
        self.max_length = max_length
        self.encode_chunk = encode_chunk
        self.precision = precision
        hidden = transformer.config.hidden_size
        if self.matryoshka_dims[-1] > self.task_dim(hidden):
            raise ValueError(f"matryoshka_dims {self.matryoshka_dims} exceed the embedding width {self.task_dim(hidden)}")

    def task_dim(self, hidden: int) -> int:
        """Width of the within-domain (task) embedding."""
        return hidden

    @property
    def embedding_dim(self) -> int:
        """Width of encode()'s output."""
        return self.task_dim(self.transformer.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Mean-pooled transformer output, differentiable, computed over length-sorted chunks."""
        tokens = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: len(tokens[i]))
        pooled = []
        with autocast(self.device, self.precision):
            for start in range(0, len(order), self.encode_chunk):
                idx = order[start:start + self.encode_chunk]
                batch = self.tokenizer.pad({"input_ids": [tokens[i] for i in idx]}, return_tensors="pt").to(self.device)
                hidden = self.transformer(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state  # (C, T, H)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (C, T, 1)
                pooled.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float())  # (C, H)
        out = torch.cat(pooled)  # (N, H) in length order
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return out[inverse.to(out.device)]  # (N, H) in input order

    def task_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        """The embedding the within-domain (Matryoshka) loss sees."""
        return pooled  # (N, D)

    def identity_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        """The embedding the cross-domain loss and metrics see: dims 0:K."""
        return pooled[:, : self.prefix_dim]  # (N, K)

    @torch.no_grad()
    def _encode(self, texts: list[str], which) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return which(self.embed(list(texts))).float().cpu()
        finally:
            self.train(was_training)

    def encode(self, texts: list[str], domain: str) -> torch.Tensor:
        """L2-normalised full embeddings (N, D), on the CPU."""
        return truncate_normalize(self._encode(texts, self.task_embedding))

    def encode_prefix(self, texts: list[str], domain: str) -> torch.Tensor:
        """L2-normalised identity embeddings (N, K): what every cross-domain metric uses."""
        return truncate_normalize(self._encode(texts, self.identity_embedding))

    def encode_at_dim(self, texts: list[str], domain: str, dim: int) -> torch.Tensor:
        """The first `dim` dims of the full embedding, re-normalised (N, dim)."""
        return truncate_normalize(self._encode(texts, self.task_embedding), dim)


class ProjectionHeadsModel(SharedEmbeddingModel):
    """Shared transformer with a task head (within-domain) and a separate identity head (cross-domain)."""

    def __init__(self, transformer, tokenizer, prefix_dim, matryoshka_dims, max_length, identity_head_dim,
                 encode_chunk=16, precision="fp32"):
        super().__init__(transformer, tokenizer, identity_head_dim, matryoshka_dims, max_length, encode_chunk, precision)
        hidden = transformer.config.hidden_size
        self.task_head = nn.Linear(hidden, hidden)
        self.identity_head = nn.Linear(hidden, identity_head_dim)

    def task_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.task_head(pooled)  # (N, D)

    def identity_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.identity_head(pooled)  # (N, identity_head_dim)


def build_model(params) -> SharedEmbeddingModel:
    """The model for a condition, on the device the params ask for."""
    m = params.model
    transformer, tokenizer = load_encoder(m.base_model, params.seed)
    common = dict(max_length=m.max_length, encode_chunk=params.train.encode_chunk, precision=params.train.precision)
    if m.architecture == "projection_heads":
        torch.manual_seed(params.seed)
        model = ProjectionHeadsModel(transformer, tokenizer, m.prefix_dim, m.matryoshka_dims,
                                     identity_head_dim=m.identity_head_dim, **common)
    else:  # matryoshka and adversarial share the model; the adversary lives in the loss
        model = SharedEmbeddingModel(transformer, tokenizer, m.prefix_dim, m.matryoshka_dims, **common)
    return model.to(pick_device(params.train.device))
