"""Reliability, round 2: sweep values as paths, the trunk cache's whole file under its checksum, kernels that die
with their study and import its smlib, an unreachable scheduler, params files checked as written, a run recorded
corrupt, over-long --out names, and the kernels' thread count."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import fast_params, write_fake_run

from smlib import study
from smlib.config import ParamsError, is_sweep_run, load_params, safe_component, sweep_run_name
from smlib.models import build_model
from smlib.record import run_files, write_completion
from smlib.study import main, study_params
from smlib.tables import collect_results
from smlib.trunk_cache import _HOST, cache_key, cache_path, load_or_build_cache, read_cache, remove_orphaned_temp_files

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["--profile", "smoke", "--conditions", "v3_contrastive", "--variants", "verbatim"]


# --- 1. a sweep value never becomes a path --------------------------------------------------------------------

HOSTILE_VALUES = ["../../../../../other/x", "/abs/encoder", "BAAI/bge-small-en-v1.5", "..", ".", "", "a\x00b",
                  "caf\u00e9", "new\nline", "-rf", "x" * 300, "a b", "~", "C:\\win\\path", "$(rm -rf)"]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=[repr(v)[:30] for v in HOSTILE_VALUES])
def test_every_sweep_value_names_one_safe_folder(value):
    name = sweep_run_name("v3_contrastive", "model.base_model", value)
    assert safe_component(name) and "/" not in name
    assert is_sweep_run(name) and name.startswith("v3_contrastive@base_model=")
    assert (Path("/out") / name).parent == Path("/out")  # one component: never '..', absolute or nested


def test_distinct_values_get_distinct_folders_and_safe_values_keep_their_names():
    names = {sweep_run_name("v3_contrastive", "model.base_model", v) for v in HOSTILE_VALUES}
    assert len(names) == len(HOSTILE_VALUES)
    assert sweep_run_name("v3_contrastive", "model.base_model", "a/b") != sweep_run_name("v3_contrastive",
                                                                                       "model.base_model", "a_b")
    # the committed record's folders stay valid
    assert sweep_run_name("v3_contrastive", "model.prefix_dim", 16) == "v3_contrastive@prefix_dim=16"
    assert sweep_run_name("v3_contrastive", "train.lr", 0.002) == "v3_contrastive@lr=0.002"
    assert sweep_run_name("v3_contrastive", "loss.cross_domain", "mse") == "v3_contrastive@cross_domain=mse"


@pytest.mark.parametrize("part", ["..", ".", "", "a/b", "/abs", "a\x00b", "x" * 300, ".hidden"])
def test_the_layout_refuses_a_folder_name_that_is_not_one_safe_component(part, tmp_path):
    with pytest.raises(ParamsError, match="cannot name a folder"):
        study.run_dir(tmp_path, "smoke", "verbatim", 42, part)
    with pytest.raises(ParamsError, match="cannot name a folder"):
        study.checkpoint_dir("smoke", "verbatim", 42, part, tmp_path, tmp_path / "out", "h")


def _encoder_folder(root: Path) -> Path:
    """A local 'encoder' folder check_encoder accepts (a config.json of the tiny encoder's shape)."""
    from smlib.models.encoder import TINY_CONFIG

    folder = root / "other" / "x"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(TINY_CONFIG))
    return folder


