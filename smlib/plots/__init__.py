"""Figures for the data, training, evaluation and record notebooks; every function returns a matplotlib Figure.

Figures are built without pyplot (no global state, nothing piles up under papermill), so a notebook
shows one when it is a cell's last expression or passed to `display`; `save` writes it as PNG.

- base.py: the style, the figure factory, saving, tables as text
- data.py: a dataset's figures (01); runs.py: one run's (02, 03) and the dimension explorer; record.py: the
  whole record's (04)
"""
from .. import compat
from .base import (  # noqa: F401 - _window: the tests check the smoothing window
    CONDITION_COLORS,
    DOMAIN_COLORS,
    REFERENCE_COLORS,
    FigureFolder,
    _window,
    figure_png,
    save,
    show_table,
    style,
)
from .data import attribute_distributions, template_usage, token_lengths
from .record import (
    cka_vs_dim,
    domain_invariance,
    gallery_curves,
    learning_curves,
    paired_differences,
    sweep_curve,
    top1_with_ci,
    without_sweeps,
)
from .runs import dimension_explorer, prefix_projection, rank_histograms, slider_plot, training_curves

__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)

__all__ = ["CONDITION_COLORS", "DOMAIN_COLORS", "REFERENCE_COLORS", "FigureFolder", "attribute_distributions", "cka_vs_dim",
           "dimension_explorer", "domain_invariance", "figure_png", "gallery_curves", "learning_curves", "paired_differences",
           "prefix_projection", "rank_histograms", "save", "show_table", "slider_plot", "sweep_curve",
           "style", "template_usage", "token_lengths", "top1_with_ci", "training_curves", "without_sweeps"]
