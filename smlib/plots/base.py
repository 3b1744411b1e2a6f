"""What every figure shares: the style (colours), the figure factory, saving, tables shown as text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..config import is_sweep_run

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


def without_sweeps(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of conditions and reference matchers, not of sweep points (those have sweep_curve)."""
    return frame[~frame["condition"].map(is_sweep_run).astype(bool)]
