"""Training speed: seconds per step of each way of training, and (optionally) wall time to reach top-1 0.8.

Table 1 (always): every setting takes the same batches, round-robin, so machine noise hits all alike.
  original               five padded fp32 passes per step (anchor, positive, negative, cross x 2), all layers: the
                         original's way of training (docs/design.md#defaults)
  sentence-transformers  MatryoshkaLoss(MultipleNegativesRankingLoss) on the triplets + MNRL on the 64-d prefix
                         of the cross pairs (needs the optional `bench` extra: pip install -e '.[bench]')
  smlib all (fp32)       one length-sorted pass over a step's distinct texts, all layers, fp32
  smlib all / top2 / top1 / top0   the same at train.precision auto, training only the top N blocks over
                         cached trunk states (top0: frozen encoder + pooling adapter)
Table 2 (--time-to-accuracy): wall seconds of v3_contrastive training on disjoint text until validation
prefix top-1 (mean of both directions) first reaches the target, per smlib setting at its best lr of a
small sweep; for the original and sentence-transformers it is derived (their s/step x the steps full
fine-tuning needed with the same objective), and says so.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from .data import load_or_build
from .models import resolve_precision
from .provenance import cpu_flags, cpu_model
from .time_to_accuracy import (  # noqa: F401 - table 2 and the settings both tables train live there
    LR_SWEEP,
    SMLIB_SETTINGS,
    bench_params,
    format_tta_table,
    time_to_accuracy,
)
from .training import Batch, iter_batches, seed_everything, setup_training, train_step
from .trunk_cache import cached_embedder

ROOT = Path(__file__).resolve().parent.parent
# the step as it was before a speed change, measured beside it in the same run (name -> layers, what is undone)
BEFORE = {"smlib top1 (padded)": (1, "the step before packed tokens: transformers' own blocks over padded length-sorted "
                                       "chunks of encode_chunk texts, torch's dropout"),
          "smlib top1 (torch dropout)": (1, "packed tokens, but torch's dropout masks (one generator call per element)"),
          "smlib top1 (AdamW loop)": (1, "AdamW's per-parameter loop instead of its fused kernel")}


def undo(setting, name: str) -> None:
    """Put back, on one setting's embedder or optimizer, the step a BEFORE row names."""
    if name == "smlib top1 (padded)":
        setting.run.embedder.packed = False
    elif name == "smlib top1 (torch dropout)":
        setting.run.embedder.fast_dropout = False
    elif name == "smlib top1 (AdamW loop)":
        groups = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in setting.run.optimizer.param_groups]
        setting.run.optimizer = torch.optim.AdamW(groups, foreach=False)


def step_batches(params, dataset, n: int) -> list[Batch]:
    """The first n steps' batches, as training draws them (v3_contrastive: every step has triplets and pairs)."""
    return [batch for batch, _ in zip(iter_batches(params, dataset), range(n), strict=False)]


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so timings are real."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class SmlibSetting:
    """smlib's own training step (setup_training + train_step, as train() runs them) for one layers/precision setting."""

    def __init__(self, name: str, params, dataset, cache_root: Path, original: bool = False):
        self.name, self.params, self.dataset, self.original = name, params, dataset, original
        self.run = setup_training(params, dataset, progress=False, embedder=cached_embedder(cache_root))
        self.model = self.run.model
        self.model.train()
        self.cache_seconds = self.run.cache_seconds
        self.precision = self.model.precision
        self.seconds: list[float] = []

    def _embed_original(self, refs):
        """The original's way: one padded pass per group of B texts, duplicates and all."""
        b = len(refs) // 5
        groups = [refs[i * b:(i + 1) * b] for i in range(5)]
        return torch.cat([self.model.embed([self.dataset.text(d, i) for d, i in g], chunk=b) for g in groups])  # (5B, H)

    def step(self, batch: Batch) -> float:
        """One full training step (training.train_step: forward, backward, clip, AdamW); its wall-clock seconds."""
        sync(self.model.device)
        t0 = time.perf_counter()
        train_step(self.run, batch, self.params.train.grad_clip, embed=self._embed_original if self.original else None)
        sync(self.model.device)
        return time.perf_counter() - t0


