"""The run record: its layout (the one place that spells out folder names), completion records, complete
notebooks, and one study per out folder at a time.

Layout: <out>/<profile>/<variant>/<seed folder>/<run>, the seed folder named by SEED_FOLDER; checkpoints mirror
it under <checkpoint root>/<out name>-<hash>/. Every other module builds and walks these paths through
profile_dir, dataset_dir, run_dir, checkpoint_dir, iter_datasets and iter_runs.

- <out>/<profile>: README.md (the reading, where there is one), 04_figures.ipynb, figures/, results.{csv,tex,md},
  paired_differences.csv, results_long.csv, and .study.lock while a study writes there;
- <profile>/<variant>/<seed folder> (dataset_dir): 01_data.ipynb, references.json, reference_sims.npz;
- <dataset_dir>/<run> (run_dir), a condition or a sweep point (sweep_run_name): 02_train.ipynb, history.csv,
  train.json, 03_evaluate.ipynb, metrics.json, embeddings.npz, and run.json last;
- checkpoint_dir: <checkpoint root>/<out folder name>-<hash of its path>/<profile>/.../<run>-<params hash>.

Every folder name is one safe path component (safe_component, checked by within): a '/', '..', an absolute
path or odd bytes is one ParamsError, so nothing a study writes lands outside its out folder and the checkpoint
root; a sweep value that is not safe names its folder by its readable tail and a hash (sweep_run_name).

A run folder is done only when its completion record (run.json, written last by the runner) lists every file
of the run with its SHA-256 and every listed file is there unchanged; without it the runner redoes the run.
Records from before run.json are adopted when provably complete (metrics.json for these params, embeddings.npz
that loads, both notebooks executed to the end without an error, and every metric metrics.json records equal to
what its embeddings.npz gives: smlib.recompute.check_adoptable, which the runner passes to run_state).

Whatever reads a run's results (the tables, the figures' readers, the comparison) reads only completed runs,
through iter_complete_runs or complete_run: a run folder without run.json is left out with a one-line warning
naming it, and a file changed or missing since its run was completed is one RunFolderError naming the folder
and the file (check_run), so an edited metrics.json never reaches a table.

Notebooks execute under a hidden name (partial_path) and count only when every code cell ran without an error
(notebook_problem); a redone run first loses what its earlier try left (clear_for_rerun). One study writes into
an out folder's profile at a time (StudyLock). docs/record.md gives the layout in full, how the runner resumes,
and every guarantee a study makes about its record, with the tests that check each.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import atomic
from .atomic import RunFolderError, sha256  # noqa: F401 - part of this API
from .params_yaml import ParamsError

COMPLETION = "run.json"
RUN_NOTEBOOKS = ("02_train.ipynb", "03_evaluate.ipynb")
RUN_FILES = ("metrics.json", "embeddings.npz") + RUN_NOTEBOOKS  # a run is not done without each of these
SEED_FOLDER = "seed{seed}"  # the name of a seed's folder: the one place it is spelled out


# ---------------------------------------------------------------- folder names
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@~-]*")  # one path component no filesystem reads specially
MAX_NAME = 200  # characters of one folder name (filesystems allow 255 bytes)
MAX_RUN_NAME = 100  # a sweep point's folder name; its checkpoint folder adds '-<params hash>'


def safe_component(text: str) -> bool:
    """True if text can name a folder as it is: ASCII letters, digits and _.+=@~- only, not starting with '.', '-'
    or '~', at most MAX_NAME characters (so never '', '.', '..', a '/', an absolute path or an odd byte)."""
    return len(text) <= MAX_NAME and SAFE_NAME.fullmatch(text) is not None


def sweep_run_name(condition: str, key: str, value) -> str:
    """The run folder (and table row) of one sweep point: <condition>@<leaf key>=<value>, always one safe path
    component. A value that is not one by itself (a path such as ../x or /abs, a hub id with a '/', odd bytes, a
    name over MAX_RUN_NAME characters) is written with its unsafe characters as '_', cut to its last 40, and a
    hash of the exact value: 'BAAI/bge-small-en-v1.5' -> 'v3_contrastive@base_model=BAAI_bge-small-en-v1.5~af703224'.
    The exact value is in the run's params (metrics.json)."""
    name = f"{sweep_prefix(condition, key)}{value}"
    if len(name) <= MAX_RUN_NAME and safe_component(name) and safe_component(str(value)):
        return name
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8]
    readable = re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(value))[-40:].strip("._-+") or "value"  # the tail names most
    return f"{sweep_prefix(condition, key)}{readable}~{digest}"


def sweep_prefix(condition: str, key: str) -> str:
    """What every sweep point's name of condition over key begins with: '<condition>@<leaf key>='."""
    return f"{condition}@{key.split('.')[-1]}="


def is_sweep_run(name: str) -> bool:
    """True for a sweep point's folder or row name (sweep_run_name), False for a condition's own."""
    return "@" in name


def seed_folder(seed: int) -> str:
    """The folder name of a seed (SEED_FOLDER)."""
    return SEED_FOLDER.format(seed=int(seed))


