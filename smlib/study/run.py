"""Running a plan: one graph of tasks (each dataset's 01_data, then its runs' 02+03) walked once, by whichever
executor runs the tasks: here, one after another (LocalExecutor), or on a Dask cluster (DaskExecutor)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..atomic import RecordWriteError, remove_stale_temps
from ..config import REFERENCE_ROWS, ParamsError, import_study_modules, without_added_keys
from ..config import variants as registered_variants
from ..recompute import check_adoptable
from ..record import (
    RUN_NOTEBOOKS,
    RunFolderError,
    StudyLock,
    clear_for_rerun,
    notebook_problem,
    run_state,
    seed_folder,
    write_completion,
)
from ..tables import write_results_table
from ..trunk_cache import remove_orphaned_temp_files
from .notebooks import DEFAULT_CELL_TIMEOUT, ROOT, execute, nb_path, remove_stale_ipc_folders
from .plan import Job, StudyPlan, check_executor, plan_study

Problem = tuple[str, str] | None  # (what failed, why), or None when the task succeeded or had nothing to do


@dataclass(frozen=True)
class Task:
    """One node of a study's graph: fn(*args) -> Problem, run once the task named `after` has succeeded."""

    name: str
    fn: object
    args: tuple
    after: str | None = None


def study_tasks(plan: StudyPlan) -> list[Task]:
    """The plan's graph: every dataset's 01_data task, then each of its jobs' 02+03 task, which needs it."""
    tasks = []
    for i, job in enumerate(plan.jobs, start=1):
        data = f"{job.variant}/{seed_folder(job.seed)}/01_data"
        if not any(t.name == data for t in tasks):
            tasks.append(Task(data, run_dataset, (plan, job.variant, job.seed)))
        tasks.append(Task(f"{job.variant}/{seed_folder(job.seed)}/{job.name}", run_condition, (plan, job, i), data))
    return tasks


class LocalExecutor:
    """Runs each task here, in graph order; a task whose dependency failed is skipped."""

    def run(self, tasks: list[Task]) -> dict[str, Problem]:
        results: dict[str, Problem] = {}
        for task in tasks:
            if task.after is not None and results.get(task.after):
                results[task.name] = ("skipped", "")
                continue
            results[task.name] = task.fn(*task.args)
        return results


DASK_CONNECT_TIMEOUT = 5  # seconds to reach a --scheduler before the study is refused


class DaskExecutor:
    """Submits the tasks to a Dask cluster with their dependencies: the scheduler at `scheduler` (refused within
    DASK_CONNECT_TIMEOUT seconds when none answers), or a local cluster of `workers` one-thread processes.

    Workers need this environment (the same package versions and the smlib Jupyter kernel) and the repository,
    the data root and the out folder at the same paths (a shared filesystem).
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is None:
            self.cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
            self.client = Client(self.cluster)
            return
        try:
            self.client = Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise ParamsError(f"--scheduler {scheduler}: no Dask scheduler answered there within "
                              f"{DASK_CONNECT_TIMEOUT} s ({type(e).__name__})") from None

    def run(self, tasks: list[Task]) -> dict[str, Problem]:
        from distributed import as_completed

        futures = {}
        for task in tasks:
            deps = futures.get(task.after)
            futures[task.name] = self.client.submit(_after, deps, task.fn, *task.args, key=task.name, pure=False)
        n_data = sum(t.after is None for t in tasks)
        _log(f"[dask] {n_data} datasets and {len(tasks) - n_data} runs submitted to {self.client.scheduler.address}")
        names = {f.key: name for name, f in futures.items()}
        results: dict[str, Problem] = {}
        for fut in as_completed(list(futures.values())):
            name = names[fut.key]
            try:
                results[name] = fut.result()
            except Exception as e:  # noqa: BLE001 - a task that raised (a lost worker, say): reported
                results[name] = (name, _short(e))
            if results[name] and results[name][0] != "skipped":
                _log(f"[dask] {name}: FAILED: {results[name][1]}")
            elif results[name] is None:
                _log(f"[dask] {name}: done")
        return {t.name: results[t.name] for t in tasks}

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _after(dependency: Problem, fn, *args) -> Problem:
    """A task on Dask: its dependency's result comes first (Dask waits for it); a failed one skips this task."""
    return ("skipped", "") if dependency else fn(*args)