class SentenceTransformersSetting:
    """What a researcher would otherwise write: sentence-transformers losses on the same batches, fp32, all layers."""

    def __init__(self, params, dataset):
        from sentence_transformers import SentenceTransformer
        try:  # sentence-transformers >= 5.4 keeps the losses here
            from sentence_transformers.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
        except ImportError:  # 3.x - 5.3 (the bench extra's lower bound is 3)
            from sentence_transformers.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

        from .models import bundled_model_path

        self.name, self.dataset, self.params = "sentence-transformers", dataset, params
        seed_everything(params.seed)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        source = str(bundled_model_path()) if params.model.base_model == "bundled" else params.model.base_model
        self.model = SentenceTransformer(source, device=device)
        self.model.max_seq_length = params.model.max_length
        self.model.train()
        scale = 1.0 / params.loss.temperature
        mp = params.model
        self.within = MatryoshkaLoss(self.model, MultipleNegativesRankingLoss(self.model, scale=scale), mp.matryoshka_dims)
        self.cross = MatryoshkaLoss(self.model, MultipleNegativesRankingLoss(self.model, scale=scale), [mp.prefix_dim])
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=params.train.lr,
                                           weight_decay=params.train.weight_decay)
        self.device = torch.device(device)
        self.precision, self.cache_seconds = "fp32", 0.0
        self.seconds: list[float] = []

    def _features(self, refs):
        texts = [self.dataset.text(d, i) for d, i in refs]
        return {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in self.model.tokenize(texts).items()}

    def step(self, batch: Batch) -> float:
        sync(self.device)
        t0 = time.perf_counter()
        refs = batch.refs
        b = len(refs) // 5
        groups = [self._features(refs[i * b:(i + 1) * b]) for i in range(5)]
        loss = self.within(groups[:3], None) + self.cross(groups[3:], None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.params.train.grad_clip)
        self.optimizer.step()
        sync(self.device)
        return time.perf_counter() - t0


def environment(device: torch.device, params) -> dict:
    return {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "precision_auto": resolve_precision("auto", device), "batch_size": params.train.batch_size,
            "max_length": params.model.max_length, "n_people": params.data.n_people, "variant": params.data.variant}


def step_times(steps: int = 5, warmup: int = 1, cache_root: Path = ROOT / "cache" / "trunk", data_root: Path = ROOT / "data",
               include=None, **overrides) -> dict:
    """Table 1: median seconds per training step of each setting, round-robin over the same batches."""
    ref = bench_params("all", "fp32", **dict(overrides))
    dataset, _ = load_or_build(ref, data_root)
    batches = step_batches(ref, dataset, warmup + steps)
    settings = [SmlibSetting("original", ref, dataset, cache_root, original=True)]
    if ref.model.base_model == "tiny":
        print("the tiny in-process encoder has no sentence-transformers form: its row is skipped")
    else:
        try:
            settings.append(SentenceTransformersSetting(ref, dataset))
        except ImportError:
            print("sentence-transformers is not installed (pip install -e '.[bench]'): its row is skipped")
    settings.append(SmlibSetting("smlib all (fp32)", ref, dataset, cache_root))
    for name, layers in SMLIB_SETTINGS.items():
        if include and name not in include:
            continue
        p = bench_params(layers, "auto", **dict(overrides))
        if name == "smlib all" and resolve_precision("auto", torch.device("cpu")) == "fp32" and not torch.cuda.is_available():
            continue  # identical to "smlib all (fp32)" on this machine
        settings.append(SmlibSetting(name, p, dataset, cache_root))
    for name, (layers, _) in BEFORE.items():
        if include and name not in include:
            continue
        settings.append(SmlibSetting(name, bench_params(layers, "auto", **dict(overrides)), dataset, cache_root))
        undo(settings[-1], name)
    for r, batch in enumerate(batches):
        for s in settings:
            seconds = s.step(batch)
            if r >= warmup:
                s.seconds.append(seconds)
    n_texts = len(batches[0].refs)
    reference = statistics.median(settings[0].seconds)
    device = settings[0].model.device
    roof = step_roofline(settings[0].model, dataset, batches[warmup:], device)
    rows = [{"setting": s.name, "precision": s.precision, "median_s": statistics.median(s.seconds),
             "min_s": min(s.seconds), "max_s": max(s.seconds), "texts_per_s": n_texts / statistics.median(s.seconds),
             "speedup": reference / statistics.median(s.seconds), "cache_s": s.cache_seconds,
             **setting_roofline(s, roof)} for s in settings]
    return {"env": {**environment(device, ref), "texts_per_step": n_texts, "steps": steps, "warmup": warmup},
            "roofline": roof, "rows": rows}


def step_roofline(model, dataset, batches: list[Batch], device) -> dict:
    """The measured steps' real (unpadded) token counts, and this machine's GEMM rate at their median count."""
    from . import roofline

    tokens = [sum(len(t) for t in model.tokenize([dataset.text(d, i) for d, i in dict.fromkeys(b.refs)])) for b in batches]
    config = model.transformer.config
    hidden, inner = config.hidden_size, config.intermediate_size
    t = int(statistics.median(tokens))
    return {"tokens": tokens, "gemm_tokens": t, "hidden": hidden, "intermediate": inner,
            "n_layers": config.num_hidden_layers, "flop_per_token_per_block": roofline.flop_per_token(hidden, inner),
            "gemm_flops": roofline.machine_rates(t, hidden, inner, device)}


def setting_roofline(setting, roof: dict) -> dict:
    """A setting's useful FLOP/s (median over its measured steps) and its share of the GEMM rate of its precision."""
    from . import roofline

    layers = "all" if isinstance(setting, SentenceTransformersSetting) else setting.params.train.trainable_layers
    blocks = roofline.trainable_blocks(layers, roof["n_layers"])
    if blocks == 0:
        return {"blocks": 0, "flops": None, "share": None}
    flops = statistics.median(roofline.achieved(sec, tok, blocks, roof["hidden"], roof["intermediate"])
                              for sec, tok in zip(setting.seconds, roof["tokens"], strict=True))
    return {"blocks": blocks, "flops": flops, "share": flops / roof["gemm_flops"][setting.precision]}


