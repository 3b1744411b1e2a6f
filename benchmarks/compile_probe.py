"""Does torch.compile make the packed top-1 step faster on this CPU?

Run: .venv/bin/python benchmarks/compile_probe.py [--steps 8] [--warmup 2]

The packed block (smlib.models.packed.packed_layer) is attention in length buckets (a Python loop over a
varying number of buckets, which would recompile for every new bucket layout) followed by token-wise work:
the attention output's dense + dropout + residual + LayerNorm and the feed-forward GELU block + dropout +
residual + LayerNorm. This probe compiles only that token-wise tail (inductor, dynamic token count), swaps
it into packed_layer, and times the bench's smlib top1 step eager and compiled round-robin over the same
batches after a warm-up; it prints the compile (warm-up) seconds too, which every run's kernel would pay.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smlib.bench import SmlibSetting, bench_params, cpu_flags, cpu_model, step_batches  # noqa: E402
from smlib.data import load_or_build  # noqa: E402
from smlib.models import packed  # noqa: E402


def tail(ctx, x, so_w, so_b, ln1_w, ln1_b, i_w, i_b, o_w, o_b, ln2_w, ln2_b, p: float, train: bool, eps: float):
    """Everything of a BertLayer after attention, on packed tokens: the part torch.compile can fuse."""
    h = F.layer_norm(packed.dropout(F.linear(ctx, so_w, so_b), p, train) + x, (x.shape[-1],), ln1_w, ln1_b, eps)
    inner = F.gelu(F.linear(h, i_w, i_b))
    return F.layer_norm(packed.dropout(F.linear(inner, o_w, o_b), p, train) + h, (x.shape[-1],), ln2_w, ln2_b, eps)


def layer_with(tail_fn):
    def packed_layer(layer, x, packing, fast_dropout=True):
        sa, so, out = layer.attention.self, layer.attention.output, layer.output
        qkv = F.linear(x, torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]),
                       torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
        q, k, v = qkv.split(x.shape[-1], dim=-1)
        ctx = packed._attend(q, k, v, packing, sa.num_attention_heads, sa.dropout.p, layer.training, fast_dropout)
        return tail_fn(ctx, x, so.dense.weight, so.dense.bias, so.LayerNorm.weight, so.LayerNorm.bias,
                       layer.intermediate.dense.weight, layer.intermediate.dense.bias, out.dense.weight,
                       out.dense.bias, out.LayerNorm.weight, out.LayerNorm.bias, out.dropout.p, layer.training,
                       out.LayerNorm.eps)
    return packed_layer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    params = bench_params(1, "auto")
    dataset, _ = load_or_build(params, "data")
    batches = step_batches(params, dataset, args.warmup + args.steps)
    import smlib.models.shared as shared

    eager_layer = shared.packed_layer
    compiled = torch.compile(tail, dynamic=True)
    variants = {"eager (smlib's packed_layer)": eager_layer, "eager tail fn": layer_with(tail),
                "compiled tail": layer_with(compiled)}
    settings = {name: SmlibSetting(name, params, dataset, Path("cache")) for name in variants}
    times = {name: [] for name in variants}
    for name, setting in settings.items():  # warm-up (the compiled one compiles here)
        shared.packed_layer = variants[name]
        t0 = time.perf_counter()
        for b in batches[: args.warmup]:
            setting.step(b)
        print(f"{name}: warm-up {time.perf_counter() - t0:.1f} s for {args.warmup} steps", flush=True)
    for b in batches[args.warmup:]:
        for name, setting in settings.items():
            shared.packed_layer = variants[name]
            t0 = time.perf_counter()
            setting.step(b)
            times[name].append(time.perf_counter() - t0)
    shared.packed_layer = eager_layer
    print(f"machine: {cpu_model()}; flags {' '.join(cpu_flags())}; torch {torch.__version__}; "
          f"precision {settings[next(iter(settings))].model.precision}; "
          f"activation {settings[next(iter(settings))].model.transformer.config.hidden_act} (the tail uses exact GELU)")
    for name, ts in times.items():
        print(f"{name:<32} median {statistics.median(ts):.3f} s/step over {len(ts)} steps (round-robin)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
