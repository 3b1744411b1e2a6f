"""Interrupts, a full disk and a crash at a write leave the record whole: Ctrl-C and SIGTERM stop a study in one
line, every file of the record is written whole or not at all, kernels talk over IPC sockets, and a sample of the
crash sweep (benchmarks/crash_sweep.py: one point of each kind of file) holds."""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from smlib import atomic
from smlib.config import study_params
from smlib.data import load_or_build
from smlib.study import notebooks

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@functools.cache
def _sweep_module():
    spec = importlib.util.spec_from_file_location("crash_sweep", ROOT / "benchmarks" / "crash_sweep.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_study_says_one_line_stops_its_kernels_and_releases_its_lock(sig, code, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([PYTHON, "-m", "smlib.study", "--profile", "smoke", "--conditions", "v3_contrastive",
                             "--variants", "verbatim", "--out", str(out), "--threads", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and not _kernels(proc.pid):  # interrupt it while a notebook kernel runs
        time.sleep(0.5)
    assert _kernels(proc.pid), "no kernel started within 120 s"
    time.sleep(2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"interrupted ({sig.name}) during smoke/verbatim/seed42/")
    assert "0 of 1 runs finished; run the same command again to resume" in lines[0]
    assert not (out / "smoke" / ".study.lock").exists()
    time.sleep(0.5)
    assert not _kernels(proc.pid)


def _kernels(pid: int) -> list[int]:
    return _sweep_module().kernels_of(pid)


def test_a_write_that_fails_leaves_the_previous_file_and_no_temp_file(tmp_path):
    path = tmp_path / "results.md"
    path.write_text("the previous tables")
    with pytest.raises(atomic.RecordWriteError, match=r"could not write .*results.md: No space left on device"):
        with atomic.replacing(path) as tmp:
            tmp.write_text("half of the new")
            raise OSError(28, "No space left on device")
    assert path.read_text() == "the previous tables"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]


def test_a_full_disk_during_table_only_is_one_line_and_keeps_the_previous_tables(tmp_path):
    record = tmp_path / "smoke"
    shutil.copytree(ROOT / "runs" / "smoke", record)
    before = {p.name: p.read_bytes() for p in record.iterdir() if p.is_file()}

    def small_files():  # RLIMIT_FSIZE, no root needed: a write past 4 KB fails with EFBIG (SIGXFSZ ignored)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    proc = subprocess.run([PYTHON, "-m", "smlib.study", "--profile", "smoke", "--out", str(tmp_path), "--table-only"],
                          cwd=ROOT, capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: could not write ") and "File too large" in lines[0], lines
    assert {p.name: p.read_bytes() for p in record.iterdir() if p.is_file()} == before  # every table as it was
    assert not list(record.rglob(".*.tmp"))


def test_a_notebook_cut_short_by_a_full_disk_keeps_the_previous_one(tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "04_figures.ipynb"
    out.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    before = out.read_text()

    def cut_short(source, partial, **kwargs):
        Path(partial).write_text('{"cells": [{"cell_type": "co')  # the disk filled up mid-write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(papermill, "execute_notebook", cut_short)
    with pytest.raises(atomic.RecordWriteError, match="could not write .*04_figures.ipynb"):
        notebooks.execute("04_figures.ipynb", out, {})
    assert out.read_text() == before and not list(tmp_path.glob(".*"))


def test_a_manifest_cut_short_is_rebuilt_not_a_blocked_study(tmp_path):
    params = study_params("v3_contrastive", "smoke", "verbatim", 42)
    first, folder = load_or_build(params, tmp_path)
    manifest = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(manifest[: len(manifest) // 2])  # a kill before the writes were atomic
    again, _ = load_or_build(params, tmp_path)
    assert again.manifest["content_hash"] == first.manifest["content_hash"]
    assert json.loads((folder / "manifest.json").read_text())["files"] == json.loads(manifest)["files"]


def test_kernels_run_over_ipc_sockets_in_a_private_folder(tmp_path, monkeypatch, capfd):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from ipykernel.connect import get_connection_info\n"
                                          "info = get_connection_info(unpack=True)\n"
                                          "print(info['transport'], info['ip'])")]
    nb.metadata["kernelspec"] = {"name": "smlib", "display_name": "Python (smlib)", "language": "python"}
    (tmp_path / "tiny.ipynb").write_text(nbformat.writes(nb))
    monkeypatch.setattr(notebooks, "NOTEBOOKS", tmp_path)
    notebooks.execute("tiny.ipynb", tmp_path / "ran.ipynb", {}, threads=1)
    transport, ip = nbformat.read(tmp_path / "ran.ipynb", 4).cells[0].outputs[0]["text"].split()
    assert transport == "ipc" and Path(ip).parent.name.startswith(notebooks.IPC_PREFIX)
    assert not Path(ip).parent.exists()  # the sockets' folder goes with the kernel
    assert "without encryption" not in capfd.readouterr().err


def test_the_crash_sweep_holds_at_one_point_of_each_kind(tmp_path):
    """A fixed sample of the sweep: the study killed right after its first write of an executed notebook, a json,
    an npz, a csv table and a figure, each followed by a plain rerun that must restore the uninterrupted record."""
    sweep = _sweep_module()
    baseline, points, references = sweep.prepare(tmp_path)
    sample = ["/v3_contrastive/02_train.ipynb", "/v3_contrastive/metrics.json", "/v3_contrastive/embeddings.npz",
              "smoke/results_long.csv", "figures/gallery_curves.png"]
    chosen = [next(p for p in points if p.endswith(s)) for s in sample]  # each one is in the trace
    assert {sweep.kind(p) for p in chosen} == {"executed notebook", "json", "npz", "csv table", "figure"}
    runtime = json.loads(next((tmp_path / "out").rglob("metrics.json")).read_text())["runtime"]
    assert runtime["threads"] == 1 and Path(runtime["smlib_root"]) == ROOT  # the kernels' threads and smlib
    for point in chosen:
        result = sweep.crash_point(tmp_path, point, "kill", baseline, references)
        assert result["reached"] and result["held"], result
        # killed after its run was complete (in 04's files), the rerun redoes 04 and the tables, not the run
        assert result["rerun_skipped"] == point.endswith(("results_long.csv", ".png")), result
