"""Reliability, round 3: what the planner accepts the study finishes, flags that conflict or do nothing are refused, the
metrics refuse input they cannot measure, and every refusal names its reason in one line."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
from pathlib import Path

import matplotlib
import pytest
import torch
from nbclient.exceptions import CellTimeoutError

from smlib import training
from smlib.config import ParamsError, study_params
from smlib.data import DatasetError, load_or_build, read_dataset
from smlib.invariance import cka_debiased, cka_debiased_interval, cka_null
from smlib.metrics import cka
from smlib.record import RunFolderError
from smlib.study import main
from smlib.study.notebooks import _echo_notes
from smlib.study.plan import plan_study
from smlib.study.reproduce import check_reproduce
from smlib.study.run import _short, run_condition
from smlib.tables import record_params

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "runs" / "smoke"


@pytest.fixture
def alarm():
    """Fail a test that would hang (today's bug was an endless loop) instead of waiting for it."""
    def on_alarm(*_):
        raise TimeoutError("still running after 20 s: a loop without progress")

    before = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


def _plan(**overrides):
    return plan_study("smoke", ("v3_contrastive",), (42,), ("verbatim",), overrides)


# ---------------------------------------------------------------- A. accepted, then cannot finish
def test_one_triplet_is_refused_at_planning_and_a_loader_that_cannot_batch_raises(alarm):
    with pytest.raises(ParamsError, match="n_triplets"):
        _plan(**{"data.n_triplets": 1})
    # items that can never go two together (every two share a person): one error, not an endless loop
    for items in ([(0, 1, 2)], [(0, 1, 2), (0, 3, 4), (5, 0, 6)]):
        with pytest.raises(ValueError, match="never give a batch"):
            next(training._batches(items, 4, random.Random(0), key=set, what="triplets"))


def test_triplets_that_all_share_a_person_are_refused_by_the_planner():
    with pytest.raises(ParamsError, match="share a"):
        _plan(**{"data.n_people": 11, "data.val_fraction": 0.4545, "train.batch_size": 2, "data.n_triplets": 6})


def test_a_timeout_summary_line_carries_its_reason():
    cell = {"source": "result = train(params, dataset)\nprint(result)"}
    e = CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", 5, type("C", (), cell))
    line = _short(e)
    assert "timed out" in line and "after 5 seconds" in line and not line.rstrip().endswith("-")
    assert _short(RuntimeError("----\n\n---")) == "RuntimeError (no message)"


@pytest.mark.parametrize("n_people", [11, 12, 13, 14, 18])
def test_too_few_validation_people_for_the_metrics_are_refused_at_planning(n_people):
    with pytest.raises(ParamsError, match="validation people; the metrics need at least 5"):
        _plan(**{"data.n_people": n_people})


def test_a_relative_encoder_path_reaches_the_kernels_absolute(tmp_path, monkeypatch):
    from smlib.models.encoder import TINY_CONFIG

    encoder = tmp_path / "models" / "mini"
    encoder.mkdir(parents=True)
    (encoder / "config.json").write_text(json.dumps(TINY_CONFIG))
    monkeypatch.chdir(tmp_path / "models")
    plan = _plan(**{"model.base_model": "../models/mini"})
    assert plan.jobs[0].override_dict["model.base_model"] == str(encoder)
    assert dict(plan.overrides)["model.base_model"] == str(encoder)  # what 01_data's zero-shot row loads
    swept = plan_study("smoke", ("v3_contrastive",), (42,), ("verbatim",), {},
                       sweep=("model.base_model", ["../models/mini", "tiny"]))
    assert [j.override_dict.get("model.base_model") for j in swept.jobs] == [str(encoder), None]  # tiny: the profile's
    monkeypatch.chdir(ROOT / "notebooks")  # where the kernels run: the recorded params load there
    assert study_params("v3_contrastive", "smoke", "verbatim", 42, plan.jobs[0].override_dict).model.base_model \
        == str(encoder)


@pytest.mark.parametrize("argv, says", [
    (["--sweep", "model.prefix_dim=16", "--sweep", "train.lr=1e-3"], "--sweep given 2 times"),
    (["--update-readme"], "--update-readme works with --table-only"),
    (["--set", "train.lr=0.1", "--set", "train={lr: 0.2}"], "--set train.lr: given twice"),
    (["--set", "train={lr: 0.2}", "--set", "train.lr=0.1"], "--set train.lr: given twice"),
    (["--table-only", "--seeds", "43"], "--table-only only reads the record: --seeds would do nothing"),
    (["--recompute-metrics", "--update-readme"], "--recompute-metrics only reads the record"),
    (["--table-only", "--recompute-metrics"], "exclude each other"),
])
def test_flags_that_conflict_or_do_nothing_are_refused(argv, says, tmp_path, capsys):
    try:
        code = main(["--profile", "smoke", "--out", str(tmp_path), *argv])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def _notebook_code(name: str, params: dict):
    """Run a source notebook's code cells in this process (no kernel), its parameters cell replaced by params."""
    matplotlib.use("Agg")
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    scope: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
        exec(compile("\n".join(ln for ln in source.splitlines() if not ln.startswith("%")), name, "exec"), scope)
    return scope


@pytest.fixture
def smoke_copy(tmp_path):
    target = tmp_path / "smoke"
    shutil.copytree(SMOKE, target)
    return target


def test_04_works_on_a_record_of_sweep_points_only(smoke_copy):
    shutil.rmtree(smoke_copy / "disjoint")
    for run in (smoke_copy / "verbatim" / "seed42").iterdir():
        if run.is_dir() and run.name != "v3_contrastive":
            shutil.rmtree(run)
    (smoke_copy / "verbatim" / "seed42" / "v3_contrastive").rename(smoke_copy / "verbatim" / "seed42" /
                                                                   "v3_contrastive@prefix_dim=64")
    assert record_params(smoke_copy)["model"]["prefix_dim"] == 64
    _notebook_code("04_figures.ipynb", {"runs_dir": str(smoke_copy), "seed": 42, "save_figures": False})


def test_04_works_on_one_variant_and_one_seed(smoke_copy):
    shutil.rmtree(smoke_copy / "disjoint")
    scope = _notebook_code("04_figures.ipynb", {"runs_dir": str(smoke_copy), "seed": 42, "save_figures": False})
    assert set(scope["frame"]["variant"]) == {"verbatim"}


def test_a_record_of_sweep_points_only_is_not_reproduced_as_if_it_were_the_conditions(smoke_copy, tmp_path):
    for run in list(smoke_copy.glob("*/seed42/*/")):
        if (run / "metrics.json").exists():
            run.rename(run.with_name(f"{run.name}@prefix_dim=64"))
    with pytest.raises(RunFolderError, match="sweep points only"):
        check_reproduce("smoke", tmp_path / "out", smoke_copy.parent)


def test_a_comparison_without_a_trained_run_is_not_a_reproduction():
    import pandas as pd

    from smlib.compare import COLUMNS, verdicts

    rows = [{"variant": "verbatim", "condition": "tfidf", "seed": 42, "metric": "prefix_d2h_top1", "a": 0.5, "b": 0.5,
             "diff": 0.0, "a_low": 0.4, "a_high": 0.6, "interval": "x", "within": True}]
    line = verdicts(pd.DataFrame(rows, columns=COLUMNS))["verbatim"]
    assert line.startswith("NOT reproduced") and "no trained run compared" in line


# ---------------------------------------------------------------- B. the metrics refuse what they cannot measure
@pytest.mark.parametrize("fn, rows", [(lambda x, y: cka(x, y), 2), (lambda x, y: cka(x, y, debiased=True), 4),
                                      (cka_debiased, 4), (lambda x, y: cka_null(x, y, 5), 4),
                                      (lambda x, y: cka_null(x, y, 5, debiased=False), 2), (cka_debiased_interval, 5)])
def test_cka_refuses_non_finite_input_and_too_few_rows_on_both_paths(fn, rows):
    x, y = torch.randn(12, 6, generator=torch.Generator().manual_seed(0)), torch.randn(12, 6)
    for bad in (float("nan"), float("inf")):
        broken = y.clone()
        broken[3, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            fn(x, broken)
    with pytest.raises(ValueError, match=f"at least {rows} rows"):
        fn(x[: rows - 1], y[: rows - 1])
    with pytest.raises(ValueError, match="no columns"):
        fn(x[:, :0], y[:, :0])
    assert isinstance(fn(x[:rows], y[:rows]), (float, tuple)) or fn(x[:rows], y[:rows]) is not None


# ---------------------------------------------------------------- C. messages
def test_a_cross_field_refusal_names_the_fields_not_the_whole_params():
    with pytest.raises(ParamsError) as e:
        study_params("v3_contrastive", "smoke", "verbatim", 42, {"train.batch_size": 70})
    message = str(e.value)
    assert "train.batch_size=70" in message and len(message) < 300 and "'model':" not in message


def test_a_tamper_refusal_points_at_no_notebook(smoke_copy, capsys):
    plan = dataclasses.replace(_plan(), out=smoke_copy.parent)
    metrics = smoke_copy / "verbatim" / "seed42" / "v3_contrastive" / "metrics.json"
    record = json.loads(metrics.read_text())
    record["metrics"]["prefix_d2h_top1"] = 0.999
    metrics.write_text(json.dumps(record))
    what, why = run_condition(plan, plan.jobs[0], 1)
    out = capsys.readouterr().out
    assert "metrics.json changed since the run was completed" in why
    assert "failing cell" not in out and "see " not in out.split("FAILED")[-1].split("(see run.json)")[-1]


def test_dataset_errors_name_the_folder_wherever_the_reader_runs(tmp_path, monkeypatch):
    params = study_params("v3_contrastive", "smoke", "verbatim", 42)
    _, folder = load_or_build(params, tmp_path / "data")
    (folder / "manifest.json").write_text("{")
    monkeypatch.chdir(tmp_path / "data")
    with pytest.raises(DatasetError) as e:
        read_dataset(os.path.relpath(folder))
    assert str(folder.resolve()) in str(e.value)


def test_a_rebuilt_trunk_cache_is_said_on_the_console(tmp_path, capsys):
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stderr",
         "text": "trunk cache abc.pt is stale or corrupted (key or checksum differs); rebuilding\nother\n"}]}]}
    path = tmp_path / "02_train.ipynb"
    path.write_text(json.dumps(nb))
    _echo_notes(path, log_output=False)
    assert "02_train.ipynb: trunk cache abc.pt is stale or corrupted" in capsys.readouterr().out
