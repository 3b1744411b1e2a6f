"""Comparing two records (smlib.compare) and `python -m smlib.study --reproduce` on the smoke profile."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import write_fake_run

from smlib import tables
from smlib.compare import COLUMNS, HEADLINE, compare_records, verdicts, write_comparison
from smlib.record import RunFolderError, run_dir, write_completion
from smlib.study import main, study_params
from smlib.study.notebooks import ROOT

METRICS = dict(prefix_d2h_top1=0.5, prefix_d2h_top1_ci_low=0.4, prefix_d2h_top1_ci_high=0.6,
               prefix_h2d_top1=0.5, prefix_h2d_top1_ci_low=0.4, prefix_h2d_top1_ci_high=0.6,
               triplet_acc_dating=0.0, triplet_acc_hiring=0.0, **{"domain_probe_acc@64": 0.8})  # a fake run's
# triplets are (0, 0, 0): none is right, so its accuracy (and its interval from embeddings.npz) is 0


def _record(root, condition="v3_contrastive", **metrics):
    params = study_params(condition, "smoke", "verbatim", 42)
    write_fake_run(run_dir(root, "smoke", "verbatim", 42, condition), params, **(METRICS | metrics))
    return root / "smoke"


def test_a_record_against_itself_is_reproduced_and_every_value_is_equal(tmp_path):
    a = _record(tmp_path / "a")
    frame = compare_records(a, a)
    assert list(frame.columns) == COLUMNS
    assert set(frame["metric"]) == {m for m in HEADLINE if m in METRICS}
    assert (frame["diff"] == 0).all()
    with_interval = frame[frame["interval"] != "none"]
    assert with_interval["within"].tolist() == [True] * len(with_interval)
    assert verdicts(frame)["verbatim"].startswith("reproduced: 5 values, 5 equal to 1e-6")


def test_a_value_outside_the_committed_interval_is_flagged_and_named(tmp_path):
    a = _record(tmp_path / "a")
    b = _record(tmp_path / "b", prefix_h2d_top1=0.65)  # 0.65 lies above a's interval [0.4, 0.6]
    frame = compare_records(a, b)
    row = frame[frame["metric"] == "prefix_h2d_top1"].iloc[0]
    assert (row["a"], row["b"], row["a_low"], row["a_high"], row["within"]) == (0.5, 0.65, 0.4, 0.6, False)
    assert row["diff"] == pytest.approx(0.15)
    assert frame[frame["metric"] == "prefix_d2h_top1"]["within"].tolist() == [True]
    verdict = verdicts(frame)["verbatim"]
    assert verdict.startswith("NOT reproduced") and "1 outside" in verdict
    assert "v3_contrastive prefix_h2d_top1 +0.150" in verdict
    # the probe's Wilson interval over the 2N = 8 texts of the fake run holds 0.8; the triplets' bootstrap is [0, 0]
    probe = frame[frame["metric"] == "domain_probe_acc@64"].iloc[0]
    assert probe["a_low"] < 0.8 < probe["a_high"] and probe["interval"].startswith("Wilson")
    triplets = frame[frame["metric"] == "triplet_acc_dating"].iloc[0]
    assert (triplets["a_low"], triplets["a_high"], triplets["interval"]) == (0.0, 0.0, "bootstrap over anchor people")


def test_a_top1_of_zero_is_read_with_a_wilson_interval_over_people(tmp_path):
    """0 of 150 people right: the bootstrap interval is [0, 0] and would flag one person's change; Wilson would not."""
    zero = dict(prefix_h2d_top1=0.0, prefix_h2d_top1_ci_low=0.0, prefix_h2d_top1_ci_high=0.0, n_val_people=150)
    a = _record(tmp_path / "a", **zero)
    b = _record(tmp_path / "b", **(zero | {"prefix_h2d_top1": 2 / 150}))
    row = compare_records(a, b).set_index("metric").loc["prefix_h2d_top1"]
    assert row["within"] == True and row["a_low"] == pytest.approx(0.0, abs=1e-12)  # noqa: E712 and 0.02 < row["a_high"] < 0.03
    assert row["interval"].startswith("Wilson over people")
    c = _record(tmp_path / "c", **(zero | {"prefix_h2d_top1": 0.05}))
    assert compare_records(a, c).set_index("metric").loc["prefix_h2d_top1", "within"] == False  # noqa: E712


