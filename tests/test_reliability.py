"""Hostile input, interrupted and broken runs, non-finite numbers, two studies at once, hung cells."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import executed_notebook, fast_params, write_fake_run

from smlib import evaluation, study, tables, training
from smlib.config import REFERENCE_ROWS, ParamsError, load_params
from smlib.recompute import check_adoptable
from smlib.record import COMPLETION, RunFolderError, StudyLock, run_state, write_completion
from smlib.study import main, study_params

ROOT = Path(__file__).resolve().parent.parent

SMOKE = ["--profile", "smoke", "--conditions", "v3_contrastive", "--variants", "verbatim"]
DIMS = "model.matryoshka_dims=[32,64,128,256,384,512]"
# Each is refused by validation: exit 2, one line on stderr, and nothing written (no notebook runs, no folder).
BAD_ARGV = [
    ["--set", "model.prefix_dim=512", "--set", DIMS],  # wider than the encoder (384)
    ["--set", DIMS],
    ["--set", "model.max_length=100000"], ["--set", "model.max_length=1024"],  # past the encoder's 512 positions
    ["--set", "train.lr=.inf"], ["--set", "train.lr=-.inf"], ["--set", "train.lr=.nan"], ["--set", "train.lr=0"],
    ["--set", "train.lr=-1e-4"], ["--set", "train.lr=abc"], ["--set", "train.lr=[1"], ["--set", "train.lr={a: 1}"],
    ["--set", "train.lr=5"], ["--set", "train.head_lr=1e9"],
    ["--set", "data.n_people=1e20"], ["--set", "data.n_people=5"], ["--set", "data.n_people=-3"],
    ["--set", "data.n_people=2000000"], ["--set", "data.val_fraction=1.5"], ["--set", "data.val_fraction=0"],
    ["--seeds", "99999999999999999999"], ["--seeds", "-1"], ["--seeds", ","], ["--seeds", "42,42"],
    ["--seeds", "4.2"], ["--seeds", "abc"], ["--seeds", ""], ["--seeds", "42,,43"], ["--seeds", "4294967296"],
    ["--conditions", ","], ["--conditions", "nope"], ["--conditions", "v3_mse,v3_mse"], ["--conditions", ""],
    ["--variants", ","], ["--variants", "nope"], ["--variants", "verbatim,verbatim"],
    ["--set", "condition=v3_mse"], ["--set", "seed=7"], ["--set", "data.variant=disjoint"],
    ["--set", "data={variant: disjoint}"], ["--set", "data.variant=disjoint", "--set", "seed=7"],
    ["--set", "train.batch_size=100000"], ["--set", "train.batch_size=1"], ["--set", "train.batch_size=500"],
    ["--set", "loss.temperature=1e-30"], ["--set", "loss.temperature=0"], ["--set", "loss.temperature=.nan"],
    ["--set", "nokey=1"], ["--set", "train.nokey=1"], ["--set", "=1"], ["--set", "train.lr"], ["--set", "a..b=1"],
    ["--set", "train.lr=1e-4", "--set", "train.lr=2e-4"],
    ["--profile", "nope"], ["--profile", "../../etc/passwd"],
    ["--sweep", "model.prefix_dim="], ["--sweep", "data.n_people=1,2"], ["--sweep", "model.prefix_dim=16,16"],
    ["--sweep", "model.prefix_dim=1000"], ["--sweep", "train.lr=.inf,1e-3"],
    ["--cell-timeout", "0"], ["--cell-timeout", "-5"], ["--cell-timeout", "abc"], ["--bogus"],
    ["--set", "train.epochs=0"], ["--set", "train.warmup_fraction=1"], ["--set", "eval.bootstrap_resamples=5"],
    ["--set", "train.trainable_layers=-1"], ["--set", "model.prefix_dim=48"], ["--set", "train.precision=fp16"],
    ["--set", "train.max_steps=1e30"], ["--set", "train.grad_clip=.inf"], ["--set", "loss.cross_weight=-1"],
    ["--set", "train.trainable_layers=3"],  # the tiny encoder has 2 layers
    ["--set", "model.base_model=/nonexistent/encoder"], ["--set", "model.base_model=nobody/no-such-model-xyz"],
    ["--sweep", "model.prefix_dim=16.5"], ["--variants", "verbatim,nope"],
    ["--params", "/nonexistent/params"], ["--params", "smlib"],  # not a params folder
    ["--executor", "spark"], ["--scheduler", "tcp://localhost:8786"], ["--workers", "2"],  # dask flags without dask
    ["--executor", "dask", "--workers", "0"], ["--executor", "dask", "--scheduler", "not an address"],
    ["--executor", "dask", "--workers", "2", "--scheduler", "tcp://localhost:8786"],
]
if not torch.cuda.is_available():
    BAD_ARGV.append(["--set", "train.device=cuda"])


def state_of(folder, params):
    """run_state as the runner calls it: a run from before completion records is adopted if its embeddings agree."""
    return run_state(folder, params.hash(), adopt=check_adoptable)


def test_at_least_fifty_kinds_of_bad_input_are_listed():
    assert len(BAD_ARGV) >= 50


@pytest.mark.parametrize("extra", BAD_ARGV, ids=[" ".join(a) for a in BAD_ARGV])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(extra, tmp_path, monkeypatch, capsys):
    out = tmp_path / "runs"
    argv = [*SMOKE, *extra, "--out", str(out)]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusals (unknown flag, non-integer --cell-timeout)
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert not out.exists()  # nothing written: not even the out folder


def test_a_typed_float_and_other_spellings_are_accepted():
    overrides = study.parse_overrides(["train.lr=1e-4", "train.head_lr=1E-3", "loss.temperature=.05"])
    params = study_params("v3_contrastive", "smoke", "verbatim", 42, overrides)
    assert (params.train.lr, params.train.head_lr, params.loss.temperature) == (1e-4, 1e-3, 0.05)


def test_a_condition_override_blames_the_override_not_the_condition_file():
    with pytest.raises(ParamsError, match=r"^overrides: key 'condition'"):
        load_params("v3_contrastive", "smoke", overrides={"condition": "v3_mse"})


def _params_copy(tmp_path) -> Path:
    import shutil

    shutil.copytree(ROOT / "params", tmp_path / "params")
    return tmp_path / "params"


def test_a_profile_that_is_not_utf8_or_repeats_a_key_is_refused_naming_the_file(tmp_path):
    params_dir = _params_copy(tmp_path)
    profile = params_dir / "profiles" / "smoke.yaml"
    original = profile.read_bytes()
    profile.write_bytes(original + b"\n# caf\xe9\n")
    with pytest.raises(ParamsError, match=r"smoke\.yaml: not UTF-8"):
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    profile.write_bytes(original + b"\nseed: 1\nseed: 2\n")
    with pytest.raises(ParamsError, match=r"smoke\.yaml: not valid YAML: key 'seed' is given twice"):
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    profile.write_bytes(original.replace(b"data:", b"data:\n  n_people: 100\n  n_people: 120", 1))
    with pytest.raises(ParamsError, match="n_people' is given twice"):
        load_params("v3_contrastive", "smoke", params_dir=params_dir)


def test_every_documented_range_is_checked():
    for key, value in (("seed", -1), ("seed", 2**32), ("data.n_people", 10**7), ("train.lr", 2.0),
                       ("loss.temperature", 1e-5), ("train.batch_size", 10**6), ("model.max_length", 4)):
        with pytest.raises(ParamsError, match=key.split(".")[-1]):
            load_params("v3_contrastive", "smoke", overrides={key: value})


# --- a broken or interrupted run is never called done -------------------------------------------------------

def test_a_run_is_done_only_with_its_completion_record_and_every_file_intact(tmp_path):
    params = study_params("v3_mse", "smoke", "verbatim", 42)
    folder = tmp_path / "run"
    assert state_of(folder, params)[0] == "absent"
    write_fake_run(folder, params, complete=False)
    executed_notebook(folder / "03_evaluate.ipynb", cells=2, pending=3)  # killed during 03, after metrics.json
    state, why = state_of(folder, params)
    assert state == "incomplete" and "never ran" in why
    executed_notebook(folder / "03_evaluate.ipynb", cells=2, error=True)
    assert state_of(folder, params) == ("incomplete", "03_evaluate.ipynb shows an error in code cell 2")
    executed_notebook(folder / "03_evaluate.ipynb")
    write_completion(folder, params.hash())
    assert state_of(folder, params)[0] == "done"
    (folder / "embeddings.npz").unlink()  # deleted after the fact: redone, not skipped
    assert state_of(folder, params) == ("incomplete", "embeddings.npz missing since the run was completed")


def test_a_completed_run_changed_afterwards_is_reported_and_left_alone(tmp_path):
    params = study_params("v3_mse", "smoke", "verbatim", 42)
    write_fake_run(tmp_path, params)
    text = (tmp_path / "metrics.json").read_text()
    (tmp_path / "metrics.json").write_text(text[: len(text) // 2])  # truncated
    with pytest.raises(RunFolderError, match="corrupted"):
        state_of(tmp_path, params)
    assert (tmp_path / "metrics.json").read_text() == text[: len(text) // 2]
    (tmp_path / "metrics.json").write_text(text)
    executed_notebook(tmp_path / "02_train.ipynb", cells=3)
    with pytest.raises(RunFolderError, match="02_train.ipynb changed"):
        state_of(tmp_path, params)
    (tmp_path / COMPLETION).write_text("{")
    with pytest.raises(RunFolderError, match="run.json is corrupted"):
        state_of(tmp_path, params)


def test_a_complete_record_from_before_completion_records_is_adopted(tmp_path):
    params = study_params("v3_mse", "smoke", "verbatim", 42)
    write_fake_run(tmp_path, params, complete=False)
    assert state_of(tmp_path, params)[0] == "done"
    record = json.loads((tmp_path / COMPLETION).read_text())
    assert record["adopted"] and set(record["files"]) >= {"metrics.json", "embeddings.npz", "02_train.ipynb"}
    (tmp_path / "embeddings.npz").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / COMPLETION).unlink()
    assert state_of(tmp_path, params) == ("incomplete", "embeddings.npz does not load (BadZipFile)")


def test_the_runner_redoes_an_incomplete_run_and_skips_a_complete_one(tmp_path, monkeypatch):
    runs = []

    def fake_execute(nb, path, parameters, *a, **k):
        if nb == "03_evaluate.ipynb":
            runs.append(path.parent.name)
            write_fake_run(path.parent, study_params(parameters["condition"], "smoke", "verbatim", 42), complete=False)

    monkeypatch.setattr(study.run, "write_results_table", lambda d: (d / "results.md").write_text(""))
    p = study_params("v3_contrastive", "smoke", "verbatim", 42)
    ddir = study.dataset_dir(tmp_path, "smoke", "verbatim", 42)
    ddir.mkdir(parents=True)
    (ddir / "references.json").write_text(json.dumps({"rows": [{"condition": c} for c in REFERENCE_ROWS],
                                                      "data_params": {"seed": 42, "data": p.data.model_dump()}}))
    executed_notebook(ddir / "01_data.ipynb")
    done = study.run_dir(tmp_path, "smoke", "verbatim", 42, "v3_contrastive")
    write_fake_run(done, p)
    broken = study.run_dir(tmp_path, "smoke", "verbatim", 42, "v3_mse")
    write_fake_run(broken, study_params("v3_mse", "smoke", "verbatim", 42), complete=False)
    executed_notebook(broken / "03_evaluate.ipynb", pending=2)
    study.run_study("smoke", conditions=("v3_contrastive", "v3_mse"), variants=("verbatim",), out=tmp_path,
                    data_root=tmp_path / "data", checkpoint_root=tmp_path / "ckpt", run_notebook=fake_execute)
    assert runs == ["v3_mse"]
    assert (broken / COMPLETION).exists()
    assert run_state(broken, study_params("v3_mse", "smoke", "verbatim", 42).hash(), adopt=check_adoptable)[0] == "done"


# --- one dataset per table ----------------------------------------------------------------------------------

def test_references_of_another_dataset_are_rebuilt_and_the_table_refuses_a_mix(tmp_path):
    old = study_params("v3_contrastive", "smoke", "verbatim", 42)
    new = study_params("v3_mse", "smoke", "verbatim", 42, {"data.val_fraction": 0.3})
    ddir = study.dataset_dir(tmp_path, "smoke", "verbatim", 42)
    ddir.mkdir(parents=True)
    rows = [{"condition": c, "variant": "verbatim", "seed": 42, "prefix_d2h_top1": 0.1} for c in REFERENCE_ROWS]
    (ddir / "references.json").write_text(json.dumps({"rows": rows, "data_params": old.data_params()}))
    executed_notebook(ddir / "01_data.ipynb")
    assert study.references_missing(ddir, old.data_params()) == []
    assert study.references_missing(ddir, new.data_params()) == ["other data params"]
    write_fake_run(ddir / "v3_contrastive", old, prefix_d2h_top1=0.5, prefix_h2d_top1=0.5)
    write_fake_run(ddir / "v3_mse", new, prefix_d2h_top1=0.5, prefix_h2d_top1=0.5)
    with pytest.raises(RunFolderError, match="another dataset"):
        tables.collect_results(tmp_path / "smoke")


# --- non-finite numbers -------------------------------------------------------------------------------------

def test_a_non_finite_loss_stops_training_naming_the_step(smoke_dataset, monkeypatch):
    params = fast_params("v3_contrastive", **{"train.max_steps": 4})
    real = training.build_loss
    calls = {"n": 0}

    def poisoned(p):
        loss = real(p)
        forward = loss.forward

        def nan_at_step_2(*a, **k):
            parts = forward(*a, **k)
            calls["n"] += 1
            if calls["n"] == 3:
                parts["total"] = parts["total"] * float("nan")
            return parts

        loss.forward = nan_at_step_2
        return loss

    monkeypatch.setattr(training, "build_loss", poisoned)
    with pytest.raises(training.TrainingDiverged, match=r"step 2 of \d+: the loss is nan"):
        training.train(params, smoke_dataset, progress=False)


def test_weights_that_never_change_fail_the_run(smoke_dataset):
    params = fast_params("v3_contrastive", **{"loss.within_weight": 0.0, "loss.cross_weight": 0.0,
                                              "train.weight_decay": 0.0, "train.max_steps": 2})
    with pytest.raises(training.TrainingDiverged, match="no trainable weight changed"):
        training.train(params, smoke_dataset, progress=False)


def test_metrics_json_is_strict_json_and_non_finite_embeddings_are_never_written(tmp_path):
    emb = {"dating": np.ones((3, 4), dtype=np.float32), "person_ids": np.arange(3)}
    record = {"metrics": {"top1": 0.5, "cka@64": float("nan"), "mrr": float("inf")}, "params_hash": "x"}
    evaluation.write_results(record, emb, tmp_path / "ok")
    saved = json.loads((tmp_path / "ok" / "metrics.json").read_text(), parse_constant=lambda c: 1 / 0)
    assert saved["metrics"] == {"top1": 0.5, "cka@64": None, "mrr": None}
    assert saved["non_finite_metrics"] == ["cka@64", "mrr"]
    emb["dating"][1, 2] = math.nan
    with pytest.raises(ValueError, match="non-finite embeddings"):
        evaluation.write_results(record, emb, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


# --- two studies at once ------------------------------------------------------------------------------------

def test_a_second_study_on_the_same_out_folder_is_refused(tmp_path, monkeypatch, capsys):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from smlib.record import StudyLock\n"
        f"with StudyLock({str(tmp_path / 'smoke')!r}):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main([*SMOKE, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"another study is writing to {tmp_path / 'smoke'} (pid {holder.pid})" in err
    finally:
        holder.kill()
        holder.wait()
    with StudyLock(tmp_path / "smoke"):  # the killed holder left no stale lock
        pass


def test_checkpoints_belong_to_the_out_folder_and_the_params(tmp_path):
    a = study.checkpoint_dir("smoke", "verbatim", 11, "v3_contrastive", tmp_path, tmp_path / "out_a", "h1")
    b = study.checkpoint_dir("smoke", "verbatim", 11, "v3_contrastive", tmp_path, tmp_path / "out_b", "h1")
    c = study.checkpoint_dir("smoke", "verbatim", 11, "v3_contrastive", tmp_path, tmp_path / "out_a", "h2")
    assert len({a, b, c}) == 3 and a.name == "v3_contrastive-h1"


# --- hangs --------------------------------------------------------------------------------------------------

def test_a_cell_past_the_timeout_fails_the_notebook_which_shows_it(tmp_path):
    import nbformat

    source = tmp_path / "slow.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(120)")]
    nbformat.write(nb, source)
    out = tmp_path / "run" / "slow.ipynb"
    t0 = time.perf_counter()
    with pytest.raises(Exception, match="(?i)timed? ?out|timeout"):
        study.execute(str(source), out, {}, cell_timeout=3)
    assert time.perf_counter() - t0 < 60
    assert out.exists() and not list(out.parent.glob(".*partial*"))  # renamed into place, showing the cell
    assert "sleep" in out.read_text()


# --- kill -9 at the write points of a real run: tests/test_interrupts_and_writes.py (a sample of the crash
# sweep, benchmarks/crash_sweep.py, which kills the study right after each file it writes)
