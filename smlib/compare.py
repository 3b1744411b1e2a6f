"""Two records side by side: how far one run record (e.g. a fresh `--reproduce`) lands from another (the committed one).

compare_records(a, b) matches the rows of two profile folders (their completed runs, each checked against its
run.json, as the tables read them) by (variant, condition, seed) and, for each headline metric, gives a's value,
b's value, their difference and whether b's value lies within a's own 95% interval over validation people:

- identity top-1 and MRR, both directions: the BCa bootstrap interval a's metrics.json holds;
- triplet accuracy: a bootstrap over validation people (each triplet belongs to its anchor person), from a's
  embeddings.npz;
- debiased CKA at d = K: a jackknife over people (leave one person out; normal interval), from a's embeddings.npz;
- domain probe accuracy at d = K: a Wilson interval over the 2N held-out texts the probe classified;
- a top-1 of 0 or 1 (every person wrong, or right), whose bootstrap has no spread: a Wilson interval over people.

verdicts() gives one line per variant and comparison_markdown() the table a reader reads; write_comparison() writes
both (comparison.csv, comparison.md) beside the compared record.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import atomic
from .config import REFERENCE_ROWS
from .invariance import cka_debiased_interval
from .provenance import NOT_RECORDED, record_provenance
from .record import RunFolderError, dataset_in, iter_complete_runs
from .tables import collect_results

K = 64  # the identity width of the original design (docs/design.md#defaults): the '@K' metrics compared
HEADLINE = {  # metric -> how a's interval for it is had
    "prefix_d2h_top1": "bootstrap over people (metrics.json)",
    "prefix_h2d_top1": "bootstrap over people (metrics.json)",
    "prefix_d2h_mrr": "bootstrap over people (metrics.json)",
    "prefix_h2d_mrr": "bootstrap over people (metrics.json)",
    "triplet_acc_dating": "bootstrap over anchor people",
    "triplet_acc_hiring": "bootstrap over anchor people",
    f"cka_debiased@{K}": "jackknife over people",
    f"domain_probe_acc@{K}": "Wilson over the 2N texts",
}
COLUMNS = ["variant", "condition", "seed", "metric", "a", "b", "diff", "a_low", "a_high", "interval", "within"]
N_RESAMPLES = 2000
TOLERANCE = 1e-9  # float noise at an interval's edge is inside it
EQUAL = 1e-6  # values this close are "equal" (fp32 embeddings from two CPUs differ by ~1e-7 in CKA)


def _results(profile_dir: Path):
    """tables.collect_results: the completed runs only, each checked against its run.json, and the reference rows."""
    if not Path(profile_dir).is_dir():
        raise RunFolderError(f"{profile_dir}: no such record folder")
    return collect_results(profile_dir)


def _people_bootstrap(correct: np.ndarray, owner: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile interval of the mean of correct (one value per item) resampling the people who own the items."""
    people, inverse = np.unique(owner, return_inverse=True)
    hits = np.bincount(inverse, weights=correct, minlength=len(people))
    counts = np.bincount(inverse, minlength=len(people)).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, len(people), size=(N_RESAMPLES, len(people)))
    means = hits[draws].sum(1) / counts[draws].sum(1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def _wilson(p: float, n: int) -> tuple[float, float]:
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _stored_intervals(metrics: dict) -> dict[str, tuple[float, float]]:
    """The headline intervals a row records itself (<metric>_ci_low / _ci_high), where both bounds are there."""
    out = {}
    for m in HEADLINE:
        low, high = metrics.get(f"{m}_ci_low"), metrics.get(f"{m}_ci_high")
        if low is not None and high is not None and not (pd.isna(low) or pd.isna(high)):
            out[m] = (float(low), float(high))
    return out


def run_intervals(folder: Path, metrics: dict, seed: int) -> dict[str, tuple[float, float]]:
    """The 95% intervals over people of one run's headline metrics: those metrics.json records, and from its
    embeddings.npz those it does not (triplet accuracy, debiased CKA, the domain probe)."""
    from .evaluation import load_embeddings
    from .metrics import triplet_correct
    from .run_metrics import identity_space, triplet_rows

    out = _stored_intervals(metrics)
    if not (folder / "embeddings.npz").exists():
        return out
    emb = load_embeddings(folder / "embeddings.npz")
    for domain in ("dating", "hiring"):
        if not len(emb[f"triplets_{domain}"]):
            continue
        x = torch.from_numpy(np.asarray(emb[domain]))
        idx = triplet_rows(emb, domain)  # (T, 3)
        correct = triplet_correct(x[idx[:, 0]], x[idx[:, 1]], x[idx[:, 2]]).double().numpy()
        out[f"triplet_acc_{domain}"] = _people_bootstrap(correct, idx[:, 0].numpy(), seed)
    dating, hiring = identity_space(emb)
    if dating.shape[1] >= K and dating.shape[0] >= 6:
        out[f"cka_debiased@{K}"] = cka_debiased_interval(dating[:, :K], hiring[:, :K])
    acc = metrics.get(f"domain_probe_acc@{K}")
    if acc is not None and not pd.isna(acc):
        out[f"domain_probe_acc@{K}"] = _wilson(float(acc), 2 * len(emb["person_ids"]))
    return out


def compare_records(a: str | Path, b: str | Path, seeds=None, variants=None, conditions=None) -> pd.DataFrame:
    """One row per (variant, condition, seed, headline metric) of profile folder a (seeds, variants, conditions:
    only these; conditions also names reference rows and sweep points): a's value, b's, b - a, a's 95% interval
    over people (a_low, a_high; NaN where a holds none) and whether b lies within it (None without an interval).
    A row of a that b lacks is kept with b NaN and within False."""
    a, b = Path(a), Path(b)
    fa, fb = _results(a), _results(b)
    for wanted, column in ((seeds, "seed"), (variants, "variant"), (conditions, "condition")):
        if wanted is not None:
            fa, fb = fa[fa[column].isin(list(wanted))], fb[fb[column].isin(list(wanted))]
    if fa.empty:
        raise RunFolderError(f"{a}: no results for the seeds, variants and conditions compared")
    if fb.empty:
        raise RunFolderError(f"{b}: no results for the seeds and variants compared")
    keys = ["variant", "condition", "seed"]
    merged = fa.merge(fb, on=keys, how="left", suffixes=("", "__b"), indicator=True)
    people = {}  # (variant, seed) -> validation people, for the reference rows, which do not record it
    if "n_val_people" in fa.columns:
        for rec in fa[fa["n_val_people"].notna()].to_dict("records"):
            people[(rec["variant"], int(rec["seed"]))] = int(rec["n_val_people"])
    rows = []
    for rec in merged.to_dict("records"):
        folder = dataset_in(a, rec["variant"], int(rec["seed"])) / rec["condition"]
        bounds = (run_intervals(folder, rec, int(rec["seed"])) if (folder / "metrics.json").exists()
                  else _stored_intervals(rec))  # a reference row: what references.json records
        for m in HEADLINE:
            va = rec.get(m)
            if va is None or pd.isna(va):
                continue
            vb = rec.get(f"{m}__b") if rec["_merge"] == "both" else float("nan")
            has = m in bounds and not any(math.isnan(v) for v in bounds[m])
            low, high = bounds.get(m, (float("nan"), float("nan")))
            how = HEADLINE[m] if has else "none"
            n = people.get((rec["variant"], int(rec["seed"])))
            if has and m.endswith("_top1") and high - low <= EQUAL and n:  # 0/N or N/N: a bootstrap has no spread
                (low, high), how = _wilson(float(va), n), "Wilson over people (the bootstrap had no spread)"
            present = vb is not None and not pd.isna(vb)
            within = (False if not present else None if not has  # missing in b; no interval to read b with
                      else bool(low - TOLERANCE <= vb <= high + TOLERANCE))
            rows.append({"variant": rec["variant"], "condition": rec["condition"], "seed": int(rec["seed"]),
                         "metric": m, "a": float(va), "b": float(vb) if present else float("nan"),
                         "diff": float(vb) - float(va) if present else float("nan"), "a_low": low, "a_high": high,
                         "interval": how, "within": within})
    return pd.DataFrame(rows, columns=COLUMNS)


def verdicts(frame: pd.DataFrame) -> dict[str, str]:
    """One line per variant: how many compared values are equal (to EQUAL), within a's interval, outside it, missing;
    'reproduced' when none is outside or missing and a trained run was compared."""
    out = {}
    for variant, g in frame.groupby("variant", sort=False):
        missing = g[g["b"].isna()]
        outside = g[(g["within"] == False) & g["b"].notna()]  # noqa: E712 (within holds True, False or None)
        unchecked = g[g["within"].isna() & g["b"].notna()]
        equal = int((g["diff"].abs() <= EQUAL).sum())
        worst = ""
        if len(outside):
            top = outside.reindex(outside["diff"].abs().sort_values(ascending=False).index).iloc[:3]
            worst = "; outside: " + ", ".join(f"{r.condition} {r.metric} {r.diff:+.3f}" for r in top.itertuples()) \
                + (" ..." if len(outside) > 3 else "")
        trained = int((~g["condition"].isin(REFERENCE_ROWS)).sum())  # reference rows alone reproduce no training
        head = "reproduced" if not len(outside) and not len(missing) and trained else "NOT reproduced"
        worst += "" if trained else "; no trained run compared"
        out[variant] = (f"{head}: {len(g)} values, {equal} equal to 1e-6, {len(g) - len(outside) - len(missing) - len(unchecked)}"
                        f" within the committed 95% interval, {len(outside)} outside, {len(missing)} missing"
                        + (f", {len(unchecked)} without an interval" if len(unchecked) else "") + worst)
    return out


def _provenance(profile_dir: Path, seeds, variants, conditions) -> str:
    """Precision, machine and smlib source and commit of the compared trained runs (from their train.json)."""
    made = record_provenance(iter_complete_runs(profile_dir, "train.json", warn=None))  # _results warned
    for wanted, column in ((seeds, "seed"), (variants, "variant"), (conditions, "run")):
        if wanted is not None:
            made = made[made[column].isin(list(wanted))]
    if made.empty:
        return "no trained run compared"

    def values(column, width=None):
        cells = made[column].map(lambda v: NOT_RECORDED if v is None or pd.isna(v) else str(v)[:width])
        return "; ".join(f"{v} ({n} run{'s' if n > 1 else ''})" for v, n in cells.value_counts().items())

    return (f"precision {values('precision')}; machine {values('machine')}; smlib source {values('smlib_source')}; "
            f"smlib commit {values('smlib_commit', 10)}")


def comparison_markdown(frame: pd.DataFrame, a: str | Path, b: str | Path, seeds=None, variants=None,
                        conditions=None) -> str:
    """The verdicts, both records' provenance, then one table per variant (a, b, diff, a's interval, within)."""
    lines = [f"# {Path(b)} against {Path(a)}", "",
             f"- a (committed): `{a}`: {_provenance(Path(a), seeds, variants, conditions)}",
             f"- b (reproduced): `{b}`: {_provenance(Path(b), seeds, variants, conditions)}", "",
             "Verdict per variant (a value is within when b's lies in a's own 95% interval over validation people; "
             "intervals: " + "; ".join(f"{m}: {how}" for m, how in HEADLINE.items()) + "):", ""]
    lines += [f"- **{v}**: {text}" for v, text in verdicts(frame).items()]
    for variant, g in frame.groupby("variant", sort=False):
        lines += ["", f"## {variant}", "", "| condition | seed | metric | committed | reproduced | diff | committed 95% "
                  "interval | within |", "|---|---:|---|---:|---:|---:|---|---|"]
        for r in g.itertuples():
            interval = "-" if r.interval == "none" else f"[{r.a_low:.3f}, {r.a_high:.3f}]"
            within = {True: "yes", False: "**no**", None: "-"}[r.within if r.within in (True, False) else None]
            b_text = "missing" if math.isnan(r.b) else f"{r.b:.3f}"
            diff = "-" if math.isnan(r.diff) else f"{r.diff:+.3f}"
            lines.append(f"| {r.condition} | {r.seed} | {r.metric} | {r.a:.3f} | {b_text} | {diff} | {interval} | {within} |")
    return "\n".join(lines) + "\n"


def write_comparison(a: str | Path, b: str | Path, seeds=None, variants=None, conditions=None,
                     out_dir: str | Path | None = None):
    """compare_records(a, b, ...) written as comparison.csv, comparison.md and comparison.json (the verdicts) into
    out_dir (default: b); returns (frame, markdown)."""
    frame = compare_records(a, b, seeds, variants, conditions)
    text = comparison_markdown(frame, a, b, seeds, variants, conditions)
    out_dir = Path(out_dir) if out_dir is not None else Path(b)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(out_dir / "comparison.csv") as tmp:
        frame.to_csv(tmp, index=False)
    atomic.write_text(out_dir / "comparison.md", text)
    atomic.write_text(out_dir / "comparison.json", json.dumps(verdicts(frame), indent=2) + "\n")
    return frame, text
