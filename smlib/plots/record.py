"""Figures of a whole record (04_figures): intervals over seeds, CKA, learning, gallery and sweep curves, paired differences."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..config import PROPOSED, REFERENCE_ROWS, ordered_variants, row_order, sweep_prefix
from ..metrics import seed_interval
from ..record import is_sweep_run
from ..run_metrics import metric_label
from ..tables import summarize
from .base import _figure, style


def top1_with_ci(frame: pd.DataFrame, metric: str = "prefix_top1") -> Figure:
    """A metric per condition and variant: mean over seeds, 95% t-interval over seeds and each seed as a dot.

    With one seed, the error bar is that run's 95% bootstrap interval over query people instead.
    References (chance, TF-IDF, untrained encoder, ceiling) are horizontal lines at their mean over seeds.
    """
    if metric not in frame.columns and metric == "prefix_top1" and "prefix_d2h_top1" in frame.columns:
        metric = "prefix_d2h_top1"  # an older record without the mean of both directions
    frame = without_sweeps(frame)
    variants = ordered_variants(frame["variant"])
    fig, axes = _figure(1, len(variants), 6.5 * len(variants), 4.5, sharey=True)
    boot = [c for c in (f"{metric}_ci_low", f"{metric}_ci_high") if c in frame.columns]
    stats = summarize(frame.dropna(subset=[metric]), [metric])
    if boot:  # one seed: the run's own bootstrap interval
        means = frame.groupby(["variant", "condition"], sort=False)[boot].mean().add_suffix("_mean").reset_index()
        stats = stats.merge(means, on=["variant", "condition"], how="left")
    for ax, variant in zip(axes[0], variants, strict=False):
        s = stats[stats["variant"] == variant].set_index("condition")
        trained = [c for c in row_order(s.index) if c not in REFERENCE_ROWS]
        x = np.arange(len(trained))
        mean = s.loc[trained, f"{metric}_mean"].to_numpy(dtype=float)
        several = s.loc[trained, "n_seeds"].to_numpy() > 1
        one_low = s.loc[trained, f"{metric}_ci_low_mean"].to_numpy(dtype=float) if boot else np.full(len(x), np.nan)
        one_high = s.loc[trained, f"{metric}_ci_high_mean"].to_numpy(dtype=float) if boot else np.full(len(x), np.nan)
        low = np.where(several, s.loc[trained, f"{metric}_ci_low"].to_numpy(dtype=float), one_low)
        high = np.where(several, s.loc[trained, f"{metric}_ci_high"].to_numpy(dtype=float), one_high)
        ax.bar(x, mean, color=[style(c)["color"] for c in trained], alpha=0.8)
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)]).clip(min=0)
        ax.errorbar(x, mean, yerr=yerr, fmt="none", ecolor="black", capsize=4)
        seeds = frame[(frame["variant"] == variant) & frame["condition"].isin(trained)].dropna(subset=[metric])
        n_seeds = int(seeds["seed"].nunique())
        if n_seeds > 1:
            ax.scatter([trained.index(c) for c in seeds["condition"]], seeds[metric], color="black", s=10, zorder=3,
                       label="single seeds")
        for ref in (r for r in REFERENCE_ROWS if r in s.index):
            value = s.loc[ref, f"{metric}_mean"]
            if ref == "ceiling":  # a wide pale band, so a reference line at the ceiling still shows on top of it
                ax.axhline(value, color=style(ref)["color"], linewidth=6, alpha=0.2, label=f"{ref} ({value:.2f})")
            else:
                ax.axhline(value, color=style(ref)["color"], linestyle="--", linewidth=1.2, label=f"{ref} ({value:.2f})")
        ax.set_xticks(x, trained, rotation=30, ha="right")
        bars = f"95% t-interval over {n_seeds} seeds" if n_seeds > 1 else "95% bootstrap interval, one seed"
        ax.set(title=f"{variant}: {metric_label(metric)}\n(bars: mean; error bars: {bars})", xlabel="condition",
               ylabel=metric_label(metric))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no bar
    return fig


def _at_dims(frame: pd.DataFrame, key: str) -> list[str]:
    """The frame's '<key>@<d>' columns, by d."""
    return sorted((c for c in frame.columns if c.startswith(f"{key}@")), key=lambda c: int(c.split("@")[1]))


