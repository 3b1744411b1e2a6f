"""The benchmark runs end to end on the tiny encoder (its numbers are not checked: timings are not tests)."""
from __future__ import annotations

import pytest
import torch

from smlib import bench


def test_step_table_and_time_to_accuracy_run(tmp_path, capsys):
    overrides = {"profile": "smoke", "train.batch_size": 4, "model.max_length": 24}
    steps = bench.step_times(1, 0, cache_root=tmp_path / "cache", data_root=tmp_path / "data", **overrides)
    names = [r["setting"] for r in steps["rows"]]
    assert names[0] == "original" and "smlib all (fp32)" in names and "smlib top0" in names
    assert all(r["median_s"] > 0 for r in steps["rows"])
    text = bench.format_step_table(steps)
    assert "cpu flags" in text and "smlib top2" in text and "GEMM share" in text and "roofline:" in text
    roof = steps["roofline"]
    assert len(roof["tokens"]) == 1 and roof["tokens"][0] > 0 and set(roof["gemm_flops"]) == {"bf16", "fp32"}
    rows = {r["setting"]: r for r in steps["rows"]}
    assert rows["smlib top0"]["share"] is None and rows["smlib top1"]["blocks"] == 1
    assert rows["smlib all (fp32)"]["blocks"] == roof["n_layers"] and rows["smlib top1"]["share"] > 0
    tta = bench.time_to_accuracy(steps, target=0.0, cap_seconds=5, eval_every=1, cache_root=tmp_path / "cache",
                                 data_root=tmp_path / "data", include=["smlib all", "smlib top1"],
                                 lr_sweep={"smlib all": (1e-3,), "smlib top1": (1e-3, 2e-3)}, **overrides)
    rows = {r["setting"]: r for r in tta["rows"]}
    assert rows["smlib all"]["reached"] and rows["smlib all"]["steps"] == 1  # target 0: the first check reaches it
    assert rows["original"]["derived"] and rows["original"]["steps"] == rows["smlib all"]["steps"]
    assert len(tta["tries"]) == 3
    assert "derived" in bench.format_tta_table(tta)


def test_roofline_arithmetic():
    from smlib import roofline

    assert roofline.flop_per_token(384, 1536) == 6 * (4 * 384 * 384 + 2 * 384 * 1536) == 10_616_832  # MiniLM's ~11 MFLOP
    assert roofline.trainable_blocks("all", 6) == 6 and roofline.trainable_blocks(2, 6) == 2
    assert roofline.achieved(2.0, 1000, 3, 384, 1536) == 10_616_832 * 3 * 1000 / 2.0
    rate = roofline.gemm_rate(64, 32, 128, torch.float32, repeats=3, min_seconds=0.01)
    assert 1e6 < rate < 1e15


