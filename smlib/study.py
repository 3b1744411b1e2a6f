"""The study runner: papermill executes 01 per dataset, 02+03 per condition, then 04; resumable."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import (DEFAULT_VARIANTS, MAX_SEED, PARAMS_DIR, PARAMS_ENV, PROPOSED, REFERENCE_ROWS, REPO_ROOT, VARIANTS, ParamsError, available,
                     load_params, parse_yaml, safe_component, sweep_run_name)
from .config import conditions as available_conditions
from .record import (RUN_NOTEBOOKS, RunFolderError, StudyLock, clear_for_rerun, notebook_problem, partial_path,
                     run_state, write_completion)
from .evaluation import recompute_metrics
from .kernel import kernel_arguments
from .trunk_cache import remove_orphaned_temp_files
from .tables import update_readme, write_results_table

ROOT = REPO_ROOT
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "smlib"


def study_params(condition: str, profile: str, variant: str, seed: int, overrides: dict | None = None):
    """Params of one run: the profile and condition, plus the variant, the seed and any overrides."""
    return load_params(condition, profile, overrides={"data.variant": variant, "seed": seed, **(overrides or {})})


def use_params_dir(folder: str | Path) -> Path:
    """Point every params load of this process and of the notebooks it runs at folder ($SMLIB_PARAMS_DIR)."""
    folder = Path(folder).resolve()
    missing = [name for name in ("base.yaml", "profiles", "conditions") if not (folder / name).exists()]
    if missing:
        raise ParamsError(f"--params {folder}: not a params folder (it lacks {', '.join(missing)})")
    os.environ[PARAMS_ENV] = str(folder)
    return folder


def dataset_params(profile: str, variant: str, seed: int, overrides: dict | None = None):
    """Params a dataset and its reference rows are built from (the data section does not depend on the condition)."""
    return study_params(PROPOSED, profile, variant, seed, overrides)


def within(root: Path, *parts: str) -> Path:
    """root/part/part/...: each part one safe path component (config.safe_component), so the result never resolves
    outside root; anything else (a '/', '..', an absolute path, odd bytes) is one ParamsError naming it."""
    for part in parts:
        if not safe_component(str(part)):
            raise ParamsError(f"{part!r} cannot name a folder under {root}: a folder name is letters, digits and "
                              "_.+=@~- only (nothing a study writes may land outside its out folder)")
    return Path(root).joinpath(*map(str, parts))


def dataset_dir(out: Path, profile: str, variant: str, seed: int) -> Path:
    """runs/<profile>/<variant>/seed<seed>: the 01_data record and references.json."""
    return within(Path(out), profile, variant, f"seed{seed}")


def run_dir(out: Path, profile: str, variant: str, seed: int, condition: str) -> Path:
    """runs/<profile>/<variant>/seed<seed>/<condition>: notebooks, metrics.json, embeddings.npz."""
    return within(dataset_dir(out, profile, variant, seed), condition)


def checkpoint_dir(profile: str, variant: str, seed: int, condition: str, root: Path = ROOT / "checkpoints",
                   out: Path | None = None, params_hash: str | None = None) -> Path:
    """Checkpoints live outside git, mirrored by the run layout; they belong to one out folder and one params hash.

    <root>/<out folder name>-<hash of its path>/<profile>/<variant>/seed<seed>/<condition>-<params hash>, so two
    studies with different --out or different params never share a checkpoint folder.
    """
    base = Path(root)
    if out is not None:
        resolved = str(Path(out).resolve())
        name = Path(resolved).name
        name = name if safe_component(name) else re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("._-")[:40] or "out"
        base = base / f"{name}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"
    leaf = condition if params_hash is None else f"{condition}-{params_hash}"
    return within(base, profile, variant, f"seed{seed}", leaf)


def finished(folder: Path, params_hash: str) -> bool:
    """True if folder holds a complete run of these params (record.run_state); a foreign or corrupt record is an error."""
    return run_state(folder, params_hash)[0] == "done"


DEFAULT_CELL_TIMEOUT = 7200  # seconds one notebook cell may run before its run is failed (--cell-timeout)


def nb_path(path: Path) -> str:
    """A path as a notebook parameter: relative to notebooks/ (where the notebooks run) when it lies inside the
    repository, so an executed record names no machine's folders; absolute otherwise."""
    path = Path(path).resolve()
    try:
        path.relative_to(ROOT)
    except ValueError:
        return str(path)
    return os.path.relpath(path, NOTEBOOKS)


