"""The training loop: alternate dating/hiring triplet batches, add a cross-domain batch, step."""
from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from .data import Dataset
from .losses import CombinedLoss, build_loss
from .models import SharedEmbeddingModel, build_model, save_checkpoint


@dataclass
class TrainResult:
    """What a training run leaves behind."""

    model: SharedEmbeddingModel
    loss: CombinedLoss
    history: pd.DataFrame  # one row per step: every loss component, lr, seconds, texts/s
    seconds: float


def seed_everything(seed: int) -> None:
    """Seed Python and torch (CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)


def lr_lambda(total_steps: int, warmup_fraction: float):
    """Linear warm-up over the first warmup_fraction of steps, then cosine decay to zero."""
    warmup = max(1, round(total_steps * warmup_fraction)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _batches(items: list, batch_size: int, rng: random.Random, key=None):
    """Endless shuffled batches; within a batch no two items share key(item) (no false in-batch negatives).

    A pass that ends with a part-filled batch yields it, so too few items never stall training.
    """
    if not items:
        raise ValueError("no training items to batch (empty triplet or pair list)")
    while True:
        order = items[:]
        rng.shuffle(order)
        batch, seen = [], set()
        for item in order:
            k = key(item) if key else None
            if k is not None and k in seen:
                continue
            batch.append(item)
            seen.add(k)
            if len(batch) == batch_size:
                yield batch
                batch, seen = [], set()
        if len(batch) >= 2:
            yield batch


def plan_steps(params, dataset: Dataset) -> tuple[int, int]:
    """(steps per epoch = the longest loader, total steps after max_steps)."""
    b = params.train.batch_size
    loaders = [len(dataset.triplets["train"][d]) // b for d in params.train.domains]
    if params.loss.cross_domain != "none":
        loaders.append(len(dataset.cross_pairs["train"]) // b)
    per_epoch = max(1, max(loaders))
    total = per_epoch * params.train.epochs
    return per_epoch, min(total, params.train.max_steps or total)


def train(params, dataset: Dataset, model: SharedEmbeddingModel | None = None, progress: bool = True,
          checkpoint_dir: str | Path | None = None) -> TrainResult:
    """Train one condition on a dataset; optionally save a checkpoint at the end."""
    tp = params.train
    seed_everything(params.seed)
    model = model or build_model(params)
    loss_fn = build_loss(params).to(model.device)
    trainable = [p for p in list(model.parameters()) + list(loss_fn.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=tp.lr, weight_decay=tp.weight_decay)
    per_epoch, total = plan_steps(params, dataset)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, tp.warmup_fraction))
    rng = random.Random(params.seed)
    triplet_batches = {d: _batches(dataset.triplets["train"][d], tp.batch_size, rng) for d in tp.domains}
    use_cross = params.loss.cross_domain != "none"
    cross_batches = _batches(dataset.cross_pairs["train"], tp.batch_size, rng, key=lambda pair: pair[0])

    model.train()
    history = []
    t_start = time.perf_counter()
    bar = tqdm(range(total), desc=f"train {params.condition}", file=sys.stdout, disable=not progress,
               mininterval=1.0 if sys.stdout.isatty() else 10.0, ascii=not sys.stdout.isatty())
    for step in bar:
        t0 = time.perf_counter()
        domain = tp.domains[step % len(tp.domains)]
        triplets = next(triplet_batches[domain])
        texts = [dataset.text(domain, t[i]) for i in range(3) for t in triplets]  # anchors, positives, negatives
        if use_cross:
            pairs = next(cross_batches)
            texts += [dataset.text("dating", p[0]) for p in pairs] + [dataset.text("hiring", p[1]) for p in pairs]

        pooled = model.embed(texts)  # (3B [+ 2B], H), one length-sorted pass
        b = len(triplets)
        task = model.task_embedding(pooled[: 3 * b])  # (3B, D)
        cross = model.identity_embedding(pooled[3 * b:]) if use_cross else None  # (2B, K)
        parts = loss_fn(task[:b], task[b:2 * b], task[2 * b:],
                        *(cross.split(len(pairs)) if use_cross else (None, None)))

        optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, tp.grad_clip)
        optimizer.step()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        scheduler.step()

        seconds = time.perf_counter() - t0
        row = {"step": step, "epoch": step // per_epoch, "domain": domain, "lr": lr,
               **{k: float(v.detach()) for k, v in parts.items()}, "grad_norm": float(grad_norm),
               "seconds": seconds, "texts_per_s": len(texts) / seconds}
        history.append(row)
        if step % tp.log_every == 0 or step == total - 1:
            bar.set_postfix(loss=f"{row['total']:.3f}", lr=f"{row['lr']:.1e}", refresh=False)
    bar.close()
    model.eval()
    result = TrainResult(model, loss_fn, pd.DataFrame(history), time.perf_counter() - t_start)
    if checkpoint_dir is not None:
        save_checkpoint(model, loss_fn, params, checkpoint_dir)
    return result