def folder_seed(name: str) -> int | None:
    """The seed a folder name stands for (the inverse of seed_folder), or None if it names no seed."""
    head, _, tail = SEED_FOLDER.partition("{seed}")
    if name.startswith(head) and name.endswith(tail) and len(name) > len(head) + len(tail):
        digits = name[len(head):len(name) - len(tail)]
        if digits.isdigit():
            return int(digits)
    return None


def within(root: Path, *parts) -> Path:
    """root/part/part/...: each part one safe path component (safe_component), so the result never resolves
    outside root; anything else (a '/', '..', an absolute path, odd bytes) is one ParamsError naming it."""
    for part in parts:
        if not safe_component(str(part)):
            raise ParamsError(f"{part!r} cannot name a folder under {root}: a folder name is letters, digits and "
                              "_.+=@~- only (nothing a study writes may land outside its out folder)")
    return Path(root).joinpath(*map(str, parts))


def profile_dir(out: str | Path, profile: str) -> Path:
    """<out>/<profile>: a profile's record (04_figures, the tables, the datasets' folders)."""
    return within(Path(out), profile)


def dataset_dir(out: str | Path, profile: str, variant: str, seed: int) -> Path:
    """<out>/<profile>/<variant>/<seed folder>: the 01_data record and references.json."""
    return dataset_in(profile_dir(out, profile), variant, seed)


def dataset_in(profile_folder: str | Path, variant: str, seed: int) -> Path:
    """A dataset's folder inside a profile's record folder (dataset_dir when the out folder is not at hand)."""
    return within(Path(profile_folder), variant, seed_folder(seed))


def run_dir(out: str | Path, profile: str, variant: str, seed: int, run: str) -> Path:
    """<dataset_dir>/<run>: notebooks, metrics.json, embeddings.npz of one condition or sweep point."""
    return within(dataset_dir(out, profile, variant, seed), run)


def checkpoint_dir(profile: str, variant: str, seed: int, run: str, root: str | Path,
                   out: str | Path | None = None, params_hash: str | None = None) -> Path:
    """Checkpoints live outside git, mirrored by the run layout; they belong to one out folder and one params hash.

    <root>/<out folder name>-<hash of its path>/<profile>/<variant>/<seed folder>/<run>-<params hash>, so two
    studies with different --out or different params never share a checkpoint folder.
    """
    base = Path(root)
    if out is not None:
        resolved = str(Path(out).resolve())
        name = Path(resolved).name
        name = name if safe_component(name) else re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._-")[:40] or "out"
        base = base / f"{name}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"
    leaf = run if params_hash is None else f"{run}-{params_hash}"
    return within(base, profile, variant, seed_folder(seed), leaf)


def iter_datasets(profile_dir: str | Path, filename: str | None = None):
    """(variant, seed, folder) of every dataset folder <profile_dir>/<variant>/<seed folder>, in order; with
    filename, only those that hold it, and the file's path instead of the folder."""
    found = []
    for variant_dir in Path(profile_dir).iterdir() if Path(profile_dir).is_dir() else ():
        if not variant_dir.is_dir() or variant_dir.name.startswith("."):
            continue
        for folder in variant_dir.iterdir():
            seed = folder_seed(folder.name)
            if seed is None or not folder.is_dir():
                continue
            target = folder if filename is None else folder / filename
            if filename is None or target.is_file():
                found.append((variant_dir.name, seed, target))
    yield from sorted(found, key=lambda r: str(r[2]))


def iter_runs(profile_dir: str | Path, filename: str, sweeps: bool = True):
    """(variant, seed, run folder name, path) of every <dataset folder>/<run>/<filename>, in order.

    Sweep points (folders named <condition>@<key>=<value>) are left out with sweeps=False.
    """
    found = []
    for variant, seed, folder in iter_datasets(profile_dir):
        for path in folder.glob(f"*/{filename}"):
            if sweeps or not is_sweep_run(path.parent.name):
                found.append((variant, seed, path.parent.name, path))
    yield from sorted(found, key=lambda r: str(r[3]))


run_files = iter_runs  # the earlier name


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


def _read_completion(folder: Path) -> dict:
    """The completion record of folder (its params_hash and the files it lists); RunFolderError if corrupted."""
    record_path = folder / COMPLETION
    try:
        record = json.loads(record_path.read_text())
        if not isinstance(record, dict):
            raise TypeError("not a JSON object")
        if "params_hash" not in record:
            raise KeyError("params_hash")
        files = record["files"]
        if not isinstance(files, dict) or not files:
            raise TypeError("no files listed")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunFolderError(f"{record_path} is corrupted ({e}); move the folder away to rerun") from None
    return record


def _changed_files(folder: Path, files: dict) -> tuple[list[str], list[str]]:
    """(missing, changed): the listed files that are gone, and those whose SHA-256 is not the recorded one."""
    missing = [name for name in files if not (folder / name).is_file()]
    changed = [name for name, digest in files.items() if name not in missing and sha256(folder / name) != digest]
    return missing, changed


def _changed_error(folder: Path, changed: list[str]) -> RunFolderError:
    return RunFolderError(f"{folder}: {', '.join(changed)} changed since the run was completed "
                          f"(see {COMPLETION}); move the folder away to rerun this condition")


