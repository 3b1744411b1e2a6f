"""A run is read only as it was completed: the readers check it against its run.json, and a folder without one is
neither tabled nor adopted unless its metrics.json is what its embeddings.npz gives (on a copy of runs/smoke)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from smlib import analysis, tables
from smlib.compare import compare_records
from smlib.config import params_from_dict
from smlib.recompute import check_adoptable
from smlib.record import COMPLETION, RunFolderError, StudyLock, run_state
from smlib.study.cli import main

COMMITTED = Path(__file__).resolve().parents[1] / "runs" / "smoke"
RUN = ("verbatim", "seed42", "v3_mse")  # the run the tests tamper with


@pytest.fixture()
def out(tmp_path) -> Path:
    """A copy of the committed smoke record: <out>/smoke."""
    shutil.copytree(COMMITTED, tmp_path / "runs" / "smoke")
    return tmp_path / "runs"


def _edit_metric(folder: Path, key: str = "prefix_d2h_top1", value: float = 0.999) -> dict:
    """Set one recorded metric of folder's metrics.json by hand (the record is otherwise as it was)."""
    path = folder / "metrics.json"
    record = json.loads(path.read_text())
    assert record["metrics"][key] != value
    record["metrics"][key] = value
    path.write_text(json.dumps(record, indent=2, sort_keys=True))
    return record


def test_an_untouched_copy_tables_as_the_committed_record(out, capsys):
    assert main(["--table-only", "--profile", "smoke", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_csv(out / "smoke" / "results_long.csv"), pd.read_csv(COMMITTED / "results_long.csv"))
    assert not (out / "smoke" / ".study.lock").exists()


def test_a_metric_edited_after_completion_is_refused_by_every_reader(out, capsys):
    profile = out / "smoke"
    folder = profile.joinpath(*RUN)
    before = (profile / "results_long.csv").read_bytes()
    _edit_metric(folder)
    named = rf"{folder}: metrics\.json changed since the run was completed"
    with pytest.raises(RunFolderError, match=named):
        tables.write_results_table(profile)
    assert main(["--table-only", "--profile", "smoke", "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and str(folder) in err[0] and "metrics.json" in err[0], err
    assert (profile / "results_long.csv").read_bytes() == before  # not rewritten with the edited value
    for read in (lambda: analysis.load_histories(profile), lambda: analysis.record_similarities(profile),
                 lambda: analysis.load_run_embeddings(profile, "verbatim", 42),
                 lambda: compare_records(COMMITTED, profile)):
        with pytest.raises(RunFolderError, match=named):
            read()


def test_a_file_deleted_after_completion_is_refused_not_left_out(out):
    folder = (out / "smoke").joinpath(*RUN)
    (folder / "metrics.json").unlink()
    with pytest.raises(RunFolderError, match=rf"{folder}: metrics\.json missing since the run was completed"):
        tables.collect_results(out / "smoke")


def test_an_edited_metric_without_its_run_json_is_not_adopted(out):
    folder = (out / "smoke").joinpath(*RUN)
    record = _edit_metric(folder)
    (folder / COMPLETION).unlink()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(RunFolderError, match=r"not adopted.*prefix_d2h_top1 recorded 0\.999, recomputed 0\.\d+.*move "
                                             r"the folder away") as e:
        run_state(folder, params_from_dict(record["params"]).hash(), adopt=check_adoptable)
    assert str(folder) in str(e.value) and "\n" not in str(e.value)
    assert not (folder / COMPLETION).exists()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing recorded lost or rewritten


def test_a_run_without_run_json_is_left_out_of_the_tables_with_a_warning(out, capsys):
    profile = out / "smoke"
    folder = profile.joinpath(*RUN)
    _edit_metric(folder)
    (folder / COMPLETION).unlink()
    frame = tables.collect_results(profile)
    warned = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(warned) == 1 and str(folder) in warned[0] and "left out" in warned[0], warned
    rows = frame[(frame["variant"] == "verbatim") & (frame["seed"] == 42)]
    assert "v3_mse" not in set(rows["condition"]) and 0.999 not in set(frame["prefix_d2h_top1"])
    assert len(frame) == len(pd.read_csv(COMMITTED / "results_long.csv")) - 1


def test_a_legacy_run_whose_metrics_match_its_embeddings_is_adopted(out):
    folder = (out / "smoke").joinpath(*RUN)
    completed = json.loads((folder / COMPLETION).read_text())
    (folder / COMPLETION).unlink()
    params_hash = json.loads((folder / "metrics.json").read_text())["params_hash"]
    assert run_state(folder, params_hash, adopt=check_adoptable) == ("done", "")
    adopted = json.loads((folder / COMPLETION).read_text())
    assert adopted["adopted"] is True and adopted["files"] == completed["files"]
    assert adopted["params_hash"] == params_hash


def test_table_only_waits_for_no_study_it_refuses_while_one_writes(out, capsys):
    profile = out / "smoke"
    before = (profile / "results.md").read_bytes()
    with StudyLock(profile):
        assert main(["--table-only", "--profile", "smoke", "--out", str(out)]) == 2
    assert "another study is writing" in capsys.readouterr().err
    assert (profile / "results.md").read_bytes() == before
    assert main(["--table-only", "--profile", "smoke", "--out", str(out / "nowhere")]) == 2
    assert not (out / "nowhere").exists()  # a mistyped --out is named, not created
