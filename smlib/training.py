"""The training loop: alternate dating/hiring triplet batches, add a cross-domain batch, step."""
from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import torch
from tqdm import tqdm

from . import atomic
from .data import Dataset
from .domains import DOMAINS
from .limits import BATCH_ITEMS
from .losses import CombinedLoss, StepEmbeddings, build_loss
from .metrics import cosine_similarities, mean_both_ways, top1_both_ways
from .models import SharedEmbeddingModel, build_model, save_checkpoint
from .provenance import run_provenance
from .selection import KeepBest, dev_refs


@dataclass
class TrainResult:
    """What a training run leaves behind."""

    model: SharedEmbeddingModel
    loss: CombinedLoss
    history: pd.DataFrame  # one row per step: every loss component, lr, seconds, texts/s, validation top-1
    seconds: float  # wall time of the whole call (cache load, steps, validation checks)
    cache_seconds: float = 0.0  # setting up the embedder: reading or building the trunk cache
    stopped_early: bool = False  # target_top1 reached or max_seconds spent before the planned steps
    selection: dict | None = None  # the dev slice's rule, the kept step and every check (smlib.selection)
    imports: tuple = ()  # the params' imports (smlib.registrations), whose source hashes the provenance records

    def headline(self, checkpoint_dir=None) -> str:
        """One line: wall time, device and precision, trunk-cache time (and where the checkpoint went)."""
        where = f"; checkpoint in {checkpoint_dir}" if checkpoint_dir else ""
        return (f"trained in {self.seconds:.1f} s on {self.model.device} ({self.model.precision}); "
                f"trunk cache {self.cache_seconds:.1f} s{where}")

    def loss_summary(self) -> pd.DataFrame:
        """Mean of each loss component (and the adversary's accuracy) over the first and the last fifth of the steps."""
        h = self.history
        cols = [c for c in self.loss.reported_names if c in h]
        k = max(1, len(h) // 5)
        return pd.DataFrame({"first steps": h[cols].head(k).mean(), "last steps": h[cols].tail(k).mean()})

    def progress_text(self) -> str:
        """Median step time and throughput; the last and best validation top-1 where training checked it."""
        h = self.history
        lines = [f"median {h['seconds'].median():.2f} s/step, {h['texts_per_s'].median():.0f} distinct texts/s"]
        if "val_top1" in h:
            checked = h[h["val_top1"].notna()]
            best = checked.loc[checked["val_top1"].idxmax()]
            lines.append(f"validation prefix top-1: {checked['val_top1'].iloc[-1]:.3f} at the last check "
                         f"(best {best['val_top1']:.3f} at step {int(best['step'])})")
        if self.selection and self.selection["best_dev_step"] is not None:
            sel = self.selection
            kept = f"kept: step {sel['kept_step']}" if sel["kept_step"] is not None else "kept: the last step"
            lines.append(f"dev slice ({sel['rule']}): best top-1 {sel['best_dev_top1']:.3f} at step "
                         f"{sel['best_dev_step']}; {kept}")
        return "\n".join(lines)

    def summary(self) -> dict:
        """train.json's fields: wall and step time, steps, trunk-cache time, precision, median step time, and what made
        the run (smlib.provenance: smlib source hash, git commit, torch, device, threads, CPU flags)."""
        h = self.history
        return {"train_seconds": round(self.seconds, 2), "steps": len(h), "step_seconds": round(float(h["seconds"].sum()), 2),
                "cache_seconds": round(self.cache_seconds, 2), "precision": self.model.precision,
                "median_step_seconds": float(h["seconds"].median()), "provenance": run_provenance(self.model.device,
                self.imports)} | ({"selection": self.selection} if self.selection else {})

    def save(self, out_dir: str | Path, figure=None) -> Path:
        """Write history.csv, train.json (timings, steps, precision) and, if given, the training-curves figure."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        h = self.history
        with atomic.replacing(out / "history.csv") as tmp:
            h.to_csv(tmp, index=False)
        if figure is not None:
            from .plots.base import save

            save(figure, out / "training_curves.png")
        atomic.write_text(out / "train.json", json.dumps(self.summary(), indent=2))
        return out


def describe_plan(params, dataset: Dataset) -> str:
    """What a condition will train: architecture, losses, domains, steps, batch, rates, layers, precision, checks."""
    per_epoch, total = plan_steps(params, dataset)
    tp = params.train
    return "\n".join([
        f"condition {params.condition}: architecture {params.model.architecture}, cross-domain loss "
        f"{params.loss.cross_domain}, domains {tp.domains}",
        f"{total} steps ({per_epoch} per epoch of the shared schedule), batch {tp.batch_size}, lr {tp.lr} "
        f"(heads {tp.head_lr})",
        f"trainable layers {tp.trainable_layers}, precision {tp.precision}, validation top-1 every {tp.eval_every} steps"])


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


def loader_rng(seed: int, name: str) -> random.Random:
    """Each loader's own RNG from (seed, loader name): every condition draws the same batches at the same steps."""
    return random.Random(f"{seed}/{name}")


def _batches(items: list, batch_size: int, rng: random.Random, key=None, what: str = "training items"):
    """Endless shuffled batches in which no two items share any element of key(item) (a set of people).

    key(item) returns the people an item involves; an item that would repeat someone already in the
    batch waits for a later batch of the same pass (it is not dropped), so an in-batch negative is
    never the anchor's own person or its positive. A pass that ends with a part-filled batch of at
    least BATCH_ITEMS items yields it, so few items never stall training. A pass yields a batch if and
    only if two items involve different people, so a pass that yields none raises (naming `what`) instead
    of looping forever.
    """
    if not items:
        raise ValueError(f"no {what} to batch (the list is empty)")
    while True:
        pending = items[:]
        rng.shuffle(pending)
        yielded = False
        while pending:  # every round takes at least the first pending item, so a pass always ends
            batch, seen, waiting = [], set(), []
            for pos, item in enumerate(pending):
                people = set(key(item)) if key else set()
                if people & seen:
                    waiting.append(item)
                    continue
                batch.append(item)
                seen |= people
                if len(batch) == batch_size:
                    waiting.extend(pending[pos + 1:])
                    break
            pending = waiting
            if len(batch) >= BATCH_ITEMS:
                yielded = True
                yield batch
        if not yielded:
            raise ValueError(f"the {len(items)} {what} never give a batch: a batch needs {BATCH_ITEMS} items that "
                             "involve different people, and every two of these share someone (raise the count in "
                             "the data params, or the number of training people)")


def triplet_people(dataset: Dataset):
    """key for _batches: the people a triplet involves (a hard-negative clone counts as its source person)."""
    n = len(dataset.people)
    source = {r["text_id"]: r["source_id"] for r in dataset.hard_negatives}
    return lambda t: {t[0], t[1], source.get(t[2], t[2]) if t[2] >= n else t[2]}


def plan_steps(params, dataset: Dataset) -> tuple[int, int]:
    """(steps per epoch = the longest loader, this condition's total steps after max_steps).

    Every condition follows one schedule: step s trains a triplet batch of DOMAINS[s % 2] (plus a
    cross batch). A single-domain condition takes only its domain's steps of that schedule, so it
    trains the same batches of its domain as the shared conditions do, not twice as many.
    """
    return _per_epoch(params, dataset), len(step_domains(params, dataset))


def _per_epoch(params, dataset: Dataset) -> int:
    b = params.train.batch_size
    loaders = [len(dataset.triplets["train"][d]) // b for d in DOMAINS] + [len(dataset.cross_pairs["train"]) // b]
    return max(1, max(loaders))


def step_domains(params, dataset: Dataset) -> list[str]:
    """The triplet domain of each of this condition's optimizer steps."""
    total = _per_epoch(params, dataset) * params.train.epochs
    total = min(total, params.train.max_steps or total)
    return [DOMAINS[s % len(DOMAINS)] for s in range(total) if DOMAINS[s % len(DOMAINS)] in params.train.domains]


class Batch(NamedTuple):
    """One optimizer step's data: a triplet batch of one domain and, with a cross-domain loss, a batch of pairs."""

    domain: str
    triplets: list  # [(anchor, positive, negative, ...)] text ids of `domain`
    pairs: list | None  # [(dating id, hiring id, ...)] or None

    @property
    def refs(self) -> list[tuple[str, int]]:
        """The step's texts in order: anchors, positives, negatives of the domain, then cross dating and hiring texts."""
        refs = [(self.domain, t[i]) for i in range(3) for t in self.triplets]
        if self.pairs is not None:
            refs += [("dating", p[0]) for p in self.pairs] + [("hiring", p[1]) for p in self.pairs]
        return refs

    def step_embeddings(self, model, pooled: torch.Tensor) -> StepEmbeddings:
        """The step's pooled encoder outputs (rows in refs order) as the losses' StepEmbeddings: task embeddings of
        the triplets, identity embeddings of the pairs."""
        b = len(self.triplets)
        anchor, positive, negative = model.task_embedding(pooled[: 3 * b]).split(b)  # 3 x (B, D)
        if not self.pairs:
            return StepEmbeddings(anchor, positive, negative)
        dating, hiring = model.identity_embedding(pooled[3 * b:]).split(len(self.pairs))  # 2 x (P, K)
        return StepEmbeddings(anchor, positive, negative, dating, hiring)


def iter_batches(params, dataset: Dataset):
    """This condition's Batches, step by step.

    Each loader has its own RNG from (seed, loader name), and the k-th dating (hiring) step of the
    shared schedule draws the k-th dating (hiring) batch, so every condition trains the same
    triplet batches at the same steps of the schedule; conditions with a cross-domain loss see the
    same cross batches too. Triplet batches never repeat a person (hard clones count as their source).
    """
    tp = params.train
    key = triplet_people(dataset)
    triplets = {d: _batches(dataset.triplets["train"][d], tp.batch_size, loader_rng(params.seed, f"triplets/{d}"), key,
                            f"training {d} triplets (data.n_triplets)") for d in tp.domains}
    cross = (_batches(dataset.cross_pairs["train"], tp.batch_size, loader_rng(params.seed, "cross"),
                      key=lambda pair: {pair[0]}, what="training cross-domain pairs (data.n_cross_pairs)")
             if params.loss.cross_domain != "none" else None)
    views = {d: dataset.augmented(d) for d in DOMAINS}
    augmented = any(views.values())  # once, not per step
    rng = loader_rng(params.seed, "views")

    def told(domain: str, text_id: int) -> int:  # one of a training text's views, drawn anew at every use
        options = views[domain].get(text_id)
        return rng.choice(options) if options else text_id

    for domain in step_domains(params, dataset):
        trip, pairs = next(triplets[domain]), next(cross) if cross is not None else None
        if augmented:
            trip = [(told(domain, a), told(domain, p), told(domain, n), *rest) for a, p, n, *rest in trip]
            pairs = pairs and [(told("dating", a), told("hiring", b), *rest) for a, b, *rest in pairs]
        yield Batch(domain, trip, pairs)


def param_groups(model: SharedEmbeddingModel, loss_fn: CombinedLoss, tp) -> list[dict]:
    """Pretrained transformer layers at train.lr; new parts (heads, adapter, domain classifier) at train.head_lr."""
    heads = model.head_parameters() + [p for p in loss_fn.parameters() if p.requires_grad]
    groups = [{"params": model.encoder_parameters(), "lr": tp.lr, "name": "encoder"},
              {"params": heads, "lr": tp.head_lr, "name": "heads"}]
    return [g for g in groups if g["params"]]


class Embedder:
    """Pooled embeddings of (domain, text id) references through the model's own forward (model.embed): the loop's
    one seam for speed (smlib.trunk_cache.cached_embedder builds a faster one; see train)."""

    def __init__(self, model: SharedEmbeddingModel, dataset: Dataset):
        self.model, self.dataset = model, dataset

    def pooled(self, distinct: list[tuple[str, int]]) -> torch.Tensor:
        """(U, H) for U distinct references."""
        return self.model.embed([self.dataset.text(d, i) for d, i in distinct])

    def __call__(self, refs: list[tuple[str, int]]) -> torch.Tensor:
        """(N, H) for N references; each distinct text is encoded once."""
        distinct = list(dict.fromkeys(refs))
        pooled = self.pooled(distinct)  # (U, H)
        where = {ref: k for k, ref in enumerate(distinct)}
        return pooled[torch.tensor([where[r] for r in refs], device=pooled.device)]  # (N, H)


def plain_embedder(model: SharedEmbeddingModel, dataset: Dataset, progress: bool = True) -> Embedder:
    """The default embedder factory: the model's own forward, nothing cached."""
    return Embedder(model, dataset)


@torch.no_grad()
def prefix_top1(model: SharedEmbeddingModel, embedder: Embedder, dating: list, hiring: list) -> tuple[float, float]:
    """Prefix (identity-space) top-1 dating->hiring and hiring->dating of aligned (domain, text id) references."""
    was_training = model.training
    model.eval()
    try:
        pooled = embedder(dating + hiring)  # (2N, H)
        ident = model.identity_embedding(pooled)  # (2N, K)
        sims = cosine_similarities(ident[: len(dating)], ident[len(dating):])  # (N, N) dating x hiring
        return tuple(t.mean().item() for t in top1_both_ways(sims))
    finally:
        model.train(was_training)


def validation_top1(model: SharedEmbeddingModel, embedder: Embedder, dataset: Dataset) -> dict[str, float]:
    """Prefix top-1 of validation people both ways and their mean (the oracle's view: the test people), plus the
    dev slice's scores where there is one (smlib.selection: what a run may choose by)."""
    ids = dataset.split["val"]
    d2h, h2d = prefix_top1(model, embedder, [("dating", i) for i in ids], [("hiring", i) for i in ids])
    row = {"val_top1_d2h": d2h, "val_top1_h2d": h2d, "val_top1": mean_both_ways(d2h, h2d)}
    for name, (dating, hiring) in dev_refs(dataset).items():
        row[name] = mean_both_ways(*prefix_top1(model, embedder, dating, hiring))
    return row


@dataclass
class TrainingRun:
    """Everything a training step touches: model, loss, how texts are embedded, the optimizer and what it updates."""

    model: SharedEmbeddingModel
    loss_fn: CombinedLoss
    embedder: Embedder
    optimizer: torch.optim.Optimizer
    trainable: list
    cache_seconds: float  # reading or building the trunk cache


def adamw(groups: list[dict], weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where the device has one (CPU and CUDA: one pass over all parameters instead
    of a Python loop of small ops; the same update rule), else the default implementation."""
    if device.type in ("cpu", "cuda"):
        try:
            return torch.optim.AdamW(groups, weight_decay=weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a torch without the fused kernel for this device
            pass
    return torch.optim.AdamW(groups, weight_decay=weight_decay)


def setup_training(params, dataset: Dataset, model: SharedEmbeddingModel | None = None, progress: bool = True,
                   embedder=plain_embedder) -> TrainingRun:
    """Seed, build (or take) the model, its loss, its embedder (embedder(model, dataset, progress): the plain
    forward by default; smlib.trunk_cache.cached_embedder() for the fast path) and AdamW per param group."""
    seed_everything(params.seed)
    model = model or build_model(params)
    loss_fn = build_loss(params).to(model.device)
    t0 = time.perf_counter()
    embed = embedder(model, dataset, progress)
    cache_seconds = time.perf_counter() - t0
    groups = param_groups(model, loss_fn, params.train)
    optimizer = adamw(groups, params.train.weight_decay, model.device)
    return TrainingRun(model, loss_fn, embed, optimizer, [p for g in groups for p in g["params"]], cache_seconds)


def train_step(run: TrainingRun, batch: Batch, grad_clip: float,
               embed=None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One whole optimizer step on a Batch: embed, losses, backward, clip, AdamW. Returns (loss parts, grad norm).

    embed(refs) -> (N, H) replaces the run's embedder (the benchmark passes the original's five passes:
    docs/design.md#defaults).
    """
    pooled = (embed or run.embedder)(batch.refs)  # (3B [+ 2P], H)
    parts = run.loss_fn(batch.step_embeddings(run.model, pooled))
    run.optimizer.zero_grad(set_to_none=True)
    if not torch.isfinite(parts["total"].detach()):
        raise TrainingDiverged(f"the loss is {float(parts['total'].detach()):g} ("
                               + ", ".join(f"{k} {float(v.detach()):g}" for k, v in parts.items() if k != "total")
                               + ")")
    parts["total"].backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(run.trainable, grad_clip)
    if not torch.isfinite(grad_norm):
        raise TrainingDiverged(f"the gradient norm is {float(grad_norm):g} (loss {float(parts['total'].detach()):g})")
    run.optimizer.step()
    return parts, grad_norm


class TrainingDiverged(RuntimeError):
    """A non-finite loss or gradient norm, or weights that never changed: the run is failed, not recorded."""


def train(params, dataset: Dataset, model: SharedEmbeddingModel | None = None, progress: bool = True,
          checkpoint_dir: str | Path | None = None, embedder=plain_embedder,
          target_top1: float | None = None, max_seconds: float | None = None) -> TrainResult:
    """Train one condition on a dataset; optionally save a checkpoint at the end.

    embedder(model, dataset, progress) -> Embedder: the model's own forward by default; with trainable_layers other
    than 'all', smlib.trunk_cache.cached_embedder(root) runs the frozen layers once per text (cached under root) and
    the top blocks on packed tokens, as the study and the bench do. target_top1 / max_seconds stop early (the
    benchmark): at the first check whose mean top-1 reaches target_top1, or after max_seconds of steps.
    """
    t_start = time.perf_counter()
    tp = params.train
    run = setup_training(params, dataset, model, progress, embedder)
    model, loss_fn, embedder, optimizer = run.model, run.loss_fn, run.embedder, run.optimizer
    domains = step_domains(params, dataset)
    per_epoch, total = _per_epoch(params, dataset), len(domains)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, tp.warmup_fraction))
    batches = iter_batches(params, dataset)
    check_every = tp.eval_every or (1 if target_top1 is not None else None)

    model.train()
    history = []
    train_seconds, stopped_early = 0.0, False
    before = [p.detach().clone() for p in run.trainable]  # a run whose weights never move has learned nothing
    keep = KeepBest(params, dataset, run.trainable)
    bar = tqdm(range(total), desc=f"train {params.condition}", file=sys.stdout, disable=not progress,
               mininterval=1.0 if sys.stdout.isatty() else 10.0, ascii=not sys.stdout.isatty())
    for step in bar:
        t0 = time.perf_counter()
        batch = next(batches)
        try:
            parts, grad_norm = train_step(run, batch, tp.grad_clip)
        except TrainingDiverged as e:
            raise TrainingDiverged(f"{params.condition}: training stopped at step {step} of {total}: {e}; "
                                   "nothing is recorded for this run (lower train.lr / head_lr, or raise "
                                   "loss.temperature)") from None
        lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}  # the rates this step used
        scheduler.step()

        seconds = time.perf_counter() - t0
        train_seconds += seconds
        row = {"step": step, "epoch": step // per_epoch, "domain": batch.domain,
               "lr": lrs.get("encoder", float("nan")), "head_lr": lrs.get("heads", float("nan")),
               **{k: float(v.detach()) for k, v in parts.items()}, "grad_norm": float(grad_norm),
               "seconds": seconds, "texts_per_s": len(set(batch.refs)) / seconds, "train_seconds": train_seconds}
        if check_every and ((step + 1) % check_every == 0 or step == total - 1):
            t1 = time.perf_counter()
            row |= validation_top1(model, embedder, dataset)
            row["eval_seconds"] = time.perf_counter() - t1
            keep.update(step, row)
        history.append(row)
        if step % tp.log_every == 0 or step == total - 1:
            post = {"loss": f"{row['total']:.3f}", "lr": f"{row['lr']:.1e}"}
            last = next((r["val_top1"] for r in reversed(history) if "val_top1" in r), None)
            if last is not None:
                post["val_top1"] = f"{last:.2f}"
            bar.set_postfix(post, refresh=False)
        if (target_top1 is not None and row.get("val_top1", -1.0) >= target_top1) or \
                (max_seconds is not None and train_seconds >= max_seconds):
            stopped_early = step < total - 1
            break
    bar.close()
    if all(torch.equal(b, p.detach()) for b, p in zip(before, run.trainable, strict=False)):
        raise TrainingDiverged(f"{params.condition}: no trainable weight changed in {len(history)} steps "
                               "(zero gradients or learning rates); nothing is recorded for this run")
    del before
    keep.restore()
    model.eval()
    result = TrainResult(model, loss_fn, pd.DataFrame(history), time.perf_counter() - t_start, run.cache_seconds,
                         stopped_early, keep.record(), tuple(params.imports))
    if checkpoint_dir is not None:
        save_checkpoint(model, loss_fn, params, checkpoint_dir,
                        training={**result.summary(), "device": str(model.device),
                                  "dataset_id": dataset.manifest.get("dataset_id"), "stopped_early": stopped_early})
    return result
