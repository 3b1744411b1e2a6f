"""The study runner: papermill executes 01 per dataset, 02+03 per condition, then 04; resumable."""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd

from .config import CONDITIONS, MAX_SEED, REFERENCE_ROWS, ParamsError, available, load_params, parse_yaml
from .record import (RunFolderError, StudyLock, clear_for_rerun, notebook_problem, partial_path, run_state,
                     write_completion)
from .tables import interval_table, to_markdown, write_tables

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "smlib"
VARIANTS = ("verbatim", "disjoint")  # what a study runs unless --variants says otherwise
ALL_VARIANTS = ("verbatim", "disjoint", "heldout")  # heldout: unseen wording for validation people (opt-in)
TABLE_METRICS = ("prefix_d2h_top1", "prefix_h2d_top1", "prefix_d2h_mrr", "full_d2h_top1",
                 "triplet_acc_dating", "triplet_acc_hiring", "prefix_variance_dating", "cka@64")
INTERVAL_METRICS = ("prefix_top1", "triplet_acc_dating", "triplet_acc_hiring", "cka@64")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def study_params(condition: str, profile: str, variant: str, seed: int, overrides: dict | None = None):
    """Params of one run: the profile and condition, plus the variant, the seed and any overrides."""
    return load_params(condition, profile, overrides={"data.variant": variant, "seed": seed, **(overrides or {})})


def dataset_dir(out: Path, profile: str, variant: str, seed: int) -> Path:
    """runs/<profile>/<variant>/seed<seed>: the 01_data record and references.json."""
    return Path(out) / profile / variant / f"seed{seed}"


def run_dir(out: Path, profile: str, variant: str, seed: int, condition: str) -> Path:
    """runs/<profile>/<variant>/seed<seed>/<condition>: notebooks, metrics.json, embeddings.npz."""
    return dataset_dir(out, profile, variant, seed) / condition


def checkpoint_dir(profile: str, variant: str, seed: int, condition: str, root: Path = ROOT / "checkpoints",
                   out: Path | None = None, params_hash: str | None = None) -> Path:
    """Checkpoints live outside git, mirrored by the run layout; they belong to one out folder and one params hash.

    <root>/<out folder name>-<hash of its path>/<profile>/<variant>/seed<seed>/<condition>-<params hash>, so two
    studies with different --out or different params never share a checkpoint folder.
    """
    base = Path(root)
    if out is not None:
        resolved = str(Path(out).resolve())
        base = base / f"{Path(resolved).name}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"
    leaf = condition if params_hash is None else f"{condition}-{params_hash}"
    return base / profile / variant / f"seed{seed}" / leaf


def finished(folder: Path, params_hash: str) -> bool:
    """True if folder holds a complete run of these params (record.run_state); a foreign or corrupt record is an error."""
    return run_state(folder, params_hash)[0] == "done"


DEFAULT_CELL_TIMEOUT = 7200  # seconds one notebook cell may run before its run is failed (--cell-timeout)


def execute(notebook: str, out_path: Path, parameters: dict, log_output: bool = False,
            cell_timeout: int = DEFAULT_CELL_TIMEOUT) -> None:
    """Run a source notebook with papermill into out_path (never over the source).

    A cell that runs past cell_timeout seconds fails the notebook (papermill raises), so a hung kernel
    becomes a failed run with a message instead of a stuck study.
    """
    import papermill as pm

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out_path)  # executed under a hidden name, renamed into place when it ends
    try:
        pm.execute_notebook(str(NOTEBOOKS / notebook), str(partial), parameters=parameters, kernel_name=KERNEL,
                            cwd=str(NOTEBOOKS), log_output=log_output, progress_bar=False,
                            execution_timeout=int(cell_timeout))
    except BaseException:
        if partial.exists():  # a failed notebook is kept: it shows the failing cell (a killed one is not renamed)
            partial.replace(out_path)
        raise
    partial.replace(out_path)