def test_a_sweep_over_paths_writes_only_inside_the_out_folder_and_the_checkpoint_root(tmp_path, monkeypatch):
    """A local encoder reached through '..' (and an absolute path) as a sweep value."""
    encoder = _encoder_folder(tmp_path / "elsewhere")
    relative = os.path.relpath(encoder, Path.cwd())
    assert relative.startswith("..")
    out, ckpt = tmp_path / "deep" / "a" / "b" / "runs", tmp_path / "ckpt"
    written = []

    def fake_execute(nb, path, parameters, *a, **k):
        written.append(path)
        if nb not in ("02_train.ipynb", "03_evaluate.ipynb"):
            return
        folders = [Path(study.NOTEBOOKS, parameters[key]).resolve() for key in ("out_dir", "checkpoint_dir")]
        written.extend(folders)
        if nb == "03_evaluate.ipynb":
            params = study_params(parameters["condition"], "smoke", parameters["variant"], parameters["seed"],
                                  parameters["overrides"])
            write_fake_run(folders[0], params, complete=False, prefix_d2h_top1=0.5, prefix_h2d_top1=0.5,
                           triplet_acc_dating=0.7, triplet_acc_hiring=0.8)

    from test_study import _references

    _references(study.dataset_dir(out, "smoke", "verbatim", 42), study_params("v3_contrastive", "smoke", "verbatim", 42))
    _, failures = study.run_study("smoke", conditions=("v3_contrastive",), variants=("verbatim",), out=out,
                                  data_root=tmp_path / "data", checkpoint_root=ckpt,
                                  sweep=("model.base_model", [relative, str(encoder)]), run_notebook=fake_execute)
    assert not failures
    for path in written:
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(out.resolve()) or resolved.is_relative_to(ckpt.resolve()), path
    assert not (encoder.parent / "v3_contrastive@base_model=..").exists()
    assert sorted(p.name for p in (out / "smoke" / "verbatim" / "seed42").iterdir() if p.is_dir()) == sorted(
        sweep_run_name("v3_contrastive", "model.base_model", v) for v in (relative, str(encoder)))
    rows = set(collect_results(out / "smoke")["condition"])
    assert {sweep_run_name("v3_contrastive", "model.base_model", v) for v in (relative, str(encoder))} <= rows


def test_a_profile_name_that_is_a_path_is_refused(tmp_path):
    for name in ("../base", "../conditions/v3_mse", "/etc/passwd", "smoke/../smoke"):
        with pytest.raises(ParamsError, match="unknown profile"):
            load_params("v3_contrastive", name)


# --- 2. the trunk cache's checksum covers everything that is read --------------------------------------------

def _cache(smoke_dataset, tmp_path):
    params = fast_params("v3_contrastive", train__trainable_layers=1, model__max_length=24)
    model = build_model(params).eval()
    good = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    return model, good, cache_path(cache_key(model, smoke_dataset), tmp_path)


def _tamper(blob: dict, part: str) -> None:
    if part == "key":
        blob["key"] = {**blob["key"], "max_length": blob["key"]["max_length"]}  # same key ...
        blob["key"]["texts"] = blob["key"]["texts"][:-1] + ("0" if blob["key"]["texts"][-1] != "0" else "1")
    elif part == "index":  # one entry's length shortened by one token
        d, i, s, n = blob["index"][7]
        blob["index"][7] = [d, i, s, n - 1]
    elif part == "offset":
        d, i, s, n = blob["index"][3]
        blob["index"][3] = [d, i, s + 1, n]
    else:
        blob["states"][5, 3] += 1.0


@pytest.mark.parametrize("part", ["key", "index", "offset", "states"])
def test_a_cache_whose_key_index_or_states_were_changed_is_rebuilt(part, smoke_dataset, tmp_path):
    """Each part of the file tampered with while it stays loadable, the stored checksum kept."""
    model, good, path = _cache(smoke_dataset, tmp_path)
    blob = torch.load(path, weights_only=True)
    _tamper(blob, part)
    torch.save(blob, path)
    key = cache_key(model, smoke_dataset)
    if part == "key":  # a tampered key that still matches what is looked up must fail the checksum too
        key = blob["key"]
    assert read_cache(path, key) is None
    rebuilt = load_or_build_cache(model, smoke_dataset, tmp_path, progress=False)
    assert rebuilt.index == good.index and torch.equal(rebuilt.states, good.states)


