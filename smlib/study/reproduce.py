"""`python -m smlib.study --reproduce`: retrain seeds of the committed record into a fresh folder and compare.

The committed record (`--against`, default runs/) is only read. The reproduction trains into `--out` (default
runs-reproduced/, git-ignored) from cold caches of its own (<out>/.cache: datasets, trunk states, checkpoints),
so nothing the committed study left on this machine is reused; an interrupted reproduction resumes like any study.
Its comparison (smlib.compare) is written beside the reproduced profile: comparison.md, comparison.csv,
comparison.json (the verdicts).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..compare import verdicts, write_comparison
from ..config import REFERENCE_ROWS, import_study_modules
from ..config import conditions as all_conditions
from ..config import variants as registered_variants
from ..record import RunFolderError, dataset_in, is_sweep_run, iter_runs
from ..trunk_cache import CACHE_ENV
from .notebooks import ROOT
from .run import StudyOptions, run_study

DEFAULT_OUT = ROOT / "runs-reproduced"
CACHE = ".cache"  # <out>/.cache: the reproduction's own data, trunk cache and checkpoints


def _same_or_inside(path: Path, other: Path) -> bool:
    return path == other or other in path.parents or path in other.parents


def check_reproduce(profile: str, out: str | Path, against: str | Path) -> tuple[Path, Path]:
    """(committed profile folder, reproduced profile folder); refuses a committed record with no run of the
    profile, and an out folder that is, holds or lies in the committed record (it would be trained into)."""
    out, against = Path(out).resolve(), Path(against).resolve()
    committed = against / profile
    if not committed.is_dir() or not any(iter_runs(committed, "metrics.json", sweeps=False)):
        swept = committed.is_dir() and any(iter_runs(committed, "metrics.json"))
        raise RunFolderError(f"--against {against}: no recorded run of profile {profile!r} to reproduce "
                             + ("(it holds sweep points only, and a reproduction retrains the conditions' own runs)"
                                if swept else f"(expected {committed}/<variant>/seed<N>/<condition>/metrics.json)"))
    if _same_or_inside(out, against):
        raise RunFolderError(f"--out {out} is or overlaps the committed record {against}: a reproduction trains "
                             "into a folder of its own (default runs-reproduced/)")
    return committed, out / profile


def reproduce(options: StudyOptions, against: str | Path = ROOT / "runs") -> tuple[dict, list]:
    """Train and evaluate the seeds x variants x conditions (None: all) of options.profile into options.out from
    cold caches, then write and print the comparison with the committed record `against`. Returns (verdict per
    variant, failures)."""
    profile, out, seeds, conditions = options.profile, options.out, options.seeds, options.conditions
    import_study_modules(options.profile, options.conditions, options.overrides)  # a variant they register counts
    variants = options.variants if options.variants is not None else registered_variants(default_only=True)
    committed, reproduced = check_reproduce(profile, out, against)
    for seed in seeds:
        for variant in variants:
            folder = dataset_in(committed, variant, seed)
            if not any(not is_sweep_run(m.parent.name) for m in folder.glob("*/metrics.json")):
                raise RunFolderError(f"{committed}: the committed record has no {variant} seed {seed} to compare "
                                     "with (check --seeds and --variants; sweep points are not reproduced)")
    cache = Path(out).resolve() / CACHE
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(cache)  # the trunk cache of this process and of every notebook kernel it starts
    try:
        _, failures = run_study(options, data_root=cache / "data", checkpoint_root=cache / "checkpoints")
    finally:
        if before is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = before
    asked = list(all_conditions() if conditions is None else conditions) + list(REFERENCE_ROWS)
    frame, text = write_comparison(committed, reproduced, seeds, variants, conditions=asked)
    print(text)
    print(f"comparison written to {reproduced / 'comparison.md'} (and comparison.csv, comparison.json)")
    return verdicts(frame), failures
