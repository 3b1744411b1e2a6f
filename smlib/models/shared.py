"""The shared encoder and its two head layouts (Matryoshka prefix, separate projection heads)."""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
import torch.nn as nn

from ..embeddings import mean_pool_padded, truncate_normalize
from .encoder import load_encoder

try:  # transformers >= 4.53 builds the attention mask in one helper; older versions use the model's own
    from transformers.masking_utils import create_bidirectional_mask
except ImportError:  # pragma: no cover - depends on the installed transformers
    create_bidirectional_mask = None


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


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True if the CPU reports AVX512-BF16 or AMX-BF16 (Linux /proc/cpuinfo); False when it cannot tell."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' becomes bf16 where the hardware runs it natively (CUDA with bf16, a CPU with AVX512-BF16/AMX), else fp32.

    bf16 autocast on a CPU without native bf16 was measured ~15x slower than fp32, so 'auto' never guesses.
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """bf16 autocast on CPU/CUDA for precision 'bf16'; a no-op for fp32 (and on MPS)."""
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def encoder_layers(transformer: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a BERT-style encoder (what trainable_layers counts)."""
    layers = getattr(getattr(transformer, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or not hasattr(transformer, "embeddings"):
        raise ValueError(f"train.trainable_layers needs a BERT-style encoder (embeddings + encoder.layer); "
                         f"{type(transformer).__name__} has none: use trainable_layers 'all'")
    return layers


class PoolingAdapter(nn.Module):
    """A residual MLP after pooling, starting as the identity: what trains when the encoder is frozen."""

    def __init__(self, hidden: int, inner: int):
        super().__init__()
        self.up = nn.Linear(hidden, inner)
        self.down = nn.Linear(inner, hidden)
        nn.init.zeros_(self.down.weight)
        nn.init.zeros_(self.down.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(torch.nn.functional.gelu(self.up(x)))  # (N, H)


class SharedEmbeddingModel(nn.Module):
    """One transformer for both domains; dims 0:K of its mean-pooled output form the identity space.

    identity_dim is K: the prefix width here, the identity head's width in ProjectionHeadsModel.

    With trainable_layers N (not 'all'), the embeddings and the lower L - N blocks are frozen: `embed` runs them
    without gradients, and the fast path (smlib.trunk_cache) computes their output (the "trunk" states at
    cut_layer) once per text and runs only the top N blocks. N = 0 freezes the whole encoder and trains a pooling
    adapter. `embed` is the model's one forward; the fast path's forwards end in the same pooling adapter.
    """


    def __init__(self, transformer: nn.Module, tokenizer, identity_dim: int, matryoshka_dims: list[int],
                 max_length: int, encode_chunk: int = 16, precision: str = "fp32",
                 trainable_layers: int | str = "all"):
        super().__init__()
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.identity_dim = identity_dim
        self.matryoshka_dims = list(matryoshka_dims)
        self.max_length = max_length
        self.encode_chunk = encode_chunk
        self.precision = precision
        self.trainable_layers = trainable_layers
        hidden = transformer.config.hidden_size
        if trainable_layers == "all":
            self.cut_layer = 0
        else:
            n_layers = len(encoder_layers(transformer))
            if not 0 <= trainable_layers <= n_layers:
                raise ValueError(f"train.trainable_layers={trainable_layers} is outside 0..{n_layers} "
                                 f"(the encoder has {n_layers} layers) or 'all'")
            self.cut_layer = n_layers - trainable_layers
            trainable = {id(p) for layer in encoder_layers(transformer)[self.cut_layer:] for p in layer.parameters()}
            for p in transformer.parameters():  # embeddings, lower blocks and the unused pooler are frozen
                p.requires_grad_(id(p) in trainable)
        self.adapter = PoolingAdapter(hidden, 2 * hidden) if trainable_layers == 0 else None
        if self.matryoshka_dims[-1] > hidden:
            raise ValueError(f"matryoshka_dims {self.matryoshka_dims} exceed the embedding width {hidden}")

    @property
    def embedding_dim(self) -> int:
        """Width of encode()'s output (the task embedding keeps the encoder's width in both models)."""
        return self.transformer.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def cached_trunk(self) -> bool:
        """True when the lower stack is frozen, so its states can be computed once and cached."""
        return self.trainable_layers != "all"

    def head_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters outside the pretrained transformer (adapter, heads): they get train.head_lr."""
        return [p for name, p in self.named_parameters() if not name.startswith("transformer.") and p.requires_grad]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the pretrained transformer: they get train.lr."""
        return [p for p in self.transformer.parameters() if p.requires_grad]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, truncated to max_length."""
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]

    def _attention_mask(self, hidden: torch.Tensor, mask: torch.Tensor):
        """The mask a transformer block expects, built the way the installed transformers builds it."""
        if create_bidirectional_mask is not None:
            return create_bidirectional_mask(config=self.transformer.config, inputs_embeds=hidden, attention_mask=mask)
        return self.transformer.get_extended_attention_mask(mask, mask.shape)  # pragma: no cover

    def _run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, layers) -> torch.Tensor:
        """hidden (C, T, H) through a slice of the encoder's blocks."""
        if len(layers) == 0:
            return hidden
        attn = self._attention_mask(hidden, mask)
        for layer in layers:
            out = layer(hidden, attention_mask=attn)
            hidden = out[0] if isinstance(out, tuple) else out  # (C, T, H)
        return hidden

    @torch.no_grad()
    def trunk_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Frozen lower stack in eval mode: embeddings + blocks [0, cut_layer) -> (C, T, H) float32."""
        was_training = self.transformer.training
        self.transformer.eval()
        try:
            hidden = self.transformer.embeddings(input_ids=input_ids)  # (C, T, H)
            return self._run_layers(hidden, attention_mask, encoder_layers(self.transformer)[: self.cut_layer]).float()
        finally:
            self.transformer.train(was_training)

    def _finish(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.adapter(pooled) if self.adapter is not None else pooled  # (N, H)

    def _chunks(self, lengths: list[int], chunk: int | None = None):
        """Index chunks of `chunk` texts (the model's encode_chunk by default) in length order, and the
        permutation back to input order."""
        chunk = chunk or self.encode_chunk
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
        return [order[s:s + chunk] for s in range(0, len(order), chunk)], inverse

    def embed(self, texts: list[str], chunk: int | None = None) -> torch.Tensor:
        """Pooled (and adapted) transformer output, differentiable, over length-sorted chunks of `chunk` texts
        (train.encode_chunk by default): (N, H)."""
        tokens = self.tokenize(texts)
        chunks, inverse = self._chunks([len(t) for t in tokens], chunk)
        pooled = []
        with autocast(self.device, self.precision):
            for idx in chunks:
                batch = self.tokenizer.pad({"input_ids": [tokens[i] for i in idx]}, return_tensors="pt").to(self.device)
                if self.cached_trunk:
                    hidden = self.trunk_states(batch["input_ids"], batch["attention_mask"])  # (C, T, H)
                    hidden = self._run_layers(hidden, batch["attention_mask"], encoder_layers(self.transformer)[self.cut_layer:])
                else:
                    hidden = self.transformer(input_ids=batch["input_ids"],
                                              attention_mask=batch["attention_mask"]).last_hidden_state  # (C, T, H)
                pooled.append(mean_pool_padded(hidden, batch["attention_mask"]))  # (C, H)
        out = self._finish(torch.cat(pooled))  # (N, H) in length order
        return out[inverse.to(out.device)]  # (N, H) in input order

    def task_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        """The embedding the within-domain (Matryoshka) loss sees."""
        return pooled  # (N, D)

    def identity_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        """The embedding the cross-domain loss and metrics see: dims 0:K."""
        return pooled[:, : self.identity_dim]  # (N, K)

    @torch.no_grad()
    def _encode(self, texts: list[str], which, chunk: int | None = None) -> torch.Tensor:
        was_training = self.training
        self.eval()
        try:
            return which(self.embed(list(texts), chunk)).float().cpu()
        finally:
            self.train(was_training)

    def encode(self, texts: list[str], domain: str, chunk: int | None = None) -> torch.Tensor:
        """L2-normalised full embeddings (N, D), on the CPU; chunk: texts per encoder pass."""
        return truncate_normalize(self._encode(texts, self.task_embedding, chunk))

    def encode_prefix(self, texts: list[str], domain: str, chunk: int | None = None) -> torch.Tensor:
        """L2-normalised identity embeddings (N, K): what every cross-domain metric uses."""
        return truncate_normalize(self._encode(texts, self.identity_embedding, chunk))

    def encode_both(self, texts: list[str], domain: str, chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(encode, encode_prefix) of the same texts from one encoder pass: the same vectors as the two calls."""
        both = self._encode(texts, lambda pooled: torch.cat([self.task_embedding(pooled),
                                                             self.identity_embedding(pooled)], dim=1), chunk)
        return truncate_normalize(both[:, : self.embedding_dim]), truncate_normalize(both[:, self.embedding_dim:])

    def encode_at_dim(self, texts: list[str], domain: str, dim: int) -> torch.Tensor:
        """The first `dim` dims of the full embedding, re-normalised (N, dim)."""
        return truncate_normalize(self._encode(texts, self.task_embedding), dim)


class ProjectionHeadsModel(SharedEmbeddingModel):
    """Shared transformer with a task head (within-domain) and a separate identity head (cross-domain)."""

    def __init__(self, transformer, tokenizer, identity_dim, matryoshka_dims, max_length, encode_chunk=16,
                 precision="fp32", trainable_layers="all"):
        super().__init__(transformer, tokenizer, identity_dim, matryoshka_dims, max_length, encode_chunk, precision,
                         trainable_layers)
        hidden = transformer.config.hidden_size
        self.task_head = nn.Linear(hidden, hidden)
        self.identity_head = nn.Linear(hidden, identity_dim)

    def task_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.task_head(pooled)  # (N, D)

    def identity_embedding(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.identity_head(pooled)  # (N, identity_head_dim)


def build_model(params) -> SharedEmbeddingModel:
    """The model for a condition, on the device the params ask for."""
    m = params.model
    transformer, tokenizer = load_encoder(m.base_model, params.seed)
    if m.dropout is not None:  # every dropout of the encoder (the trainable blocks' is what it changes)
        for module in transformer.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = m.dropout
    device = pick_device(params.train.device)
    common = dict(max_length=m.max_length, encode_chunk=params.train.encode_chunk,
                  precision=resolve_precision(params.train.precision, device),
                  trainable_layers=params.train.trainable_layers)
    torch.manual_seed(params.seed)  # heads and adapter start the same for a seed
    kind = ProjectionHeadsModel if m.architecture == "projection_heads" else SharedEmbeddingModel  # adversarial: in the loss
    model = kind(transformer, tokenizer, m.identity_dim, m.matryoshka_dims, **common)
    return model.to(device)