def format_step_table(result: dict) -> str:
    env = result["env"]
    lines = [f"torch {env['torch']} | device {env['device']}" + (f" ({env['gpu']})" if env["gpu"] else "")
             + f" | threads {env['threads']} | cpu {env['cpu']}",
             f"cpu flags: {env['cpu_flags']} | torch kernels {env['cpu_capability']} | precision auto -> {env['precision_auto']}",
             f"v3_contrastive, {env['variant']} text, {env['n_people']} people, batch {env['batch_size']} "
             f"({env['texts_per_step']} texts/step), max_length {env['max_length']}, {env['steps']} measured steps "
             f"after {env['warmup']} warm-up, settings round-robin over the same batches",
             f"{'setting':<26} {'precision':>9} {'median s':>9} {'min s':>8} {'max s':>8} {'texts/s':>8} {'speed-up':>9} "
             f"{'cache s':>8} {'blocks':>6} {'TFLOP/s':>8} {'GEMM share':>10}"]
    for r in result["rows"]:
        flops = f"{r['flops'] / 1e12:>8.3f}" if r.get("flops") else f"{'-':>8}"
        share = f"{100 * r['share']:>9.1f}%" if r.get("share") else f"{'-':>10}"
        lines.append(f"{r['setting']:<26} {r['precision']:>9} {r['median_s']:>9.3f} {r['min_s']:>8.3f} {r['max_s']:>8.3f} "
                     f"{r['texts_per_s']:>8.1f} {r['speedup']:>8.2f}x {r['cache_s']:>8.1f} {r.get('blocks', '-'):>6} "
                     f"{flops} {share}")
    lines.append("cache s: one-off trunk-state build (or read) per dataset and cut, shared by every condition and seed")
    lines += [f"{name}: {what}" for name, (_, what) in BEFORE.items() if any(r["setting"] == name for r in result["rows"])]
    roof = result.get("roofline")
    if roof:
        rates = ", ".join(f"{k} {v / 1e12:.3f} TFLOP/s" for k, v in roof["gemm_flops"].items())
        lines.append(f"roofline: useful work {roof['flop_per_token_per_block'] / 1e6:.1f} MFLOP per real token per "
                     f"trainable block (forward + backward; smlib.roofline), {statistics.median(roof['tokens']):.0f} real "
                     f"tokens/step; GEMM ({roof['gemm_tokens']} x {roof['hidden']}) @ ({roof['hidden']} x "
                     f"{roof['intermediate']}) here: {rates}; share = TFLOP/s / the GEMM rate of the row's precision")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m smlib.bench [--steps N] [--time-to-accuracy] [--json PATH] ..."""
    ap = argparse.ArgumentParser(prog="python -m smlib.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=5, help="measured steps per setting")
    ap.add_argument("--warmup", type=int, default=1, help="unmeasured steps per setting first")
    ap.add_argument("--profile", default="quick", help="params profile the data and batch come from")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param for every setting, e.g. --set train.batch_size=32 (repeatable)")
    ap.add_argument("--only", default="", help="comma list of smlib settings (e.g. 'smlib top2,smlib all')")
    ap.add_argument("--time-to-accuracy", action="store_true", help="also run table 2 (minutes per setting)")
    ap.add_argument("--target", type=float, default=0.8)
    ap.add_argument("--cap-seconds", type=float, default=600.0, help="training seconds per try before giving up")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--warmup-fraction", type=float, default=0.02, help="lr warm-up share of the planned steps (table 2)")
    ap.add_argument("--json", type=Path, default=None, help="also write both tables as JSON here")
    ap.add_argument("--tta-dir", type=Path, default=None, metavar="DIR",
                    help="table 2: store each (setting, lr) try here and reuse stored ones (resumable across sessions)")
    ap.add_argument("--lr", type=float, default=None, help="table 2: try only this lr (one per invocation)")
    ap.add_argument("--tta-only-stored", action="store_true", help="table 2 from --tta-dir's stored tries only")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        ap.error("--steps must be >= 1 and --warmup >= 0")
    import yaml

    overrides = {"profile": args.profile}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected KEY=VALUE")
        overrides[key] = _number(yaml.safe_load(value))
    include = [s.strip() for s in args.only.split(",") if s.strip()] or None
    steps = step_times(args.steps, args.warmup, include=include, **overrides)
    print(format_step_table(steps), flush=True)
    result = {"step_times": steps}
    if args.time_to_accuracy:
        sweep = {name: (args.lr,) for name in LR_SWEEP} if args.lr is not None else None
        tta = time_to_accuracy(steps, args.target, args.cap_seconds, args.eval_every, include=include, lr_sweep=sweep,
                               warmup_fraction=args.warmup_fraction, store=args.tta_dir,
                               run_missing=not args.tta_only_stored, **overrides)
        print(format_tta_table(tta))
        result["time_to_accuracy"] = tta
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _number(value):
    """YAML reads '3e-4' as a string; a number is meant."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


if __name__ == "__main__":
    raise SystemExit(main())
