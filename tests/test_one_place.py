"""Each common change is one edit in one place: a loss term, a text variant, a table metric, the record's layout.

Every registration here goes through the public API from this module only, and is undone after its test. The
golden test runs the one extra smoke study of the suite (with the seed-folder format changed in record.py alone)
and compares its metrics with tests/golden/smoke_metrics.json.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from conftest import fast_params

from smlib import losses, recompute, record, run_metrics, study, tables
from smlib.config import ParamsError, load_params, study_params, variants
from smlib.data import build_dataset, texts
from smlib.record import iter_runs
from smlib.training import train

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).parent / "golden" / "smoke_metrics.json"
GOLDEN_TOLERANCE = 1e-4  # absolute, fp32 (the smoke profile trains in fp32 on every CPU)


# --- a loss term: one class plus its params key -----------------------------------------------------------

@pytest.fixture
def term_registry(monkeypatch):
    monkeypatch.setattr(losses.combined, "LOSS_TERMS", dict(losses.combined.LOSS_TERMS))
    return losses.combined.LOSS_TERMS


def test_a_new_loss_term_is_one_class_and_reaches_training(term_registry, smoke_dataset):
    @losses.register_loss_term
    class PrefixSpread(nn.Module):
        """A toy term: the mean squared norm of the task embeddings (any scalar of the step's embeddings)."""

        name, weight_key = "spread", "spread_weight"

        @classmethod
        def from_params(cls, params):
            return cls() if getattr(params.loss, "spread_weight", 0.0) > 0 else None

        def step_loss(self, e: losses.StepEmbeddings) -> torch.Tensor:
            return e.anchor.pow(2).sum(dim=1).mean()

    params = fast_params("v3_contrastive", loss__spread_weight=0.5)
    assert params.loss.spread_weight == 0.5 and "spread_weight" in params.to_dict()["loss"]
    loss = losses.build_loss(params)
    assert loss.part_names == ("within", "cross", "spread", "total")
    result = train(params, smoke_dataset, progress=False)
    h = result.history
    assert "spread" in h.columns and h["spread"].notna().all() and (h["spread"] > 0).all()
    assert h["total"].to_numpy() == pytest.approx((h["within"] + h["cross"] + 0.5 * h["spread"]).to_numpy(), rel=1e-5)
    # a condition that does not set the key does not use the term, and its params hash is what it was
    plain = fast_params("v3_contrastive")
    assert "spread" not in losses.build_loss(plain).part_names and "spread_weight" not in plain.to_dict()["loss"]
    with pytest.raises(ParamsError, match="spread_weight"):
        fast_params("v3_contrastive", loss__spread_weight=-1.0)


def test_an_unregistered_loss_key_is_still_refused():
    with pytest.raises(ParamsError, match="unknown key 'loss.spread_weight'"):
        load_params("v3_contrastive", "smoke", overrides={"loss.spread_weight": 1.0})


# --- a text variant: one registered object -------------------------------------------------------------------

@pytest.fixture
def variant_registry(monkeypatch):
    monkeypatch.setattr(texts, "_VARIANTS", dict(texts._VARIANTS))
    return texts._VARIANTS


SHOUTED_TEMPLATES = {"dating": {"loud": ("HELLO FROM {city}.", "{traits}", "{values}", "{communication}",
                                         "{attachment}")},
                     "hiring": {"loud": ("{career}, {industry}.", "{traits}", "{values}", "{communication}",
                                         "{attachment}")}}


def test_a_new_text_variant_is_one_object_and_reaches_the_data(variant_registry):
    texts.register_variant(texts.WordingVariant("shouted", texts.SHARED_TRAITS, default=False,
                                                vocab=texts.DISJOINT_VOCAB, templates=SHOUTED_TEMPLATES,
                                                stream="shouted"))
    assert variants()[-1] == "shouted" and "shouted" not in variants(default_only=True)
    params = load_params("v3_contrastive", "smoke", overrides={"data.variant": "shouted"})
    dataset = build_dataset(params)
    dating = [dataset.text("dating", i) for i in dataset.split["train"][:5]]
    assert all(t.startswith("HELLO FROM ") for t in dating)
    assert all(texts.template_name(p, "hiring", "shouted") == "loud" for p in dataset.people[:3])
    # the runner's checks know it too
    assert study.check_names(("verbatim", "shouted"), "--variants", variants(), "variant") == ("verbatim", "shouted")


def test_an_unregistered_variant_is_refused():
    with pytest.raises(ParamsError, match="unknown text variant 'shouted'"):
        load_params("v3_contrastive", "smoke", overrides={"data.variant": "shouted"})


# --- a table metric: one registered function -----------------------------------------------------------------

def _copy_smoke(tmp_path) -> Path:
    out = tmp_path / "runs"
    shutil.copytree(ROOT / "runs" / "smoke", out / "smoke")
    return out


def test_a_new_table_metric_is_one_registration_and_reaches_the_results_table(tmp_path, monkeypatch):
    monkeypatch.setattr(run_metrics, "EMBEDDING_METRICS", list(run_metrics.EMBEDDING_METRICS))
    monkeypatch.setattr(run_metrics, "SHOWN", dict(run_metrics.SHOWN))
    out = _copy_smoke(tmp_path)

    @run_metrics.embedding_metric(shows=(run_metrics.Shown("prefix_row_norm", "mean prefix row norm",
                                                           summary=True, interval=True),))
    def prefix_row_norm(run):
        return {"prefix_row_norm": float(run.tensor("dating_prefix").norm(dim=1).mean())}

    recompute.recompute_metrics(out / "smoke", log=lambda _: None)
    tables.write_results_table(out / "smoke")
    summary = (out / "smoke" / "results.md").read_text()
    header = next(line for line in summary.splitlines() if line.startswith("| variant | condition"))
    assert "prefix_row_norm" in header
    assert "prefix_row_norm" in open(out / "smoke" / "results.csv").readline()
    assert run_metrics.metric_label("prefix_row_norm") == "mean prefix row norm"
    assert "prefix_row_norm" in run_metrics.interval_metrics()


def test_the_headline_is_a_registered_derived_metric():
    assert run_metrics.interval_metrics()[0] == "prefix_top1"
    row = {"prefix_d2h_top1": 0.25, "prefix_h2d_top1": 0.75}
    assert run_metrics.DERIVED_METRICS["prefix_top1"](row) == 0.5


# --- nothing of the committed record moves -------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["smoke", "quick"])
def test_every_committed_run_keeps_its_params_hash(profile):
    """make run on the committed record schedules no training: each run's params rebuild to its recorded hash."""
    runs = list(iter_runs(ROOT / "runs" / profile, "metrics.json"))
    assert runs
    for variant, seed, name, path in runs:
        saved = json.loads(path.read_text())
        overrides = {}
        if "@" in name:  # a sweep point: its swept value (and the dims it implies) are in its params
            key = name.split("@", 1)[1].split("=", 1)[0]
            section = next(s for s in ("model", "loss", "train") if key in saved["params"][s])
            overrides[f"{section}.{key}"] = saved["params"][section][key]
            if key == "prefix_dim":
                overrides["model.matryoshka_dims"] = saved["params"]["model"]["matryoshka_dims"]
        params = study_params(saved["condition"], profile, variant, seed, overrides)
        assert params.hash() == saved["params_hash"], path


# --- the layout lives in record.py; the golden smoke study -----------------------------------------------------

def _metric_close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= GOLDEN_TOLERANCE


def test_the_golden_smoke_study_with_another_seed_folder_format(tmp_path, monkeypatch, capsys):
    """The smoke study (v3_contrastive and v3_no_prefix on verbatim) with record.SEED_FOLDER changed alone: it runs,
    its tables build, --recompute-metrics rewrites nothing, and its metrics equal the golden file's within 1e-4."""
    monkeypatch.setattr(record, "SEED_FOLDER", "s-{seed}-x")
    out = tmp_path / "runs"
    argv = ["--profile", "smoke", "--conditions", "v3_contrastive,v3_no_prefix", "--variants", "verbatim",
            "--seeds", "42", "--out", str(out), "--threads", "1"]
    assert study.main(argv) == 0, capsys.readouterr().out[-3000:]
    folders = sorted(p.name for p in (out / "smoke" / "verbatim").iterdir())
    assert folders == ["s-42-x"]
    metrics = {name: json.loads(path.read_text())["metrics"] for _, _, name, path in iter_runs(out / "smoke", "metrics.json")}
    assert set(metrics) == {"v3_contrastive", "v3_no_prefix"}
    assert (out / "smoke" / "results.md").exists() and "v3_no_prefix" in (out / "smoke" / "results.md").read_text()
    assert not [nb for nb in (out / "smoke").glob("04_figures.ipynb") if '"output_type": "error"' in nb.read_text()]
    capsys.readouterr()
    assert study.main(["--recompute-metrics", "--profile", "smoke", "--out", str(out)]) == 0
    assert "2 runs read, 0 rewritten; 1 reference files read, 0 rewritten" in capsys.readouterr().out
    if os.environ.get("SMLIB_WRITE_GOLDEN"):  # regenerate: SMLIB_WRITE_GOLDEN=1 pytest tests/test_one_place.py -k golden
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(golden) == set(metrics)
    for run, values in golden.items():
        assert set(values) == set(metrics[run]), run
        off = {k: (v, metrics[run][k]) for k, v in values.items() if not _metric_close(v, metrics[run][k])}
        assert not off, (run, off)


# --- the lint -------------------------------------------------------------------------------------------------

def test_the_linter_config_selects_the_rules_and_every_noqa_names_one():
    config = (ROOT / "pyproject.toml").read_text()
    select = re.search(r'^select = \[(.*?)\]', config, re.M).group(1)
    assert {"E", "F", "W", "I", "B", "UP"} <= set(re.findall(r'"([A-Z]+)"', select))
    assert "per-file-ignores" not in config
    bare = [f"{p}:{i}" for folder in ("smlib", "tests", "benchmarks") for p in (ROOT / folder).rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"#\s*noqa(?!:\s*[A-Z]+[0-9]+)", line)]
    assert not bare, bare


def test_no_module_of_smlib_is_over_450_lines_but_the_wording_tables():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "smlib").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 450 and "wording" not in p.parts}
    assert not long, long
