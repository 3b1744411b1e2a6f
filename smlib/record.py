"""The run record's integrity: completion records, complete notebooks, and one study per out folder at a time.

A condition's run folder is done only when its completion record (run.json, written last by the runner)
lists every file of the run with its SHA-256 and every listed file is there unchanged. A folder without
the record is not done, whatever else it holds: the runner redoes it. Records written before run.json
existed are adopted when they are provably complete (metrics.json for these params, embeddings.npz that
loads, both notebooks executed to the end without an error).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

COMPLETION = "run.json"
RUN_NOTEBOOKS = ("02_train.ipynb", "03_evaluate.ipynb")
RUN_FILES = ("metrics.json", "embeddings.npz") + RUN_NOTEBOOKS  # a run is not done without each of these


class RunFolderError(RuntimeError):
    """A run folder holds something that does not belong to this run (or is unreadable)."""


def run_files(profile_dir: str | Path, filename: str, sweeps: bool = True):
    """(variant, seed, run folder name, path) of every <profile_dir>/<variant>/seed<s>/<run>/<filename>, in order.

    Sweep points (folders named <condition>@<key>=<value>) are left out with sweeps=False.
    """
    from .config import is_sweep_run

    for path in sorted(Path(profile_dir).glob(f"*/seed*/*/{filename}")):
        name = path.parent.name
        seed = path.parent.parent.name.removeprefix("seed")
        if (sweeps or not is_sweep_run(name)) and seed.isdigit():
            yield path.parent.parent.parent.name, int(seed), name, path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def partial_path(out_path: Path) -> Path:
    """Where a notebook is executed before it is renamed into place: '.02_train.partial.ipynb'."""
    return out_path.with_name(f".{out_path.stem}.partial{out_path.suffix}")


def notebook_problem(path: Path) -> str | None:
    """Why an executed notebook is not a complete record (None if it is): missing, unreadable, a code cell
    never executed, or an error output."""
    if not path.is_file():
        return f"{path.name} is missing"
    try:
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code" and "".join(c.get("source", "")).strip()]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{path.name} is unreadable ({e})"
    for i, cell in enumerate(cells):
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            return f"{path.name} shows an error in code cell {i + 1}"
        if cell.get("execution_count") is None:
            return f"{path.name}: code cell {i + 1} never ran"
    return None


def _metrics_hash(folder: Path) -> str:
    path = folder / "metrics.json"
    try:
        return json.loads(path.read_text())["params_hash"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunFolderError(f"{path} is corrupted ({e}); move the folder away to rerun this condition") from None


def _foreign(folder: Path, recorded: str, params_hash: str) -> RunFolderError:
    return RunFolderError(f"{folder} records other params (hash {recorded}, now {params_hash}); "
                          "move the folder away or choose another --out to keep both")


def run_state(folder: str | Path, params_hash: str) -> tuple[str, str]:
    """('done' | 'absent' | 'incomplete', why) for a condition's run folder and the params it should hold.

    Raises RunFolderError (the folder is left alone) when it holds another run's params, a corrupt
    metrics.json or completion record, or a file changed since its run was completed.
    """
    folder = Path(folder)
    record_path = folder / COMPLETION
    if record_path.exists():
        try:
            record = json.loads(record_path.read_text())
            recorded, files = record["params_hash"], record["files"]
            if not isinstance(files, dict) or not files:
                raise TypeError("no files listed")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunFolderError(f"{record_path} is corrupted ({e}); move the folder away to rerun") from None
        if recorded != params_hash:
            raise _foreign(folder, recorded, params_hash)
        missing = [name for name in files if not (folder / name).is_file()]
        if missing:
            return "incomplete", f"{', '.join(missing)} missing since the run was completed"
        changed = [name for name, digest in files.items() if sha256(folder / name) != digest]
        if changed:
            if "metrics.json" in changed:
                _metrics_hash(folder)  # a truncated metrics.json is reported as corrupted
            raise RunFolderError(f"{folder}: {', '.join(changed)} changed since the run was completed "
                                 f"(see {COMPLETION}); move the folder away to rerun this condition")
        return "done", ""
    if not (folder / "metrics.json").exists():
        return ("absent", "") if not folder.exists() or not any(folder.iterdir()) else \
            ("incomplete", "no metrics.json")
    recorded = _metrics_hash(folder)
    if recorded != params_hash:
        raise _foreign(folder, recorded, params_hash)
    problem = legacy_problem(folder)
    if problem:
        return "incomplete", problem
    write_completion(folder, params_hash, adopted=True)  # a complete record from before run.json existed
    return "done", ""


def legacy_problem(folder: Path) -> str | None:
    """Why a run folder without a completion record is not provably complete (None if it is)."""
    for name in RUN_FILES:
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        with np.load(folder / "embeddings.npz") as z:
            for key in z.files:
                z[key]
    except Exception as e:  # noqa: BLE001 - any failure to read it back means the file is incomplete
        return f"embeddings.npz does not load ({type(e).__name__})"
    for name in RUN_NOTEBOOKS:
        problem = notebook_problem(folder / name)
        if problem:
            return problem
    return None


def write_completion(folder: str | Path, params_hash: str, adopted: bool = False) -> Path:
    """run.json: the params hash and the SHA-256 of every file in the folder (not hidden ones), written last."""
    folder = Path(folder)
    files = {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != COMPLETION and not any(part.startswith(".") for part in
                                                               p.relative_to(folder).parts)}
    missing = [name for name in RUN_FILES if name not in files]
    if missing:
        raise RunFolderError(f"{folder}: cannot mark the run complete, {', '.join(missing)} missing")
    record = {"params_hash": params_hash, "files": files, "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "adopted": adopted}
    tmp = folder / f".{COMPLETION}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(folder / COMPLETION)
    return folder / COMPLETION


def clear_for_rerun(folder: Path) -> None:
    """Before an incomplete run is redone: drop what its earlier try left (completion record, partial notebooks,
    run files), so a failed redo cannot leave an old metrics.json or notebook that looks like its result."""
    folder = Path(folder)
    for name in (COMPLETION,) + RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for leftover in folder.glob(".*.partial.ipynb"):
        leftover.unlink()


class StudyLock:
    """An exclusive lock on an out folder's profile (fcntl.flock on .study.lock): one study writes there at a time.

    The lock goes with the process (a killed study leaves no stale lock behind), and a study that ends
    removes the lock file. A second study refuses at once, naming the holder's pid. A lock taken on a file
    that was removed meanwhile is dropped and taken again on the path's current file, so two studies never
    each hold a lock on a different file.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / ".study.lock"
        self._fd: int | None = None

    def __enter__(self) -> StudyLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderError(f"another study is writing to {self.path.parent} (pid {holder}); wait for it "
                                     "to finish or choose another --out") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder before us removed the file between our open and our lock: take the new one
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: nobody can have locked this file meanwhile
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
