"""Figures of one run (02_train, 03_evaluate) and the dimension explorer: curves, ranks, projections."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..domains import DOMAINS
from ..embeddings import truncate_normalize
from ..evaluation import embedding_pair, slider_frame
from ..losses import loss_part_names
from ..metrics import true_match_ranks
from .base import DOMAIN_COLORS, _figure, _rolling, _window, figure_png, style


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
        dev = "dev_top1" in checked.columns  # then the test people's curve is the oracle's: shown, never chosen by
        for col, label, style in (("val_top1_d2h", "dating -> hiring", ":"), ("val_top1_h2d", "hiring -> dating", "--"),
                                  ("val_top1", "mean" + (" (test people: oracle)" if dev else ""), "-"),
                                  ("dev_top1", "dev slice (its rule chooses)", "-"),
                                  ("dev_top1_training_wording", "dev slice, training wording", "-.")):
            if col in checked.columns:
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
    for ax, (cond, emb) in zip(axes.flat, embs.items(), strict=False):
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


CKA_ESTIMATORS = {"cka_debiased": "debiased linear CKA (unbiased HSIC)", "cka": "linear CKA (biased HSIC)"}


def slider_plot(frame: pd.DataFrame, estimator: str = "cka_debiased") -> Figure:
    """Bars of CKA (the debiased estimator by default; 'cka' for the biased one) and of top-1 (both directions) per
    condition at the slider's dim."""
    if estimator not in CKA_ESTIMATORS:
        raise ValueError(f"estimator must be one of {tuple(CKA_ESTIMATORS)}, got {estimator!r}")
    fig, axes = _figure(1, 2, 14, 4.5)
    conds = list(frame["condition"])
    x = np.arange(len(conds))
    dims = ", ".join(str(d) for d in dict.fromkeys(frame["dim"]))
    axes[0, 0].bar(x, frame[estimator], color=[style(c)["color"] for c in conds])
    axes[0, 0].axhline(0, color="black", linewidth=0.8)
    axes[0, 0].set(title=f"Dating-hiring {CKA_ESTIMATORS[estimator]} at d = {dims}", xlabel="condition",
                   ylabel=CKA_ESTIMATORS[estimator], ylim=(min(-0.05, float(frame[estimator].min()) - 0.02), 1))
    ax = axes[0, 1]
    ax.bar(x - 0.2, frame["top1_d2h"], width=0.4, color=DOMAIN_COLORS["dating"], label="dating -> hiring")
    ax.bar(x + 0.2, frame["top1_h2d"], width=0.4, color=DOMAIN_COLORS["hiring"], label="hiring -> dating")
    ax.set(title=f"Cross-domain top-1 at d = {dims}", xlabel="condition", ylabel="top-1 accuracy", ylim=(0, 1))
    ax.legend()
    for ax in axes[0]:
        ax.set_xticks(x, conds, rotation=30, ha="right")
    return fig


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
    estimator = w.Dropdown(options=[(label, key) for key, label in CKA_ESTIMATORS.items()], value="cka_debiased",
                           description="CKA")
    slider = w.IntSlider(value=min(d, width), min=1, max=width, step=1, description="d", continuous_update=False,
                         layout=w.Layout(width="95%"))
    title = w.HTML()
    image = w.Image(format="png")
    table_html = w.HTML()

    def update(variant: str, dim: int, cka: str = "cka_debiased") -> pd.DataFrame:
        table = slider_frame(embs_by_variant[variant], dim)
        title.value = f"<b>{variant}</b>: CKA and cross-domain top-1 of the first d = {dim} dims, per condition"
        image.value = figure_png(slider_plot(table, cka))
        table_html.value = table.round(3).to_html(index=False)
        return table

    def on_change(_=None) -> None:
        update(choice.value, slider.value, estimator.value)

    for widget in (choice, slider, estimator):
        widget.observe(on_change, names="value")
    on_change()
    return w.VBox([w.HBox([choice, estimator]), slider, title, image, table_html]), update