def _by_dim_figure(frame: pd.DataFrame, cols: list[str]) -> tuple[Figure, list]:
    """A panel per variant with one line per condition or reference row: the mean over seeds of each '@d' column
    against d, with its 95% t-band, in the row's style; returns (figure, [(axes, variant, seeds), ...])."""
    dims = [int(c.split("@")[1]) for c in cols]
    variants = ordered_variants(frame["variant"])
    fig, axes = _figure(1, len(variants), 5.5 * len(variants), 4.5, sharey=True)
    stats = summarize(frame, cols)
    panels = []
    for ax, variant in zip(axes[0], variants, strict=False):
        _lines_by_dim(ax, stats[stats["variant"] == variant].set_index("condition"), cols, dims)
        panels.append((ax, variant, int(frame.loc[frame["variant"] == variant, "seed"].nunique())))
    return fig, panels


def _lines_by_dim(ax, stats: pd.DataFrame, cols: list[str], dims: list[int]) -> None:
    for cond in row_order(stats.index):
        values = stats.loc[cond, [f"{c}_mean" for c in cols]].to_numpy(dtype=float)
        if not np.isfinite(values).any():
            continue
        ax.plot(dims, values, label=cond, **style(cond))
        low = stats.loc[cond, [f"{c}_ci_low" for c in cols]].to_numpy(dtype=float)
        high = stats.loc[cond, [f"{c}_ci_high" for c in cols]].to_numpy(dtype=float)
        if np.isfinite(low).any():
            ax.fill_between(dims, low, high, color=style(cond)["color"], alpha=0.15, linewidth=0)