def test_a_run_the_reproduction_lacks_is_missing_not_reproduced(tmp_path):
    a = _record(tmp_path / "a")
    _record(tmp_path / "a", condition="v3_mse")
    b = _record(tmp_path / "b")
    frame = compare_records(a, b)
    missing = frame[frame["condition"] == "v3_mse"]
    assert missing["b"].isna().all() and missing["within"].tolist() == [False] * len(missing)
    assert "NOT reproduced" in verdicts(frame)["verbatim"] and f"{len(missing)} missing" in verdicts(frame)["verbatim"]
    only = compare_records(a, b, conditions=["v3_contrastive"])
    assert set(only["condition"]) == {"v3_contrastive"}
    with pytest.raises(RunFolderError, match="no such record"):
        compare_records(a, tmp_path / "nowhere")
    with pytest.raises(RunFolderError, match="no results for the seeds"):
        compare_records(a, b, seeds=[7])


def test_reproduce_refuses_to_train_into_the_committed_record(tmp_path, capsys):
    assert main(["--profile", "smoke", "--reproduce", "--out", str(ROOT / "runs")]) == 2
    assert "overlaps the committed record" in capsys.readouterr().err
    assert main(["--profile", "smoke", "--reproduce", "--out", str(tmp_path), "--against", str(tmp_path / "x")]) == 2
    assert "no recorded run of profile 'smoke'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--profile", "smoke", "--reproduce", "--table-only"])
    assert "does not combine with --table-only" in capsys.readouterr().err


def _digest(folder) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_reproduce_retrains_a_smoke_run_from_cold_and_compares_it_with_the_committed_record(tmp_path):
    """The path `make reproduce` takes, on the smoke profile against the committed runs/smoke: the committed record
    is only read, the reproduction trains from caches of its own, and a metric perturbed on purpose is flagged."""
    committed = ROOT / "runs" / "smoke"
    before = _digest(committed / "verbatim")
    out = tmp_path / "reproduced"
    assert main(["--profile", "smoke", "--reproduce", "--seeds", "42", "--variants", "verbatim",
                 "--conditions", "v3_contrastive", "--out", str(out), "--threads", "1"]) == 0
    assert _digest(committed / "verbatim") == before  # nothing committed was touched
    assert (out / ".cache" / "data").is_dir() and (out / ".cache" / "checkpoints").is_dir()  # its own, cold caches
    saved = json.loads((out / "smoke" / "comparison.json").read_text())
    assert list(saved) == ["verbatim"]
    assert "v3_contrastive" in (out / "smoke" / "comparison.md").read_text()
    frame = tables.compare_records(committed, out / "smoke", variants=["verbatim"], conditions=["v3_contrastive"])
    assert list(frame.columns) == COLUMNS and set(frame["metric"]) == set(HEADLINE)
    # the same seed, data and code on a CPU: every headline metric of the trained run lands within its interval
    assert frame["within"].tolist() == [True] * len(HEADLINE), frame.to_string()
    assert verdicts(frame)["verbatim"].startswith("reproduced")

    perturbed = tmp_path / "perturbed"
    shutil.copytree(out / "smoke", perturbed)
    path = perturbed / "verbatim" / "seed42" / "v3_contrastive" / "metrics.json"
    record = json.loads(path.read_text())
    m = record["metrics"]
    m["prefix_d2h_mrr"] = m["prefix_d2h_mrr_ci_high"] + 0.05 if m["prefix_d2h_mrr_ci_high"] < 0.95 \
        else m["prefix_d2h_mrr_ci_low"] - 0.05
    path.write_text(json.dumps(record))
    write_completion(path.parent, record["params_hash"])  # as if the reproduction had recorded this value itself
    frame, text = write_comparison(committed, perturbed, variants=["verbatim"], conditions=["v3_contrastive"],
                                   out_dir=tmp_path / "cmp")
    flagged = frame[frame["within"] == False]  # noqa: E712
    assert flagged["metric"].tolist() == ["prefix_d2h_mrr"]
    assert np.isclose(flagged["diff"].iloc[0], m["prefix_d2h_mrr"] - frame[frame["metric"] == "prefix_d2h_mrr"]["a"].iloc[0])
    assert "NOT reproduced" in text and "v3_contrastive prefix_d2h_mrr" in text and "| **no** |" in text


def test_the_trunk_cache_root_follows_smlib_cache_dir(tmp_path, monkeypatch):
    from smlib.trunk_cache import CACHE_ENV, DEFAULT_ROOT, cache_path, default_root

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert default_root() == tmp_path / "trunk"
    assert cache_path({"dataset_id": "d", "cut_layer": 5}).parent == tmp_path / "trunk"
    monkeypatch.delenv(CACHE_ENV)
    assert default_root() == DEFAULT_ROOT
