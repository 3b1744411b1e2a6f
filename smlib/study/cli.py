"""The command line: python -m smlib.study --profile quick [--conditions a,b] [--seeds 42,43] [--variants ...]."""
from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from pathlib import Path

from .. import writetrace
from ..atomic import RecordWriteError
from ..config import PARAMS_DIR, PARAMS_ENV, ParamsError, available, parse_yaml, variants
from ..recompute import recompute_metrics
from ..record import RunFolderError, StudyLock
from ..tables import update_readme, write_results_table
from .notebooks import DEFAULT_CELL_TIMEOUT, ROOT
from .plan import EXECUTORS, check_overrides, check_seeds, parse_sweep
from .reproduce import DEFAULT_OUT, reproduce
from .run import PROGRESS, StudyOptions, run_study, stop_kernels


def use_params_dir(folder: str | Path) -> Path:
    """Point every params load of this process and of the notebooks it runs at folder ($SMLIB_PARAMS_DIR)."""
    import os

    folder = Path(folder).resolve()
    missing = [name for name in ("base.yaml", "profiles", "conditions") if not (folder / name).exists()]
    if missing:
        raise ParamsError(f"--params {folder}: not a params folder (it lacks {', '.join(missing)})")
    os.environ[PARAMS_ENV] = str(folder)
    return folder


def _csv(value: str) -> list[str]:
    """'a, b' -> ['a', 'b']; an empty item (',', 'a,,b') stays, as '', so the checks can refuse it."""
    items = [v.strip() for v in value.split(",")]
    return [] if items == [""] else items


class _Parser(argparse.ArgumentParser):
    """argparse with one-line refusals (exit 2), like every other refusal of the runner."""

    def error(self, message: str):
        print(f"error: {message} (see python -m smlib.study --help)", file=sys.stderr)
        sys.exit(2)


def _csv_or_none(value: str | None) -> tuple[str, ...] | None:
    """A comma list flag's names, or None where the flag was not given (the runner then takes its default, after
    the params' imports are in)."""
    return None if value is None else tuple(_csv(value))


def parse_overrides(items: list[str]) -> dict:
    """--set KEY=VALUE items -> {dotted key: value}; values are YAML (1e-4 reads as a number)."""
    overrides: dict = {}
    leaves: set[str] = set()  # every dotted key set, a mapping value counted by its leaves
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set train.lr=1e-4")
        value = parse_yaml(value, f"--set {item!r}")
        for leaf in _leaves(key, value):
            clash = next((k for k in leaves if k == leaf or k.startswith(leaf + ".") or leaf.startswith(k + ".")), None)
            if clash is not None:
                raise ParamsError(f"--set {leaf}: given twice" + ("" if clash == leaf else f" (also as {clash})"))
            leaves.add(leaf)
        overrides[key] = value
    check_overrides(overrides)
    return overrides


def _leaves(key: str, value) -> list[str]:
    """'train', {'lr': 1, 'x': {'y': 2}} -> ['train.lr', 'train.x.y']; a plain value is its own key."""
    if not isinstance(value, dict) or not value:
        return [key]
    return [leaf for k, v in value.items() for leaf in _leaves(f"{key}.{k}", v)]


def parse_seeds(text: str) -> tuple[int, ...]:
    """'42,43' -> (42, 43), each an integer in 0..2^32-1, distinct, at least one."""
    seeds = []
    for raw in _csv(text):
        if not re.fullmatch(r"[+-]?[0-9]+", raw):
            raise ParamsError(f"--seeds {text!r}: {raw!r} is not an integer (expected e.g. --seeds 42,43,44)")
        seeds.append(int(raw))
    return check_seeds(seeds)


# What each mode reads besides --profile, --out and --params; a flag given to a mode that ignores it is refused.
MODE_FLAGS = {
    "table_only": {"update_readme"},
    "recompute_metrics": set(),
}
RUN_ONLY = ("conditions", "seeds", "variants", "set", "log_output", "sweep", "cell_timeout", "refresh_references",
            "executor", "scheduler", "workers", "threads", "update_readme", "against")


