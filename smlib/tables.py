"""Result tables: per-run records -> per-condition summaries -> CSV, LaTeX (booktabs) and markdown."""

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .config import CONDITIONS, REFERENCE_ROWS
from .metrics import seed_interval

KEY_COLUMNS = ["variant", "condition", "seed"]
CONDITION_ORDER = [*CONDITIONS, *REFERENCE_ROWS]
LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
}


def results_frame(records: Sequence[dict]) -> pd.DataFrame:
    """One row per (variant, condition, seed) run: key columns first, then metric columns."""
    frame = pd.DataFrame(list(records))
    missing = [key for key in KEY_COLUMNS if key not in frame.columns]
    if missing:
        raise ValueError(f"records lack the key columns {missing}; each needs {KEY_COLUMNS}")
    duplicated = frame.duplicated(KEY_COLUMNS)
    if duplicated.any():
        raise ValueError(f"duplicate runs: {frame.loc[duplicated, KEY_COLUMNS].to_dict('records')}")
    metrics = [column for column in frame.columns if column not in KEY_COLUMNS]
    return frame[KEY_COLUMNS + metrics].reset_index(drop=True)


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
    condition_order: Sequence[str] = CONDITION_ORDER,
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
            _format_mean_std(mean, std, decimals) for mean, std in zip(stats["mean"], stats["std"])
        ]
    variant_rank = {variant: rank for rank, variant in enumerate(frame["variant"].unique())}
    condition_rank = {condition: rank for rank, condition in enumerate(condition_order)}
    sort_keys = [
        (variant_rank[variant], condition_rank.get(condition, len(condition_rank)), condition)
        for variant, condition in zip(summary["variant"], summary["condition"])
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


def _latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and turn ± into $\\pm$)."""
    return "".join(LATEX_ESCAPES.get(char, char) for char in str(text))


def to_latex(summary: pd.DataFrame, path: str | Path, caption: str, label: str) -> str:
    """Write the summary as a booktabs LaTeX table to path and return the LaTeX."""
    columns = _display_columns(summary)
    n_keys = sum(column in ("variant", "condition") for column in columns)
    alignment = "l" * n_keys + "r" * (len(columns) - n_keys)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(caption)}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{alignment}}}",
        r"\toprule",
        " & ".join(_latex_escape(column) for column in columns) + r" \\",
        r"\midrule",
    ]
    previous_variant = None
    for _, row in summary.iterrows():
        if previous_variant is not None and row.get("variant") != previous_variant:
            lines.append(r"\midrule")
        previous_variant = row.get("variant")
        lines.append(" & ".join(_latex_escape(row[column]) for column in columns) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    latex = "\n".join(lines) + "\n"
    Path(path).write_text(latex, encoding="utf-8")
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
    summary.to_csv(out_dir / f"{stem}.csv", index=False, encoding="utf-8")
    to_latex(summary, out_dir / f"{stem}.tex", caption if caption is not None else stem, f"tab:{stem}")
    return summary


def interval_table(summary: pd.DataFrame, metrics: Sequence[str], decimals: int = 3) -> pd.DataFrame:
    """'mean [low, high]' per metric (95% t-interval over seeds; the mean alone for one seed) from summarize()."""
    out = summary[["variant", "condition", "n_seeds"]].copy()
    for metric in metrics:
        cells = []
        for mean, low, high in zip(summary[f"{metric}_mean"], summary[f"{metric}_ci_low"], summary[f"{metric}_ci_high"]):
            if math.isnan(mean):
                cells.append("-")
            elif math.isnan(low):
                cells.append(f"{mean:.{decimals}f}")
            else:
                cells.append(f"{mean:.{decimals}f} [{low:.{decimals}f}, {high:.{decimals}f}]")
        out[metric] = cells
    return out.reset_index(drop=True)