def execute(notebook: str, out_path: Path, parameters: dict, log_output: bool = False,
            cell_timeout: int = DEFAULT_CELL_TIMEOUT, threads: int | None = None) -> None:
    """Run a source notebook with papermill into out_path (never over the source).

    A cell that runs past cell_timeout seconds fails the notebook (papermill raises), so a hung kernel
    becomes a failed run with a message instead of a stuck study. The kernel imports this process's smlib,
    uses `threads` threads (None: the libraries' default, all cores) and dies with this process
    (smlib.kernel).
    """
    import papermill as pm

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out_path)  # executed under a hidden name, renamed into place when it ends
    try:
        pm.execute_notebook(str(NOTEBOOKS / notebook), str(partial), parameters=parameters, kernel_name=KERNEL,
                            cwd=str(NOTEBOOKS), log_output=log_output, progress_bar=False,
                            execution_timeout=int(cell_timeout), extra_arguments=kernel_arguments(threads))
    except BaseException:
        if partial.exists():  # a failed notebook is kept: it shows the failing cell (a killed one is not renamed)
            partial.replace(out_path)
        raise
    partial.replace(out_path)


def run_study(profile: str = "quick", conditions=None, seeds=(42,), variants=DEFAULT_VARIANTS,
              out: str | Path = ROOT / "runs", data_root: str | Path = ROOT / "data",
              checkpoint_root: str | Path = ROOT / "checkpoints", overrides: dict | None = None,
              log_output: bool = False, refresh_references: bool = False,
              sweep: tuple[str, list] | None = None,
              cell_timeout: int = DEFAULT_CELL_TIMEOUT, executor: str = "local", scheduler: str | None = None,
              workers: int | None = None, threads: int | None = None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Run every (variant, seed, condition), skipping finished ones; return the summary and what failed.

    executor "local" runs the notebooks one after another here; "dask" submits them as tasks to a Dask
    cluster (the scheduler at `scheduler`, or a local cluster of `workers` processes): each (variant, seed)'s
    01_data first, then its conditions' 02+03, which need it. Both write the same records, resume the same way
    and report failures the same way; 04 and the tables run here once every task has ended.

    conditions None means every condition (config.conditions()). 01_data runs for a (variant, seed) whose
    references.json is missing or lacks a reference row this version computes (config.REFERENCE_ROWS), or for
    every one with refresh_references. sweep=(key, values) runs each condition once per value instead, in a
    folder of its own named <condition>@<leaf key>=<value> (the value the profile already has uses the plain
    condition folder; config.sweep_run_name keeps it one safe folder name whatever the value).

    threads: intra-op threads of every notebook kernel (None: all cores locally, one per worker on Dask); lower
    it when anything heavy runs beside the study. Kernels import the smlib of this process and die with it.
    """
    out, data_root, checkpoint_root = (Path(p).resolve() for p in (out, data_root, checkpoint_root))
    plan = plan_study(profile, conditions, seeds, variants, overrides, sweep, cell_timeout,
                      (out, data_root, checkpoint_root))
    check_executor(executor, scheduler, workers)
    threads = check_threads(threads)
    client = connect_dask(scheduler, workers) if executor == "dask" else None  # before anything is written
    try:
        with StudyLock(out / profile):  # one study writes into an out folder's profile at a time
            remove_orphaned_temp_files()  # a killed study's half-written trunk cache (its writer is gone)
            failures: list[tuple[str, str]] = []
            t_study = time.perf_counter()
            ctx = {"profile": profile, "out": out, "checkpoint_root": checkpoint_root, "log_output": log_output,
                   "cell_timeout": cell_timeout, "n_jobs": len(plan.jobs),
                   "threads": 1 if threads is None and client is not None else threads,
                   "common": {"profile": profile, "data_root": nb_path(data_root), "overrides": overrides or {}}}
            if client is not None:
                failures += run_on_dask(plan, ctx, overrides, refresh_references, client)
            else:
                for v in plan.variants:
                    for s in plan.seeds:
                        problem = run_dataset(ctx, v, s, plan.conditions[0], overrides, refresh_references)
                        if problem:
                            failures.append(problem)
                            continue
                        for c in plan.conditions:
                            for name, run_overrides in plan.points[(v, s, c)]:
                                problem = run_condition(ctx, plan.jobs.index((v, s, c, name)) + 1, v, s, c, name,
                                                        run_overrides)
                                if problem:
                                    failures.append(problem)
            profile_dir = out / profile
            try:
                execute("04_figures.ipynb", profile_dir / "04_figures.ipynb",
                        {"runs_dir": nb_path(profile_dir), "seed": plan.seeds[0], "save_figures": True}, log_output,
                        cell_timeout, threads)
            except Exception as e:  # noqa: BLE001
                failures.append(("04_figures", _short(e)))
                _log(f"04_figures FAILED: {_short(e)}")
            _log(f"\nstudy finished in {(time.perf_counter() - t_study) / 60:.1f} min; results in {profile_dir}\n")
            try:
                summary = write_results_table(profile_dir)
                print((profile_dir / "results.md").read_text())
            except RunFolderError as e:
                summary = pd.DataFrame()
                failures.append(("results table", str(e)))
            if failures:
                _log(f"\n{len(failures)} failed:")
                for what, why in failures:
                    _log(f"  {what}: {why}")
            else:
                _log("every run finished")
            return summary, failures
    finally:
        if client is not None:
            close_dask(client)


@dataclass
class StudyPlan:
    """What a study will run, every params combination already validated."""

    conditions: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    points: dict  # (variant, seed, condition) -> [(run folder name, overrides)]
    jobs: list  # [(variant, seed, condition, run folder name)] in run order


def plan_study(profile: str, conditions, seeds, variants, overrides: dict | None, sweep, cell_timeout,
               paths: tuple[Path, ...] = ()) -> StudyPlan:
    """Check every flag and every params combination, the device, the encoder and the folders; nothing is written."""
    known = available_conditions()
    conditions = check_names(known if conditions is None else conditions, "--conditions", known, "condition")
    variants = check_names(variants, "--variants", VARIANTS, "variant")
    seeds = check_seeds(seeds)
    check_overrides(overrides or {})
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or not 1 <= cell_timeout <= 7 * 86400:
        raise ParamsError(f"--cell-timeout {cell_timeout!r}: expected whole seconds in 1..{7 * 86400}")
    points = {}
    for c in conditions:
        for v in variants:
            for s in seeds:
                points[(v, s, c)] = sweep_points(c, profile, v, s, overrides, sweep)
                for _, run_overrides in points[(v, s, c)]:
                    run_params = study_params(c, profile, v, s, run_overrides)
                    check_device(run_params)
                    check_encoder(run_params)
    for path in paths:
        check_writable(path)
    jobs = [(v, s, c, name) for v in variants for s in seeds for c in conditions for name, _ in points[(v, s, c)]]
    if paths:  # every folder the study will write, each provably inside its root (within() refuses otherwise)
        out, _, checkpoint_root = paths
        for v, s, c, name in jobs:
            check_writable(run_dir(out, profile, v, s, name))
            check_writable(checkpoint_dir(profile, v, s, name, checkpoint_root, out, "0" * 12))
    return StudyPlan(conditions, variants, seeds, points, jobs)


EXECUTORS = ("local", "dask")


def check_executor(executor: str, scheduler: str | None, workers: int | None) -> None:
    """--executor local|dask; --scheduler (an address) or --workers (a local cluster) only with dask."""
    if executor not in EXECUTORS:
        raise ParamsError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "local":
        if scheduler is not None or workers is not None:
            raise ParamsError("--scheduler and --workers need --executor dask")
        return
    if scheduler is not None and workers is not None:
        raise ParamsError("--scheduler and --workers exclude each other: a cluster at an address, or a local one")
    if scheduler is not None and not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/]+(:[0-9]+)?", scheduler):
        raise ParamsError(f"--scheduler {scheduler!r}: expected an address such as tcp://HOST:8786")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256):
        raise ParamsError(f"--workers {workers!r}: expected a whole number of worker processes in 1..256")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ParamsError("--executor dask needs the distributed package: pip install -e '.[test]' "
                          "(or pip install 'distributed>=2024.1')") from None


def _after(dataset_problem, run, *args):
    """A condition task: its dataset task's result comes first (Dask waits for it); a failed dataset skips it,
    as the local executor does."""
    return ("skipped",) if dataset_problem else run(*args)


DASK_CONNECT_TIMEOUT = 5  # seconds to reach a --scheduler before the study is refused


def connect_dask(scheduler: str | None, workers: int | None):
    """A Dask client: of the scheduler at `scheduler` (ParamsError within DASK_CONNECT_TIMEOUT seconds when none
    answers there), or of a local cluster of `workers` one-thread processes, closed with the client."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        client._smlib_cluster = cluster  # closed with the client (run_on_dask)
        return client
    try:
        return Client(scheduler, timeout=DASK_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise ParamsError(f"--scheduler {scheduler}: no Dask scheduler answered there within "
                          f"{DASK_CONNECT_TIMEOUT} s ({type(e).__name__})") from None


def run_on_dask(plan: StudyPlan, ctx: dict, overrides: dict | None, refresh_references: bool,
                client) -> list[tuple[str, str]]:
    """Submit the plan's notebooks to a Dask cluster (client: connect_dask) as tasks with their dependencies;
    return what failed.

    Workers need this environment (the same package versions and the smlib Jupyter kernel) and the repository,
    the data root and the out folder at the same paths (a shared filesystem). Each kernel uses ctx["threads"]
    threads (one unless --threads says otherwise).
    """
    from distributed import as_completed

    failures: list[tuple[str, str]] = []
    names = {}
    data = {}
    for v in plan.variants:
        for s in plan.seeds:
            fut = client.submit(run_dataset, ctx, v, s, plan.conditions[0], overrides, refresh_references,
                                key=f"01_data/{v}/seed{s}", pure=False)
            data[(v, s)], names[fut.key] = fut, f"{v}/seed{s}/01_data"
    runs = []
    for i, (v, s, c, name) in enumerate(plan.jobs, start=1):
        run_overrides = dict(plan.points[(v, s, c)])[name]
        fut = client.submit(_after, data[(v, s)], run_condition, ctx, i, v, s, c, name, run_overrides,
                            key=f"run/{v}/seed{s}/{name}", pure=False)
        runs.append(fut)
        names[fut.key] = f"{v}/seed{s}/{name}"
    _log(f"[dask] {len(data)} datasets and {len(runs)} runs submitted to {client.scheduler.address}")
    for fut in as_completed([*data.values(), *runs]):
        try:
            problem = fut.result()
        except Exception as e:  # noqa: BLE001 - a task that raised (a lost worker, say): reported
            problem = (names[fut.key], _short(e))
        if problem and problem != ("skipped",):
            failures.append(problem)
            _log(f"[dask] {names[fut.key]}: FAILED: {problem[1]}")
        elif problem is None:
            _log(f"[dask] {names[fut.key]}: done")
    return failures


def close_dask(client) -> None:
    """Close a connect_dask client and the local cluster it started, if any."""
    cluster = getattr(client, "_smlib_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run_dataset(ctx: dict, variant: str, seed: int, condition: str, overrides: dict | None,
                refresh_references: bool) -> tuple[str, str] | None:
    """01_data of one (variant, seed) where its references are missing or stale; (what, why) if it failed."""
    ddir = dataset_dir(ctx["out"], ctx["profile"], variant, seed)
    where = f"{ctx['profile']}/{variant}/seed{seed}"
    try:
        stale = references_missing(ddir, study_params(condition, ctx["profile"], variant, seed, overrides).data_params())
    except RunFolderError as e:
        _log(f"[data] {where}: FAILED: {e}")
        return f"{variant}/seed{seed}/01_data", str(e)
    if not (refresh_references or stale):
        return None
    why = "" if not (ddir / "references.json").exists() else \
        " (refreshing references)" if refresh_references else f" (references.json lacks {', '.join(stale)})"
    _log(f"[data] {where}: 01_data{why}")
    try:
        execute("01_data.ipynb", ddir / "01_data.ipynb",
                {**ctx["common"], "variant": variant, "seed": seed, "out_dir": nb_path(ddir)}, ctx["log_output"],
                ctx["cell_timeout"], ctx.get("threads"))
    except Exception as e:  # noqa: BLE001 - reported, the rest still runs
        _log(f"  FAILED: {_short(e)} ({_where(ddir / '01_data.ipynb')})")
        return f"{variant}/seed{seed}/01_data", _short(e)
    return None


def run_condition(ctx: dict, i: int, variant: str, seed: int, condition: str, name: str,
                  run_overrides: dict) -> tuple[str, str] | None:
    """02_train and 03_evaluate of one run folder unless it is done; the completion record last; (what, why) if it failed."""
    profile = ctx["profile"]
    rdir = run_dir(ctx["out"], profile, variant, seed, name)
    label = f"[{i}/{ctx['n_jobs']}] {profile}/{variant}/seed{seed}/{name}"
    try:
        phash = study_params(condition, profile, variant, seed, run_overrides).hash()
        state, why = run_state(rdir, phash)
        if state == "done":
            _log(f"{label}: done before, skipped")
            return None
        if state == "incomplete":
            _log(f"{label}: incomplete ({why}), redoing it")
            clear_for_rerun(rdir)
        t0 = time.perf_counter()
        ckpt = checkpoint_dir(profile, variant, seed, name, ctx["checkpoint_root"], ctx["out"], phash)
        nb = {**ctx["common"], "overrides": run_overrides, "condition": condition, "variant": variant, "seed": seed,
              "checkpoint_dir": nb_path(ckpt), "out_dir": nb_path(rdir)}
        for notebook in RUN_NOTEBOOKS:
            _log(f"{label}: {notebook.removesuffix('.ipynb')}")
            execute(notebook, rdir / notebook, nb, ctx["log_output"], ctx["cell_timeout"], ctx.get("threads"))
        write_completion(rdir, phash)  # last: the run is done only once this exists
        _log(f"{label}: finished in {time.perf_counter() - t0:.0f} s")
    except Exception as e:  # noqa: BLE001 - reported, the rest still runs
        _log(f"{label}: FAILED: {_short(e)} ({_where(*(rdir / nb for nb in RUN_NOTEBOOKS))})")
        return f"{variant}/seed{seed}/{name}", _short(e)
    return None


def _where(*notebooks: Path) -> str:
    """Point at the last executed notebook that exists (it shows the failing cell), or say none was written."""
    written = [nb for nb in notebooks if nb.exists()]
    if not written:
        return f"no notebook was written under {notebooks[0].parent}: the error above is all there is"
    return f"see {written[-1]}, which shows the failing cell"


def check_names(names, what: str, allowed, noun: str = "name") -> tuple[str, ...]:
    """A non-empty list of known, distinct names (conditions or variants), or one ParamsError naming the flag."""
    names = tuple(names)
    if not names:
        raise ParamsError(f"{what}: the list is empty (choose from {', '.join(allowed)})")
    for n in names:
        if n not in allowed:
            raise ParamsError(f"{what}: unknown {noun} {n!r} (choose from {', '.join(allowed)})")
    _refuse_repeats(names, what)
    return names


def _refuse_repeats(items: tuple, what: str) -> None:
    repeated = sorted({x for x in items if items.count(x) > 1})
    if repeated:
        raise ParamsError(f"{what}: {', '.join(map(str, repeated))} given twice")


def check_threads(threads) -> int | None:
    """--threads: None (the libraries' default) or a whole number of threads per kernel in 1..1024."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024):
        raise ParamsError(f"--threads {threads!r}: expected a whole number of threads per kernel in 1..1024")
    return threads


def check_seeds(seeds) -> tuple[int, ...]:
    """Distinct integer seeds in 0..2^32-1 (numpy's and torch's seed range), at least one."""
    seeds = tuple(seeds)
    if not seeds:
        raise ParamsError("--seeds: the list is empty (e.g. --seeds 42,43,44)")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED:
            raise ParamsError(f"--seeds: {s!r} is not an integer in 0..{MAX_SEED}")
    _refuse_repeats(seeds, "--seeds")
    return seeds


# Keys that decide the run folder: a study sets them from its flags, never from --set.
FOLDER_KEYS = {"condition": "--conditions", "seed": "--seeds", "data.variant": "--variants"}


def check_overrides(overrides: dict) -> None:
    """Refuse overrides of the keys that name the run folder (the folder must follow the params used)."""
    nested = {}
    for key, value in overrides.items():
        nested.setdefault(str(key).split(".")[0], []).append((str(key), value))
    for key, flag in FOLDER_KEYS.items():
        top, _, leaf = key.partition(".")
        for given, value in nested.get(top, []):
            if given == key or (not leaf and given == top) or (leaf and isinstance(value, dict) and leaf in value):
                raise ParamsError(f"--set {key}: the {key} of a study's runs is chosen with {flag}, "
                                  f"which also names the run folder")


def check_device(params) -> None:
    """train.device=cuda/mps on a machine without one is refused before anything runs."""
    device = params.train.device
    if device in ("auto", "cpu"):
        return
    import torch

    ok = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
    if not ok:
        raise ParamsError(f"train.device={device}: this machine has no {device.upper()} device "
                          "(use auto, which falls back to the CPU)")


def check_encoder(params) -> None:
    """The base model must be loadable without a network: 'tiny', 'bundled' (installed), a local folder with a
    config.json, or a hub id already in the local Hugging Face cache."""
    from .config import encoder_limits

    name = params.model.base_model
    if encoder_limits(name) is not None:  # tiny, an installed bundled encoder, or a readable config.json
        return
    if name == "bundled":
        from .models.encoder import bundled_model_path

        try:
            bundled_model_path()  # says why: not installed (with the command), or its files are missing
        except RuntimeError as e:
            raise ParamsError(f"model.base_model=bundled: {e}") from None
    raise ParamsError(f"model.base_model={name!r}: neither a local folder with a config.json nor a model in "
                          "the local Hugging Face cache (nothing is downloaded at run time)")


def check_writable(path: Path) -> None:
    """The nearest existing folder of path must be writable and every name on the way short enough for its
    filesystem, or the study would fail after writing part of it."""
    path = Path(path)
    try:
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        name_max = os.pathconf(existing, "PC_NAME_MAX") if existing.is_dir() else 255
        path_max = os.pathconf(existing, "PC_PATH_MAX") if existing.is_dir() else 4096
    except OSError as e:  # ENAMETOOLONG from a name past the limit, ELOOP, EACCES on the way
        raise ParamsError(f"{_shorten(path)}: cannot be used as a folder ({e.strerror})") from None
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise ParamsError(f"{_shorten(path)}: the name {_shorten(part, 40)} is {len(os.fsencode(part))} bytes, "
                              f"longer than the {name_max} its filesystem allows")
    if len(os.fsencode(str(path.resolve()))) + 64 > path_max:  # room for the files a run writes inside
        raise ParamsError(f"{_shorten(path)}: the path is too long for its filesystem ({path_max} bytes at most)")
    if not existing.is_dir():
        raise ParamsError(f"{_shorten(path)}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParamsError(f"{_shorten(path)}: {existing} is not writable")


def _shorten(path, limit: int = 120) -> str:
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"


SWEEPABLE = ("model", "loss", "train")


def parse_sweep(text: str) -> tuple[str, list]:
    """'model.prefix_dim=16,32,64' -> ('model.prefix_dim', [16, 32, 64]); values are YAML scalars."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ParamsError(f"--sweep {text!r}: expected KEY=V1,V2,... e.g. model.prefix_dim=16,32,64,128")
    if key.split(".")[0] not in SWEEPABLE or "." not in key:
        raise ParamsError(f"--sweep {text!r}: only model.*, loss.* and train.* keys can be swept "
                          "(data keys would change the dataset the reference rows belong to)")
    parsed = []
    for raw in values.split(","):
        if not raw.strip():
            raise ParamsError(f"--sweep {text!r}: empty value in the list")
        parsed.append(parse_yaml(raw.strip(), f"--sweep {text!r}"))
    if len(set(map(repr, parsed))) != len(parsed):
        raise ParamsError(f"--sweep {text!r}: a value is repeated")
    return key, parsed


def sweep_points(condition: str, profile: str, variant: str, seed: int, overrides: dict | None,
                 sweep: tuple[str, list] | None) -> list[tuple[str, dict]]:
    """[(run folder name, overrides)] of one (variant, seed, condition), each validated.

    Without a sweep: [(condition, overrides)]. Sweeping model.prefix_dim adds the value to
    model.matryoshka_dims so the prefix stays one of the Matryoshka dims.
    """
    overrides = dict(overrides or {})
    base = study_params(condition, profile, variant, seed, overrides)
    if sweep is None:
        return [(condition, overrides)]
    key, values = sweep
    section, *rest = key.split(".")
    current = getattr(getattr(base, section), rest[0]) if len(rest) == 1 and hasattr(getattr(base, section), rest[0]) \
        else object()
    out = []
    for value in values:
        point = {**overrides, key: value}
        if key == "model.prefix_dim" and isinstance(value, int) and not isinstance(value, bool):
            point["model.matryoshka_dims"] = sorted(set(base.model.matryoshka_dims) | {value})
        study_params(condition, profile, variant, seed, point)  # raises ParamsError naming the key
        name = condition if value == current else sweep_run_name(condition, key, value)
        out.append((name, overrides if value == current else point))
    return out


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
    if data_params is not None and saved.get("data_params") != data_params:
        stale.append("other data params")
    if notebook_problem(Path(ddir) / "01_data.ipynb"):
        stale.append("01_data.ipynb")
    return stale


def _short(e: Exception) -> str:
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:300]


def _log(msg: str) -> None:
    print(msg, flush=True)


def _csv(value: str) -> list[str]:
    """'a, b' -> ['a', 'b']; an empty item (',', 'a,,b') stays, as '', so the checks can refuse it."""
    items = [v.strip() for v in value.split(",")]
    return [] if items == [""] else items


class _Parser(argparse.ArgumentParser):
    """argparse with one-line refusals (exit 2), like every other refusal of the runner."""

    def error(self, message: str):
        print(f"error: {message} (see python -m smlib.study --help)", file=sys.stderr)
        sys.exit(2)


def parse_overrides(items: list[str]) -> dict:
    """--set KEY=VALUE items -> {dotted key: value}; values are YAML (1e-4 reads as a number)."""
    overrides: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set train.lr=1e-4")
        if key in overrides:
            raise ParamsError(f"--set {key}: given twice")
        overrides[key] = parse_yaml(value, f"--set {item!r}")
    check_overrides(overrides)
    return overrides


def parse_seeds(text: str) -> tuple[int, ...]:
    """'42,43' -> (42, 43), each an integer in 0..2^32-1, distinct, at least one."""
    seeds = []
    for raw in _csv(text):
        if not re.fullmatch(r"[+-]?[0-9]+", raw):
            raise ParamsError(f"--seeds {text!r}: {raw!r} is not an integer (expected e.g. --seeds 42,43,44)")
        seeds.append(int(raw))
    return check_seeds(seeds)


def main(argv=None) -> int:
    """Command line: python -m smlib.study --profile quick [--conditions a,b] [--seeds 42,43] [--variants ...]."""
    ap = _Parser(prog="python -m smlib.study", description=__doc__)
    ap.add_argument("--profile", default="quick", help=f"one of {available('profiles')}")
    ap.add_argument("--conditions", default="all", help="comma list or 'all'")
    ap.add_argument("--seeds", default="42", help="comma list of ints")
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                    help=f"comma list of text variants out of {', '.join(VARIANTS)} (default: {','.join(DEFAULT_VARIANTS)})")
    ap.add_argument("--out", default=str(ROOT / "runs"), help="root of the run record")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                    help="override a param, e.g. --set model.base_model=BAAI/bge-small-en-v1.5 (repeatable)")
    ap.add_argument("--table-only", action="store_true", help="only rebuild the results table from the runs")
    ap.add_argument("--update-readme", action="store_true", help="with --table-only: rewrite README's results block")
    ap.add_argument("--log-output", action="store_true", help="echo notebook outputs to the console")
    ap.add_argument("--sweep", default=None, metavar="KEY=V1,V2,...",
                    help="one run folder per value, e.g. --sweep model.prefix_dim=16,32,64,128 --conditions v3_contrastive")
    ap.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                    help=f"fail a run whose notebook cell runs longer (default {DEFAULT_CELL_TIMEOUT}; "
                         "a paper-profile training cell may need more)")
    ap.add_argument("--refresh-references", action="store_true",
                    help="rerun 01_data (same cached dataset) to recompute every reference row, e.g. after a new one")
    ap.add_argument("--recompute-metrics", action="store_true",
                    help="rewrite every recorded run's metrics.json from its embeddings.npz with today's metrics "
                         "(no retraining), then rebuild the tables")
    ap.add_argument("--executor", default="local", choices=EXECUTORS,
                    help="local: run the notebooks here, one after another; dask: as tasks on a Dask cluster")
    ap.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="with --executor dask: the scheduler of a running cluster, e.g. tcp://HOST:8786")
    ap.add_argument("--workers", type=int, default=None, metavar="N",
                    help="with --executor dask: start a local cluster of N worker processes (default 2)")
    ap.add_argument("--threads", type=int, default=None, metavar="N",
                    help="intra-op threads of each notebook kernel (default: all cores; one per worker with "
                         "--executor dask); use 1 when anything heavy runs beside the study")
    ap.add_argument("--params", default=None, metavar="DIR",
                    help=f"another params folder (base.yaml, profiles/, conditions/) for this study and its "
                         f"notebooks (default: {PARAMS_DIR}; also ${PARAMS_ENV})")
    args = ap.parse_args(argv)
    try:
        if args.params is not None:
            use_params_dir(args.params)
        if args.recompute_metrics:
            profile_dir = Path(args.out) / args.profile
            if not profile_dir.is_dir():
                raise RunFolderError(f"{profile_dir}: no such record (check --out and --profile)")
            with StudyLock(profile_dir):
                report = recompute_metrics(profile_dir)
            runs = [r for r in report if r["kind"] == "run"]
            refs = [r for r in report if r["kind"] == "references"]
            failed = [r for r in report if r.get("failed")]
            print(f"{len(runs)} runs read, {sum(bool(r['changed']) for r in runs)} rewritten; {len(refs)} reference "
                  f"files read, {sum(bool(r['changed']) for r in refs)} rewritten"
                  + (f"; {len(failed)} could not be recomputed" if failed else ""))
            for r in failed:
                print(f"error: {r['failed']}", file=sys.stderr)
            if failed:  # the tables read every run's embeddings: they are rebuilt once the runs above are mended
                print("tables not rebuilt: retrain or move away the runs named on stderr, then run this again")
                return 1
            write_results_table(profile_dir)
            return 0
        if args.table_only:
            profile_dir = Path(args.out) / args.profile
            if args.update_readme:
                update_readme(profile_dir)
            write_results_table(profile_dir)
            print((profile_dir / "results.md").read_text())
            return 0
        overrides = parse_overrides(args.set)
        conditions = None if args.conditions == "all" else tuple(_csv(args.conditions))
        seeds = parse_seeds(args.seeds)
        _, failures = run_study(args.profile, conditions, seeds, tuple(_csv(args.variants)), args.out,
                                overrides=overrides, log_output=args.log_output,
                                refresh_references=args.refresh_references,
                                sweep=parse_sweep(args.sweep) if args.sweep is not None else None,
                                cell_timeout=args.cell_timeout, executor=args.executor, scheduler=args.scheduler,
                                workers=args.workers, threads=args.threads)
        if failures:
            return 1
    except (ParamsError, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
