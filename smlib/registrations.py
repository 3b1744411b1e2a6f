"""A researcher's own registrations: the modules a run's params name under `imports`, imported before the params
are checked, wherever params are loaded (the study's process, every notebook kernel, every Dask worker, the
record readers).

A module outside smlib registers a loss term (smlib.losses.register_loss_term), a metric
(smlib.run_metrics.embedding_metric) or a text variant (smlib.data.texts.register_variant) when it is imported.
Naming it under the params' `imports` makes every process that loads those params import it first, so the
registration exists in the kernels that train and evaluate, not only in the process that planned the study. Each
run records the SHA-256 of every imported module's source in its provenance, so a run made after the module
was edited shows a different hash beside the numbers.
"""
from __future__ import annotations

import hashlib
import importlib
import re
import sys
from pathlib import Path

from .params_yaml import ParamsError

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_IMPORTS = 64


def check_names(names, source: str = "params") -> tuple[str, ...]:
    """The module names of an `imports` value, checked: a list of dotted module names, none twice."""
    if names is None:
        return ()
    if not isinstance(names, (list, tuple)):
        raise ParamsError(f"{source}: key 'imports' must be a list of module names, got {names!r}")
    if len(names) > MAX_IMPORTS:
        raise ParamsError(f"{source}: key 'imports' names {len(names)} modules, more than {MAX_IMPORTS}")
    for name in names:
        if not isinstance(name, str) or not MODULE_NAME.match(name):
            raise ParamsError(f"{source}: key 'imports': {name!r} is not a module name (dotted Python identifiers, "
                              "e.g. mylab.losses)")
    if len(set(names)) != len(names):
        raise ParamsError(f"{source}: key 'imports' names a module twice: {list(names)}")
    return tuple(names)


def import_modules(names, source: str = "params") -> tuple[str, ...]:
    """Import each named module (once per process; Python caches it), or one ParamsError naming the source, the
    module and why: not found (with where the kernels look), or the error the module raised while importing."""
    names = check_names(names, source)
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name != e.name and not name.startswith(f"{e.name}."):  # the module itself imports a missing one
                raise ParamsError(f"{source}: key 'imports': importing {name!r} failed: {e}") from None
            raise ParamsError(f"{source}: key 'imports': no module named {name!r} here; a module named under imports "
                              "must be importable by the study and by its notebook kernels (install it, or put its "
                              "folder on PYTHONPATH or in the folder the study is started from)") from None
        except Exception as e:  # noqa: BLE001 - the module's own error, said in one line
            sys.modules.pop(name, None)
            raise ParamsError(f"{source}: key 'imports': importing {name!r} raised {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from None
    return names


def module_source_hash(name: str) -> str:
    """SHA-256 (first 12 hex) of an imported module's source: its file, or for a package every .py file under it
    (paths and contents); 'no source' for a module without files."""
    module = sys.modules.get(name) or importlib.import_module(name)
    file = getattr(module, "__file__", None)
    if not file:
        return "no source"
    path = Path(file)
    files = sorted(p for p in path.parent.rglob("*.py") if "__pycache__" not in p.parts) \
        if path.name == "__init__.py" else [path]
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.relative_to(path.parent).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def source_hashes(names) -> dict[str, str]:
    """{module: source hash} of the named modules (what a run's provenance records under "imports")."""
    return {name: module_source_hash(name) for name in check_names(names)}
