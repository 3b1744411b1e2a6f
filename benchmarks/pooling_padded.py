"""The one pooling (smlib.embeddings.mean_pool) against the padded formula it replaced on the evaluation path,
((hidden * mask).sum(1) / mask.sum(1)), on the same last hidden states of the quick profile's encoder: the largest
difference of the pooled vectors and the pooling's own time, in fp32 and under bf16 autocast, then model.embed's
time for the same texts.

    .venv/bin/python benchmarks/pooling_padded.py [--texts 512] [--repeats 5]

The packed path (training's fast path) pooled with the same float32 index_add before and after, so its numbers do
not move; only the padded path's reduction order changed.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import torch

from smlib.config import load_params
from smlib.data import load_or_build
from smlib.embeddings import mean_pool_padded
from smlib.models import build_model
from smlib.models.shared import autocast
from smlib.provenance import cpu_flags, cpu_model

ROOT = Path(__file__).resolve().parents[1]


def padded_formula(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return ((hidden * m).sum(1) / m.sum(1).clamp(min=1)).float()


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"# {cpu_model()} ({cpu_flags()}), torch {torch.__version__}, {torch.get_num_threads()} threads")
    for precision in ("fp32", "bf16"):
        params = load_params("v3_contrastive", "quick", {"data.variant": "disjoint", "train.precision": precision})
        dataset, _ = load_or_build(params, ROOT / "data")
        half = args.texts // 2
        texts = [dataset.texts[d][i] for d in ("dating", "hiring") for i in list(dataset.texts[d])[:half]]
        torch.manual_seed(0)
        model = build_model(params).eval()
        batch = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_length, return_tensors="pt")
        with torch.no_grad(), autocast(model.device, model.precision):
            hidden = model.transformer(**batch).last_hidden_state
            mask = batch["attention_mask"]
            new, old = mean_pool_padded(hidden, mask), padded_formula(hidden, mask)
            t_new = timed(functools.partial(mean_pool_padded, hidden, mask), args.repeats)
            t_old = timed(functools.partial(padded_formula, hidden, mask), args.repeats)
            t_embed = timed(functools.partial(model.embed, texts), max(1, args.repeats // 2))
        print(f"{precision}: {len(texts)} texts, hidden {tuple(hidden.shape)} {hidden.dtype}; max |new - old| "
              f"{(new - old).abs().max().item():.2e} (largest |value| {old.abs().max().item():.3f}); pooling "
              f"median {t_new * 1e3:.1f} ms new, {t_old * 1e3:.1f} ms old; model.embed median {t_embed:.2f} s")


if __name__ == "__main__":
    main()
