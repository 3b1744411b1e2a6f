"""Seconds per training step: the original's five fp32 passes vs smlib's one length-sorted pass (fp32, bf16)."""
from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from pathlib import Path

import torch

from .config import load_params
from .data import build_dataset
from .losses import build_loss
from .models import build_model
from .training import _batches, seed_everything

GROUPS = ("anchor", "positive", "negative", "cross_dating", "cross_hiring")
SETTINGS = {"original": "fp32", "smlib fp32": "fp32", "smlib bf16": "bf16"}  # name -> precision


def make_batches(params, dataset, n: int) -> list[dict[str, list[str]]]:
    """The first n training batches as training.train draws them: five groups of texts each."""
    tp = params.train
    rng = random.Random(params.seed)
    triplet_batches = {d: _batches(dataset.triplets["train"][d], tp.batch_size, rng) for d in tp.domains}
    cross_batches = _batches(dataset.cross_pairs["train"], tp.batch_size, rng, key=lambda pair: pair[0])
    batches = []
    for step in range(n):
        domain = tp.domains[step % len(tp.domains)]
        triplets, pairs = next(triplet_batches[domain]), next(cross_batches)
        batches.append({
            **{g: [dataset.text(domain, t[i]) for t in triplets] for i, g in enumerate(GROUPS[:3])},
            "cross_dating": [dataset.text("dating", p[0]) for p in pairs],
            "cross_hiring": [dataset.text("hiring", p[1]) for p in pairs],
        })
    return batches


def embed_separately(model, groups: list[list[str]]) -> torch.Tensor:
    """The original's way: one pass per group, padded to the longest text of that group."""
    chunk = model.encode_chunk
    try:
        out = []
        for texts in groups:
            model.encode_chunk = len(texts)  # one padded pass over the whole group
            out.append(model.embed(texts))  # (B, H)
        return torch.cat(out)  # (5B, H)
    finally:
        model.encode_chunk = chunk


def embed_together(model, groups: list[list[str]]) -> torch.Tensor:
    """smlib's way: all groups in one call, length-sorted chunks of encode_chunk."""
    return model.embed([t for texts in groups for t in texts])  # (5B, H)


class Setting:
    """One way of training: its own model, loss, optimizer and embedding function."""

    def __init__(self, name: str, params):
        self.name = name
        seed_everything(params.seed)
        self.model = build_model(params)
        self.model.train()
        self.loss_fn = build_loss(params).to(self.model.device)
        self.trainable = [p for p in list(self.model.parameters()) + list(self.loss_fn.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=params.train.lr, weight_decay=params.train.weight_decay)
        self.grad_clip = params.train.grad_clip
        self.embed = embed_separately if name == "original" else embed_together
        self.seconds: list[float] = []

    def step(self, batch: dict[str, list[str]]) -> float:
        """One full training step (forward, backward, clip, AdamW); returns its wall-clock seconds."""
        sync(self.model.device)
        t0 = time.perf_counter()
        pooled = self.embed(self.model, [batch[g] for g in GROUPS])  # (5B, H)
        b = len(batch["anchor"])
        task = self.model.task_embedding(pooled[: 3 * b])  # (3B, D)
        cross = self.model.identity_embedding(pooled[3 * b:])  # (2B, K)
        parts = self.loss_fn(task[:b], task[b:2 * b], task[2 * b:], cross[:b], cross[b:])
        self.optimizer.zero_grad(set_to_none=True)
        parts["total"].backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, self.grad_clip)
        self.optimizer.step()
        sync(self.model.device)
        return time.perf_counter() - t0


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run(steps: int = 5, warmup: int = 1, batch_size: int = 16, condition: str = "v3_contrastive",
        profile: str = "paper", base_model: str = "bundled", n_people: int = 1000) -> dict:
    """Round-robin the settings over the same batches; return the environment and one row per setting."""
    rounds = warmup + steps
    n_mined = max(1, batch_size * rounds * 2)  # only a few batches are used, so mine only what they need
    overrides = {"model.base_model": base_model, "train.batch_size": batch_size, "data.n_people": n_people,
                 "data.n_triplets": n_mined, "data.n_val_triplets": 1, "data.n_cross_pairs": n_mined}
    base = load_params(condition, profile, overrides)
    if base.loss.cross_domain == "none" or base.model.architecture != "matryoshka":
        raise SystemExit(f"bench measures a matryoshka condition with a cross-domain loss, not {condition!r}")
    batches = make_batches(base, build_dataset(base), rounds)
    settings = [Setting(name, load_params(condition, profile, {**overrides, "train.precision": precision}))
                for name, precision in SETTINGS.items()]
    for r, batch in enumerate(batches):
        for s in settings:
            seconds = s.step(batch)
            if r >= warmup:
                s.seconds.append(seconds)
    n_texts = len(GROUPS) * batch_size
    reference = statistics.median(settings[0].seconds)
    rows = []
    for s in settings:
        median = statistics.median(s.seconds)
        rows.append({"setting": s.name, "median_s": median, "min_s": min(s.seconds), "max_s": max(s.seconds),
                     "texts_per_s": n_texts / median, "speedup": reference / median})
    device = settings[0].model.device
    env = {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
           "cpu": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
           "condition": condition, "profile": profile, "base_model": base_model, "batch_size": batch_size,
           "texts_per_step": n_texts, "encode_chunk": base.train.encode_chunk, "max_length": base.model.max_length,
           "n_people": n_people, "steps": steps, "warmup": warmup}
    return {"env": env, "rows": rows}


def format_table(result: dict) -> str:
    """The environment lines and the table as plain text."""
    env = result["env"]
    lines = [f"torch {env['torch']} | device {env['device']}" + (f" ({env['gpu']})" if env["gpu"] else "")
             + f" | threads {env['threads']} | cpu {env['cpu']} ({env['cpu_capability']})",
             f"{env['condition']} ({env['profile']}), {env['base_model']} encoder, batch {env['batch_size']} "
             f"({env['texts_per_step']} texts/step), encode_chunk {env['encode_chunk']}, max_length "
             f"{env['max_length']}, {env['steps']} measured steps after {env['warmup']} warm-up, round-robin",
             f"{'setting':<12} {'median s':>9} {'min s':>8} {'max s':>8} {'texts/s':>8} {'speed-up':>9}"]
    for r in result["rows"]:
        lines.append(f"{r['setting']:<12} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f} "
                     f"{r['texts_per_s']:>8.1f} {r['speedup']:>8.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m smlib.bench [--steps N] [--json PATH] ..."""
    ap = argparse.ArgumentParser(prog="python -m smlib.bench", description=__doc__)
    ap.add_argument("--steps", type=int, default=5, help="measured steps per setting")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured steps per setting first")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--condition", default="v3_contrastive")
    ap.add_argument("--profile", default="paper", help="params profile (paper: the original settings, max_length 256)")
    ap.add_argument("--base-model", default="bundled")
    ap.add_argument("--n-people", type=int, default=1000)
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    result = run(args.steps, args.warmup, args.batch_size, args.condition, args.profile, args.base_model, args.n_people)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
