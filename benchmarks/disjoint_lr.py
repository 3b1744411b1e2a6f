"""The ``disjoint`` learning rate, re-chosen by the training-wording rule on a dev slice (never on test people).

Run:  .venv/bin/python benchmarks/disjoint_lr.py [--only 2e-3] [--seed 42] [--store benchmarks/disjoint_lr]
      .venv/bin/python benchmarks/disjoint_lr.py --table-only      (the table from what is stored)

Each lr trains v3_contrastive on ``disjoint`` (quick profile, the profile's 350 steps) with the dev slice the study
uses (15% of the training people, never trained on). Under ``disjoint`` the dev slice is written like the
training people, so the rule is training-wording validation (smlib.selection): every run keeps its best dev
check (train.keep = best_dev) and the lr with the best dev top-1 at its kept step is chosen; the first in LRS
order on ties. The test people's top-1 at that step (the oracle) is printed for the reader, never used. One
JSON per lr is stored (benchmarks.heldout_search.run_setting); a rerun skips stored ones and so resumes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from heldout_search import run_setting, step_seconds, stored_rows  # noqa: E402

BASE = {"data.variant": "disjoint", "data.dev_fraction": 0.15, "train.keep": "best_dev", "train.eval_every": 25,
        "train.max_steps": 350}
LRS = ("1e-3", "2e-3", "3e-3")  # the three lrs the earlier (validation-people) choice compared


def setting(lr: str) -> tuple[str, dict]:
    return f"lr{lr}", {"train.lr": float(lr)}


def choose(rows: list[dict]) -> dict | None:
    """The training-wording choice: the best dev top-1 at the kept check; the first in LRS order on ties."""
    order = [setting(lr)[0] for lr in LRS]
    return min((r for r in rows if r["setting"] in order),
               key=lambda r: (-r["dev_top1"], order.index(r["setting"])), default=None)


def table(rows: list[dict]) -> str:
    chosen = choose(rows)
    lines = [f"disjoint lr (v3_contrastive, quick profile, seed {rows[0]['seed'] if rows else '-'}); rule: "
             "training-wording (dev slice, training wording) chooses; oracle = test people, never chooses",
             f"{'setting':<10} {'lr':>7} {'steps':>5} {'step s':>7} {'kept':>5} {'dev top-1':>9} {'oracle test':>11}"]
    for r in rows:
        mark = " <- chosen" if r is chosen else ""
        lines.append(f"{r['setting']:<10} {r['lr']:>7.0e} {r['steps']:>5} {step_seconds(r):>7.0f} {r['kept_step']:>5} "
                     f"{r['dev_top1']:>9.3f} {r['oracle_val_top1']:>11.3f}{mark}")
    if chosen:
        best = max(rows, key=lambda r: r["oracle_val_top1"])
        lines.append(f"training-wording keeps lr {chosen['lr']:.0e} at step {chosen['kept_step']}: test top-1 "
                     f"{chosen['oracle_val_top1']:.3f} (the oracle's best lr: {best['lr']:.0e}, "
                     f"{best['oracle_val_top1']:.3f}; read after the choice)")
        lines.append(f"machine: {chosen['cpu']}; flags {chosen['cpu_flags']}; precision {chosen['precision']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help=f"comma list of lrs (default: {','.join(LRS)})")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--store", type=Path, default=ROOT / "benchmarks" / "disjoint_lr")
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args(argv)
    lrs = [x.strip() for x in args.only.split(",") if x.strip()] or list(LRS)
    unknown = [x for x in lrs if x not in LRS]
    if unknown:
        ap.error(f"unknown lrs {unknown}; expected some of {list(LRS)}")
    if not args.table_only:
        for lr in lrs:
            run_setting(*setting(lr), args.seed, args.store, base=BASE)
    rows = [r for r in stored_rows(args.store) if r["seed"] == args.seed]
    rows.sort(key=lambda r: r["lr"])
    text = table(rows)
    print(text)
    if rows:
        (args.store / f"table_seed{args.seed}.txt").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