def test_time_to_accuracy_tries_are_stored_and_reused(tmp_path, monkeypatch):
    """One lr per invocation across sessions: a stored try under the same conditions is read, not rerun."""
    from smlib import time_to_accuracy as tta

    overrides = {"profile": "smoke", "train.batch_size": 4, "model.max_length": 24}
    step_table = {"rows": [{"setting": "original", "median_s": 2.0}]}
    kw = dict(target=0.0, cap_seconds=5, eval_every=1, cache_root=tmp_path / "cache", data_root=tmp_path / "data",
              include=["smlib all", "smlib top1"], store=tmp_path / "tta", **overrides)
    first = tta.time_to_accuracy(step_table, lr_sweep={"smlib all": (1e-3,), "smlib top1": (2e-3,)}, **kw)
    assert sorted(p.name for p in (tmp_path / "tta").iterdir()) == ["smlib_all_lr0.001.json", "smlib_top1_lr0.002.json"]
    monkeypatch.setattr(tta, "_try", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rerun")))
    again = tta.time_to_accuracy(step_table, lr_sweep={"smlib all": (), "smlib top1": ()}, run_missing=False, **kw)
    assert [r["seconds"] for r in again["rows"]] == [r["seconds"] for r in first["rows"]]
    assert again["rows"][0]["setting"] == "original" and again["rows"][0]["derived"]
    top1 = next(r for r in again["rows"] if r["setting"] == "smlib top1")
    assert top1["ratio"].startswith("x") and "ORACLE-STOPPED" in tta.format_tta_table(again)
    other = tta.time_to_accuracy(step_table, lr_sweep={"smlib all": (), "smlib top1": ()}, run_missing=False,
                                 **{**kw, "target": 0.5})  # other conditions: nothing stored applies
    assert other["rows"] == []
    # a try that reached the target within a shorter cap answers a longer one; one that never reached it only
    # answers a cap no longer than what it ran (its own cap, or the end of its schedule before that cap)
    reached = {"reached": True, "seconds": 180.0}
    short = {"target": 0.8, "cap_seconds": 600.0, "eval_every": 10, "warmup_fraction": 0.02, "overrides": {}}
    assert tta._applies(short, {**short, "cap_seconds": 3600.0}, reached)
    assert not tta._applies(short, {**short, "cap_seconds": 100.0}, reached)
    assert not tta._applies(short, {**short, "cap_seconds": 3600.0, "target": 0.9}, reached)
    capped = {"reached": False, "train_seconds_run": 600.0}
    assert tta._applies(short, {**short, "cap_seconds": 300.0}, capped)
    assert not tta._applies(short, {**short, "cap_seconds": 3600.0}, capped)
    ended = {"reached": False, "train_seconds_run": 379.0}  # its schedule ended before its 600 s cap
    assert tta._applies(short, {**short, "cap_seconds": 3600.0}, ended)
    assert tta.speedup_over_full({"setting": "smlib top1", "reached": True, "seconds": 10.0, "cache_s": 2.0},
                                 {"reached": False, "train_seconds_run": 3600.0}, 3600) == ">x300.0"


def test_study_phases_reads_a_committed_record(capsys):
    """benchmarks/study_phases.py splits a record's notebook time into phases that add up."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    phases = _benchmark("study_phases")
    result = phases.phases_of(root / "runs" / "smoke")
    assert result["counts"]["02_train"] == result["counts"]["03_evaluate"] > 0 and result["counts"]["01_data"] >= 1
    parts = result["phases"]
    assert parts[("02_train", "optimizer steps")] > 0 and parts[("01_data", "reference rows")] > 0
    total = sum(parts.values())
    assert phases.main([str(root / "runs" / "smoke"), "--wall", str(total + 10)]) == 0
    out = capsys.readouterr().out
    assert "outside notebooks" in out and f"{total + 10:.1f}" in out
    assert phases.main([str(root / "runs" / "no-such-profile")]) == 2


def _benchmark(name: str):
    """A script of benchmarks/ imported as a module (the folder is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_heldout_search_chooses_by_the_dev_wording_within_the_budget():
    """The search's choice: best dev-wording top-1 among settings whose steps and checks fit the budget; the
    oracle (test people) and the training-wording score never choose; phrasings points are not candidates."""
    hs = _benchmark("heldout_search")
    names = list(hs.SETTINGS)

    def row(name, dev, oracle=0.0, tw=0.0, train=100.0, cache=10.0):
        return {"setting": name, "dev_top1": dev, "oracle_val_top1": oracle, "dev_top1_training_wording": tw,
                "train_seconds": train, "cache_seconds": cache, "seed": 42, "layers": 1, "lr": 1e-3, "steps": 10,
                "augment_views": 0, "train_phrasings": None, "kept_step": 9, "cpu": "cpu", "cpu_flags": "avx2",
                "precision": "bf16"}

    rows = [row(names[0], 0.05, oracle=0.9, tw=0.9), row(names[1], 0.20, train=500.0, cache=300.0),
            row(names[2], 0.10), row(f"{names[2]}_phrasings1", 0.50)]
    # names[1] costs 200 s of steps and checks: within a 200 s budget (its 300 s of cache do not count), not 199
    assert hs.choose(rows, 200.0)["setting"] == names[1]
    assert hs.choose(rows, 199.0)["setting"] == names[2]
    assert hs.choose(rows, 50.0) is None
    # ties go to the first in SETTINGS order, whatever the stored order
    tied = [row(names[3], 0.1), row(names[2], 0.1)]
    assert hs.choose(tied, None)["setting"] == names[2]
    text = hs.table(rows, 199.0)
    assert "over budget" in text.splitlines()[4] and "<- chosen" in text.splitlines()[5]


def test_reading_prints_paired_costs_and_the_k_sweep(tmp_path, capsys):
    """benchmarks/reading.py on a hand-made record: the prefix's cost is paired by seed, sweep points are listed in
    value order beside the condition's own run and are kept out of the per-condition block."""
    import pandas as pd

    rows = []
    for seed, top, nop in ((42, 0.80, 0.85), (43, 0.70, 0.80), (44, 0.75, 0.90)):
        rows.append({"variant": "disjoint", "condition": "v3_contrastive", "seed": seed, "prefix_top1": top,
                     "full_d2h_top1": 0.5, "triplet_acc_dating": top, "triplet_acc_hiring": 0.9})
        rows.append({"variant": "disjoint", "condition": "v3_no_prefix", "seed": seed, "prefix_top1": 0.01,
                     "full_d2h_top1": 0.01, "triplet_acc_dating": nop, "triplet_acc_hiring": 0.9})
        rows.append({"variant": "disjoint", "condition": "tfidf_trained_word", "seed": seed, "prefix_top1": 1.0})
    for k, top in ((128, 0.79), (16, 0.40)):
        rows.append({"variant": "disjoint", "condition": f"v3_contrastive@prefix_dim={k}", "seed": 42,
                     "prefix_top1": top, "full_d2h_top1": 0.5, "triplet_acc_dating": 0.8, "triplet_acc_hiring": 0.9})
    pd.DataFrame(rows).to_csv(tmp_path / "results_long.csv", index=False)
    reading = _benchmark("reading")
    assert reading.main(["--record", str(tmp_path), "--out", str(tmp_path / "reading.txt")]) == 0
    out = capsys.readouterr().out
    assert out == (tmp_path / "reading.txt").read_text()
    values = reading.facts(tmp_path)
    lines = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:] if line.strip()}
    assert lines == values  # every fact printed once, by label
    # the prefix's cost to dating triplets: -0.05, -0.10, -0.15 by seed; mean -0.100, sd 0.05, t(2) = 4.303, so the
    # interval is -0.100 +- 0.124: it includes 0 and is not resolved
    cost = "disjoint.by_seed.v3_contrastive-v3_no_prefix.triplet_dating"
    assert values[cost] == "-0.100 [-0.224, +0.024]" and values[cost + ".verdict"] == "not resolved"
    assert values[cost + ".seeds"] == "-0.050, -0.100, -0.150"
    assert values["disjoint.best_reference"] == "tfidf_trained_word"
    sweep = [label for label in values if label.startswith("disjoint.sweep.") and label.endswith(".top1")]
    assert sweep == ["disjoint.sweep.16.top1", "disjoint.sweep.64.top1", "disjoint.sweep.128.top1"]  # in K order
    assert values["disjoint.sweep.64.top1"] == "0.800"  # the condition's own run at seed 42 only
    assert not [label for label in values if "@" in label]  # sweep points stay out of the per-condition facts
    missing = tmp_path / "empty"
    missing.mkdir()
    with pytest.raises(SystemExit):
        reading.main(["--record", str(missing)])
