"""Figures for the data, training and evaluation notebooks; every function returns a matplotlib Figure.

Figures are built without pyplot (no global state, nothing piles up under papermill), so a notebook
shows one when it is a cell's last expression or passed to `display`; `save` writes it as PNG.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .config import DOMAINS, PROPOSED, REFERENCE_ROWS, is_sweep_run, ordered_variants, row_order, sweep_prefix
from .data.schema import BIG_FIVE
from .data.texts import HIGH_SCORE, LOW_SCORE, TEMPLATE_NAMES, template_name
from .evaluation import embedding_pair, slider_frame
from .losses import loss_part_names
from .run_metrics import metric_label
from .embeddings import truncate_normalize
from .metrics import seed_interval, true_match_ranks
from .tables import summarize

DOMAIN_COLORS = {"dating": "tab:red", "hiring": "tab:blue"}
REFERENCE_COLORS = {"chance": "grey", "tfidf": "tab:orange", "tfidf_trained_word": "goldenrod",
                    "tfidf_trained_char": "tab:brown", "zero_shot": "tab:purple", "frozen_probe": "tab:pink",
                    "ceiling": "black"}


def _figure(nrows: int, ncols: int, width: float, height: float, **kw) -> tuple[Figure, np.ndarray]:
    """A pyplot-free figure and its axes as a 2-d array."""
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


class FigureFolder:
    """keep(fig, name) shows a figure and, when saving is on, also writes it as <folder>/<name>.png."""

    def __init__(self, folder: str | Path, save: bool = True):
        self.folder, self.saving = Path(folder), save

    def keep(self, fig: Figure, name: str) -> Figure:
        if self.saving:
            save(fig, self.folder / f"{name}.png")
        return fig


def show_table(frame: pd.DataFrame, decimals: int = 4):
    """A table as a notebook should show it (a pandas Styler): text left-aligned and wrapped, whole numbers
    without decimals, floats to `decimals` places, missing values as '-'."""
    def cell(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            return "-" if v is None else str(v)
        if isinstance(v, (int, np.integer)):
            return f"{int(v):d}"
        return "-" if np.isnan(v) else f"{v:.{decimals}f}"

    text = [c for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).all()]
    styler = frame.style.format(cell)
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left", "white-space": "pre-wrap"})
    return styler


def save(fig: Figure, path: str | Path) -> Path:
    """Write a figure as PNG (dpi 120), creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, format="png")
    return path


# ----------------------------------------------------------------------------------------------- data
def attribute_distributions(people) -> Figure:
    """Age, height by sex, the Big Five (with level cuts) and career counts of a population."""
    fig, axes = _figure(3, 3, 10, 9)  # ~1000 px wide: legible where a notebook shows it
    ax = axes[0, 0]
    ax.hist([p.age for p in people], bins=np.arange(21.5, 46.5, 1), color="tab:gray")
    ax.set(title="Age", xlabel="age (years)", ylabel="people")
    ax = axes[0, 1]
    for sex, color in (("male", "tab:blue"), ("female", "tab:red")):
        ax.hist([p.height_in for p in people if p.sex == sex], bins=np.arange(58.5, 79.5, 1), alpha=0.6,
                color=color, label=sex)
    ax.set(title="Height by sex", xlabel="height (inches)", ylabel="people")
    ax.legend()
    for ax, trait in zip([axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2], axes[2, 0]], BIG_FIVE):
        ax.hist([getattr(p, trait) for p in people], bins=np.linspace(0, 100, 21), color="tab:green")
        for cut in (LOW_SCORE, HIGH_SCORE):
            ax.axvline(cut, color="black", linestyle="--", linewidth=1)
        ax.set(title=f"{trait.capitalize()} (cuts {LOW_SCORE}, {HIGH_SCORE})", xlabel="score", ylabel="people")
    axes[2, 2].set_axis_off()
    ax = axes[2, 1]
    careers = Counter(p.career for p in people).most_common()[::-1]
    ax.barh([c for c, _ in careers], [n for _, n in careers], color="tab:cyan")
    ax.set(title="Careers", xlabel="people", ylabel="career")
    ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"Attributes of {len(people)} people")
    return fig


