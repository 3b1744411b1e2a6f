"""Planning a study: every flag and params combination checked, then a frozen StudyPlan of Job records.

Nothing is written while a plan is made: a bad flag, params file or folder is one ParamsError.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import MAX_SEED, ParamsError, parse_yaml, study_params, sweep_run_name
from ..config import conditions as available_conditions
from ..config import variants as registered_variants
from ..record import checkpoint_dir, dataset_dir, run_dir
from .notebooks import DEFAULT_CELL_TIMEOUT, check_kernel, execute


@dataclass(frozen=True)
class Job:
    """One run folder: a condition (or one sweep point of it) on one (variant, seed) dataset."""

    variant: str
    seed: int
    condition: str
    name: str  # the run folder: the condition, or <condition>@<key>=<value> for a sweep point
    overrides: tuple  # ((dotted key, value), ...) on top of the study's own

    @property
    def override_dict(self) -> dict:
        return dict(self.overrides)

    def params(self, profile: str):
        return study_params(self.condition, profile, self.variant, self.seed, self.override_dict)


@dataclass(frozen=True)
class StudyPlan:
    """What a study will run and how, every params combination already validated."""

    profile: str
    conditions: tuple[str, ...]
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    jobs: tuple[Job, ...]  # in run order: variant, seed, condition, sweep point
    out: Path
    data_root: Path
    checkpoint_root: Path
    overrides: tuple = ()  # the study's --set overrides, ((key, value), ...)
    refresh_references: bool = False
    cell_timeout: int = DEFAULT_CELL_TIMEOUT
    log_output: bool = False
    threads: int | None = None
    # what every task calls to run a notebook: (notebook, output path, parameters, log_output, cell_timeout, threads)
    run_notebook: Callable = execute

    def dataset_params(self, variant: str, seed: int):
        """The params a dataset is built from (the data section does not depend on the condition)."""
        return study_params(self.conditions[0], self.profile, variant, seed, dict(self.overrides))

    def dataset_dir(self, variant: str, seed: int) -> Path:
        return dataset_dir(self.out, self.profile, variant, seed)

    def run_dir(self, job: Job) -> Path:
        return run_dir(self.out, self.profile, job.variant, job.seed, job.name)

    def checkpoint_dir(self, job: Job, params_hash: str) -> Path:
        return checkpoint_dir(self.profile, job.variant, job.seed, job.name, self.checkpoint_root, self.out,
                              params_hash)


def plan_study(profile: str, conditions, seeds, variants, overrides: dict | None, sweep=None,
               cell_timeout: int = DEFAULT_CELL_TIMEOUT, paths: tuple[Path, ...] = (), *,
               refresh_references: bool = False, log_output: bool = False, threads: int | None = None,
               run_notebook: Callable = execute) -> StudyPlan:
    """Check every flag and every params combination, the device, the encoder and the folders; nothing is written.

    paths: (out, data_root, checkpoint_root); given, each must be writable and every folder of the plan is
    built (and so checked to lie inside its root) before anything runs.
    """
    known = available_conditions()
    conditions = check_names(known if conditions is None else conditions, "--conditions", known, "condition")
    variants = check_names(variants, "--variants", registered_variants(), "variant")
    seeds = check_seeds(seeds)
    check_overrides(overrides or {})
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or not 1 <= cell_timeout <= 7 * 86400:
        raise ParamsError(f"--cell-timeout {cell_timeout!r}: expected whole seconds in 1..{7 * 86400}")
    threads = check_threads(threads)
    overrides = absolute_paths(study_params(conditions[0], profile, variants[0], seeds[0], overrides), overrides)
    points, batchable = {}, {}
    for c in conditions:
        for v in variants:
            for s in seeds:
                points[(v, s, c)] = [(name, absolute_paths(study_params(c, profile, v, s, run_overrides), run_overrides))
                                     for name, run_overrides in sweep_points(c, profile, v, s, overrides, sweep)]
                for _, run_overrides in points[(v, s, c)]:
                    run_params = study_params(c, profile, v, s, run_overrides)
                    check_device(run_params)
                    check_encoder(run_params)
                    check_batches(run_params, batchable)
    for path in paths:
        check_writable(path)
    if paths:
        check_kernel()
    jobs = tuple(Job(v, s, c, name, tuple(run_overrides.items())) for v in variants for s in seeds
                 for c in conditions for name, run_overrides in points[(v, s, c)])
    out, data_root, checkpoint_root = (Path(p) for p in paths) if paths else (Path("runs"), Path("data"),
                                                                             Path("checkpoints"))
    plan = StudyPlan(profile, conditions, variants, seeds, jobs, out, data_root, checkpoint_root,
                     tuple((overrides or {}).items()), refresh_references, cell_timeout, log_output, threads,
                     run_notebook)
    if paths:  # every folder the study will write, each provably inside its root (within() refuses otherwise)
        for job in jobs:
            check_writable(plan.run_dir(job))
            check_writable(plan.checkpoint_dir(job, "0" * 12))
    return plan


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
        raise ParamsError("--executor dask needs the distributed package: pip install -e '.[dask]' "
                          "(the test extra includes it)") from None


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
    from ..config import encoder_limits

    name = params.model.base_model
    if encoder_limits(name) is not None:  # tiny, an installed bundled encoder, or a readable config.json
        return
    if name == "bundled":
        from ..models.encoder import bundled_model_path

        try:
            bundled_model_path()  # says why: not installed (with the command), or its files are missing
        except RuntimeError as e:
            raise ParamsError(f"model.base_model=bundled: {e}") from None
    raise ParamsError(f"model.base_model={name!r}: neither a local folder with a config.json nor a model in "
                          "the local Hugging Face cache (nothing is downloaded at run time)")


def absolute_paths(params, overrides: dict | None) -> dict:
    """overrides with every local path of the params made absolute (model.base_model, where it names a folder):
    the notebooks run in notebooks/, not where the command was given, and the run records the folder it used."""
    overrides = dict(overrides or {})
    name = params.model.base_model
    if name not in ("tiny", "bundled") and not Path(name).is_absolute() and (Path(name) / "config.json").is_file():
        overrides["model.base_model"] = str(Path(name).resolve())
    return overrides


def check_batches(params, seen: dict | None = None) -> None:
    """Training these params' dataset can form a batch of every kind it draws (data.batch_problem), or one ParamsError
    naming the key; seen caches the answer per dataset and schedule."""
    from ..data.dataset import batch_problem

    key = json.dumps([params.data_params(), params.train.domains, params.loss.cross_domain], sort_keys=True)
    seen = {} if seen is None else seen
    if key not in seen:
        seen[key] = batch_problem(params)
    if seen[key]:
        raise ParamsError(f"{seen[key]} (variant {params.data.variant}, seed {params.seed})")


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