def test_a_flipped_byte_in_any_member_of_the_cache_file_is_caught(smoke_dataset, tmp_path):
    model, good, path = _cache(smoke_dataset, tmp_path)
    original = path.read_bytes()
    key = cache_key(model, smoke_dataset)
    with zipfile.ZipFile(io.BytesIO(original)) as z:
        members = [(info.filename, info.header_offset, info.compress_size) for info in z.infolist()]
    checked = 0
    for name, header, size in members:
        if size == 0 or name.endswith((".format_version", "byteorder", "version", ".storage_alignment")):
            continue
        local = original[header:header + 30]  # the local header: its name and extra lengths at bytes 26..29
        data_start = header + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
        spots = range(0, size, max(1, size // 80)) if name.endswith("data.pkl") else (0, size // 2, size - 1)
        for where in spots:  # the pickle (key, index, checksum) densely, the states at three places
            raw = bytearray(original)
            raw[data_start + where] ^= 0x01
            path.write_bytes(bytes(raw))
            loaded = read_cache(path, key)
            assert loaded is None or (loaded.index == good.index and torch.equal(loaded.states, good.states)), \
                (name, where)  # never a cache that differs from what was written
            checked += 1
    assert checked >= 80  # the pickled key and index (data.pkl) and the states were each hit


# --- 3. a killed study leaves no kernel behind, and its half-written cache is cleaned up ---------------------

def _kernels_of(pid: int) -> list[int]:
    """Kernel processes started by pid (JPY_PARENT_PID in their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ipykernel_launcher" in cmd and f"JPY_PARENT_PID={pid}".encode() in env:
            found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_kernel_busy_in_c_code_dies_with_its_killed_study(tmp_path):
    """The kernel is stopped (as a kernel holding the GIL in a 600 MB torch.save is, for Python code) when the
    study's process group gets SIGKILL: it must be gone without running another line."""
    out = tmp_path / "runs"
    cmd = [sys.executable, "-m", "smlib.study", *SMOKE, "--seeds", "11", "--out", str(out), "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    kernels: list[int] = []
    partial = study.dataset_dir(out, "smoke", "verbatim", 11) / ".01_data.partial.ipynb"
    try:
        deadline = time.time() + 180
        while time.time() < deadline and proc.poll() is None:  # the kernel has run its first cell
            kernels = _kernels_of(proc.pid)
            if kernels and partial.exists() and '"execution_count": 1' in partial.read_text(errors="replace"):
                break
            time.sleep(0.1)
        assert kernels and proc.poll() is None, "the study's kernel never started"
        for k in kernels:
            os.kill(k, signal.SIGSTOP)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(k) for k in kernels):
            time.sleep(0.1)
        assert not any(_alive(k) for k in kernels), "a kernel outlived its study"
    finally:
        for k in kernels:
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_files_of_a_writer_that_is_gone_are_removed_and_a_live_writers_are_kept(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _dead_pid()
        files = {
            "dead": tmp_path / f".ds_cut4_abc.pt.{_HOST}.{dead}.tmp",
            "dead_old_format": tmp_path / f".ds_cut4_abc.pt.{dead}.tmp",
            "live": tmp_path / f".ds_cut4_abc.pt.{_HOST}.{live.pid}.tmp",
            "other_host": tmp_path / f".ds_cut4_abc.pt.someotherhost.{dead}.tmp",
            "not_ours": tmp_path / "notes.tmp",
        }
        for f in files.values():
            f.write_bytes(b"partial")
        removed = remove_orphaned_temp_files(tmp_path)
        assert sorted(removed) == sorted([files["dead"], files["dead_old_format"]])
        assert all(files[k].exists() for k in ("live", "other_host", "not_ours"))
    finally:
        live.kill()
        live.wait()


def test_opening_a_cache_removes_a_killed_writers_temp_file(smoke_dataset, tmp_path):
    orphan = tmp_path / f".x_cut1_0.pt.{_HOST}.{_dead_pid()}.tmp"
    orphan.write_bytes(b"\0" * 1000)
    _cache(smoke_dataset, tmp_path)
    assert not orphan.exists()


# --- 4. an unreachable scheduler -----------------------------------------------------------------------------

def test_a_scheduler_that_does_not_answer_is_one_line_exit_2_within_seconds(tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "runs"
    t0 = time.perf_counter()
    code = main([*SMOKE, "--out", str(out), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"])
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "tcp://127.0.0.1:1" in err, err
    assert elapsed < 30
    assert not out.exists()  # no lock, no folder


# --- 5. params files are validated as written ----------------------------------------------------------------

def _params_copy(tmp_path) -> Path:
    shutil.copytree(ROOT / "params", tmp_path / "params")
    return tmp_path / "params"


def test_a_base_yaml_with_a_quoted_seed_is_refused_although_seeds_override_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SMLIB_PARAMS_DIR", str(ROOT / "params"))  # --params sets it: removed after the test
    params_dir = _params_copy(tmp_path)
    base = params_dir / "base.yaml"
    base.write_text(base.read_text().replace("seed: 42 ", 'seed: "42"', 1))
    with pytest.raises(ParamsError, match=r"base\.yaml: key 'seed'"):
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    with pytest.raises(ParamsError, match=r"base\.yaml: key 'seed'"):
        load_params("v3_contrastive", "smoke", overrides={"seed": 7}, params_dir=params_dir)
    out = tmp_path / "runs"
    assert main([*SMOKE, "--params", str(params_dir), "--seeds", "43", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "base.yaml: key 'seed'" in err, err
    assert not out.exists()


@pytest.mark.parametrize("which", ["base.yaml", "conditions/v3_contrastive.yaml"])
def test_an_empty_params_file_is_named_as_empty(which, tmp_path):
    params_dir = _params_copy(tmp_path)
    (params_dir / which).write_text("# nothing here yet\n")
    with pytest.raises(ParamsError, match=rf"{which.split('/')[-1]}: the file is empty"):
        load_params("v3_contrastive", "smoke", params_dir=params_dir)


# --- 6. a run recorded with a corrupt embeddings.npz ---------------------------------------------------------

def test_recompute_reports_a_run_recorded_corrupt_in_one_line_and_goes_on(tmp_path, capsys):
    out = tmp_path / "runs"
    shutil.copytree(ROOT / "runs" / "smoke", out / "smoke")
    runs = [p.parent for _, _, _, p in run_files(out / "smoke", "metrics.json")]
    bad = runs[1]
    (bad / "embeddings.npz").write_bytes(b"PK\x03\x04 not really a zip")
    write_completion(bad, json.loads((bad / "metrics.json").read_text())["params_hash"])  # recorded so
    before = (bad / "metrics.json").read_bytes()
    code = main(["--recompute-metrics", "--profile", "smoke", "--out", str(out)])
    captured = capsys.readouterr()
    assert code != 0
    err = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert len(err) == 1 and str(bad / "embeddings.npz") in err[0] and "Traceback" not in captured.err, err
    assert f"{len(runs)} runs read, 0 rewritten" in captured.out and "1 could not be recomputed" in captured.out
    assert (bad / "metrics.json").read_bytes() == before


# --- 7. an --out name longer than the filesystem allows ------------------------------------------------------

@pytest.mark.parametrize("out", ["x" * 300, "a/" + "y" * 256 + "/b", "z" * 5000])
def test_an_out_folder_name_too_long_for_the_filesystem_is_one_line_exit_2(out, tmp_path, capsys, monkeypatch):
    code = main([*SMOKE, "--out", str(tmp_path / out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


# --- 8 and 9. the kernels' threads and their smlib -----------------------------------------------------------

PROBE = ("import json, os, torch, smlib\n"
         "print(json.dumps({'threads': torch.get_num_threads(), 'smlib': smlib.__file__}))")


def _probe_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PROBE)]
    nbformat.write(nb, path)
    return path


def _probe_output(path: Path) -> dict:
    cell = nbformat.read(path, as_version=4).cells[0]
    return json.loads("".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"))


def test_threads_set_the_kernels_intra_op_threads(tmp_path):
    source = _probe_notebook(tmp_path / "probe.ipynb")
    study.execute(str(source), tmp_path / "out" / "probe.ipynb", {}, threads=1)
    assert _probe_output(tmp_path / "out" / "probe.ipynb")["threads"] == 1
    if (os.cpu_count() or 1) > 1 and "OMP_NUM_THREADS" not in os.environ:  # default: the libraries' own (all cores)
        study.execute(str(source), tmp_path / "out2" / "probe.ipynb", {})
        assert _probe_output(tmp_path / "out2" / "probe.ipynb")["threads"] > 1


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2000"])
def test_a_bad_thread_count_is_refused(value, tmp_path, capsys):
    try:
        code = main([*SMOKE, "--threads", value, "--out", str(tmp_path / "runs")])
    except SystemExit as e:
        code = e.code
    assert code == 2 and not (tmp_path / "runs").exists()


def test_kernels_import_the_smlib_of_the_runner_not_the_installed_one(tmp_path):
    """A second clone sharing this venv (whose editable install points here) runs its own code in its kernels."""
    clone = tmp_path / "clone"
    for name in ("smlib", "notebooks", "params"):
        shutil.copytree(ROOT / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    source = _probe_notebook(tmp_path / "probe.ipynb")
    code = ("import sys; from pathlib import Path; from smlib import study\n"
            f"assert study.__file__.startswith({str(clone)!r}), study.__file__\n"
            f"study.execute({str(source)!r}, Path({str(tmp_path / 'out' / 'probe.ipynb')!r}), {{}}, threads=1)")
    done = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(_probe_output(tmp_path / "out" / "probe.ipynb")["smlib"]).resolve() == \
        (clone / "smlib" / "__init__.py").resolve()