def template_usage(people, variant: str, seed: int, held_out_ids=()) -> Figure:
    """How often each dating and hiring template is used, and which dating/hiring templates co-occur.

    held_out_ids: validation people, whom the heldout variant writes with templates of their own.
    """
    held = set(held_out_ids)
    names = {dom: [template_name(p, dom, variant, seed, p.person_id in held) for p in people] for dom in DOMAINS}
    labels = {dom: list(TEMPLATE_NAMES[dom]) + sorted(set(names[dom]) - set(TEMPLATE_NAMES[dom])) for dom in DOMAINS}
    fig = Figure(figsize=(10, 9), layout="constrained")
    grid = fig.subplot_mosaic([["dating", "hiring"], ["pairs", "pairs"]], height_ratios=[1, 1.4])
    for ax, dom in ((grid["dating"], "dating"), (grid["hiring"], "hiring")):
        counts = Counter(names[dom])
        ax.barh(labels[dom][::-1], [counts[n] for n in labels[dom][::-1]], color=DOMAIN_COLORS[dom])
        ax.set(title=f"{dom.capitalize()} templates", xlabel="people", ylabel="template")
    co = pd.crosstab(pd.Categorical(names["dating"], labels["dating"]),
                     pd.Categorical(names["hiring"], labels["hiring"]), dropna=False)
    import seaborn as sns  # only this figure needs it; importing it costs ~1 s per notebook

    sns.heatmap(co, ax=grid["pairs"], annot=True, fmt="d", cmap="Blues", cbar=False)
    how = "fixed by person_id" if variant == "verbatim" else "seeded random"
    grid["pairs"].set(title=f"Template pairs ({how})", xlabel="hiring template", ylabel="dating template")
    fig.suptitle(f"Template usage, {variant} variant, seed {seed}, {len(people)} people")
    return fig


