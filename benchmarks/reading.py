"""Every number the README's reading of the record cites, printed from the committed record (nothing is trained).

Run:  .venv/bin/python benchmarks/reading.py [--record runs/quick] [--out benchmarks/reading_quick.txt]

Reads results_long.csv and paired_differences.csv (written by `python -m smlib.study --table-only`) and each run's
train.json. Per variant: prefix top-1 (mean of both directions) of every row with its t-interval over seeds and its
per-seed values; the proposed condition against the best reference matcher and against the best bag-of-words row
(paired bootstrap from paired_differences.csv); what the shared prefix costs each domain's triplet accuracy
(v3_contrastive minus v3_no_prefix, paired by seed); debiased CKA at K against its permutation null; the domain
probe at K and what the adversarial term changes there and in top-1 (paired by seed); the K sweep of the proposed
condition where the record has one; and which rule kept which check in every run. Intervals are Student-t over
seeds unless said otherwise; "resolved" means the interval excludes 0.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from smlib.config import PROPOSED, REFERENCE_ROWS, ordered_variants, row_order  # noqa: E402
from smlib.metrics import seed_interval  # noqa: E402
from smlib.record import iter_runs, sweep_prefix  # noqa: E402

BAG_OF_WORDS = ("tfidf", "tfidf_trained_word", "tfidf_trained_char")
BOUNDS = ("chance", "ceiling")


def interval(values) -> str:
    mean, low, high = seed_interval(list(values))
    return f"{mean:.3f}" if np.isnan(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def paired_by_seed(frame: pd.DataFrame, a: str, b: str, metric: str) -> str:
    """a minus b on metric, seed by seed, and the t-interval of the mean difference."""
    x = frame[frame["condition"] == a].set_index("seed")[metric]
    y = frame[frame["condition"] == b].set_index("seed")[metric]
    seeds = sorted(set(x.index) & set(y.index))
    if not seeds:
        return "no common seeds"
    d = [float(x[s] - y[s]) for s in seeds]
    mean, low, high = seed_interval(d)
    per_seed = ", ".join(f"{v:+.3f}" for v in d)
    if np.isnan(low):
        return f"{mean:+.3f} (one seed)"
    verdict = "resolved" if low > 0 or high < 0 else "not resolved"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}] ({verdict}; by seed {per_seed})"


def per_condition(v: pd.DataFrame, metric: str, null: str | None = None) -> list[str]:
    """One line per condition (in table order) that has metric: its t-interval over seeds and, given a null
    column, that column's mean."""
    lines = []
    for cond in row_order(v["condition"].unique()):
        g = v[v["condition"] == cond]
        if g[metric].notna().any():
            lines.append(f"  {cond:<20} " + (f"{interval(g[metric]):<26} null {g[null].mean():.3f}" if null
                                              else interval(g[metric])))
    return lines


def selection_lines(record: Path) -> list[str]:
    rows = []
    for variant, seed, name, path in iter_runs(record, "train.json"):
        sel = json.loads(path.read_text()).get("selection") or {}
        kept_best = sel.get("keep") == "best_dev"
        rows.append({"variant": variant, "seed": seed, "run": name,
                     "rule": f"kept its best check by {sel['rule']}" if kept_best and sel.get("rule") else "kept the last step",
                     "kept": sel.get("kept_step") if kept_best else None})
    if not rows:
        return []
    frame = pd.DataFrame(rows)
    lines = []
    for (variant, rule), g in frame.groupby(["variant", "rule"], sort=False):
        kept = g["kept"].dropna()
        span = f"kept steps {int(kept.min())}-{int(kept.max())} (median {kept.median():.0f})" if len(kept) else "last step"
        lines.append(f"  {variant}: {len(g)} runs {rule}" + (f"; {span}" if len(kept) else " (keep: last)"))
    return lines


def sweep_lines(long: pd.DataFrame, variant: str, k: int) -> list[str]:
    """The K sweep of one variant: every prefix_dim sweep point of the proposed condition beside the condition's own
    run at the profile's K (same seeds), with prefix top-1 (mean of both directions), full-embedding top-1 and triplet
    accuracy, in K order. Sweeps of other keys are not read here."""
    v = long[long["variant"] == variant]
    tag = sweep_prefix(PROPOSED, "model.prefix_dim")  # the runner names each point <tag><K>
    points = v[v["condition"].str.startswith(tag, na=False)]
    if points.empty:
        return []
    seeds = sorted(points["seed"].dropna().astype(int).unique())
    base = v[(v["condition"] == PROPOSED) & v["seed"].isin(seeds)]
    rows = [(k, f"{PROPOSED} (profile, K = {k})", base)]
    rows += [(int(name[len(tag):]), name, g) for name, g in points.groupby("condition")]
    lines = [f"sweep of {PROPOSED} over K (seeds {', '.join(map(str, seeds))}):"]
    for _, name, g in sorted(rows, key=lambda r: r[0]):
        lines.append(f"  {name:<32} prefix top-1 {g['prefix_top1'].mean():.3f}  full top-1 "
                     f"{g['full_d2h_top1'].mean():.3f}  triplet {g['triplet_acc_dating'].mean():.3f} / "
                     f"{g['triplet_acc_hiring'].mean():.3f}")
    return lines


