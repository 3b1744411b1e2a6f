"""The benchmark runs end to end on the tiny encoder (its numbers are not checked: timings are not tests)."""
from __future__ import annotations

from smlib import bench


def test_step_table_and_time_to_accuracy_run(tmp_path, capsys):
    overrides = {"profile": "smoke", "train.batch_size": 4, "model.max_length": 24}
    steps = bench.step_times(1, 0, cache_root=tmp_path / "cache", data_root=tmp_path / "data", **overrides)
    names = [r["setting"] for r in steps["rows"]]
    assert names[0] == "original" and "smlib all (fp32)" in names and "smlib top0" in names
    assert all(r["median_s"] > 0 for r in steps["rows"])
    text = bench.format_step_table(steps)
    assert "cpu flags" in text and "smlib top2" in text
    tta = bench.time_to_accuracy(steps, target=0.0, cap_seconds=5, eval_every=1, cache_root=tmp_path / "cache",
                                 data_root=tmp_path / "data", include=["smlib all", "smlib top1"],
                                 lr_sweep={"smlib all": (1e-3,), "smlib top1": (1e-3, 2e-3)}, **overrides)
    rows = {r["setting"]: r for r in tta["rows"]}
    assert rows["smlib all"]["reached"] and rows["smlib all"]["steps"] == 1  # target 0: the first check reaches it
    assert rows["original"]["derived"] and rows["original"]["steps"] == rows["smlib all"]["steps"]
    assert len(tta["tries"]) == 3
    assert "derived" in bench.format_tta_table(tta)
