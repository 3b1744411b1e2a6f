"""Why a step inside `train` is slower than the bench's step: per-step seconds by block of steps.

Run: .venv/bin/python benchmarks/step_drift.py [--steps 150] [--block 25]

Trains quick `disjoint` v3_contrastive (top 1 layer on the cached trunk, the profile's recipe) for --steps steps
with no validation checks, and prints the median seconds per step of each block of --block steps, then times
the bench's step (smlib.bench.SmlibSetting) on the first block's batches in the same process. A drift from
the first block to the last inside `train` is in the loop or the machine, not in the step's arithmetic.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smlib.bench import SmlibSetting, cpu_flags, cpu_model, step_batches  # noqa: E402
from smlib.config import load_params  # noqa: E402
from smlib.data import load_or_build  # noqa: E402
from smlib.training import train  # noqa: E402
from smlib.trunk_cache import cached_embedder  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--block", type=int, default=25)
    args = ap.parse_args()
    params = load_params("v3_contrastive", "quick", overrides={"data.variant": "disjoint", "train.max_steps": args.steps,
                                                               "train.eval_every": None})
    dataset, _ = load_or_build(params, "data")
    t0 = time.perf_counter()
    result = train(params, dataset, progress=False, embedder=cached_embedder("cache"))
    s = result.history["seconds"].tolist()
    print(f"machine: {cpu_model()}; flags {cpu_flags()}; precision {result.model.precision}")
    print(f"train(): {len(s)} steps in {time.perf_counter() - t0:.1f} s (cache {result.cache_seconds:.1f} s)")
    for b in range(0, len(s), args.block):
        print(f"  steps {b:>4}-{min(b + args.block, len(s)) - 1:>4}: median {statistics.median(s[b:b + args.block]):.3f} s")
    setting = SmlibSetting("smlib top1", params, dataset, Path("cache"))
    batches = step_batches(params, dataset, args.block)
    times = [setting.step(b) for b in batches]
    print(f"bench step on the first {args.block} batches (fresh model): median {statistics.median(times[1:]):.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
