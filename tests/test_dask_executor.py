"""The study grid on a Dask cluster: the same records, resume and table as the local executor."""
from __future__ import annotations

import json

import pytest
from conftest import executed_notebook

from smlib import study
from smlib.config import REFERENCE_ROWS
from smlib.record import run_state

SMOKE = ["--profile", "smoke", "--conditions", "v3_contrastive", "--variants", "verbatim", "--seeds", "42"]


def _metrics(out):
    run = out / "smoke" / "verbatim" / "seed42" / "v3_contrastive"
    record = json.loads((run / "metrics.json").read_text())
    assert run_state(run, record["params_hash"])[0] == "done"
    return record["metrics"]


def test_a_local_dask_cluster_writes_the_records_the_local_executor_writes(tmp_path, monkeypatch, capsys):
    # Dask's nanny runs each worker (and the kernels it starts) with one thread per library; so does the local run
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    assert study.main([*SMOKE, "--out", str(tmp_path / "local")]) == 0
    assert study.main([*SMOKE, "--out", str(tmp_path / "dask"), "--executor", "dask", "--workers", "2"]) == 0
    log = capsys.readouterr().out
    assert "[dask] 1 datasets and 1 runs submitted" in log and "verbatim/seed42/v3_contrastive: done" in log
    local, dask = _metrics(tmp_path / "local"), _metrics(tmp_path / "dask")
    assert local.keys() == dask.keys()
    for key, value in local.items():
        assert dask[key] == pytest.approx(value, abs=1e-6), key
    for out in ("local", "dask"):
        ddir = tmp_path / out / "smoke" / "verbatim" / "seed42"
        assert (ddir / "references.json").exists() and (tmp_path / out / "smoke" / "results.csv").exists()
    refs = [json.loads((tmp_path / o / "smoke/verbatim/seed42/references.json").read_text())["rows"]
            for o in ("local", "dask")]
    assert [r["condition"] for r in refs[0]] == [r["condition"] for r in refs[1]]
    # resume: a second run on the cluster finds everything done and runs no notebook but 04
    before = (tmp_path / "dask" / "smoke/verbatim/seed42/v3_contrastive/02_train.ipynb").stat().st_mtime_ns
    assert study.main([*SMOKE, "--out", str(tmp_path / "dask"), "--executor", "dask", "--workers", "1"]) == 0
    assert (tmp_path / "dask" / "smoke/verbatim/seed42/v3_contrastive/02_train.ipynb").stat().st_mtime_ns == before


def test_a_failed_run_on_the_cluster_is_reported_like_a_local_one(tmp_path, monkeypatch, capsys):
    ddir = tmp_path / "smoke" / "verbatim" / "seed42"
    params = study.dataset_params("smoke", "verbatim", 42)
    ddir.mkdir(parents=True)  # the dataset's record is complete: the workers run no 01_data
    (ddir / "references.json").write_text(json.dumps({"rows": [{"condition": c} for c in REFERENCE_ROWS],
                                                      "data_params": params.data_params()}))
    executed_notebook(ddir / "01_data.ipynb")
    run = ddir / "v3_contrastive"
    run.mkdir()
    (run / "metrics.json").write_text("{not json")  # a corrupted record: reported, left alone, nothing else stops
    _, failures = study.run_study("smoke", conditions=("v3_contrastive",), variants=("verbatim",), out=tmp_path,
                                  data_root=tmp_path / "data", checkpoint_root=tmp_path / "ckpt",
                                  executor="dask", workers=1,  # every notebook but 04 (here) runs on the cluster
                                  run_notebook=lambda nb, *a, **k: None if nb == "04_figures.ipynb"
                                  else study.execute(nb, *a, **k))
    assert [f[0] for f in failures][:1] == ["verbatim/seed42/v3_contrastive"] and "corrupted" in failures[0][1]
    assert (run / "metrics.json").read_text() == "{not json"