def _token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Untruncated token count (special tokens included) of each text."""
    ids = tokenizer(list(texts), truncation=False)["input_ids"]
    return np.asarray([len(x) for x in ids])


def token_lengths(texts_by_domain: dict[str, list[str]], tokenizer, max_length: int) -> Figure:
    """Histogram of token counts per domain, with the truncation length and the share cut off."""
    fig, axes = _figure(1, len(texts_by_domain), 6 * len(texts_by_domain), 4)
    for ax, (dom, texts) in zip(axes[0], texts_by_domain.items()):
        counts = _token_counts(tokenizer, texts)
        ax.hist(counts, bins=30, color=DOMAIN_COLORS.get(dom, "tab:gray"))
        ax.axvline(max_length, color="black", linestyle="--", label=f"max_length {max_length}")
        ax.set(title=f"{dom}: {np.mean(counts > max_length):.1%} of {len(counts)} truncated",
               xlabel="tokens per text", ylabel="texts")
        ax.legend()
    fig.suptitle("Token lengths")
    return fig


# ------------------------------------------------------------------------------------------- training
def _window(n: int) -> int:
    """Rolling-mean window for n points: about 5% of them, at least 3 (fewer only when there are fewer points)."""
    return min(n, max(3, n // 20)) if n else 1


def _rolling(values: pd.Series) -> pd.Series:
    """A centred rolling mean over _window(len(values)) points."""
    return values.rolling(_window(len(values)), min_periods=1, center=True).mean()


def training_curves(history: pd.DataFrame) -> Figure:
    """Loss components (raw and smoothed), validation prefix top-1, learning rates and throughput against the step."""
    fig, axes = _figure(2, 2, 11, 8)
    ax = axes[0, 0]
    for i, col in enumerate(c for c in loss_part_names() if c in history.columns):
        rows = history[["step", col]].dropna()
        color = f"C{i}"
        ax.plot(rows["step"], rows[col], color=color, alpha=0.25, linewidth=0.8)
        ax.plot(rows["step"], _rolling(rows[col]), color=color, label=col)
    ax.set(title=f"Loss components (faint: per step; solid: mean of {_window(len(history))} steps)", xlabel="step",
           ylabel="loss")
    ax.legend()
    ax = axes[0, 1]
    if "val_top1" in history.columns and history["val_top1"].notna().any():
        checked = history[history["val_top1"].notna()]
        for col, label, style in (("val_top1_d2h", "dating -> hiring", ":"), ("val_top1_h2d", "hiring -> dating", "--"),
                                  ("val_top1", "mean", "-")):
            ax.plot(checked["step"], checked[col], style, marker="o", markersize=3, label=label)
        if "domain_accuracy" in history.columns:
            ax.plot(history["step"], _rolling(history["domain_accuracy"]), color="tab:red", alpha=0.7,
                    label="domain classifier acc. (batch)")
        ax.set(ylim=(-0.02, 1.02), title=f"Validation prefix top-1 (last {checked['val_top1'].iloc[-1]:.2f})",
               xlabel="step", ylabel="top-1")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no validation checks\n(train.eval_every is null)", ha="center", va="center")
        ax.set(title="Validation prefix top-1", xticks=[], yticks=[])
    ax = axes[1, 0]
    ax.plot(history["step"], history["lr"], color="tab:green", label="encoder (train.lr)")
    if "head_lr" in history.columns and history["head_lr"].notna().any():
        ax.plot(history["step"], history["head_lr"], color="tab:olive", label="heads (train.head_lr)")
    ax.set(title="Learning rates", xlabel="step", ylabel="lr", yscale="log")
    ax.legend()
    ax = axes[1, 1]
    ax.plot(history["step"], history["texts_per_s"], color="tab:gray", alpha=0.3, linewidth=0.8)
    ax.plot(history["step"], _rolling(history["texts_per_s"]), color="tab:gray")
    ax.set(title=f"Throughput (median {history['texts_per_s'].median():.1f} texts/s)", xlabel="step",
           ylabel="distinct texts / s")
    return fig


# ----------------------------------------------------------------------------------------- evaluation
def rank_histograms(emb: dict) -> Figure:
    """Rank of the true match in both directions, on the identity prefix and on the full embedding."""
    fig, axes = _figure(2, 2, 12, 8)
    ids = np.asarray(emb["person_ids"]).tolist()
    n = len(ids)
    bins = np.unique(np.geomspace(1, n + 1, 25).astype(int))
    bins = np.append(bins, n + 1) if bins[-1] <= n else bins
    for r, kind in enumerate(("prefix", "full")):
        dating, hiring = embedding_pair(emb, kind)
        for c, (name, q, g) in enumerate((("dating -> hiring", dating, hiring), ("hiring -> dating", hiring, dating))):
            ranks = true_match_ranks(q, g, ids, ids).numpy()
            ax = axes[r, c]
            ax.hist(ranks, bins=bins, color=DOMAIN_COLORS[DOMAINS[c]])
            ax.set_xscale("log")
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 2.5 ticks
            ax.set(title=f"{kind} ({q.shape[1]}-d), {name}: top-1 {np.mean(ranks == 1):.2f}, "
                         f"median rank {np.median(ranks):.0f}",
                   xlabel=f"rank of the true match (1..{n}, log)", ylabel="queries")
    fig.suptitle(f"Rank of the true match among {n} validation people")
    return fig


def without_sweeps(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of conditions and reference matchers, not of sweep points (those have sweep_curve)."""
    return frame[~frame["condition"].map(is_sweep_run).astype(bool)]


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
    for ax, variant in zip(axes[0], variants):
        s = stats[stats["variant"] == variant].set_index("condition")
        trained = [c for c in row_order(s.index) if c not in REFERENCE_ROWS]
        x = np.arange(len(trained))
        mean = s.loc[trained, f"{metric}_mean"].to_numpy(dtype=float)
        several = s.loc[trained, "n_seeds"].to_numpy() > 1
        one_low = s.loc[trained, f"{metric}_ci_low_mean"].to_numpy(dtype=float) if boot else np.full(len(x), np.nan)
        one_high = s.loc[trained, f"{metric}_ci_high_mean"].to_numpy(dtype=float) if boot else np.full(len(x), np.nan)
        low = np.where(several, s.loc[trained, f"{metric}_ci_low"].to_numpy(dtype=float), one_low)
        high = np.where(several, s.loc[trained, f"{metric}_ci_high"].to_numpy(dtype=float), one_high)
        ax.bar(x, mean, color=[f"C{i}" for i in range(len(trained))], alpha=0.8)
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
                ax.axhline(value, color=REFERENCE_COLORS[ref], linewidth=6, alpha=0.2, label=f"{ref} ({value:.2f})")
            else:
                ax.axhline(value, color=REFERENCE_COLORS[ref], linestyle="--", linewidth=1.2, label=f"{ref} ({value:.2f})")
        ax.set_xticks(x, trained, rotation=30, ha="right")
        bars = f"95% t-interval over {n_seeds} seeds" if n_seeds > 1 else "95% bootstrap interval, one seed"
        ax.set(title=f"{variant}: {metric_label(metric)}\n(bars: mean; error bars: {bars})", xlabel="condition",
               ylabel=metric_label(metric))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no bar
    return fig