def run_study(profile: str = "quick", conditions=CONDITIONS, seeds=(42,), variants=VARIANTS,
              out: str | Path = ROOT / "runs", data_root: str | Path = ROOT / "data",
              checkpoint_root: str | Path = ROOT / "checkpoints", overrides: dict | None = None,
              log_output: bool = False, refresh_references: bool = False,
              sweep: tuple[str, list] | None = None,
              cell_timeout: int = DEFAULT_CELL_TIMEOUT) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Run every (variant, seed, condition), skipping finished ones; return the summary and what failed.

    01_data runs for a (variant, seed) whose references.json is missing or lacks a reference row this
    version computes (config.REFERENCE_ROWS), or for every one with refresh_references.
    sweep=(key, values) runs each condition once per value instead, in a folder of its own named
    <condition>@<leaf key>=<value> (the value the profile already has uses the plain condition folder).
    """
    out, data_root, checkpoint_root = (Path(p).resolve() for p in (out, data_root, checkpoint_root))
    conditions = check_names(conditions, "--conditions", CONDITIONS, "condition")
    variants = check_names(variants, "--variants", ALL_VARIANTS, "variant")
    seeds = check_seeds(seeds)
    check_overrides(overrides or {})
    if isinstance(cell_timeout, bool) or not isinstance(cell_timeout, int) or not 1 <= cell_timeout <= 7 * 86400:
        raise ParamsError(f"--cell-timeout {cell_timeout!r}: expected whole seconds in 1..{7 * 86400}")
    points = {}  # (variant, seed, condition) -> [(folder name, overrides)]
    for c in conditions:  # validate every params combination before running anything
        for v in variants:
            for s in seeds:
                points[(v, s, c)] = sweep_points(c, profile, v, s, overrides, sweep)
                for _, run_overrides in points[(v, s, c)]:
                    run_params = study_params(c, profile, v, s, run_overrides)
                    check_device(run_params)
                    check_encoder(run_params)
    for path in (out, data_root, checkpoint_root):
        check_writable(path)
    with StudyLock(out / profile):  # one study writes into an out folder's profile at a time
        jobs = [(v, s, c, name) for v in variants for s in seeds for c in conditions for name, _ in points[(v, s, c)]]
        failures: list[tuple[str, str]] = []
        t_study = time.perf_counter()
        common = {"profile": profile, "data_root": str(data_root), "overrides": overrides or {}}
        for v in variants:
            for s in seeds:
                ddir = dataset_dir(out, profile, v, s)
                try:
                    stale = references_missing(ddir, study_params(conditions[0], profile, v, s, overrides).data_params())
                except RunFolderError as e:
                    failures.append((f"{v}/seed{s}/01_data", str(e)))
                    _log(f"[data] {profile}/{v}/seed{s}: FAILED: {e}")
                    continue
                if refresh_references or stale:
                    why = "" if not (ddir / "references.json").exists() else \
                        " (refreshing references)" if refresh_references else f" (references.json lacks {', '.join(stale)})"
                    _log(f"[data] {profile}/{v}/seed{s}: 01_data{why}")
                    try:
                        execute("01_data.ipynb", ddir / "01_data.ipynb",
                                {**common, "variant": v, "seed": s, "out_dir": str(ddir)}, log_output, cell_timeout)
                    except Exception as e:  # noqa: BLE001 - reported, the rest still runs
                        failures.append((f"{v}/seed{s}/01_data", _short(e)))
                        _log(f"  FAILED: {_short(e)} ({_where(ddir / '01_data.ipynb')})")
                        continue
                for c in conditions:
                    for name, run_overrides in points[(v, s, c)]:
                        i = jobs.index((v, s, c, name)) + 1
                        rdir = run_dir(out, profile, v, s, name)
                        label = f"[{i}/{len(jobs)}] {profile}/{v}/seed{s}/{name}"
                        try:
                            phash = study_params(c, profile, v, s, run_overrides).hash()
                            state, why = run_state(rdir, phash)
                            if state == "done":
                                _log(f"{label}: done before, skipped")
                                continue
                            if state == "incomplete":
                                _log(f"{label}: incomplete ({why}), redoing it")
                                clear_for_rerun(rdir)
                            t0 = time.perf_counter()
                            ckpt = checkpoint_dir(profile, v, s, name, checkpoint_root, out, phash)
                            nb = {**common, "overrides": run_overrides, "condition": c, "variant": v, "seed": s,
                                  "checkpoint_dir": str(ckpt), "out_dir": str(rdir)}
                            _log(f"{label}: 02_train")
                            execute("02_train.ipynb", rdir / "02_train.ipynb", nb, log_output, cell_timeout)
                            _log(f"{label}: 03_evaluate")
                            execute("03_evaluate.ipynb", rdir / "03_evaluate.ipynb", nb, log_output, cell_timeout)
                            write_completion(rdir, phash)  # last: the run is done only once this exists
                            _log(f"{label}: finished in {time.perf_counter() - t0:.0f} s")
                        except Exception as e:  # noqa: BLE001 - reported, the rest still runs
                            failures.append((f"{v}/seed{s}/{name}", _short(e)))
                            _log(f"{label}: FAILED: {_short(e)} ({_where(rdir / '02_train.ipynb', rdir / '03_evaluate.ipynb')})")
        profile_dir = Path(out) / profile
        try:
            execute("04_figures.ipynb", profile_dir / "04_figures.ipynb",
                    {"runs_dir": str(profile_dir), "seed": seeds[0], "save_figures": True}, log_output, cell_timeout)
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
    """The nearest existing folder of path must be writable, or the study would fail after writing part of it."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ParamsError(f"{path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParamsError(f"{path}: {existing} is not writable")


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
        leaf = key.split(".")[-1]
        name = condition if value == current else f"{condition}@{leaf}={value}"
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


def collect_results(profile_dir: str | Path) -> pd.DataFrame:
    """One row per (variant, condition, seed) from every metrics.json and references.json under a profile."""
    profile_dir = Path(profile_dir)
    records = []
    datasets = {}  # dataset folder -> the data params its references.json was made for
    for path in sorted(profile_dir.glob("*/seed*/references.json")):
        try:
            datasets[path.parent] = json.loads(path.read_text()).get("data_params")
        except (json.JSONDecodeError, AttributeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
    for path in sorted(profile_dir.glob("*/seed*/*/metrics.json")):
        try:
            r = json.loads(path.read_text())
            name = path.parent.name  # a sweep point's folder, e.g. v3_contrastive@prefix_dim=16, names its row
            condition = name if name.startswith(f"{r['condition']}@") else r["condition"]
            records.append({"variant": r["variant"], "condition": condition, "seed": r["seed"], **r["metrics"]})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
        ref = datasets.get(path.parent.parent)
        if ref is not None and "params" in r and {"seed": r["params"].get("seed"), "data": r["params"].get("data")} != ref:
            raise RunFolderError(f"{path} was trained on another dataset than {path.parent.parent / 'references.json'} "
                                 "describes (its data params or seed differ): one table would mix two datasets; "
                                 "rerun that dataset's runs into another --out")
    for path in sorted(profile_dir.glob("*/seed*/references.json")):
        try:
            rows = json.loads(path.read_text())["rows"]
            for row in rows:
                missing = [k for k in ("variant", "condition", "seed") if k not in row]
                if missing:
                    raise KeyError(f"a row lacks {missing}")
            records += rows
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path} is corrupted ({e})") from None
    if not records:
        raise RunFolderError(f"no results under {profile_dir}: run `python -m smlib.study --profile "
                             f"{profile_dir.name}` first")
    order = {v: i for i, v in enumerate(ALL_VARIANTS)}
    frame = pd.DataFrame(sorted(records, key=lambda r: order.get(r["variant"], len(order))))
    if {"prefix_d2h_top1", "prefix_h2d_top1"} <= set(frame.columns):  # the headline: both directions
        frame["prefix_top1"] = (frame["prefix_d2h_top1"] + frame["prefix_h2d_top1"]) / 2
    return frame[["variant", "condition", "seed"] + [c for c in frame.columns if c not in ("variant", "condition", "seed")]]


def write_results_table(profile_dir: str | Path) -> pd.DataFrame:
    """results.csv/.tex (mean ± std over seeds, with 95% t-intervals in the CSV) and results.md under the profile."""
    profile_dir = Path(profile_dir)
    everything = collect_results(profile_dir)
    everything.to_csv(profile_dir / "results_long.csv", index=False)
    swept = everything["condition"].str.contains("@", regex=False)
    frame = everything[~swept]
    metrics = [m for m in TABLE_METRICS if m in frame.columns]
    summary = write_tables(frame, metrics, profile_dir, "results",
                           caption=f"shared-matryoshka, profile {profile_dir.name}: validation people")
    text = results_markdown(frame, summary)
    if swept.any():
        sweep_summary = write_tables(everything[swept], metrics, profile_dir, "results_sweep",
                                     caption=f"shared-matryoshka, profile {profile_dir.name}: sweep runs")
        text += ("\nSweep runs (one folder per value, `--sweep`); the value the profile already has is the "
                 f"condition's own row above.\n\n{to_markdown(sweep_summary)}")
    paired = paired_table(profile_dir)
    if paired is not None:
        paired.to_csv(profile_dir / "paired_differences.csv", index=False)
        text += paired_markdown(paired)
    (profile_dir / "results.md").write_text(text)
    return summary


def paired_table(profile_dir: Path) -> pd.DataFrame | None:
    """analysis.paired_differences of the record, or None where no run saved its embeddings."""
    from .analysis import paired_differences

    try:
        return paired_differences(profile_dir)
    except FileNotFoundError:
        return None


def paired_markdown(paired: pd.DataFrame) -> str:
    """One row per method, one column per (variant, baseline): 'diff [low, high]' of prefix top-1."""
    if paired.empty:
        return ""
    cols = {}
    for (variant, role), g in paired.groupby(["variant", "vs_role"], sort=False):
        vs = g["vs"].iloc[0]
        cols[f"{variant}: minus {vs}" + (" (best reference)" if role == "best reference" else "")] = {
            r.method: f"{r.diff:+.3f} (no spread: every resample equal)" if r.degenerate
            else f"{r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}]" for r in g.itertuples()}
    from .analysis import _ordered

    methods = _ordered(paired["method"].unique())
    table = pd.DataFrame({"method": methods, **{c: [v.get(m, "-") for m in methods] for c, v in cols.items()}})
    lines = ["| " + " | ".join(table.columns) + " |", "|---|" + "---:|" * (len(table.columns) - 1)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in table.itertuples(index=False)]
    n_seeds = int(paired["n_seeds"].max())
    return ("\nPaired differences in prefix top-1 (mean of both directions): method minus the proposed condition "
            "and minus the variant's best reference matcher, with 95% intervals from a paired bootstrap over "
            f"validation people{' and seeds' if n_seeds > 1 else ''} (n = {n_seeds} seed{'s' if n_seeds > 1 else ''}). "
            "An interval that excludes 0 is a resolved difference; any other is not resolved.\n\n"
            + "\n".join(lines) + "\n")


def results_markdown(frame: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    """The mean ± std table, then the headline metrics with 95% t-intervals over seeds."""
    from .tables import summarize

    summary = summary if summary is not None else summarize(frame, [m for m in TABLE_METRICS if m in frame])
    seeds = sorted(int(s) for s in frame["seed"].dropna().unique())
    text = (f"Mean ± std over seeds {', '.join(map(str, seeds))} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}; "
            f"reference rows use the data of each seed).\n\n{to_markdown(summary)}")
    headline = [m for m in INTERVAL_METRICS if m in frame.columns]
    if headline and len(seeds) > 1:
        intervals = interval_table(summarize(frame, headline), headline)
        text += ("\nMean and 95% t-interval over seeds; `prefix_top1` is the mean of both directions "
                 f"(dating→hiring, hiring→dating).\n\n{to_markdown(intervals)}")
    return text


def update_readme(profile_dir: str | Path, readme: str | Path = ROOT / "README.md") -> None:
    """Replace the README's results block with the table generated from runs/<profile>."""
    profile_dir = Path(profile_dir)
    summary = write_results_table(profile_dir)
    readme = Path(readme)
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise RuntimeError(f"{readme} has no {README_START} ... {README_END} block")
    out = profile_dir.resolve().parent
    out_flag = "" if out == (ROOT / "runs").resolve() else f" --out {_relative(out)}"
    block = (f"{README_START}\n<!-- generated by `python -m smlib.study --table-only --profile {profile_dir.name}{out_flag}"
             f" --update-readme`; do not edit by hand -->\n\n{(profile_dir / 'results.md').read_text().strip()}\n\n{README_END}")
    readme.write_text(re.sub(re.escape(README_START) + ".*?" + re.escape(README_END), lambda _: block, text,
                             flags=re.S))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


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
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma list of text variants out of {', '.join(ALL_VARIANTS)} (default: {','.join(VARIANTS)})")
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
    args = ap.parse_args(argv)
    try:
        if args.table_only:
            profile_dir = Path(args.out) / args.profile
            if args.update_readme:
                update_readme(profile_dir)
            write_results_table(profile_dir)
            print((profile_dir / "results.md").read_text())
            return 0
        overrides = parse_overrides(args.set)
        conditions = CONDITIONS if args.conditions == "all" else tuple(_csv(args.conditions))
        seeds = parse_seeds(args.seeds)
        _, failures = run_study(args.profile, conditions, seeds, tuple(_csv(args.variants)), args.out,
                                overrides=overrides, log_output=args.log_output,
                                refresh_references=args.refresh_references,
                                sweep=parse_sweep(args.sweep) if args.sweep is not None else None,
                                cell_timeout=args.cell_timeout)
        if failures:
            return 1
    except (ParamsError, RunFolderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
