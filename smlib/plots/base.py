"""What every figure shares: the style (colours), the figure factory, saving, tables shown as text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import atomic

DOMAIN_COLORS = {"dating": "tab:red", "hiring": "tab:blue"}


# One style table for every figure: each condition and reference row has a colour no other series uses;
# conditions are solid lines with round markers, reference rows dashed with square ones.
CONDITION_COLORS = {"v3_contrastive": "tab:blue", "v3_mse": "tab:orange", "v3_no_prefix": "tab:green",
                    "single_dating": "tab:red", "single_hiring": "tab:purple", "projection_heads": "tab:brown",
                    "adversarial": "tab:pink"}
REFERENCE_COLORS = {"chance": "grey", "tfidf": "tab:olive", "tfidf_trained_word": "goldenrod",
                    "tfidf_trained_char": "sienna", "zero_shot": "tab:cyan", "frozen_probe": "slateblue",
                    "procrustes": "darkgreen", "cca": "magenta", "ceiling": "black"}
_SPARE_COLORS = ("navy", "teal", "orchid", "darkkhaki", "maroon", "lightseagreen", "rosybrown", "indigo")


def style(name: str) -> dict:
    """The colour, line style and marker of a series (a condition, a sweep point or a reference row) in every
    figure; a name the table does not know gets a spare colour of its own (by its position among the spares)."""
    if name in REFERENCE_COLORS:
        return {"color": REFERENCE_COLORS[name], "linestyle": "--", "marker": "s"}
    if name in CONDITION_COLORS:
        return {"color": CONDITION_COLORS[name], "linestyle": "-", "marker": "o"}
    spare = _SPARE_COLORS[sum(map(ord, name)) % len(_SPARE_COLORS)]
    return {"color": spare, "linestyle": "-", "marker": "o"}


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
    with atomic.replacing(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (for an Image widget), closed afterwards."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")  # a pyplot-free Figure: nothing to close
    return buf.getvalue()


def _window(n: int) -> int:
    """Rolling-mean window for n points: about 5% of them, at least 3 (fewer only when there are fewer points)."""
    return min(n, max(3, n // 20)) if n else 1


def _rolling(values: pd.Series) -> pd.Series:
    """A centred rolling mean over _window(len(values)) points."""
    return values.rolling(_window(len(values)), min_periods=1, center=True).mean()
