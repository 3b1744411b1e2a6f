"""Crash the smoke study at every file it writes, then rerun it plainly: the record must come back whole.

    .venv/bin/python benchmarks/crash_sweep.py [--mode kill|fail|both] [--only NAME,...] [--out FILE]

One uninterrupted study (smoke profile, v3_contrastive, verbatim, seed 42, cached data) is traced
(smlib.writetrace): every distinct file it writes into its record or its checkpoint is a write point. For each
point the study runs again from an empty record and is either killed (SIGKILL of its process group, no clean-up)
right after that file's first write, or has that write fail with ENOSPC; then the same study runs once more,
plainly. After the rerun the record must hold the same files as the uninterrupted one and the same metrics.json
values (within the golden tolerance), every run marked complete must be complete, and no kernel of the crashed
study and no temp file may be left. The points come from the trace, never from a hand-kept list. A point in
01_data's files starts from an empty record; every other point starts with the dataset's references in place
(as a study that got past 01_data has them), so the sweep spends its time where the point is.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smlib.record import RUN_NOTEBOOKS, check_run, notebook_problem  # noqa: E402
from smlib.writetrace import CRASH_ENV, FAIL_ENV, PGID_ENV, TRACE_ENV  # noqa: E402

GOLDEN_TOLERANCE = 1e-4  # as the golden smoke test: absolute, fp32
DATASET = Path("smoke") / "verbatim" / "seed42"  # the one dataset of the sweep's study, inside the out folder
LEFTOVERS = (".*.tmp", ".*.partial.ipynb", ".study.lock")
KINDS = {".ipynb": "executed notebook", ".json": "json", ".npz": "npz", ".csv": "csv table", ".png": "figure",
         ".md": "markdown table", ".tex": "latex table"}


def study_command(out: Path, data: Path, ckpt: Path) -> list[str]:
    code = ("import sys; from smlib import writetrace; writetrace.install(); from smlib.study import run_study; "
            f"_, failed = run_study('smoke', conditions=('v3_contrastive',), seeds=(42,), variants=('verbatim',), "
            f"out={str(out)!r}, "
            f"data_root={str(data)!r}, checkpoint_root={str(ckpt)!r}, threads=1); sys.exit(1 if failed else 0)")
    return [sys.executable, "-c", code]


def run(root: Path, env_extra: dict | None = None, timeout: int = 900) -> tuple[int, str, int]:
    """The sweep's study in root (out/, data/, ckpt/), in a process group of its own: (exit code, output, pid)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **(env_extra or {})}
    proc = subprocess.Popen(study_command(root / "out", root / "data", root / "ckpt"), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return proc.returncode, out, proc.pid


def snapshot(out: Path) -> dict:
    """What the comparison reads of a record: its visible files and every run's metrics."""
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts))
    metrics = {p.parent.relative_to(out).as_posix(): json.loads(p.read_text())["metrics"]
               for p in out.rglob("metrics.json")}
    return {"files": files, "metrics": metrics}


def problems(out: Path, ckpt: Path, baseline: dict, crashed_pid: int | None) -> list[str]:
    """Why a record after its rerun is not the uninterrupted one (nothing: it is)."""
    found = []
    now = snapshot(out)
    if now["files"] != baseline["files"]:
        extra, missing = set(now["files"]) - set(baseline["files"]), set(baseline["files"]) - set(now["files"])
        found.append(f"files differ: {len(missing)} missing {sorted(missing)[:3]}, {len(extra)} extra {sorted(extra)[:3]}")
    for run, metrics in baseline["metrics"].items():
        got = now["metrics"].get(run, {})
        off = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and not (isinstance(got.get(k), (int, float)) and abs(got[k] - v) <= GOLDEN_TOLERANCE)]
        if off:
            found.append(f"{run}: {len(off)} metrics differ ({', '.join(off[:3])})")
    for record in out.rglob("run.json"):
        try:
            check_run(record.parent)
        except Exception as e:  # noqa: BLE001 - reported
            found.append(f"marked complete but not: {e}")
        for nb in RUN_NOTEBOOKS:
            if (why := notebook_problem(record.parent / nb)) is not None:
                found.append(f"marked complete but {why}")
    for pattern in LEFTOVERS:
        left = [p for folder in (out, ckpt) if folder.exists() for p in folder.rglob(pattern)]
        if left:
            found.append(f"left behind: {', '.join(str(p) for p in left[:3])}")
    if crashed_pid is not None and (kernels := kernels_of(crashed_pid)):
        found.append(f"kernels of the crashed study still running: {kernels}")
    return found


def kernels_of(pid: int) -> list[int]:
    """Live kernels started by the process pid (their environment names it as JPY_PARENT_PID)."""
    mark = f"JPY_PARENT_PID={pid}".encode()
    alive = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                alive.append(int(environ.parent.name))
        except OSError:
            continue
    return alive


def trace_points(log: Path, root: Path) -> list[str]:
    """The distinct files a study wrote into its record or checkpoint, in the order first written, relative to root
    (a temp file counts as the file it was renamed to)."""
    points = []
    for line in log.read_text().splitlines():
        _, op, path = line.split("\t", 2)
        rel = Path(path)
        if not rel.is_relative_to(root / "out") and not rel.is_relative_to(root / "ckpt"):
            continue
        name = rel.name
        if name.endswith(".tmp") or name.endswith(".partial.ipynb") or name == ".study.lock":
            continue  # the rename that puts it in place is the point
        rel = rel.relative_to(root).as_posix()
        if rel not in points:
            points.append(rel)
    return points


