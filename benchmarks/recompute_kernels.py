"""Does recomputing the record depend on the CPU's matrix kernels? Recompute a copy of it and count what would change.

Run:  .venv/bin/python benchmarks/recompute_kernels.py [--record runs/quick]
      MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recompute_kernels.py

The second form makes torch and MKL use their AVX2 kernels on an AVX512 or AMX machine: the nearest this machine
comes to being another CPU. The record is copied to a temporary folder first, so nothing committed is touched;
`smlib.recompute.recompute_metrics` then recomputes every run's metrics.json and every dataset's reference rows
from what is saved, and the script prints how many files it would rewrite (values beyond
smlib.recompute.SAME_TOLERANCE) and which metrics, with the CPU flags and the kernels torch used.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from smlib.provenance import cpu_flags, cpu_model  # noqa: E402
from smlib.recompute import recompute_metrics  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", default="runs/quick", help="a profile folder of the record (default runs/quick)")
    args = ap.parse_args()
    record = Path(args.record)
    if not record.is_dir():
        print(f"no record at {record}", file=sys.stderr)
        return 2
    print(f"record {record}; {cpu_model()} ({cpu_flags()}); torch {torch.__version__}, kernels "
          f"{torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} thread(s)")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / record.name
        shutil.copytree(record, copy)
        report = recompute_metrics(copy, log=lambda _: None)
    failed = [r for r in report if r.get("failed")]
    changed = [r for r in report if r["changed"]]
    print(f"{len(report)} files read, {len(changed)} would be rewritten, {len(failed)} could not be read")
    for r in changed:
        print(f"  {Path(r['run']).relative_to(copy)}: {', '.join(sorted(r['changed']))}")
    for r in failed:
        print(f"  FAILED {r['failed']}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
