"""Recomputing a record: every run's metrics.json from its embeddings.npz and every dataset's reference rows from
reference_sims.npz, with today's registered metrics; nothing is retrained."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from .config import params_from_dict
from .evaluation import load_embeddings, one_line, strict_json_record
from .record import RunFolderError, iter_datasets, iter_runs, run_state, write_completion
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
        params = params_from_dict(record["params"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError) as e:
        raise RunFolderError(f"{path} is corrupted ({one_line(e)}); nothing of it was rewritten") from None
    state, why = run_state(folder, params.hash())
    if state != "done":
        log(f"{folder}: skipped, not a complete run ({why})")
        return {"run": str(folder), "kind": "run", "skipped": why, "changed": {}}
    emb = load_embeddings(folder / "embeddings.npz")
    new = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
    new_record = strict_json_record({**{k: v for k, v in record.items() if k != "non_finite_metrics"},
                                     "metrics": new})
    old = record["metrics"]
    changed = {k: (old.get(k), new_record["metrics"].get(k)) for k in sorted(set(old) | set(new))
               if not _same(old.get(k), new_record["metrics"].get(k))}
    if changed:
        tmp = folder / "metrics.json.tmp"
        tmp.write_text(json.dumps(new_record, indent=2, sort_keys=True, allow_nan=False))
        tmp.replace(path)
        write_completion(folder, params.hash())
    log(f"{folder}: {len(changed)} metric(s) changed" + (f" ({', '.join(changed)})" if changed else ""))
    return {"run": str(folder), "kind": "run", "changed": changed}


def _recompute_references(path: Path, log) -> dict:
    """Recompute the retrieval metrics of a dataset's reference rows from reference_sims.npz (every matcher saved
    there; for zero_shot only its prefix_* keys, the rest of its row needs embeddings that are not kept), with
    the eval params of a run of that dataset. Rows without saved similarities (chance, ceiling) stay as they are."""
    runs = sorted(path.parent.glob("*/metrics.json"))
    sims_path = path.parent / "reference_sims.npz"
    if not runs or not sims_path.exists():
        log(f"{path}: skipped ({'no run of this dataset to take eval params from' if not runs else 'no reference_sims.npz'})")
        return {"run": str(path), "kind": "references", "skipped": "no eval params or similarities", "changed": {}}
    try:
        saved = json.loads(path.read_text())
        params = params_from_dict(json.loads(runs[0].read_text())["params"])
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
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(saved, indent=2, sort_keys=True))
        tmp.replace(path)
    log(f"{path}: {len(changed)} reference value(s) changed")
    return {"run": str(path), "kind": "references", "changed": changed}


SAME_TOLERANCE = 1e-6  # relative: float32 similarity sums differ by ~1e-7 between CPU kernels (AVX2/AVX512/AMX)


def _same(a, b) -> bool:
    """A recomputed value equals the recorded one up to float32 rounding (SAME_TOLERANCE), so a record recomputed
    on another CPU is not rewritten for its last bits."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a == b or abs(a - b) <= SAME_TOLERANCE * max(1.0, abs(a), abs(b))
    return a == b
