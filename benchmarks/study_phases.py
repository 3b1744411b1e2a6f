"""Where a study's wall time went, phase by phase, read off its executed notebooks and run files.

    python benchmarks/study_phases.py runs/quick --wall 2900     # --wall: the study's measured wall seconds

Each executed notebook records its own duration and every cell's (papermill); the gap between the two is
the kernel's start and papermill's own work. 02_train's train.json and history.csv split its training cell
into the trunk cache, the optimizer steps and the validation checks; 03_evaluate's metrics.json splits the
evaluation into the embedding pass and the metrics. With --wall, what no notebook accounts for (the runner,
the results tables) is the remainder.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd


def _cells(nb: dict) -> list[tuple[str, float]]:
    return [("".join(c["source"]), float(c["metadata"].get("papermill", {}).get("duration") or 0.0))
            for c in nb["cells"] if c["cell_type"] == "code"]


def _split(nb_path: Path, phases: dict, kind: str, marks: dict[str, tuple[str, ...]]) -> None:
    """Add one notebook's seconds to phases[(kind, part)]: kernel start, each marked cell, the rest."""
    nb = json.loads(nb_path.read_text())
    total = float(nb["metadata"].get("papermill", {}).get("duration") or 0.0)
    cells = _cells(nb)
    phases[(kind, "kernel start + papermill")] += total - sum(d for _, d in cells)
    for i, (src, seconds) in enumerate(cells):
        part = next((name for name, needles in marks.items() if any(n in src for n in needles)), None)
        if part is None:
            part = "imports + setup" if i < 3 and "import" in src else "other cells (tables, figures, saving)"
        phases[(kind, part)] += seconds


def phases_of(profile_dir: Path) -> dict:
    phases: dict = defaultdict(float)
    counts: dict = defaultdict(int)
    for nb in sorted(profile_dir.glob("*/*/01_data.ipynb")):
        counts["01_data"] += 1
        _split(nb, phases, "01_data", {"reference rows": ("reference_rows(",)})
    for nb in sorted(profile_dir.glob("*/*/*/02_train.ipynb")):
        counts["02_train"] += 1
        before = phases[("02_train", "train cell")]
        _split(nb, phases, "02_train", {"train cell": ("train(params",)})
        train_cell = phases[("02_train", "train cell")] - before
        info = json.loads((nb.parent / "train.json").read_text())
        history = pd.read_csv(nb.parent / "history.csv")
        checks = float(history["eval_seconds"].sum()) if "eval_seconds" in history else 0.0
        phases[("02_train", "train cell")] -= train_cell
        phases[("02_train", "optimizer steps")] += info["step_seconds"]
        phases[("02_train", "trunk cache")] += info["cache_seconds"]
        phases[("02_train", "validation checks")] += checks
        phases[("02_train", "train cell: model load, save, rest")] += (train_cell - info["step_seconds"]
                                                                      - info["cache_seconds"] - checks)
    for nb in sorted(profile_dir.glob("*/*/*/03_evaluate.ipynb")):
        counts["03_evaluate"] += 1
        before = phases[("03_evaluate", "evaluate cell")]
        _split(nb, phases, "03_evaluate", {"evaluate cell": ("evaluate_run(", "load_checkpoint(")})
        cell = phases[("03_evaluate", "evaluate cell")] - before
        timings = json.loads((nb.parent / "metrics.json").read_text())["timings"]
        phases[("03_evaluate", "evaluate cell")] -= cell
        phases[("03_evaluate", "embedding pass")] += timings.get("embed_seconds", 0.0)
        phases[("03_evaluate", "metrics")] += timings.get("metrics_seconds", 0.0)
        phases[("03_evaluate", "evaluate cell: imports, checkpoint load, writing")] += (
            cell - timings.get("embed_seconds", 0.0) - timings.get("metrics_seconds", 0.0))
    for nb in sorted(profile_dir.glob("04_figures.ipynb")):
        counts["04_figures"] += 1
        _split(nb, phases, "04_figures", {})
    return {"phases": dict(phases), "counts": dict(counts)}


def table(result: dict, wall: float | None) -> str:
    order = ("01_data", "02_train", "03_evaluate", "04_figures")
    rows = sorted(((k, v) for k, v in result["phases"].items() if abs(v) > 1e-9), key=lambda kv: order.index(kv[0][0]))
    in_notebooks = sum(v for _, v in rows)
    total = wall if wall is not None else in_notebooks
    lines = [f"{'phase':<14} {'part':<48} {'seconds':>9} {'share':>7}"]
    for (kind, part), seconds in rows:
        lines.append(f"{kind + ' x' + str(result['counts'][kind]):<14} {part:<48} {seconds:>9.1f} {100 * seconds / total:>6.1f}%")
    if wall is not None:
        lines.append(f"{'runner':<14} {'outside notebooks (planning, tables, README)':<48} {wall - in_notebooks:>9.1f} "
                     f"{100 * (wall - in_notebooks) / total:>6.1f}%")
    lines.append(f"{'total':<14} {'' if wall is not None else '(notebooks only: give --wall for the rest)':<48} "
                 f"{total:>9.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile_dir", type=Path, help="a study's <out>/<profile> folder")
    ap.add_argument("--wall", type=float, default=None, help="the study's measured wall seconds")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not args.profile_dir.is_dir():
        print(f"error: {args.profile_dir} is not a study's profile folder", file=sys.stderr)
        return 2
    result = phases_of(args.profile_dir)
    print(table(result, args.wall))
    if args.json:
        args.json.write_text(json.dumps({**result, "phases": {f"{k}: {p}": v for (k, p), v in result["phases"].items()},
                                         "wall": args.wall}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