def cka_vs_dim(frame: pd.DataFrame, prefix_dim: int = 64) -> Figure:
    """Linear CKA between dating and hiring embeddings at each Matryoshka dim: mean over seeds, 95% t-band."""
    frame = without_sweeps(frame)
    cols = sorted((c for c in frame.columns if c.startswith("cka@")), key=lambda c: int(c.split("@")[1]))
    dims = [int(c.split("@")[1]) for c in cols]
    variants = ordered_variants(frame["variant"])
    fig, axes = _figure(1, len(variants), 5.5 * len(variants), 4.5, sharey=True)
    stats = summarize(frame, cols)
    for ax, variant in zip(axes[0], variants):
        v = stats[stats["variant"] == variant].set_index("condition")
        n_seeds = int(frame.loc[frame["variant"] == variant, "seed"].nunique())
        for i, cond in enumerate(row_order(v.index)):
            values = v.loc[cond, [f"{c}_mean" for c in cols]].to_numpy(dtype=float)
            if not np.isfinite(values).any():
                continue
            ax.plot(dims, values, marker="o", color=f"C{i}", label=cond,
                    linestyle=":" if cond in REFERENCE_ROWS else "-")
            low = v.loc[cond, [f"{c}_ci_low" for c in cols]].to_numpy(dtype=float)
            high = v.loc[cond, [f"{c}_ci_high" for c in cols]].to_numpy(dtype=float)
            if np.isfinite(low).any():
                ax.fill_between(dims, low, high, color=f"C{i}", alpha=0.15, linewidth=0)
        ax.axvline(prefix_dim, color="black", linestyle="--", linewidth=1, label=f"prefix dim {prefix_dim}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims, [str(d) for d in dims])
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(title=f"{variant}: dating-hiring CKA by prefix dim\n({band})", xlabel="prefix dim d (log2)",
               ylabel="linear CKA")
    axes[0, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # one legend, beside: covers no line
    return fig


def learning_curves(histories: pd.DataFrame, column: str = "val_top1", references: pd.DataFrame | None = None) -> Figure:
    """Validation prefix top-1 against optimizer step per condition: mean over seeds and 95% t-band.

    Steps are the condition's own optimizer steps (single-domain conditions take half the shared schedule).
    references: an optional results frame; its zero_shot and tfidf rows (mean of both directions) draw lines.
    """
    checked = histories.dropna(subset=[column]) if column in histories.columns else histories.iloc[:0]
    variants = ordered_variants(histories["variant"])
    fig, axes = _figure(1, len(variants), 6.5 * len(variants), 4.5, sharey=True)
    for ax, variant in zip(axes[0], variants):
        v = checked[checked["variant"] == variant]
        if v.empty:
            ax.text(0.5, 0.5, "no validation checks\n(train.eval_every is null)", ha="center", va="center")
            ax.set(title=f"{variant}: validation prefix top-1", xticks=[], yticks=[])
            continue
        n_seeds = int(v["seed"].nunique())
        for i, cond in enumerate(row_order(v["condition"])):
            rows = []
            for step, g in v[v["condition"] == cond].groupby("step"):
                rows.append((step, *seed_interval(g[column])))
            curve = np.asarray(rows, dtype=float)  # (n_checks, 4): step, mean, low, high
            ax.plot(curve[:, 0] + 1, curve[:, 1], marker="o", markersize=3, color=f"C{i}", label=cond)
            if np.isfinite(curve[:, 2]).any():
                ax.fill_between(curve[:, 0] + 1, curve[:, 2], curve[:, 3], color=f"C{i}", alpha=0.15, linewidth=0)
        if references is not None and "prefix_top1" in references.columns:
            refs = references[(references["variant"] == variant)].groupby("condition")["prefix_top1"].mean()
            for ref in ("zero_shot", "frozen_probe", "tfidf_trained_word", "tfidf_trained_char"):
                if ref in refs.index and np.isfinite(refs[ref]):
                    ax.axhline(refs[ref], color=REFERENCE_COLORS[ref], linestyle="--", linewidth=1.2,
                               label=f"{ref} ({refs[ref]:.2f})")
        band = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(ylim=(-0.02, 1.02), title=f"{variant}: validation prefix top-1 during training\n({band})",
               xlabel="optimizer step", ylabel="prefix top-1 (mean of both directions)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: it covers no curve
    return fig


def _pca2(x: np.ndarray) -> np.ndarray:
    """The first two principal-component scores of the rows of x."""
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T  # (N, 2)


def prefix_projection(embs: dict[str, dict], max_points: int = 150, n_links: int = 30, title: str = "") -> Figure:
    """2-D PCA of dating and hiring identity prefixes per condition, the same person's two points linked."""
    ncols = min(3, len(embs))
    nrows = -(-len(embs) // ncols)
    fig, axes = _figure(nrows, ncols, 3.4 * ncols, 3.3 * nrows)  # at most ~1000 px wide
    for ax in axes.flat[len(embs):]:
        ax.set_axis_off()
    for ax, (cond, emb) in zip(axes.flat, embs.items()):
        dating, hiring = (truncate_normalize(t).numpy() for t in embedding_pair(emb, "prefix"))
        n = min(max_points, len(dating))
        xy = _pca2(np.vstack([dating[:n], hiring[:n]]))  # (2n, 2)
        for i in range(min(n_links, n)):
            ax.plot(xy[[i, n + i], 0], xy[[i, n + i], 1], color="gray", alpha=0.3, linewidth=0.7)
        for j, dom in enumerate(DOMAINS):
            ax.scatter(*xy[j * n:(j + 1) * n].T, s=10, color=DOMAIN_COLORS[dom], alpha=0.7, label=dom)
        ax.set(title=f"{cond} ({n} people, {dating.shape[1]}-d prefix)", xlabel="PC 1", ylabel="PC 2")
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}{': ' if title else ''}identity prefixes in 2-D PCA (lines join the first {n_links} "
                 "people's two texts)")
    return fig


def slider_plot(frame: pd.DataFrame) -> Figure:
    """Bars of CKA and of top-1 (both directions) per condition at the slider's dim."""
    fig, axes = _figure(1, 2, 14, 4.5)
    conds = list(frame["condition"])
    x = np.arange(len(conds))
    dims = ", ".join(str(d) for d in dict.fromkeys(frame["dim"]))
    axes[0, 0].bar(x, frame["cka"], color=[f"C{i}" for i in range(len(conds))])
    axes[0, 0].set(title=f"Dating-hiring CKA at d = {dims}", xlabel="condition", ylabel="linear CKA", ylim=(0, 1))
    ax = axes[0, 1]
    ax.bar(x - 0.2, frame["top1_d2h"], width=0.4, color=DOMAIN_COLORS["dating"], label="dating -> hiring")
    ax.bar(x + 0.2, frame["top1_h2d"], width=0.4, color=DOMAIN_COLORS["hiring"], label="hiring -> dating")
    ax.set(title=f"Cross-domain top-1 at d = {dims}", xlabel="condition", ylabel="top-1 accuracy", ylim=(0, 1))
    ax.legend()
    for ax in axes[0]:
        ax.set_xticks(x, conds, rotation=30, ha="right")
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an Image widget), closed afterwards."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # a pyplot-free Figure: nothing to close
    return buf.getvalue()


def dimension_explorer(embs_by_variant: dict[str, dict[str, dict]], d: int = 64):
    """A variant choice, a wide d slider, and the slider_plot figure and table at d, redrawn on every change.

    Built from plain widgets (Dropdown, IntSlider, Image, HTML) updated in place: nothing is displayed from a
    callback and no Output widget captures anything. ipywidgets' interact() does both, and headless
    execution (papermill/nbclient) intermittently hung on it for good (papermill#723, nbclient#312).
    Returns (the widget box, update(variant, d) -> slider_frame table) so a caller can drive it.
    """
    import ipywidgets as w

    variants = [v for v in embs_by_variant if embs_by_variant[v]]
    if not variants:
        raise ValueError("no embeddings to explore")
    width = max(next(iter(embs_by_variant[v].values()))["dating"].shape[1] for v in variants)
    choice = w.Dropdown(options=variants, value=variants[0], description="variant")
    slider = w.IntSlider(value=min(d, width), min=1, max=width, step=1, description="d", continuous_update=False,
                         layout=w.Layout(width="95%"))
    title = w.HTML()
    image = w.Image(format="png")
    table_html = w.HTML()

    def update(variant: str, dim: int) -> pd.DataFrame:
        table = slider_frame(embs_by_variant[variant], dim)
        title.value = f"<b>{variant}</b>: CKA and cross-domain top-1 of the first d = {dim} dims, per condition"
        image.value = figure_png(slider_plot(table))
        table_html.value = table.round(3).to_html(index=False)
        return table

    def on_change(_=None) -> None:
        update(choice.value, slider.value)

    choice.observe(on_change, names="value")
    slider.observe(on_change, names="value")
    on_change()
    return w.VBox([w.HBox([choice]), slider, title, image, table_html]), update


def gallery_curves(curves: pd.DataFrame) -> Figure:
    """Prefix top-1 against gallery size (from analysis.gallery_curves): mean over seeds with a 95% t-band;
    conditions solid, reference matchers dashed."""
    variants = ordered_variants(curves["variant"])
    fig, axes = _figure(1, len(variants), 5.5 * len(variants), 4.5, sharey=True)
    for ax, variant in zip(axes[0], variants):
        v = curves[curves["variant"] == variant]
        n_seeds = int(v["seed"].nunique())
        for i, cond in enumerate(row_order(v["condition"])):
            stats = np.asarray([(g, *seed_interval(x["top1"])) for g, x in v[v["condition"] == cond].groupby("gallery")])
            ref = cond in REFERENCE_ROWS
            color = REFERENCE_COLORS.get(cond, "grey") if ref else f"C{i}"
            ax.plot(stats[:, 0], stats[:, 1], marker="o", markersize=3, color=color, label=cond,
                    linestyle="--" if ref else "-")
            if np.isfinite(stats[:, 2]).any():
                ax.fill_between(stats[:, 0], stats[:, 2], stats[:, 3], color=color, alpha=0.12, linewidth=0)
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
            for yi, (_, row) in zip(y, t.iterrows()):
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
    plus the condition's own row at base_value), per variant: mean over seeds with 95% t-intervals.
    None when the frame holds no sweep of key."""
    prefix = sweep_prefix(condition, key)
    swept = frame["condition"].str.startswith(prefix)
    if not swept.any():
        return None
    rows = frame[swept | (frame["condition"] == condition)].copy()
    rows["value"] = [float(c.removeprefix(prefix)) if c.startswith(prefix) else float(base_value) for c in rows["condition"]]
    rows["triplet_acc"] = rows[["triplet_acc_dating", "triplet_acc_hiring"]].mean(axis=1)
    variants = ordered_variants(rows["variant"])
    fig, axes = _figure(1, max(1, len(variants)), 7 * max(1, len(variants)), 5, sharey=True)
    for ax, variant in zip(axes[0], variants):
        v = rows[rows["variant"] == variant]
        n_seeds = int(v["seed"].nunique())
        for metric, color, label in (("prefix_top1", "C0", "identity: prefix top-1 (both directions)"),
                                     ("triplet_acc", "C2", "within-domain triplet accuracy (mean of domains)")):
            stats = np.asarray([(x, *seed_interval(g[metric])) for x, g in v.groupby("value")])
            ax.plot(stats[:, 0], stats[:, 1], marker="o", color=color, label=label)
            if np.isfinite(stats[:, 2]).any():
                ax.fill_between(stats[:, 0], stats[:, 2], stats[:, 3], color=color, alpha=0.15, linewidth=0)
        ax.set_xscale("log", base=2)
        values = sorted(v["value"].unique())
        ax.set_xticks(values, [f"{x:g}" for x in values])
        seeds = f"mean over {n_seeds} seeds, band: 95% t-interval" if n_seeds > 1 else "one seed"
        ax.set(ylim=(-0.02, 1.02), title=f"{variant}: {condition} against {key}\n({seeds})", xlabel=f"{key} (log2)",
               ylabel="score")
        ax.legend(fontsize=8, loc="lower right")
    return fig