def kind(point: str) -> str:
    return KINDS.get(Path(point).suffix, "checkpoint file" if point.startswith("ckpt/") else "other")


def prepare(root: Path) -> tuple[dict, list[str], Path]:
    """One traced, uninterrupted study, which also builds the data cache: (its record's snapshot, the write points in
    its record and checkpoint, a copy of its dataset's references)."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "trace.log"
    code, out, _ = run(root, {TRACE_ENV: str(log)})
    if code != 0:
        raise RuntimeError(f"the uninterrupted study failed:\n{out[-2000:]}")
    references = root / "references"
    shutil.copytree(root / "out" / DATASET, references, ignore=lambda d, names: [n for n in names
                                                                                   if (Path(d) / n).is_dir()])
    return snapshot(root / "out"), trace_points(log, root), references


def _reset(root: Path) -> None:
    for name in ("out", "ckpt"):
        shutil.rmtree(root / name, ignore_errors=True)


def crash_point(root: Path, point: str, mode: str, baseline: dict, references: Path) -> dict:
    """One write point: the study crashed (mode kill) or failed (mode fail) there, then rerun plainly."""
    _reset(root)
    if not point.startswith(f"out/{DATASET.as_posix()}/") or "/" in point.removeprefix(f"out/{DATASET.as_posix()}/"):
        shutil.copytree(references, root / "out" / DATASET)  # past 01_data, unless the point is one of its files
    target = str(root / point)
    env = {CRASH_ENV: target} if mode == "kill" else {FAIL_ENV: target}
    t0 = time.perf_counter()
    code, out, pid = _run_crash(root, env) if mode == "kill" else run(root, env)
    reached = code == -signal.SIGKILL if mode == "kill" else ("injected by SMLIB_FAIL_AT" in out or code != 0)
    said = mode == "kill" or Path(point).name in out
    time.sleep(0.5)  # the kernels' parent-death signal
    left = kernels_of(pid) if mode == "kill" else []
    rerun_code, rerun_out, _ = run(root)
    found = problems(root / "out", root / "ckpt", baseline, pid if mode == "kill" else None)
    if left:
        found.append(f"kernels of the crashed study alive after it died: {left}")
    if rerun_code != 0:
        found.append(f"the rerun failed (exit {rerun_code}): {rerun_out.strip().splitlines()[-1:]}")
    if mode == "fail" and not said:
        found.append("the failed write was not named in the study's output")
    return {"point": point, "kind": kind(point), "mode": mode, "reached": bool(reached), "crash_exit": code,
            "held": reached and not found, "problems": found, "seconds": round(time.perf_counter() - t0, 1),
            "rerun_skipped": "done before, skipped" in rerun_out}


def _run_crash(root: Path, env: dict) -> tuple[int, str, int]:
    """run() with the kill aimed at the study's own process group (its pid, as it leads a new session)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **env}
    proc = subprocess.Popen(["/bin/sh", "-c", f'export {PGID_ENV}=$$; exec "$@"', "sh",
                             *study_command(root / "out", root / "data", root / "ckpt")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return proc.returncode, out, proc.pid


def sweep(root: Path, modes=("kill", "fail"), only=None, log=print) -> list[dict]:
    """prepare(), then crash_point() at every write point (or the points whose names are in only) in each mode."""
    baseline, points, references = prepare(root)
    log(f"{len(points)} write points traced: " + ", ".join(f"{n} {k}" for k, n in _count(points).items()))
    chosen = [p for p in points if only is None or any(p.endswith(o) for o in only)]
    results = []
    for mode in modes:
        for point in chosen:
            r = crash_point(root, point, mode, baseline, references)
            log(f"{mode:4s} {'held' if r['held'] else 'NOT HELD' if r['reached'] else 'not reached'}  {point}"
                + (f"  ({'; '.join(r['problems'])})" if r["problems"] else ""))
            results.append(r)
    return results


def _count(points) -> dict:
    out: dict[str, int] = {}
    for p in points:
        out[kind(p)] = out.get(kind(p), 0) + 1
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=("kill", "fail", "both"), default="both")
    ap.add_argument("--only", default=None, help="comma list of point name endings (default: every traced point)")
    ap.add_argument("--root", default="/tmp/smlib-crash-sweep", help="scratch folder (emptied first)")
    ap.add_argument("--out", default=None, help="also write the report here")
    args = ap.parse_args()
    root = Path(args.root)
    shutil.rmtree(root, ignore_errors=True)
    lines = []

    def log(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    t0 = time.perf_counter()
    modes = ("kill", "fail") if args.mode == "both" else (args.mode,)
    results = sweep(root, modes, args.only.split(",") if args.only else None, log)
    for mode in modes:
        rs = [r for r in results if r["mode"] == mode]
        log(f"{mode}: {len(rs)} write points, {sum(r['held'] for r in rs)} held, "
            f"{sum(not r['reached'] for r in rs)} not reached, {sum(r['reached'] and not r['held'] for r in rs)} not held")
    log(f"{(time.perf_counter() - t0) / 60:.1f} min")
    if args.out:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        head = [f"# .venv/bin/python benchmarks/crash_sweep.py {' '.join(sys.argv[1:])}",
                f"# smlib at commit {commit}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, one thread per study"]
        Path(args.out).write_text("\n".join(head + lines) + "\n")
    return 0 if all(r["held"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
