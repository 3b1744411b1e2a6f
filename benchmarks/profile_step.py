"""Where a training step's time goes: torch.profiler over a few `train_step`s of one bench setting.

    python benchmarks/profile_step.py                      # smlib top1 (quick profile, disjoint, precision auto)
    python benchmarks/profile_step.py --layers 2 --steps 3 --out benchmarks/profile.txt

Prints (and with --out writes) the machine, the setting, the median seconds per profiled step and the table of
ops by self CPU time. Run it alone: anything beside it skews every number.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smlib.bench import ROOT, bench_params, cpu_flags, cpu_model, step_batches  # noqa: E402
from smlib.data import load_or_build  # noqa: E402
from smlib.training import setup_training, train_step  # noqa: E402
from smlib.trunk_cache import cached_embedder  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="1", help="train.trainable_layers: 0..6 or all")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--steps", type=int, default=3, help="profiled steps")
    ap.add_argument("--warmup", type=int, default=2, help="unprofiled steps first")
    ap.add_argument("--rows", type=int, default=30)
    ap.add_argument("--padded", action="store_true", help="the step before packing (padded length-sorted chunks)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    layers = args.layers if args.layers == "all" else int(args.layers)
    params = bench_params(layers, args.precision)
    dataset, _ = load_or_build(params, ROOT / "data")
    run = setup_training(params, dataset, progress=False, embedder=cached_embedder(ROOT / "cache" / "trunk"))
    run.model.train()
    run.embedder.packed = not args.padded
    batches = step_batches(params, dataset, args.warmup + args.steps)
    for batch in batches[: args.warmup]:
        train_step(run, batch, params.train.grad_clip)
    seconds = []
    with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        for batch in batches[args.warmup:]:
            t0 = time.perf_counter()
            train_step(run, batch, params.train.grad_clip)
            seconds.append(time.perf_counter() - t0)
    head = [f"cpu {cpu_model()} | flags {cpu_flags()} | torch {torch.__version__} | threads {torch.get_num_threads()}",
            f"setting: trainable_layers {layers}, precision {run.model.precision}, "
            f"{'padded chunks' if args.padded else 'packed tokens'}, {len(batches[0].refs)} texts/step, "
            f"{args.steps} profiled steps after {args.warmup} (median {statistics.median(seconds):.3f} s/step under "
            "the profiler, which adds its own overhead)", ""]
    text = "\n".join(head) + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
