"""Recomputing a record: every run's metrics.json from its embeddings.npz and every dataset's reference rows from
reference_sims.npz, with today's registered metrics; nothing is retrained. check_adoptable: whether a run folder
from before completion records holds the metrics its embeddings give."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import atomic
from .config import params_from_dict
from .evaluation import load_embeddings, one_line, strict_json_record
from .record import (
    COMPLETION,
    RunFolderError,
    check_run,
    import_recorded,
    iter_datasets,
    iter_runs,
    run_state,
    write_completion,
)
from .references import from_similarity
from .run_metrics import cross_domain_metrics, metrics_from_embeddings


def recompute_metrics(profile_dir: str | Path, log=print) -> list[dict]:
    """Rewrite metrics.json of every complete run under profile_dir (sweeps included) from its embeddings.npz
    with today's metrics, and its completion record; nothing is retrained. Returns one entry per run: its
    folder and the metrics that changed (added, removed, or a different value) with old and new values; then one
    entry per dataset whose reference rows were recomputed from reference_sims.npz (kind "references").

    A run that is not complete (record.run_state) is left alone and reported ("skipped"); one whose files are
    corrupted (even if they were so when the run was recorded) is left alone too and reported with one line
    naming the run and the file ("failed"); every other run is still recomputed.
    """
    report = []
    for _, _, _, path in iter_runs(profile_dir, "metrics.json"):
        try:
            entry = _recompute_run(path, log)
        except RunFolderError as e:
            entry = {"run": str(path.parent), "kind": "run", "failed": str(e), "changed": {}}
            log(f"FAILED {e}")
        report.append(entry)
    for _, _, path in iter_datasets(profile_dir, "references.json"):
        try:
            report.append(_recompute_references(path, log))
        except RunFolderError as e:
            report.append({"run": str(path), "kind": "references", "failed": str(e), "changed": {}})
            log(f"FAILED {e}")
    return report


def _recompute_run(path: Path, log) -> dict:
    """recompute_metrics for one run's metrics.json; RunFolderError (one line, naming the file) if it cannot."""
    folder = path.parent
    try:
        record = json.loads(path.read_text())
        import_recorded(record, path)
        params = params_from_dict(record["params"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise RunFolderError(f"{path} is corrupted ({one_line(e)}); nothing of it was rewritten") from None
    state, why = run_state(folder, params.hash(), adopt=check_adoptable)
    if state != "done":
        log(f"{folder}: skipped, not a complete run ({why})")
        return {"run": str(folder), "kind": "run", "skipped": why, "changed": {}}
    new = _metrics_of(folder, params)
    new_record = strict_json_record({**{k: v for k, v in record.items() if k != "non_finite_metrics"},
                                     "metrics": new})
    old = record["metrics"]
    changed = {k: (old.get(k), new_record["metrics"].get(k)) for k in sorted(set(old) | set(new))
               if not _same(old.get(k), new_record["metrics"].get(k))}
    if changed:
        atomic.write_text(path, json.dumps(new_record, indent=2, sort_keys=True, allow_nan=False))
        write_completion(folder, params.hash())
    log(f"{folder}: {len(changed)} metric(s) changed" + (f" ({', '.join(changed)})" if changed else ""))
    return {"run": str(folder), "kind": "run", "changed": changed}


def _metrics_of(folder: Path, params) -> dict:
    """Every registered metric of a run from its embeddings.npz (RunFolderError naming the file if unreadable)."""
    emb = load_embeddings(folder / "embeddings.npz")
    return metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)


def check_adoptable(folder: str | Path, shown: int = 3) -> None:
    """Refuse (RunFolderError, nothing written) to adopt a run folder without a completion record unless every
    metric its metrics.json records is what its embeddings.npz gives today (to SAME_TOLERANCE), recomputed with
    the params metrics.json records; the error names the first `shown` that differ, recorded and recomputed.

    Metrics registered since the run was recorded (absent from metrics.json) are not a difference; a recorded
    metric that today's metrics do not compute cannot be checked, and is one.
    """
    folder = Path(folder)
    path = folder / "metrics.json"
    advice = "move the folder away to rerun this condition"
    try:
        record = json.loads(path.read_text())
        import_recorded(record, path)
        params = params_from_dict(record["params"])
        old = record["metrics"]
        if not isinstance(old, dict):
            raise TypeError("its metrics are not a mapping")
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise RunFolderError(f"{folder}: not adopted as a completed run, its metrics.json is corrupted or records no "
                             f"params ({one_line(e)}); {advice}") from None
    try:
        new = strict_json_record({"metrics": _metrics_of(folder, params)})["metrics"]
    except RunFolderError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever stops the recompute, the record cannot be proved
        raise RunFolderError(f"{folder}: not adopted as a completed run, its metrics cannot be recomputed from "
                             f"embeddings.npz ({one_line(e)}); {advice}") from None
    differ = [k for k in sorted(old) if not _same(old[k], new.get(k))]
    if differ:
        cells = [f"{k} recorded {old[k]!r}, " + (f"recomputed {new[k]!r}" if k in new else "not computed today")
                 for k in differ[:shown]]
        more = f" and {len(differ) - shown} more" if len(differ) > shown else ""
        raise RunFolderError(f"{folder}: not adopted as a completed run (it has no {COMPLETION}): its metrics.json "
                             f"differs from its embeddings.npz in {'; '.join(cells)}{more}; {advice}")


def _recompute_references(path: Path, log) -> dict:
    """Recompute the retrieval metrics of a dataset's reference rows from reference_sims.npz (every matcher saved
    there; for zero_shot only its prefix_* keys, the rest of its row needs embeddings that are not kept), with
    the eval params of a run of that dataset. Rows without saved similarities (chance, ceiling) stay as they are."""
    run = next((p for p in sorted(path.parent.glob("*/metrics.json")) if _intact(p.parent)), None)  # eval params
    sims_path = path.parent / "reference_sims.npz"
    if run is None or not sims_path.exists():
        why = "no completed run of this dataset to take eval params from" if run is None else "no reference_sims.npz"
        log(f"{path}: skipped ({why})")
        return {"run": str(path), "kind": "references", "skipped": "no eval params or similarities", "changed": {}}
    try:
        saved = json.loads(path.read_text())
        run_record = json.loads(run.read_text())
        import_recorded(run_record, run)
        params = params_from_dict(run_record["params"])
        with np.load(sims_path) as z:
            sims = {k: torch.from_numpy(z[k]) for k in z.files if k != "person_ids"}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise RunFolderError(f"{path} or its similarities are corrupted ({one_line(e)}); nothing of it was "
                             "rewritten") from None
    changed = {}
    for row in saved["rows"]:
        name = row["condition"]
        if name not in sims:
            continue
        if name == "zero_shot":
            new = cross_domain_metrics(sims[name], None, params.eval.bootstrap_resamples, params.seed, "prefix_")
        else:
            new = from_similarity(sims[name], params)
        for k, v in new.items():
            if not _same(row.get(k), v):
                changed[f"{name}.{k}"] = (row.get(k), v)
            row[k] = v
    if changed:
        atomic.write_text(path, json.dumps(saved, indent=2, sort_keys=True))
    log(f"{path}: {len(changed)} reference value(s) changed")
    return {"run": str(path), "kind": "references", "changed": changed}


def _intact(folder: Path) -> bool:
    """True for a completed run whose files are as they were completed (the others are reported as runs)."""
    try:
        check_run(folder)
    except RunFolderError:
        return False
    return True


SAME_TOLERANCE = 1e-6  # relative: float32 similarity sums differ by ~1e-7 between CPU kernels (AVX2/AVX512/AMX)


def _same(a, b) -> bool:
    """A recomputed value equals the recorded one up to float32 rounding (SAME_TOLERANCE), so a record recomputed
    on another CPU is not rewritten for its last bits."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or abs(a - b) <= SAME_TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b