def run_jobs(plan: StudyPlan, executor) -> list[tuple[str, str]]:
    """Run the plan's graph with an executor (LocalExecutor or DaskExecutor); return what failed, in graph order."""
    results = executor.run(study_tasks(plan))
    return [problem for problem in results.values() if problem and problem[0] != "skipped"]


@dataclass
class Progress:
    """Where a study stands, for the line an interrupt prints: runs finished (done before included) of all."""

    finished: int = 0
    total: int = 0
    current: str = "planning"


PROGRESS = Progress()


def stop_kernels() -> int:
    """SIGKILL every notebook kernel this process started (its children running ipykernel); how many. Linux reads
    /proc; elsewhere the kernels' watchdog ends them once this process is gone."""
    import os
    import signal

    killed = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"ipykernel" in (stat.parent / "cmdline").read_bytes():
                os.kill(int(stat.parent.name), signal.SIGKILL)
                killed += 1
        except (OSError, ValueError, IndexError):
            continue
    return killed


@dataclass(frozen=True)
class StudyOptions:
    """What a study runs and how: the command line's flags, one field each (run_study takes them)."""

    profile: str = "quick"
    conditions: tuple[str, ...] | None = None  # None: every condition (config.conditions())
    seeds: tuple[int, ...] = (42,)
    variants: tuple[str, ...] | None = None  # None: every variant a default study runs
    out: str | Path = ROOT / "runs"
    data_root: str | Path = ROOT / "data"
    checkpoint_root: str | Path = ROOT / "checkpoints"
    overrides: dict | None = None
    log_output: bool = False
    refresh_references: bool = False
    sweep: tuple[str, list] | None = None  # (key, values): one run folder per value
    cell_timeout: int = DEFAULT_CELL_TIMEOUT
    executor: str = "local"  # or "dask"
    scheduler: str | None = None
    workers: int | None = None
    threads: int | None = None
    run_notebook: Callable = execute  # the notebook runner every task calls (a test passes its own)