def cka_vs_dim(frame: pd.DataFrame, prefix_dim: int = 64, debiased: bool = True) -> Figure:
    """Linear CKA between dating and hiring embeddings at each Matryoshka dim: mean over seeds, 95% t-band; the
    debiased estimator by default, drawn over a grey band of its permutation null (hiring rows shuffled across
    people: the mean over runs of each run's 2.5%-97.5% null quantiles). A record without debiased values shows
    the biased one."""
    frame = without_sweeps(frame)
    key = "cka_debiased" if debiased and _at_dims(frame, "cka_debiased") else "cka"
    cols = _at_dims(frame, key)
    fig, panels = _by_dim_figure(frame, cols)
    dims = [int(c.split("@")[1]) for c in cols]
    for ax, variant, n_seeds in panels:
        lows, highs = _at_dims(frame, "cka_debiased_null_low"), _at_dims(frame, "cka_debiased_null_high")
        if key == "cka_debiased" and lows and highs:
            rows = frame[frame["variant"] == variant]
            null_dims = [int(c.split("@")[1]) for c in lows]
            ax.fill_between(null_dims, rows[lows].mean().to_numpy(dtype=float), rows[highs].mean().to_numpy(dtype=float),
                            color="lightgrey", alpha=0.8, linewidth=0, label="permutation null, 95%", zorder=0)
        ax.axvline(prefix_dim, color="black", linestyle="--", linewidth=1, label=f"prefix dim {prefix_dim}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        name = "debiased linear CKA" if key == "cka_debiased" else "linear CKA (biased)"
        ax.set(title=f"{variant}: dating-hiring {name} by prefix dim\n({band})", xlabel="prefix dim d (log2)",
               ylabel=name)
    panels[-1][0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # one legend, beside: covers no line
    return fig


def learning_curves(histories: pd.DataFrame, column: str = "val_top1", references: pd.DataFrame | None = None) -> Figure:
    """Validation prefix top-1 against optimizer step per condition: mean over seeds and 95% t-band.

    Steps are the condition's own optimizer steps (single-domain conditions take half the shared schedule).
    references: an optional results frame; its zero_shot and tfidf rows (mean of both directions) draw lines.
    """
    checked = histories.dropna(subset=[column]) if column in histories.columns else histories.iloc[:0]
    variants = ordered_variants(histories["variant"])
    fig, axes = _figure(1, len(variants), 6.5 * len(variants), 4.5, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=False):
        v = checked[checked["variant"] == variant]
        if v.empty:
            ax.text(0.5, 0.5, "no validation checks\n(train.eval_every is null)", ha="center", va="center")
            ax.set(title=f"{variant}: validation prefix top-1", xticks=[], yticks=[])
            continue
        n_seeds = int(v["seed"].nunique())
        for cond in row_order(v["condition"]):
            rows = []
            for step, g in v[v["condition"] == cond].groupby("step"):
                rows.append((step, *seed_interval(g[column])))
            curve = np.asarray(rows, dtype=float)  # (n_checks, 4): step, mean, low, high
            ax.plot(curve[:, 0] + 1, curve[:, 1], markersize=3, label=cond, **style(cond))
            if np.isfinite(curve[:, 2]).any():
                ax.fill_between(curve[:, 0] + 1, curve[:, 2], curve[:, 3], color=style(cond)["color"], alpha=0.15,
                                linewidth=0)
        if references is not None and "prefix_top1" in references.columns:
            refs = references[(references["variant"] == variant)].groupby("condition")["prefix_top1"].mean()
            for ref in ("zero_shot", "frozen_probe", "tfidf_trained_word", "tfidf_trained_char"):
                if ref in refs.index and np.isfinite(refs[ref]):
                    ax.axhline(refs[ref], color=style(ref)["color"], linestyle="--", linewidth=1.2,
                               label=f"{ref} ({refs[ref]:.2f})")
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(ylim=(-0.02, 1.02), title=f"{variant}: validation prefix top-1 during training\n({band})",
               xlabel="optimizer step", ylabel="prefix top-1 (mean of both directions)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no curve
    return fig


def gallery_curves(curves: pd.DataFrame) -> Figure:
    """Prefix top-1 against gallery size (from analysis.gallery_curves): mean over seeds with a 95% t-band;
    conditions solid, reference matchers dashed."""
    variants = ordered_variants(curves["variant"])
    fig, axes = _figure(1, len(variants), 5.5 * len(variants), 4.5, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=False):
        v = curves[curves["variant"] == variant]
        n_seeds = int(v["seed"].nunique())
        for cond in row_order(v["condition"]):
            stats = np.asarray([(g, *seed_interval(x["top1"])) for g, x in v[v["condition"] == cond].groupby("gallery")])
            ax.plot(stats[:, 0], stats[:, 1], markersize=3, label=cond, **style(cond))
            if np.isfinite(stats[:, 2]).any():
                ax.fill_between(stats[:, 0], stats[:, 2], stats[:, 3], color=style(cond)["color"], alpha=0.12,
                                linewidth=0)
        ax.set_xscale("log")
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(ylim=(-0.02, 1.02), title=f"{variant}: prefix top-1 against gallery size\n({band})",
               xlabel="candidates in the gallery (true match + random others, log)",
               ylabel="prefix top-1 (mean of both directions)")
        ax.legend(fontsize=7, loc="lower left", ncol=2)
    return fig


def paired_differences(table: pd.DataFrame) -> Figure:
    """Forest plot of analysis.paired_differences: each method's prefix top-1 minus the proposed condition's
    and minus the best reference matcher's, with 95% paired-bootstrap intervals (filled: excludes 0)."""
    variants = ordered_variants(table["variant"])
    roles = list(dict.fromkeys(table["vs_role"]))
    fig, axes = _figure(len(variants), len(roles), 7 * len(roles), 1.2 + 0.35 * table["method"].nunique() * len(variants))
    for r, variant in enumerate(variants):
        for c, role in enumerate(roles):
            ax = axes[r, c]
            t = table[(table["variant"] == variant) & (table["vs_role"] == role)]
            if t.empty:
                ax.set_axis_off()
                continue
            methods = row_order(t["method"])[::-1]
            t = t.set_index("method").loc[methods]
            y = np.arange(len(methods))
            for yi, (_, row) in zip(y, t.iterrows(), strict=False):
                color = "black" if row["resolved"] else "grey"
                ax.plot([row["low"], row["high"]], [yi, yi], color=color, linewidth=2)
                ax.plot([row["diff"]], [yi], marker="o", color=color, markerfacecolor=color if row["resolved"] else "white")
            ax.axvline(0, color="tab:red", linewidth=1)
            ax.set_yticks(y, methods)
            vs = t["vs"].iloc[0]
            ax.set(title=f"{variant}: method minus {vs} ({role})", xlabel="difference in prefix top-1 (95% paired bootstrap)",
                   ylabel="method")
    fig.suptitle("Paired differences over validation people and seeds (filled: interval excludes 0)")
    return fig


def sweep_curve(frame: pd.DataFrame, key: str, base_value, condition: str = PROPOSED) -> Figure | None:
    """Identity top-1 and within-domain triplet accuracy against a swept value (rows <condition>@<key>=<v>,
    plus the condition's own row at base_value), per variant with a sweep: mean over the seeds the sweep ran
    (the condition's own row of other seeds is left out, so every point averages the same seeds) with 95%
    t-intervals. None when the frame holds no sweep of key."""
    prefix = sweep_prefix(condition, key)
    swept = frame["condition"].str.startswith(prefix)
    if not swept.any():
        return None
    seeds = {variant: set(g["seed"]) for variant, g in frame[swept].groupby("variant")}
    in_sweep = np.array([s in seeds.get(v, ()) for v, s in zip(frame["variant"], frame["seed"], strict=True)], dtype=bool)
    own = (frame["condition"] == condition) & in_sweep
    rows = frame[swept | own].copy()
    rows["value"] = [float(c.removeprefix(prefix)) if c.startswith(prefix) else float(base_value) for c in rows["condition"]]
    rows["triplet_acc"] = rows[["triplet_acc_dating", "triplet_acc_hiring"]].mean(axis=1)
    variants = ordered_variants(seeds)
    fig, axes = _figure(1, len(variants), 7 * len(variants), 5, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=False):
        v = rows[rows["variant"] == variant]
        for metric, color, label in (("prefix_top1", "C0", "identity: prefix top-1 (both directions)"),
                                     ("triplet_acc", "C2", "within-domain triplet accuracy (mean of domains)")):
            stats = np.asarray([(x, *seed_interval(g[metric])) for x, g in v.groupby("value")])
            ax.plot(stats[:, 0], stats[:, 1], marker="o", color=color, label=label)
            if np.isfinite(stats[:, 2]).any():
                ax.fill_between(stats[:, 0], stats[:, 2], stats[:, 3], color=color, alpha=0.15, linewidth=0)
        ax.set_xscale("log", base=2)
        values = sorted(v["value"].unique())
        ax.set_xticks(values, [f"{x:g}" for x in values])
        names = ", ".join(str(s) for s in sorted(seeds[variant]))
        seen = f"mean over seeds {names}, band: 95% t-interval" if len(seeds[variant]) > 1 else f"seed {names}"
        ax.set(ylim=(-0.02, 1.02), title=f"{variant}: {condition} against {key}\n({seen})", xlabel=f"{key} (log2)",
               ylabel="score")
        ax.legend(fontsize=8, loc="lower right")
    return fig


def domain_invariance(frame: pd.DataFrame, prefix_dim: int = 64) -> Figure | None:
    """Domain-probe accuracy on dims 0:d of the identity space against d per condition (0.5: the probe cannot tell
    a profile from a résumé); zero_shot's untrained encoder as the control. None when no run recorded it."""
    frame = without_sweeps(frame)
    cols = _at_dims(frame, "domain_probe_acc")
    if not cols:
        return None
    fig, panels = _by_dim_figure(frame, cols)
    dims = [int(c.split("@")[1]) for c in cols]
    for ax, variant, n_seeds in panels:
        ax.axhline(0.5, color="black", linewidth=1, label="0.5: invariant")
        ax.axvline(prefix_dim, color="black", linestyle=":", linewidth=1, label=f"prefix dim {prefix_dim}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(ylim=(0.4, 1.02), title=f"{variant}: can a probe tell the domain from dims 0:d?\n({band})",
               xlabel="dims d of the identity space (log2)", ylabel="domain probe accuracy (5-fold CV)")
    panels[-1][0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def without_sweeps(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of conditions and reference matchers, not of sweep points (those have sweep_curve)."""
    return frame[~frame["condition"].map(is_sweep_run).astype(bool)]