def check_run(folder: str | Path) -> dict:
    """The completion record of a completed run folder, with every file it lists checked against its SHA-256.

    Raises RunFolderError (one line naming the folder and the file; nothing is changed) where the folder has no
    record or a corrupted one, or a listed file is missing or changed since the run was completed.
    """
    folder = Path(folder)
    if not (folder / COMPLETION).is_file():
        raise RunFolderError(f"{folder} has no {COMPLETION}: not a completed run (finish it with the study, or "
                             "move the folder away)")
    record = _read_completion(folder)
    missing, changed = _changed_files(folder, record["files"])
    if missing:
        raise RunFolderError(f"{folder}: {', '.join(missing)} missing since the run was completed (see "
                             f"{COMPLETION}); move the folder away to rerun this condition")
    if changed:
        raise _changed_error(folder, changed)
    return record


def warn_unrecorded(message: str) -> None:
    """The default warning of complete_run and iter_complete_runs: one line on stderr."""
    print(f"warning: {message}", file=sys.stderr)


def complete_run(folder: str | Path, filename: str,
                 warn: Callable[[str], None] | None = warn_unrecorded) -> Path | None:
    """folder/filename if folder is a completed run (check_run) that holds the file, else None.

    A folder holding the file but no completion record is not a completed run: it is left out (None) and
    named through warn (None: silently). A record that lists a file now missing or changed is RunFolderError.
    """
    folder = Path(folder)
    path = folder / filename
    if not (folder / COMPLETION).exists():
        if path.is_file() and warn is not None:
            warn(f"{folder} has no {COMPLETION}, so it is not a completed run: left out (finish it with the study, "
                 "or move the folder away)")
        return None
    check_run(folder)
    return path if path.is_file() else None


def iter_complete_runs(profile_dir: str | Path, filename: str, sweeps: bool = True,
                       warn: Callable[[str], None] | None = warn_unrecorded):
    """iter_runs of the completed runs only, each checked against its completion record (complete_run).

    A run folder holding filename but no run.json is left out with one warning naming it; a completed run whose
    listed files (filename among them) are missing or changed is one RunFolderError naming the folder and file.
    """
    found = {path.parent: (variant, seed, name, path) for variant, seed, name, path in iter_runs(profile_dir, filename, sweeps)}
    for variant, seed, name, path in iter_runs(profile_dir, COMPLETION, sweeps):
        found.setdefault(path.parent, (variant, seed, name, path.parent / filename))
    for variant, seed, name, path in sorted(found.values(), key=lambda r: str(r[3])):
        if complete_run(path.parent, filename, warn) is not None:
            yield variant, seed, name, path


def run_state(folder: str | Path, params_hash: str, adopt=None) -> tuple[str, str]:
    """('done' | 'absent' | 'incomplete', why) for a condition's run folder and the params it should hold.

    Raises RunFolderError (the folder is left alone) when it holds another run's params, a corrupt
    metrics.json or completion record, a file changed since its run was completed, or (without a completion
    record) a metrics.json that its embeddings.npz does not reproduce: adopt(folder) checks that (the runner and
    the recompute pass smlib.recompute.check_adoptable); without adopt such a folder is 'incomplete'.
    """
    folder = Path(folder)
    if (folder / COMPLETION).exists():
        record = _read_completion(folder)
        recorded, files = record["params_hash"], record["files"]
        if recorded != params_hash:
            raise _foreign(folder, recorded, params_hash)
        missing, changed = _changed_files(folder, files)
        if missing:
            return "incomplete", f"{', '.join(missing)} missing since the run was completed"
        if changed:
            if "metrics.json" in changed:
                _metrics_hash(folder)  # a truncated metrics.json is reported as corrupted
            raise _changed_error(folder, changed)
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
    if adopt is None:
        return "incomplete", "no completion record, and no check of its embeddings was asked for"
    adopt(folder)  # RunFolderError, before anything is written, if metrics.json is not its embeddings'
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
    atomic.write_text(folder / COMPLETION, json.dumps(record, indent=2, sort_keys=True))
    return folder / COMPLETION


def clear_for_rerun(folder: Path) -> None:
    """Before an incomplete run is redone: drop what its earlier try left (completion record, partial notebooks,
    run files), so a failed redo cannot leave an old metrics.json or notebook that looks like its result."""
    folder = Path(folder)
    for name in (COMPLETION,) + RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for leftover in [*folder.glob(".*.partial.ipynb"), *folder.glob(".*.tmp")]:
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


def import_recorded(record, path) -> None:
    """Import the modules a run's record ({"params": ...}) names under `imports` (smlib.registrations), so what they
    registered (loss terms, metrics) is known where the record is read; else RunFolderError naming file and module."""
    from .registrations import import_modules

    params = record.get("params") if isinstance(record, dict) else None
    try:  # a record without params, or with params that are not a mapping, names none
        import_modules(params.get("imports") if isinstance(params, dict) else None, str(path))
    except ParamsError as e:
        raise RunFolderError(f"{e} (reading this run needs the modules its params import)") from None
