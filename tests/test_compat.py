"""Old names keep working from one table (smlib.compat.MOVED), and every committed notebook's smlib imports resolve.

Budget: ~5 s (the committed notebooks are parsed, not run; every smlib module they name is imported)."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from smlib import compat

ROOT = Path(__file__).resolve().parent.parent


def committed_notebooks() -> list[Path]:
    names = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard",
                            "*.ipynb"], check=True, capture_output=True, text=True).stdout.split()
    return [ROOT / n for n in names]


def code_of(notebook: Path) -> str:
    """A notebook's code cells as one module's source (IPython magics and shell lines dropped)."""
    cells = json.loads(notebook.read_text())["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            lines += [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def smlib_uses(source: str) -> set[tuple[str, str]]:
    """(module, name) for every name imported from smlib and every attribute read off an smlib module it binds."""
    tree = ast.parse(source)
    uses, modules = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("smlib"):
            for alias in node.names:
                uses.add((node.module, alias.name))
                if importlib.util.find_spec(f"{node.module}.{alias.name}") if _is_package(node.module) else False:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("smlib"):
                    uses.add((alias.name, ""))
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "smlib"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            uses.add((modules[node.value.id], node.attr))
    return uses


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def unresolved(uses: set[tuple[str, str]]) -> list[str]:
    missing = []
    for module, name in sorted(uses):
        try:
            mod = importlib.import_module(module)
            if name and not hasattr(mod, name):
                importlib.import_module(f"{module}.{name}")  # a submodule not imported yet
        except ImportError:
            missing.append(f"{module}.{name}: no such name or module")
    return missing


def test_every_smlib_import_of_every_committed_notebook_resolves():
    notebooks = committed_notebooks()
    assert any("runs/archive" in str(n) for n in notebooks) and len(notebooks) > 50
    uses: dict[tuple[str, str], str] = {}
    for notebook in notebooks:
        for use in smlib_uses(code_of(notebook)):
            uses.setdefault(use, str(notebook.relative_to(ROOT)))
    assert ("smlib.study", "TABLE_METRICS") in uses  # the archived 04_figures' import, answered by the table
    problems = unresolved(set(uses))
    assert not problems, "\n".join(problems)


def test_the_check_finds_a_name_that_moved_without_an_entry():
    source = ("from smlib.study import collect_results, no_such_name\nfrom smlib import plots, evaluation\n"
              "plots.no_such_figure()\nevaluation.reference_rows\n")
    uses = smlib_uses(source)
    assert ("smlib.plots", "no_such_figure") in uses and ("smlib.evaluation", "reference_rows") in uses
    assert unresolved(uses) == ["smlib.plots.no_such_figure: no such name or module",
                                "smlib.study.no_such_name: no such name or module"]


def test_a_moved_name_is_its_new_home_and_an_unknown_one_is_an_attribute_error():
    import smlib.evaluation
    import smlib.references
    import smlib.tables

    assert smlib.evaluation.reference_rows is smlib.references.reference_rows
    assert smlib.tables.compare_records.__module__ == "smlib.compare"
    with pytest.raises(AttributeError, match="has no attribute 'nothing_here'"):
        smlib.tables.nothing_here  # noqa: B018
    for module, names in compat.MOVED.items():  # every entry of the table resolves
        for name in names:
            assert compat.lookup(module, name) is not None, (module, name)