def run_study(options: StudyOptions | str | None = None, /, **fields) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Run every (variant, seed, condition) of StudyOptions (given whole, or as its fields; a first argument that
    is a string is the profile), skipping finished ones; return the summary and what failed.

    executor "local" runs the notebooks one after another here; "dask" submits them as tasks to a Dask
    cluster (the scheduler at `scheduler`, or a local cluster of `workers` processes): each (variant, seed)'s
    01_data first, then its conditions' 02+03, which need it. Both write the same records, resume the same way
    and report failures the same way; 04 and the tables run here once every task has ended. Every notebook runs
    through options.run_notebook (smlib.study.notebooks.execute).

    01_data runs for a (variant, seed) whose references.json is missing or lacks a reference row this version
    computes (config.REFERENCE_ROWS), or for every one with refresh_references. sweep=(key, values) runs each
    condition once per value instead, in a folder of its own named <condition>@<leaf key>=<value> (the value the
    profile already has uses the plain condition folder; config.sweep_run_name keeps it one safe folder name).

    threads: intra-op threads of every notebook kernel (None: all cores locally, one per worker on Dask); lower
    it when anything heavy runs beside the study. Kernels import the smlib of this process and die with it.
    """
    if isinstance(options, str):
        options, fields = None, {"profile": options, **fields}
    o = replace(options, **fields) if options is not None else StudyOptions(**fields)
    profile, executor, threads = o.profile, o.executor, o.threads
    paths = tuple(Path(p).resolve() for p in (o.out, o.data_root, o.checkpoint_root))
    import_study_modules(profile, o.conditions, o.overrides)  # the params' imports: a variant they register counts
    variants = registered_variants(default_only=True) if o.variants is None else o.variants
    check_executor(executor, o.scheduler, o.workers)
    if executor == "dask" and threads is None:
        threads = 1  # one thread per kernel on a cluster unless told otherwise
    PROGRESS.__init__(current="planning")
    plan = plan_study(profile, o.conditions, o.seeds, variants, o.overrides, o.sweep, o.cell_timeout, paths,
                      refresh_references=o.refresh_references, log_output=o.log_output, threads=threads,
                      run_notebook=o.run_notebook)
    PROGRESS.total = len(plan.jobs)
    runner = DaskExecutor(o.scheduler, o.workers) if executor == "dask" else LocalExecutor()  # before anything is written
    try:
        with StudyLock(plan.out / profile):  # one study writes into an out folder's profile at a time
            remove_orphaned_temp_files()  # a killed study's half-written trunk cache (its writer is gone)
            remove_stale_temps(plan.out / profile)  # and the temp files of its record's writes
            remove_stale_ipc_folders()  # and its kernels' socket folders
            t_study = time.perf_counter()
            failures = run_jobs(plan, runner)
            return finish_study(plan, failures, t_study)
    finally:
        if isinstance(runner, DaskExecutor):
            runner.close()


def finish_study(plan: StudyPlan, failures: list, t_study: float) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """04_figures and the results tables of the plan's profile, then the failure report."""
    profile_dir = plan.out / plan.profile
    PROGRESS.current = f"{plan.profile}/04_figures"
    try:
        plan.run_notebook("04_figures.ipynb", profile_dir / "04_figures.ipynb",
                          {"runs_dir": nb_path(profile_dir), "seed": plan.seeds[0], "save_figures": True},
                          plan.log_output, plan.cell_timeout, plan.threads)
    except Exception as e:  # noqa: BLE001
        failures.append(("04_figures", _short(e)))
        _log(f"04_figures FAILED: {_short(e)}")
    _log(f"\nstudy finished in {(time.perf_counter() - t_study) / 60:.1f} min; results in {profile_dir}\n")
    try:
        summary = write_results_table(profile_dir)
        print((profile_dir / "results.md").read_text())
    except (RunFolderError, RecordWriteError) as e:
        summary = pd.DataFrame()
        failures.append(("results table", str(e)))
    if failures:
        _log(f"\n{len(failures)} failed:")
        for what, why in failures:
            _log(f"  {what}: {why}")
    else:
        _log("every run finished")
    return summary, failures


def _common(plan: StudyPlan) -> dict:
    """The notebook parameters every notebook of the plan gets."""
    return {"profile": plan.profile, "data_root": nb_path(plan.data_root), "overrides": dict(plan.overrides)}


def run_dataset(plan: StudyPlan, variant: str, seed: int) -> Problem:
    """01_data of one (variant, seed) where its references are missing or stale; (what, why) if it failed."""
    ddir = plan.dataset_dir(variant, seed)
    where = f"{plan.profile}/{variant}/{seed_folder(seed)}"
    what = f"{variant}/{seed_folder(seed)}/01_data"
    PROGRESS.current = f"{plan.profile}/{what}"
    try:
        stale = references_missing(ddir, plan.dataset_params(variant, seed).data_params())
    except RunFolderError as e:
        _log(f"[data] {where}: FAILED: {e}")
        return what, str(e)
    if not (plan.refresh_references or stale):
        return None
    why = "" if not (ddir / "references.json").exists() else \
        " (refreshing references)" if plan.refresh_references else f" (references.json lacks {', '.join(stale)})"
    _log(f"[data] {where}: 01_data{why}")
    try:
        plan.run_notebook("01_data.ipynb", ddir / "01_data.ipynb",
                          {**_common(plan), "variant": variant, "seed": seed, "out_dir": nb_path(ddir)},
                          plan.log_output, plan.cell_timeout, plan.threads)
    except Exception as e:  # noqa: BLE001 - reported, the rest still runs
        _log(f"  FAILED: {_short(e)} ({_where(ddir / '01_data.ipynb')})")
        return what, _short(e)
    return None


