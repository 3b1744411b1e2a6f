"""A researcher's own module, named under the params' `imports`, registers a loss term, a metric and a text variant
that reach every notebook kernel: the study imports it before it checks anything, every kernel imports it before it
loads its params, and each run records the module's source hash in its provenance."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smlib import registrations
from smlib.config import ParamsError, load_params
from smlib.params_schema import params_from_dict

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MARK = "Registered from outside smlib."

PLUGIN = textwrap.dedent(f'''
    """A study's own registrations, outside smlib: a loss term, a metric and a text variant."""
    import torch.nn as nn

    from smlib.data.texts import VerbatimVariant, get_variant, register_variant
    from smlib.losses import register_loss_term
    from smlib.run_metrics import Shown, embedding_metric


    class MarkedVariant(VerbatimVariant):
        """verbatim's texts with one sentence added to each."""

        def render(self, person, domain, seed, wording="train", phrasings=None, view=0):
            return super().render(person, domain, seed, wording, phrasings, view) + " {MARK}"


    register_variant(MarkedVariant("outside_marked", get_variant("verbatim").revealed, default=False))


    class AgreementLoss(nn.Module):
        def step_loss(self, e):
            return (e.anchor - e.positive).pow(2).sum(-1).mean()


    @register_loss_term
    class AgreementTerm:
        """The mean squared distance of anchor and positive task embeddings."""

        name, weight_key, default_weight = "outside_agreement", "outside_agreement_weight", 0.0

        @classmethod
        def from_params(cls, params):
            return AgreementLoss() if getattr(params.loss, cls.weight_key, 0.0) > 0 else None


    @embedding_metric(shows=(Shown("outside_people", "validation people (outside metric)", summary=True),))
    def _people(run):
        return {{"outside_people": float(len(run.emb["person_ids"]))}}
''')


def _plugin(folder: Path, name: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(PLUGIN)
    return path


def test_an_outside_module_registers_a_loss_term_a_metric_and_a_variant_in_every_kernel(tmp_path):
    """Budget: about 60 s on 2 cores (one smoke run through the four real notebook kernels, one thread)."""
    name = "outside_registrations"
    _plugin(tmp_path, name)
    out = tmp_path / "runs"
    # started from the module's folder, as a researcher would: `python -m` imports from there, the kernels too
    proc = subprocess.run([PYTHON, "-m", "smlib.study", "--profile", "smoke", "--conditions", "v3_contrastive",
                           "--variants", "outside_marked", "--out", str(out), "--threads", "1",
                           "--set", f"imports=[{name}]", "--set", "loss.outside_agreement_weight=0.5"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    seed = out / "smoke" / "outside_marked" / "seed42"
    run = seed / "v3_contrastive"
    # the loss term ran in 02_train's kernel: its history column is there and non-zero
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert history and all(float(row["outside_agreement"]) > 0 for row in history)
    # the metric ran in 03_evaluate's kernel and reaches the results table as a summary column, also in 04_figures
    assert json.loads((run / "metrics.json").read_text())["metrics"]["outside_people"] > 0
    with open(out / "smoke" / "results.csv") as f:
        assert "outside_people_mean" in next(csv.reader(f))
    assert "| outside_people |" in (out / "smoke" / "results.md").read_text()
    figures = (out / "smoke" / "04_figures.ipynb").read_text()
    assert '"output_type": "error"' not in figures and "outside_people" in figures
    # the variant wrote the dataset's texts in 01_data's kernel
    dataset_id = json.loads((run / "metrics.json").read_text())["dataset_id"]
    texts = [json.loads(line)["text"] for line in (ROOT / "data" / dataset_id / "texts.jsonl").read_text().splitlines()]
    assert texts and all(t.endswith(MARK) for t in texts), texts[:2]
    # the run's provenance names the module with its source hash, and the results page shows it
    hashes = json.loads((run / "train.json").read_text())["provenance"]["imports"]
    assert hashes == {name: _source_hash(tmp_path / f"{name}.py")}
    assert f"{name} `{hashes[name]}`" in (out / "smoke" / "results.md").read_text()


def _source_hash(path: Path) -> str:
    """What registrations.module_source_hash gives for a one-file module, recomputed here."""
    import hashlib

    return hashlib.sha256(path.name.encode() + b"\0" + path.read_bytes() + b"\0").hexdigest()[:12]


# --- what the `imports` key accepts, and the errors it gives ------------------------------------------------------

@pytest.mark.parametrize("value, says", [
    ("outside", "must be a list of module names"),
    (["no such"], "is not a module name"),
    (["a", "a"], "names a module twice"),
    (["smlib_no_such_module_here"], "no module named 'smlib_no_such_module_here' here"),
])
def test_a_bad_imports_value_is_one_error_naming_it(value, says):
    with pytest.raises(ParamsError, match="overrides: key 'imports'") as e:
        load_params("v3_contrastive", "smoke", {"imports": value})
    assert says in str(e.value)


def test_a_module_that_fails_to_import_is_named_with_its_own_error(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "outside_raises.py").write_text("raise RuntimeError('the lab module is broken')\n")
    (tmp_path / "outside_needs.py").write_text("import outside_absent_dependency\n")
    with pytest.raises(ParamsError, match="importing 'outside_raises' raised RuntimeError: the lab module is broken"):
        load_params("v3_contrastive", "smoke", {"imports": ["outside_raises"]})
    assert "outside_raises" not in sys.modules
    with pytest.raises(ParamsError, match="importing 'outside_needs' failed: No module named 'outside_absent_dep"):
        load_params("v3_contrastive", "smoke", {"imports": ["outside_needs"]})


def test_imports_keep_every_earlier_hash_at_none_and_count_otherwise(tmp_path, monkeypatch):
    """No imports hashes as before the key existed (ADDED_KEYS); naming a module is other params. A saved params
    dict imports its modules before it is checked, and an edited module shows another source hash."""
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "outside_harmless.py"
    path.write_text("LOADED = True\n")
    plain = load_params("v3_contrastive", "smoke")
    assert plain.imports == [] and "imports" not in _hashed_dict(plain)
    named = load_params("v3_contrastive", "smoke", {"imports": ["outside_harmless"]})
    assert named.hash() != plain.hash()
    sys.modules.pop("outside_harmless")
    assert params_from_dict(named.to_dict()).imports == ["outside_harmless"] and "outside_harmless" in sys.modules
    before = registrations.module_source_hash("outside_harmless")
    path.write_text("LOADED = 'edited'\n")
    assert registrations.module_source_hash("outside_harmless") not in (before, "no source")


def _hashed_dict(params) -> dict:
    from smlib.params_schema import without_added_keys

    return without_added_keys(params.to_dict())


def test_a_profile_variant_block_cannot_set_imports(tmp_path, monkeypatch):
    import shutil

    params = tmp_path / "params"
    shutil.copytree(ROOT / "params", params)
    smoke = params / "profiles" / "smoke.yaml"
    smoke.write_text(smoke.read_text() + "variants:\n  verbatim:\n    imports: [json]\n")
    with pytest.raises(ParamsError, match=r"variants.verbatim\): key 'imports' cannot depend on the variant"):
        load_params("v3_contrastive", "smoke", params_dir=params)
