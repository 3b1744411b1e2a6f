"""Names that moved, and where each lives now: the one table that keeps old imports working.

Executed notebooks in runs/ are the record of what was run, and they import what smlib offered when they ran;
a researcher's own code may too. When a name moves, its old module keeps answering for it through MOVED: the
old module ends with `__getattr__ = compat.resolver(__name__)`, and an attribute it lacks is looked up here and
imported from its new home on first use (PEP 562). A home written `module:name()` is called: the name was a
constant that is now read off a registry. tests/test_docs.py resolves every smlib import of every committed
notebook against the package as it is, so a move that leaves a record behind fails there.

This module imports nothing of smlib at import time, so every layer may use it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

MOVED: dict[str, dict[str, str]] = {  # old module -> {old name: "new module:new name"}
    "smlib.config": {
        "VARIANTS": "smlib.data.texts:variant_names()",
        "DEFAULT_VARIANTS": "smlib.data.texts:default_variant_names()",
    },
    "smlib.data.texts": {
        "VARIANTS": "smlib.data.texts:variant_names()",
        "REVEALED_ATTRIBUTES": "smlib.data.texts:revealed_attributes()",
    },
    "smlib.evaluation": {
        **{name: f"smlib.references:{name}" for name in (
            "reference_rows", "selection_table", "write_references", "reference_table", "TRAINED_TFIDF")},
        "recompute_metrics": "smlib.recompute:recompute_metrics",
        "load_run_embeddings": "smlib.analysis:load_run_embeddings",
        **{name: f"smlib.run_metrics:{name}" for name in (
            "embedding_metric", "EMBEDDING_METRICS", "SavedRun", "cross_domain_metrics", "retrieval_metrics",
            "identity_space_cka", "prefix_is_nested")},
    },
    "smlib.plots": {"hardest_misses": "smlib.evaluation:hardest_misses", "slider_frame": "smlib.evaluation:slider_frame",
                    "load_run_embeddings": "smlib.analysis:load_run_embeddings"},
    "smlib.study": {
        "TABLE_METRICS": "smlib.run_metrics:summary_metrics()",
        "collect_results": "smlib.tables:collect_results",
    },
    "smlib.tables": {
        "compare_records": "smlib.compare:compare_records",
    },
}


def home(module: str, name: str) -> tuple[str, str, bool] | None:
    """(new module, new name, whether to call it) of module.name, or None where the table has no such entry."""
    target = MOVED.get(module, {}).get(name)
    if target is None:
        return None
    where, _, attr = target.partition(":")
    return where, attr.removesuffix("()"), attr.endswith("()")


def lookup(module: str, name: str):
    """The object an old module's name now stands for; AttributeError, as for any missing name, where none."""
    found = home(module, name)
    if found is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    where, attr, call = found
    value = getattr(importlib.import_module(where), attr)
    return value() if call else value


def resolver(module: str) -> Callable[[str], object]:
    """The module-level __getattr__ of an old module: its moved names, from MOVED."""
    return lambda name: lookup(module, name)