def run_condition(plan: StudyPlan, job: Job, i: int) -> Problem:
    """02_train and 03_evaluate of one run folder unless it is done; the completion record last; (what, why) if it
    failed."""
    rdir = plan.run_dir(job)
    what = f"{job.variant}/{seed_folder(job.seed)}/{job.name}"
    label = f"[{i}/{len(plan.jobs)}] {plan.profile}/{what}"
    PROGRESS.current = f"{plan.profile}/{what}"
    try:
        phash = job.params(plan.profile).hash()
        state, why = run_state(rdir, phash, adopt=check_adoptable)
    except (RunFolderError, ParamsError) as e:  # refused before any notebook ran: no notebook shows it
        _log(f"{label}: FAILED: {e}")
        return what, str(e)
    try:
        if state == "done":
            _log(f"{label}: done before, skipped")
            PROGRESS.finished += 1
            return None
        if state == "incomplete":
            _log(f"{label}: incomplete ({why}), redoing it")
            clear_for_rerun(rdir)
        t0 = time.perf_counter()
        nb = {**_common(plan), "overrides": job.override_dict, "condition": job.condition, "variant": job.variant,
              "seed": job.seed, "checkpoint_dir": nb_path(plan.checkpoint_dir(job, phash)), "out_dir": nb_path(rdir)}
        for notebook in RUN_NOTEBOOKS:
            _log(f"{label}: {notebook.removesuffix('.ipynb')}")
            plan.run_notebook(notebook, rdir / notebook, nb, plan.log_output, plan.cell_timeout, plan.threads)
        write_completion(rdir, phash)  # last: the run is done only once this exists
        PROGRESS.finished += 1
        _log(f"{label}: finished in {time.perf_counter() - t0:.0f} s")
    except Exception as e:  # noqa: BLE001 - reported, the rest still runs
        _log(f"{label}: FAILED: {_short(e)} ({_where(*(rdir / nb for nb in RUN_NOTEBOOKS))})")
        return what, _short(e)
    return None


def references_missing(ddir: Path, data_params: dict | None = None) -> list[str]:
    """Why ddir's 01_data must run again: the reference rows (config.REFERENCE_ROWS) references.json lacks (all
    of them if it is absent), 'other data params' if it was made for another dataset than data_params
    ({'seed': .., 'data': {..}}), and '01_data.ipynb' if the executed notebook is missing or incomplete."""
    path = Path(ddir) / "references.json"
    if not path.exists():
        return list(REFERENCE_ROWS)
    try:
        saved = json.loads(path.read_text())
        have = {r["condition"] for r in saved["rows"]}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunFolderError(f"{path} is corrupted ({e}); move it away to rebuild the reference rows") from None
    stale = [r for r in REFERENCE_ROWS if r not in have]
    if data_params is not None and without_added_keys(saved.get("data_params") or {}) != without_added_keys(data_params):
        stale.append("other data params")
    if notebook_problem(Path(ddir) / "01_data.ipynb"):
        stale.append("01_data.ipynb")
    return stale


def _where(*notebooks: Path) -> str:
    """Point at the last executed notebook that exists (it shows the failing cell), or say none was written."""
    written = [nb for nb in notebooks if nb.exists()]
    if not written:
        return f"no notebook was written under {notebooks[0].parent}: the error above is all there is"
    return f"see {written[-1]}, which shows the failing cell"


def _short(e: Exception) -> str:
    """One line that names the error and its reason: the last line that says something (a notebook's traceback
    ends with it), or the first for a cell timeout (its message ends with a preview of the cell between rules)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if any(ch.isalnum() for ch in ln)]
    name = type(e).__name__
    if not lines:
        return f"{name} (no message)"
    return f"{name}: {lines[0] if 'Timeout' in name or 'timed out' in lines[0] else lines[-1]}"[:300]


def _log(msg: str) -> None:
    print(msg, flush=True)
