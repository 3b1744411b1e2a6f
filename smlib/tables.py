"""Result tables: the run record -> per-run rows -> per-condition summaries -> CSV, LaTeX, markdown, README."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import atomic, compat
from .config import REPO_ROOT, is_sweep_run, ordered_variants, row_order, without_added_keys
from .metrics import seed_interval
from .provenance import check_one_precision, provenance_markdown, record_provenance
from .record import RunFolderError, import_recorded, iter_complete_runs, iter_datasets, warn_unrecorded
from .run_metrics import add_derived, interval_metrics, summary_metrics

KEY_COLUMNS = ["variant", "condition", "seed"]
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"  # the tables, in runs/<profile>/README.md
ANSWER_START, ANSWER_END = "<!-- answer:start -->", "<!-- answer:end -->"  # the answer, in the front README.md


def _format_mean_std(mean: float, std: float, decimals: int) -> str:
    """'0.812 ± 0.010', or '0.812' when std is undefined (one seed), or '-' when there is no value."""
    if math.isnan(mean):
        return "-"
    if math.isnan(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def summarize(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    decimals: int = 3,
) -> pd.DataFrame:
    """Mean, std and 95% t-interval over seeds per (variant, condition), with a 'mean ± std' column per metric.

    Numeric helpers per metric: <metric>_mean, _std, _ci_low, _ci_high (the interval is NaN for one seed).
    """
    unknown = [metric for metric in metrics if metric not in frame.columns]
    if unknown:
        raise ValueError(f"metrics {unknown} are not columns of the frame ({list(frame.columns)})")
    grouped = frame.groupby(["variant", "condition"], sort=False)
    summary = grouped.size().rename("n_seeds").reset_index()
    for metric in metrics:
        stats = grouped[metric].agg(["mean", "std"]).reset_index(drop=True)
        summary[f"{metric}_mean"] = stats["mean"]
        summary[f"{metric}_std"] = stats["std"]
        bounds = [seed_interval(values)[1:] for _, values in grouped[metric]]
        summary[f"{metric}_ci_low"] = [b[0] for b in bounds]
        summary[f"{metric}_ci_high"] = [b[1] for b in bounds]
        summary[metric] = [
            _format_mean_std(mean, std, decimals) for mean, std in zip(stats["mean"], stats["std"], strict=False)
        ]
    variant_rank = {variant: rank for rank, variant in enumerate(ordered_variants(frame["variant"]))}
    condition_rank = {condition: rank for rank, condition in enumerate(row_order(frame["condition"]))}
    sort_keys = [
        (variant_rank[variant], condition_rank[condition])
        for variant, condition in zip(summary["variant"], summary["condition"], strict=False)
    ]
    order = sorted(range(len(summary)), key=sort_keys.__getitem__)
    return summary.iloc[order].reset_index(drop=True)


def _display_columns(summary: pd.DataFrame) -> list[str]:
    """The columns a printed table shows: keys and formatted metrics, not the numeric helpers."""
    return [
        column
        for column in summary.columns
        if column != "n_seeds" and not column.endswith(("_mean", "_std", "_ci_low", "_ci_high"))
    ]


def to_latex(summary: pd.DataFrame, path: str | Path, caption: str, label: str) -> str:
    """Write the summary as a booktabs LaTeX table (pandas' Styler: escaped cells and headers) and return it."""
    from pandas.io.formats.style_render import _escape_latex  # the escaper Styler uses for cells, for the caption

    columns = _display_columns(summary)
    n_keys = sum(column in ("variant", "condition") for column in columns)
    styler = (summary[columns].style.hide(axis="index").format(escape="latex")
              .format_index(escape="latex", axis=1))
    latex = styler.to_latex(caption=_escape_latex(caption), label=label, hrules=True, position="t",
                            position_float="centering", column_format="l" * n_keys + "r" * (len(columns) - n_keys))
    latex = latex.replace("±", r"$\pm$")
    atomic.write_text(path, latex)
    return latex


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a GitHub markdown table."""
    columns = _display_columns(summary)
    n_keys = sum(column in ("variant", "condition") for column in columns)

    def cells(values) -> str:
        return "| " + " | ".join(str(value).replace("|", r"\|") for value in values) + " |"

    lines = [cells(columns), "|" + "|".join(["---"] * n_keys + ["---:"] * (len(columns) - n_keys)) + "|"]
    lines += [cells(row[columns]) for _, row in summary.iterrows()]
    return "\n".join(lines) + "\n"


def write_tables(
    frame: pd.DataFrame,
    metrics: Sequence[str],
    out_dir: str | Path,
    stem: str,
    caption: str | None = None,
) -> pd.DataFrame:
    """Summarise frame, write <stem>.csv and <stem>.tex (caption defaults to stem) and return the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(frame, metrics)
    with atomic.replacing(out_dir / f"{stem}.csv") as tmp:
        summary.to_csv(tmp, index=False, encoding="utf-8")
    to_latex(summary, out_dir / f"{stem}.tex", caption if caption is not None else stem, f"tab:{stem}")
    return summary


def interval_table(summary: pd.DataFrame, metrics: Sequence[str], decimals: int = 3) -> pd.DataFrame:
    """'mean [low, high]' per metric (95% t-interval over seeds; the mean alone for one seed) from summarize()."""
    out = summary[["variant", "condition", "n_seeds"]].copy()
    for metric in metrics:
        cells = []
        for mean, low, high in zip(summary[f"{metric}_mean"], summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"],
                                   strict=True):
            if math.isnan(mean):
                cells.append("-")
            elif math.isnan(low):
                cells.append(f"{mean:.{decimals}f}")
            else:
                cells.append(f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]")
        out[metric] = cells
    return out.reset_index(drop=True)


def collect_results(profile_dir: str | Path) -> pd.DataFrame:
    """One row per (variant, condition, seed) from every completed run's metrics.json and every references.json
    under a profile.

    Only completed runs are read (record.iter_complete_runs): a run folder without run.json is left out with a
    one-line warning naming it (and if no run under the profile is completed, RunFolderError), and a run whose
    metrics.json (or any file its run.json lists) changed since it was completed is one RunFolderError naming
    the folder and the file, before any table is written.
    """
    profile_dir = Path(profile_dir)
    unrecorded: list[str] = []  # the warnings: one per run folder left out

    def warn(message: str) -> None:
        unrecorded.append(message)
        warn_unrecorded(message)

    records = []
    datasets = {}  # dataset folder -> the data params its references.json was made for
    for _, _, path in iter_datasets(profile_dir, "references.json"):
        try:
            datasets[path.parent] = json.loads(path.read_text()).get("data_params")
        except (json.JSONDecodeError, AttributeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
    for _, _, name, path in iter_complete_runs(profile_dir, "metrics.json", warn=warn):
        try:
            r = json.loads(path.read_text())  # a sweep point's folder name, e.g. v3_contrastive@prefix_dim=16, names its row
            condition = name if is_sweep_run(name) and name.startswith(r["condition"]) else r["condition"]
            import_recorded(r, path)  # the modules that register its metrics
            records.append({"variant": r["variant"], "condition": condition, "seed": r["seed"], **r["metrics"]})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
        ref = datasets.get(path.parent.parent)
        trained_on = without_added_keys({"seed": r.get("params", {}).get("seed"), "data": r.get("params", {}).get("data")})
        if ref is not None and "params" in r and trained_on != without_added_keys(ref):
            raise RunFolderError(f"{path} was trained on another dataset than {path.parent.parent / 'references.json'} "
                                 "describes (its data params or seed differ): one table would mix two datasets; "
                                 "rerun that dataset's runs into another --out")
    if unrecorded and not records:  # only unfinished runs: no table of the reference rows alone
        raise RunFolderError(f"{profile_dir}: no completed run to table, {len(unrecorded)} run folder(s) without "
                             "run.json (named above); finish them with the study, or move them away")
    for _, _, path in iter_datasets(profile_dir, "references.json"):
        try:
            rows = json.loads(path.read_text())["rows"]
            for row in rows:
                missing = [k for k in ("variant", "condition", "seed") if k not in row]
                if missing:
                    raise KeyError(f"a row lacks {missing}")
            records += rows
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
    if not records:
        raise RunFolderError(f"no results under {profile_dir}: run `python -m smlib.study --profile "
                             f"{profile_dir.name}` first")
    order = {v: i for i, v in enumerate(ordered_variants(r["variant"] for r in records))}
    frame = pd.DataFrame(sorted(records, key=lambda r: order[r["variant"]]))
    frame = add_derived(frame)  # registered derived metrics, e.g. the headline prefix_top1 (both directions)
    return frame[["variant", "condition", "seed"] + [c for c in frame.columns if c not in ("variant", "condition", "seed")]]


def write_results_table(profile_dir: str | Path) -> pd.DataFrame:
    """results.csv/.tex (mean ± std over seeds, with 95% t-intervals in the CSV) and results.md under the profile,
    with what made the runs (smlib.provenance), from the completed runs only (collect_results); a record that mixes
    precisions, or holds a run changed since it was completed, is refused before anything is written."""
    profile_dir = Path(profile_dir)
    everything = collect_results(profile_dir)  # checks every completed run against its run.json
    made = record_provenance(iter_complete_runs(profile_dir, "train.json", warn=None))  # warned about above
    check_one_precision(made, profile_dir)  # before anything is written
    with atomic.replacing(profile_dir / "results_long.csv") as tmp:
        everything.to_csv(tmp, index=False)
    swept = everything["condition"].map(is_sweep_run).astype(bool)
    frame = everything[~swept]
    metrics = [m for m in summary_metrics() if m in frame.columns]
    summary = write_tables(frame, metrics, profile_dir, "results",
                           caption=f"shared-matryoshka, profile {profile_dir.name}: validation people")
    text = results_markdown(frame, summary)
    if swept.any():
        sweep_summary = write_tables(everything[swept], metrics, profile_dir, "results_sweep",
                                     caption=f"shared-matryoshka, profile {profile_dir.name}: sweep runs")
        text += ("\nSweep runs (one folder per value, `--sweep`); the value the profile already has is the "
                 f"condition's own row above.\n\n{to_markdown(sweep_summary)}")
    paired = paired_table(profile_dir)
    if paired is not None:
        with atomic.replacing(profile_dir / "paired_differences.csv") as tmp:
            paired.to_csv(tmp, index=False)
        text += paired_markdown(paired)
    text += provenance_markdown(made)
    atomic.write_text(profile_dir / "results.md", text)
    page = profile_dir / "README.md"  # the record's reading, where it has one: its tables follow results.md
    if page.exists() and README_START in (page_text := page.read_text()) and README_END in page_text:
        atomic.write_text(page, _replace_block(page_text, README_START, README_END,
                                               f"{made_by(profile_dir)}\n\n{text.strip()}\n"))
    return summary


def made_by(profile_dir: Path) -> str:
    """The comment that heads a generated block: the command that regenerates it."""
    out = profile_dir.resolve().parent
    out_flag = "" if out == (REPO_ROOT / "runs").resolve() else f" --out {_relative(out)}"
    return (f"<!-- generated by `python -m smlib.study --table-only --profile {profile_dir.name}{out_flag}"
            " --update-readme`; do not edit by hand -->")


def paired_table(profile_dir: Path) -> pd.DataFrame | None:
    """analysis.paired_differences of the record, or None where no run saved its embeddings."""
    from .analysis import paired_differences

    try:
        return paired_differences(profile_dir, warn=None)  # collect_results named the runs left out
    except FileNotFoundError:
        return None


def paired_markdown(paired: pd.DataFrame) -> str:
    """One row per method, one column per (variant, baseline): 'diff [low, high]' of prefix top-1."""
    if paired.empty:
        return ""
    cols = {}
    for (variant, role), g in paired.groupby(["variant", "vs_role"], sort=False):
        vs = g["vs"].iloc[0]
        cols[f"{variant}: minus {vs}" + (" (best reference)" if role == "best reference" else "")] = {
            r.method: f"{r.diff:+.3f} (no spread: every resample equal)" if r.degenerate
            else f"{r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}]" for r in g.itertuples()}
    methods = row_order(paired["method"].unique())
    table = pd.DataFrame({"method": methods, **{c: [v.get(m, "-") for m in methods] for c, v in cols.items()}})
    lines = ["| " + " | ".join(table.columns) + " |", "|---|" + "---:|" * (len(table.columns) - 1)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in table.itertuples(index=False)]
    n_seeds = int(paired["n_seeds"].max())
    return ("\nPaired differences in prefix top-1 (mean of both directions): method minus the proposed condition "
            "and minus the variant's best reference matcher, with 95% intervals from a paired bootstrap over "
            f"validation people{' and seeds' if n_seeds > 1 else ''} (n = {n_seeds} seed{'s' if n_seeds > 1 else ''}). "
            "An interval that excludes 0 is a resolved difference; any other is not resolved.\n\n"
            + "\n".join(lines) + "\n")


def results_markdown(frame: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    """The mean ± std table, then the headline metrics with 95% t-intervals over seeds."""
    summary = summary if summary is not None else summarize(frame, [m for m in summary_metrics() if m in frame])
    seeds = sorted(int(s) for s in frame["seed"].dropna().unique())
    text = (f"Mean ± std over seeds {', '.join(map(str, seeds))} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}; "
            f"reference rows use the data of each seed).\n\n{to_markdown(summary)}")
    headline = [m for m in interval_metrics() if m in frame.columns]
    if headline and len(seeds) > 1:
        intervals = interval_table(summarize(frame, headline), headline)
        text += ("\nMean and 95% t-interval over seeds; `prefix_top1` is the mean of both directions "
                 f"(dating→hiring, hiring→dating).\n\n{to_markdown(intervals)}")
    return text


def results_text(frame: pd.DataFrame) -> str:
    """The table metrics' mean ± std per (variant, condition) and, over several seeds, the headline intervals."""
    metrics = [m for m in summary_metrics() if m in frame]
    summary = summarize(frame, metrics)
    text = summary[["variant", "condition", *metrics]].to_string(index=False)
    headline = [m for m in interval_metrics() if m in frame]
    if frame["seed"].nunique() > 1:
        text += "\n\n" + interval_table(summarize(frame, headline), headline).to_string(index=False)
    return text


def record_params(profile_dir: str | Path) -> dict:
    """The params (as saved in metrics.json) of the record's first completed run of the proposed condition, or of its
    first completed run of any condition if the proposed one was not run; in a record of sweep points only, those of
    its first sweep point (of the proposed condition where there is one)."""
    from .config import PROPOSED

    paths: dict[str, Path] = {}  # each condition's first run
    for _, _, name, path in iter_complete_runs(profile_dir, "metrics.json", sweeps=False):
        paths.setdefault(name, path)
    if not paths:  # sweep points only: each condition's first point
        for _, _, name, path in iter_complete_runs(profile_dir, "metrics.json", warn=None):
            paths.setdefault(name.partition("@")[0], path)
    if not paths:
        raise RunFolderError(f"no recorded run under {profile_dir}")
    path = paths.get(PROPOSED) or paths[row_order(paths)[0]]
    try:
        return json.loads(path.read_text())["params"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFolderError(f"{path} is corrupted ({e})") from None


def answer_markdown(profile_dir: str | Path) -> str:
    """The front page's answer, from the record's results_long.csv and paired_differences.csv: per variant, the
    proposed condition's prefix top-1 (mean of both directions) with its t-interval over seeds, the variant's best
    reference row (the one the paired differences are taken against) with its own, the paired difference of the
    two and chance."""
    from .analysis import MATCHERS
    from .config import PROPOSED

    profile_dir = Path(profile_dir)
    everything = pd.read_csv(profile_dir / "results_long.csv")
    long = everything[~everything["condition"].map(is_sweep_run).astype(bool)].copy()
    if "prefix_top1" not in long:  # runs that recorded one direction only: no mean of both
        long["prefix_top1"] = math.nan
    paired_path = profile_dir / "paired_differences.csv"
    paired = pd.DataFrame(columns=["variant", "vs_role", "method"])
    if paired_path.exists():
        try:
            paired = pd.read_csv(paired_path)
        except pd.errors.EmptyDataError:  # a record without saved embeddings pairs nothing
            pass

    def cell(values: pd.Series) -> str:
        mean, low, high = seed_interval(values.dropna())
        return "-" if math.isnan(mean) else f"{mean:.3f}" if math.isnan(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"

    lines = [f"| text variant | `{PROPOSED}` | best reference row | {PROPOSED} minus it (paired) | chance |",
             "|---|---:|---:|---:|---:|"]
    for variant in ordered_variants(long["variant"]):
        v = long[long["variant"] == variant]
        top1 = {c: g["prefix_top1"] for c, g in v.groupby("condition")}
        best = paired[(paired["variant"] == variant) & (paired["vs_role"] == "best reference")
                      & (paired["method"] == PROPOSED)]
        if len(best):
            ref, row = best["vs"].iloc[0], best.iloc[0]
            diff = (f"{row['diff']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}] "
                    f"({'resolved' if row['resolved'] else 'not resolved'})")
        else:  # no saved embeddings to pair: the best reference row by its mean, no paired difference
            means = {c: x.mean() for c, x in top1.items() if c in MATCHERS}
            ref, diff = (max(means, key=means.get) if means else None), "-"
        reference = f"`{ref}` {cell(top1[ref])}" if ref in top1 else "-"
        chance = f"{top1['chance'].mean():.3f}" if "chance" in top1 else "-"
        lines.append(f"| `{variant}` | {cell(top1[PROPOSED]) if PROPOSED in top1 else '-'} | {reference} | {diff} | "
                     f"{chance} |")
    seeds = sorted(int(s) for s in long["seed"].dropna().unique())
    people = long["n_val_people"].dropna() if "n_val_people" in long else pd.Series(dtype=float)
    per_seed = f" ({int(people.max())} validation people per seed)" if len(people) and people.nunique() == 1 else ""
    return ("\n".join(lines) + f"\n\nIdentity top-1 on the prefix (mean of both directions) in `{_relative(profile_dir)}`: "
            f"mean and 95% t-interval over seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}{per_seed}; "
            "the paired difference is a bootstrap over people and seeds, resolved where its interval excludes 0.")


def _replace_block(text: str, start: str, end: str, block: str) -> str:
    return re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{block}\n{end}", text, flags=re.S)


def update_readme(profile_dir: str | Path, readme: str | Path = REPO_ROOT / "README.md") -> None:
    """Rebuild the tables of runs/<profile> with the two generated blocks: the tables in runs/<profile>/README.md
    (between README_START and README_END; a record without that page gets one, and every table build rewrites
    the block of a page that has one) and the answer in the front README (between ANSWER_START and ANSWER_END).
    Both places are checked before anything is written."""
    profile_dir = Path(profile_dir)
    readme = Path(readme)
    text = readme.read_text()
    if ANSWER_START not in text or ANSWER_END not in text:
        raise RuntimeError(f"{readme} has no {ANSWER_START} ... {ANSWER_END} block")
    page = profile_dir / "README.md"
    page_text = page.read_text() if page.exists() else (
        f"# The `{profile_dir.name}` record\n\nGenerated tables of this record; the reading of the committed study "
        f"is in runs/quick/README.md.\n\n{README_START}\n{README_END}\n")
    if README_START not in page_text or README_END not in page_text:
        raise RuntimeError(f"{page} has no {README_START} ... {README_END} block")
    if not page.exists():
        atomic.write_text(page, page_text)
    write_results_table(profile_dir)  # the tables, and the page's block from them
    atomic.write_text(readme, _replace_block(text, ANSWER_START, ANSWER_END,
                                             f"{made_by(profile_dir)}\n\n{answer_markdown(profile_dir)}\n"))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)
