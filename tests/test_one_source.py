"""One source for each concept: a condition is one YAML file; a metric is one registered function that
`--recompute-metrics` brings to every recorded run without retraining."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from smlib import recompute, run_metrics, study, tables
from smlib.config import PARAMS_DIR, PARAMS_ENV, conditions, load_params, row_order
from smlib.record import run_files, run_state

ROOT = Path(__file__).resolve().parent.parent


def test_conditions_are_the_yaml_files_proposed_first(tmp_path):
    found = conditions()
    assert sorted(found) == sorted(p.stem for p in (PARAMS_DIR / "conditions").glob("*.yaml"))
    assert found[0] == "v3_contrastive"
    params_dir = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, params_dir)
    (params_dir / "conditions" / "aa_new.yaml").write_text("condition: aa_new\n")
    assert conditions(params_dir) == ("v3_contrastive", "aa_new", *found[1:])
    assert row_order(["tfidf", "v3_contrastive@prefix_dim=128", "zzz", "v3_contrastive@prefix_dim=16",
                      "v3_contrastive"]) == ["v3_contrastive", "v3_contrastive@prefix_dim=16",
                                             "v3_contrastive@prefix_dim=128", "tfidf", "zzz"]


def test_a_new_condition_is_one_yaml_file_and_reaches_the_results_table(tmp_path, monkeypatch, capsys):
    """A condition that reuses existing losses: one file in a params folder; the runner trains and evaluates it
    with the real notebooks and the table shows it. Nothing else is edited."""
    params_dir = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, params_dir)
    monkeypatch.setenv(PARAMS_ENV, str(params_dir))  # what --params sets; monkeypatch unsets it after the test
    (params_dir / "conditions" / "zz_prefix_mse_only.yaml").write_text(
        "# Test condition: MSE on the identity prefix at twice the weight.\n"
        "condition: zz_prefix_mse_only\nloss:\n  cross_domain: mse\n  cross_weight: 2.0\n")
    out = tmp_path / "runs"
    code = study.main(["--params", str(params_dir), "--profile", "smoke", "--conditions", "zz_prefix_mse_only",
                       "--variants", "verbatim", "--seeds", "42", "--out", str(out)])
    assert code == 0, capsys.readouterr()
    run = out / "smoke" / "verbatim" / "seed42" / "zz_prefix_mse_only"
    params = load_params("zz_prefix_mse_only", "smoke", overrides={"data.variant": "verbatim"}, params_dir=params_dir)
    assert run_state(run, params.hash())[0] == "done"
    summary = pd_read(out / "smoke" / "results.csv")
    assert "zz_prefix_mse_only" in set(summary["condition"])
    history = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert "cross" in history  # its own loss parts, from its params


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)


def _copy_smoke(tmp_path) -> Path:
    out = tmp_path / "runs"
    shutil.copytree(ROOT / "runs" / "smoke", out / "smoke")
    return out


def test_recompute_metrics_leaves_the_committed_smoke_record_unchanged(tmp_path, capsys):
    out = _copy_smoke(tmp_path)
    before = {p: p.read_bytes() for _, _, _, p in run_files(out / "smoke", "metrics.json")}
    assert before
    assert study.main(["--recompute-metrics", "--profile", "smoke", "--out", str(out)]) == 0
    assert f"{len(before)} runs read, 0 rewritten; 2 reference files read, 0 rewritten" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in before} == before


def test_a_new_metric_is_one_function_and_reaches_every_recorded_run(tmp_path, monkeypatch):
    out = _copy_smoke(tmp_path)
    monkeypatch.setattr(run_metrics, "EMBEDDING_METRICS", list(run_metrics.EMBEDDING_METRICS))

    @run_metrics.embedding_metric
    def mean_prefix_norm(run):  # a toy metric: the prefix rows are unit vectors, so 1.0
        return {"prefix_row_norm": float(run.tensor("dating_prefix").norm(dim=1).mean())}

    report = [r for r in recompute.recompute_metrics(out / "smoke", log=lambda _: None) if r["kind"] == "run"]
    assert report and all(set(r["changed"]) == {"prefix_row_norm"} for r in report)
    for _, _, _, path in run_files(out / "smoke", "metrics.json"):
        record = json.loads(path.read_text())
        assert record["metrics"]["prefix_row_norm"] == pytest.approx(1.0, abs=1e-5)
        params_hash = record["params_hash"]
        assert run_state(path.parent, params_hash)[0] == "done"  # the completion record follows the new file
    assert "prefix_row_norm" in tables.collect_results(out / "smoke").columns


def test_recompute_reports_a_corrupted_run_and_skips_an_incomplete_one(tmp_path):
    out = _copy_smoke(tmp_path)
    runs = [p for _, _, _, p in run_files(out / "smoke", "metrics.json")]
    (runs[0].parent / "run.json").unlink(missing_ok=True)
    (runs[0].parent / "02_train.ipynb").unlink()  # no longer complete: left alone
    report = recompute.recompute_metrics(out / "smoke", log=lambda _: None)
    assert report[0]["skipped"] and all(not r["changed"] for r in report)
    runs[1].write_text("{not json")
    report = recompute.recompute_metrics(out / "smoke", log=lambda _: None)  # reported, the others still read
    assert "corrupted" in report[1]["failed"] and str(runs[1]) in report[1]["failed"]
    assert not any(r.get("failed") for i, r in enumerate(report) if i != 1) and len(report) == len(runs) + 2
    assert runs[1].read_text() == "{not json"