def reading(record: Path) -> str:
    everything = pd.read_csv(record / "results_long.csv")
    long = everything[~everything["condition"].str.contains("@", regex=False)]  # sweep points: sweep_lines
    paired = pd.read_csv(record / "paired_differences.csv") if (record / "paired_differences.csv").exists() else None
    params = next(iter_runs(record, "metrics.json"), None)
    k = json.loads(params[3].read_text())["params"]["model"]["prefix_dim"] if params else 64
    shown = record.resolve()
    shown = shown.relative_to(ROOT) if ROOT in shown.parents else shown  # the same header on every checkout
    out = [f"Reading of {shown} (K = {k}); t-intervals over seeds unless said otherwise"]
    for variant in ordered_variants(long["variant"]):
        v = long[long["variant"] == variant]
        seeds = sorted(v["seed"].dropna().astype(int).unique())
        out.append(f"\n== {variant} (seeds {', '.join(map(str, seeds))}) ==")
        out.append("prefix top-1, mean of both directions:")
        for cond in row_order(v["condition"].unique()):
            g = v[v["condition"] == cond].sort_values("seed")
            out.append(f"  {cond:<20} {interval(g['prefix_top1']):<26} by seed "
                       + ", ".join(f"{x:.3f}" for x in g["prefix_top1"]))
        matchers = [c for c in v["condition"].unique() if c in REFERENCE_ROWS and c not in BOUNDS]
        means = v[v["condition"].isin(matchers)].groupby("condition")["prefix_top1"].mean()
        if len(means) and PROPOSED in set(v["condition"]):
            best, bow = means.idxmax(), means[means.index.isin(BAG_OF_WORDS)]
            out.append(f"best reference matcher: {best} ({means[best]:.3f}); best bag of words: "
                       f"{bow.idxmax() if len(bow) else '-'} ({bow.max() if len(bow) else float('nan'):.3f})")
            if paired is not None:
                p = paired[(paired["variant"] == variant) & (paired["method"] == PROPOSED)
                           & (paired["vs_role"] == "best reference")]
                for r in p.itertuples():
                    out.append(f"{PROPOSED} minus {r.vs} (paired bootstrap over people and seeds): {r.diff:+.3f} "
                               f"[{r.low:+.3f}, {r.high:+.3f}] ({'resolved' if r.resolved else 'not resolved'})")
            for name in bow.index:
                out.append(f"{PROPOSED} minus {name} (paired by seed): "
                           f"{paired_by_seed(v, PROPOSED, name, 'prefix_top1')}")
        conds = set(v["condition"])
        for domain in ("dating", "hiring"):
            col = f"triplet_acc_{domain}"
            if {PROPOSED, "v3_no_prefix"} <= conds and col in v:
                out.append(f"triplet accuracy {domain}: {PROPOSED} {interval(v[v['condition'] == PROPOSED][col])}, "
                           f"v3_no_prefix {interval(v[v['condition'] == 'v3_no_prefix'][col])}, zero_shot "
                           f"{interval(v[v['condition'] == 'zero_shot'][col])}; the prefix's cost "
                           f"({PROPOSED} minus v3_no_prefix): {paired_by_seed(v, PROPOSED, 'v3_no_prefix', col)}")
        cka, null = f"cka_debiased@{k}", f"cka_debiased_null_high@{k}"
        if cka in v:
            out.append(f"debiased CKA at d = {k} (null: mean 97.5% quantile of the permutation null):")
            out += per_condition(v, cka, null)
        probe = f"domain_probe_acc@{k}"
        if probe in v:
            out.append(f"domain probe accuracy on dims 0:{k} (0.5 = invariant):")
            out += per_condition(v, probe)
            if {PROPOSED, "adversarial"} <= conds:
                out.append(f"adversarial minus {PROPOSED}: domain probe {paired_by_seed(v, 'adversarial', PROPOSED, probe)}; "
                           f"prefix top-1 {paired_by_seed(v, 'adversarial', PROPOSED, 'prefix_top1')}")
        out += sweep_lines(everything, variant, k)
    sel = selection_lines(record)
    if sel:
        out += ["\nwhich rule kept which check (train.json selection):", *sel]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", type=Path, default=ROOT / "runs" / "quick")
    ap.add_argument("--out", type=Path, default=None, help="also write the text here")
    args = ap.parse_args(argv)
    if not (args.record / "results_long.csv").exists():
        ap.error(f"{args.record}/results_long.csv is missing: run `python -m smlib.study --table-only` first")
    text = reading(args.record)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