def refuse_idle_flags(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """One refusal for flags that conflict (two modes) or would do nothing in the mode asked for."""
    modes = [m for m in ("table_only", "recompute_metrics", "reproduce") if getattr(args, m)]
    flag = {m: "--" + m.replace("_", "-") for m in (*MODE_FLAGS, "reproduce", *RUN_ONLY)}
    if len(modes) > 1:
        ap.error(f"{' and '.join(flag[m] for m in modes)} exclude each other: give one")
    given = [d for d in RUN_ONLY if getattr(args, d) != ap.get_default(d)]
    if modes and modes[0] in MODE_FLAGS:
        idle = [d for d in given if d not in MODE_FLAGS[modes[0]]]
        if idle:
            ap.error(f"{flag[modes[0]]} only reads the record: {', '.join(flag[d] for d in idle)} would do nothing")
    elif "update_readme" in given:
        ap.error("--update-readme works with --table-only (it rewrites the README blocks from the tables)")


def _available(kind: str) -> list[str]:
    """For the help text: the names on disk, or none where the params folder is missing (named when it is used)."""
    try:
        return available(kind)
    except ParamsError:
        return []


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM (a scheduler, `timeout`) during a study: unwinds it like Ctrl-C does."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_QUIET: list[int] = []  # the real stderr while an interrupt unwinds the study (restored for its one line)


def _interrupt(signum, frame):
    if not _QUIET:  # what the unwinding libraries say of the kernels stopped under them is not the user's news
        sys.stderr.flush()
        _QUIET.append(os.dup(2))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    stop_kernels()  # first: a kernel left running while the study unwinds writes its own tracebacks
    raise StudyInterrupted(signum)


def _speak_again() -> None:
    """Give stderr back after an interrupt quieted it."""
    if _QUIET:
        sys.stderr.flush()
        os.dup2(_QUIET[0], 2)
        os.close(_QUIET.pop())


def main(argv=None) -> int:
    """Command line: python -m smlib.study --profile quick [--conditions a,b] [--seeds 42,43] [--variants ...].

    Ctrl-C or SIGTERM stops the study with one line (what was running, how many runs had finished, that the same
    command resumes), its kernels stopped and its lock released; exit 130 or 143."""
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    writetrace.install()  # only where the crash test's environment asks
    PROGRESS.__init__(current="the command")
    try:
        return _main(argv)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        stop_kernels()
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # not the cells cut short by the stop, at exit
        _speak_again()
        print(f"\ninterrupted ({signal.Signals(signum).name}) during {PROGRESS.current}: {PROGRESS.finished} of "
              f"{PROGRESS.total} runs finished; run the same command again to resume", file=sys.stderr)
        return 128 + signum
    finally:
        _speak_again()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def study_options(args) -> StudyOptions:
    """The parsed flags of a run or a reproduction as the runner's options."""
    return StudyOptions(profile=args.profile, conditions=None if args.conditions == "all" else tuple(_csv(args.conditions)),
                        seeds=parse_seeds(args.seeds), variants=_csv_or_none(args.variants), out=args.out,
                        overrides=parse_overrides(args.set), log_output=args.log_output,
                        refresh_references=args.refresh_references,
                        sweep=parse_sweep(args.sweep) if args.sweep is not None else None,
                        cell_timeout=args.cell_timeout, executor=args.executor, scheduler=args.scheduler,
                        workers=args.workers, threads=args.threads)


def run_mode(options: StudyOptions) -> int:
    """The study itself: train and evaluate what the record lacks, then 04 and the tables."""
    _, failures = run_study(options)
    return 1 if failures else 0


def reproduce_mode(options: StudyOptions, against: str) -> int:
    """--reproduce: the profile's runs retrained from cold caches into options.out, compared with `against`."""
    _, failures = reproduce(options, against)
    return 1 if failures else 0


def _existing(profile_dir: Path) -> Path:
    """profile_dir, which a mode that only reads the record needs to exist (its lock would create it)."""
    if not profile_dir.is_dir():
        raise RunFolderError(f"{profile_dir}: no such record (check --out and --profile)")
    return profile_dir


def table_only_mode(profile_dir: Path, update: bool) -> int:
    """--table-only: the tables (and with update, the README blocks) rebuilt from the record, nothing trained."""
    with StudyLock(_existing(profile_dir)):  # no study writes the runs or the tables meanwhile
        if update:
            update_readme(profile_dir)  # writes the tables, then the README blocks from them
        else:
            write_results_table(profile_dir)
        print((profile_dir / "results.md").read_text())
    return 0


def recompute_mode(profile_dir: Path) -> int:
    """--recompute-metrics: every recorded run's metrics.json from its embeddings.npz, then the tables."""
    with StudyLock(_existing(profile_dir)):
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


def _main(argv=None) -> int:
    """main, before interrupts are read."""
    prog = "smlib-study" if Path(sys.argv[0]).name == "smlib-study" else "python -m smlib.study"  # the console script
    ap = _Parser(prog=prog, description="Run the study: papermill executes 01 per dataset, "
                 "02+03 per condition, then 04; resumable.")
    ap.add_argument("--profile", default="quick", help=f"one of {_available('profiles')}")
    ap.add_argument("--conditions", default="all", help="comma list or 'all'")
    ap.add_argument("--seeds", default="42", help="comma list of ints")
    ap.add_argument("--variants", default=None,
                    help=f"comma list of text variants out of {', '.join(variants())}, or one a module under the "
                         f"params' imports registers (default: {','.join(variants(default_only=True))})")
    ap.add_argument("--out", default=None, help="root of the run record (default: runs/; with --reproduce: "
                    "runs-reproduced/)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                    help="override a param, e.g. --set model.base_model=BAAI/bge-small-en-v1.5 (repeatable)")
    ap.add_argument("--table-only", action="store_true", help="only rebuild the results table from the runs")
    ap.add_argument("--update-readme", action="store_true",
                    help="with --table-only: rewrite README.md's answer and runs/<profile>/README.md's tables")
    ap.add_argument("--log-output", action="store_true", help="echo notebook outputs to the console")
    ap.add_argument("--sweep", default=None, action="append", metavar="KEY=V1,V2,...",
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
    ap.add_argument("--reproduce", action="store_true",
                    help="retrain --seeds x --variants (x --conditions) of the committed record (--against) into "
                         "--out from cold caches, then write and print how far each headline metric lands from it")
    ap.add_argument("--against", default=str(ROOT / "runs"), metavar="DIR",
                    help="with --reproduce: the root of the committed record compared with (default: runs/)")
    args = ap.parse_args(argv)
    if args.sweep is not None:
        if len(args.sweep) > 1:
            ap.error(f"--sweep given {len(args.sweep)} times: a study sweeps one key (run one study per key)")
        args.sweep = args.sweep[0]
    if args.reproduce:
        clash = [flag for flag, on in (("--table-only", args.table_only), ("--recompute-metrics", args.recompute_metrics),
                                       ("--refresh-references", args.refresh_references),
                                       ("--sweep", args.sweep is not None)) if on]
        if clash:
            ap.error(f"--reproduce retrains the profile's own runs; it does not combine with {', '.join(clash)}")
    elif args.against != str(ROOT / "runs"):
        ap.error("--against is read only with --reproduce")
    refuse_idle_flags(ap, args)
    args.out = args.out or str(DEFAULT_OUT if args.reproduce else ROOT / "runs")
    try:
        if args.params is not None:
            use_params_dir(args.params)
        if args.recompute_metrics:
            return recompute_mode(Path(args.out) / args.profile)
        if args.table_only:
            return table_only_mode(Path(args.out) / args.profile, args.update_readme)
        if args.reproduce:
            return reproduce_mode(study_options(args), args.against)
        return run_mode(study_options(args))
    except (ParamsError, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RecordWriteError as e:  # a full disk: the file that could not be written, the space left
        print(f"error: {e.strerror}", file=sys.stderr)
        return 1
    return 0
