"""What made a run (train.json's provenance) and the tables' refusal of a record that mixes precisions."""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import write_fake_run

from smlib import provenance, tables
from smlib.config import study_params
from smlib.record import RunFolderError


def test_the_source_hash_follows_every_file_of_the_package(tmp_path, monkeypatch):
    copy = tmp_path / "smlib"
    shutil.copytree(provenance.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(provenance, "PACKAGE", copy)
    before = provenance.source_hash()
    assert before == provenance.source_hash() and len(before) == 12
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "x.py").write_text("# a cache is not source\n")
    assert provenance.source_hash() == before
    module = copy / "data" / "scores.py"
    module.write_text(module.read_text() + "\n# one more line\n")
    assert provenance.source_hash() != before
    module.rename(copy / "data" / "scores2.py")  # a renamed file is another package too
    assert provenance.source_hash() != before


def test_a_runs_provenance_names_the_source_commit_and_machine():
    prov = provenance.run_provenance("cpu")
    assert prov["smlib_source"] == provenance.source_hash()
    assert prov["device"] == "cpu" and prov["threads"] >= 1 and prov["cpu_flags"]
    assert prov["git_commit"] is None or len(prov["git_commit"]) == 40
    if prov["git_commit"]:  # in a checkout: the last commit that changed smlib/, an ancestor of HEAD (or HEAD)
        assert len(prov["smlib_commit"]) == 40 and isinstance(prov["smlib_uncommitted_changes"], bool)
    json.dumps(prov)  # train.json holds it as it is


def _run(profile_dir, variant, seed, condition, precision, source="abc123abc123", commit="f" * 40):
    """A fake finished run with a train.json; commit under the key runs made before smlib_commit existed used."""
    params = study_params(condition, "smoke", variant, seed)
    folder = profile_dir / variant / f"seed{seed}" / condition
    write_fake_run(folder, params, prefix_d2h_top1=0.5, prefix_h2d_top1=0.5, triplet_acc_dating=0.7,
                   triplet_acc_hiring=0.7)
    (folder / "train.json").write_text(json.dumps({"precision": precision, "provenance": {
        "smlib_source": source, "git_commit": commit, "cpu": "Some CPU", "cpu_flags": "avx2", "device_name": "cpu"}}))
    return folder


def test_the_table_refuses_a_record_that_mixes_precisions_and_writes_nothing(tmp_path):
    profile_dir = tmp_path / "smoke"
    _run(profile_dir, "verbatim", 42, "v3_contrastive", "bf16")
    odd = _run(profile_dir, "verbatim", 42, "v3_mse", "fp32")
    with pytest.raises(RunFolderError, match=r"more than one precision.*bf16: 1 runs.*fp32: 1 runs, e\.g\. "
                                             r"verbatim/seed42/v3_mse"):
        tables.write_results_table(profile_dir)
    assert not (profile_dir / "results.md").exists() and not (profile_dir / "results.csv").exists()
    (odd / "train.json").write_text(json.dumps({"precision": "bf16"}))  # made before provenance was recorded
    tables.write_results_table(profile_dir)
    text = (profile_dir / "results.md").read_text()
    assert "precision bf16 (2 runs)" in text
    assert "smlib source (**more than one**)" in text and f"`{provenance.NOT_RECORDED}`: 1 run;" in text


def test_one_source_for_every_run_is_said_so_with_its_commit(tmp_path):
    profile_dir = tmp_path / "smoke"
    for condition in ("v3_contrastive", "v3_mse"):
        _run(profile_dir, "disjoint", 43, condition, "bf16")
    tables.write_results_table(profile_dir)
    text = (profile_dir / "results.md").read_text()
    assert "smlib source (one for every run) `abc123abc123` (commit ffffffffff): 2 runs" in text
    assert "machine Some CPU (avx2) (2 runs)" in text


def test_a_corrupted_train_json_is_named(tmp_path):
    profile_dir = tmp_path / "smoke"
    folder = _run(profile_dir, "verbatim", 42, "v3_contrastive", "bf16")
    (folder / "train.json").write_text("{not json")
    with pytest.raises(RunFolderError, match=r"train\.json is unreadable or corrupted"):
        tables.write_results_table(profile_dir)


def test_a_cuda_run_names_its_gpu_and_a_cpu_record_names_none(tmp_path):
    profile_dir = tmp_path / "smoke"
    _run(profile_dir, "verbatim", 42, "v3_contrastive", "bf16")
    tables.write_results_table(profile_dir)
    assert "accelerator" not in (profile_dir / "results.md").read_text()  # a CPU run's machine is its device
    gpu = _run(profile_dir, "verbatim", 42, "v3_mse", "bf16")
    saved = json.loads((gpu / "train.json").read_text())
    saved["provenance"].update(device="cuda", device_name="NVIDIA H200")
    (gpu / "train.json").write_text(json.dumps(saved))
    tables.write_results_table(profile_dir)
    assert "machine Some CPU (avx2) (2 runs); accelerator NVIDIA H200 (1 run)." in (profile_dir / "results.md").read_text()
