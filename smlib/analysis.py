"""Analyses of a recorded study that need no retraining: per-person matches, paired differences, gallery curves.

Everything here reads what the study committed beside each run: embeddings.npz of every condition and
reference_sims.npz of every dataset (the reference matchers' validation similarities). Runs are read only when
completed (record.iter_complete_runs): a run folder without run.json is left out with a one-line warning (warn),
and a file changed since its run was completed is one RunFolderError naming the folder and the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import PROPOSED, REFERENCE_ROWS, ordered_variants, row_order
from .evaluation import load_embeddings
from .metrics import cosine_similarities, gallery_top1, mean_both_ways, paired_bootstrap_diff, top1_both_ways
from .record import complete_run, dataset_in, iter_complete_runs, iter_datasets, warn_unrecorded

GALLERY_SIZES = (10, 20, 50, 100)
# Reference rows a trained condition is read against in paired differences (the ceiling and chance are bounds).
MATCHERS = tuple(r for r in REFERENCE_ROWS if r not in ("chance", "ceiling"))


def load_histories(profile_dir: str | Path, sweeps: bool = False, warn=warn_unrecorded) -> pd.DataFrame:
    """Every completed run's history.csv under profile_dir/<variant>/seed<s>/<condition>, with those three as columns.

    Sweep runs (folders named <condition>@<key>=<value>) are left out unless sweeps=True or the record holds nothing
    else; runs without run.json are left out with a warning through warn (None: silently).
    """
    frames = []
    found = list(iter_complete_runs(profile_dir, "history.csv", sweeps, warn))
    if not found and not sweeps:  # a record of sweep points only: their curves
        found = list(iter_complete_runs(profile_dir, "history.csv", True, None))
    for variant, seed, name, path in found:
        h = pd.read_csv(path)
        h.insert(0, "condition", name)
        h.insert(0, "seed", seed)
        h.insert(0, "variant", variant)
        frames.append(h)
    if not frames:
        raise FileNotFoundError(f"no history.csv under {profile_dir}/<variant>/seed<s>/<condition>")
    return pd.concat(frames, ignore_index=True)


def record_similarities(profile_dir: str | Path, sweeps: bool = False,
                        warn=warn_unrecorded) -> dict[tuple[str, int, str], tuple[np.ndarray, torch.Tensor]]:
    """(variant, seed, condition) -> (validation person_ids, prefix similarities dating x hiring), for every
    completed condition run with embeddings.npz and every reference matcher in reference_sims.npz.

    Sweep runs (folders named <condition>@<key>=<value>) are left out unless sweeps=True; runs without run.json are
    left out with a warning through warn (None: silently).
    """
    out = {}
    for variant, seed, name, path in iter_complete_runs(profile_dir, "embeddings.npz", sweeps, warn):
        emb = load_embeddings(path)
        out[(variant, seed, name)] = (np.asarray(emb["person_ids"]),
                                      cosine_similarities(emb["dating_prefix"], emb["hiring_prefix"]))
    for variant, seed, path in iter_datasets(profile_dir, "reference_sims.npz"):
        with np.load(path) as z:
            for name in z.files:
                if name != "person_ids":
                    out[(variant, seed, name)] = (z["person_ids"], torch.from_numpy(z[name]))
    if not out:
        raise FileNotFoundError(f"no embeddings.npz or reference_sims.npz in the datasets of {profile_dir}")
    return out


def per_person_top1(sims: torch.Tensor) -> np.ndarray:
    """Per validation person: top-1 of the true match, mean of both directions (0, 0.5 or 1)."""
    return mean_both_ways(*top1_both_ways(sims)).numpy()


def paired_differences(profile_dir: str | Path, against: str = PROPOSED, n_resamples: int = 2000,
                       seed: int = 0, warn=warn_unrecorded) -> pd.DataFrame:
    """Prefix top-1 (mean of both directions) of every method minus `against`, and minus the best reference
    matcher of the variant, with 95% paired-bootstrap intervals over validation people and seeds.

    Only seeds both methods have are paired. 'resolved' is True where the interval excludes 0. Completed runs
    only (record_similarities, warn).
    """
    sims = record_similarities(profile_dir, warn=warn)
    values = {k: (ids, per_person_top1(s)) for k, (ids, s) in sims.items()}
    rows = []
    for variant in ordered_variants(v for v, _, _ in values):
        methods = row_order({c for v, _, c in values if v == variant})
        means = {m: np.mean([x.mean() for (v, _, c), (_, x) in values.items() if v == variant and c == m])
                 for m in methods}
        refs = [m for m in methods if m in MATCHERS]
        best_ref = max(refs, key=lambda m: means[m]) if refs else None
        for baseline in dict.fromkeys(b for b in (against, best_ref) if b in methods):
            for method in methods:
                if method == baseline:
                    continue
                a, b = _paired(values, variant, method, baseline)
                if a is None:
                    continue
                r = paired_bootstrap_diff(a, b, n_resamples, seed)
                rows.append({"variant": variant, "method": method, "vs": baseline,
                             "vs_role": "proposed" if baseline == against else "best reference",
                             "method_top1": float(a.mean()), "vs_top1": float(b.mean()), **r})
    return pd.DataFrame(rows)


def _paired(values: dict, variant: str, a_name: str, b_name: str):
    seeds = sorted({s for v, s, c in values if v == variant and c == a_name}
                   & {s for v, s, c in values if v == variant and c == b_name})
    if not seeds:
        return None, None
    a, b = [], []
    for s in seeds:
        ids_a, xa = values[(variant, s, a_name)]
        ids_b, xb = values[(variant, s, b_name)]
        if not np.array_equal(ids_a, ids_b):
            raise ValueError(f"{variant}/seed{s}: {a_name} and {b_name} were evaluated on different people")
        a.append(xa)
        b.append(xb)
    return np.stack(a), np.stack(b)


def gallery_curves(profile_dir: str | Path, sizes=GALLERY_SIZES) -> pd.DataFrame:
    """Expected prefix top-1 (mean of both directions) against gallery size, per (variant, seed, method).

    Sizes beyond the validation count are dropped; the full gallery (every validation person) is added.
    """
    rows = []
    for (variant, seed, method), (_, s) in record_similarities(profile_dir).items():
        n = s.shape[0]
        use = sorted({g for g in sizes if 2 <= g < n} | {n})
        d2h, h2d = gallery_top1(s, use), gallery_top1(s.T.contiguous(), use)
        rows += [{"variant": variant, "seed": seed, "condition": method, "gallery": g, "top1": (d2h[g] + h2d[g]) / 2}
                 for g in use]
    return pd.DataFrame(rows)


def load_run_embeddings(profile_dir: str | Path, variant: str, seed: int) -> dict[str, dict]:
    """Condition -> embeddings of every completed run under profile_dir/variant/seed<seed> that saved them.

    Each run is checked against its run.json first (record.complete_run): a folder without one is left out with a
    one-line warning, a file changed since the run was completed is one RunFolderError naming the folder and file.
    """
    folder = dataset_in(profile_dir, variant, seed)
    runs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    found = {run.name: path for run in runs if (path := complete_run(run, "embeddings.npz")) is not None}
    if not found:
        raise FileNotFoundError(f"no <condition>/embeddings.npz under {folder}: run the study first")
    return {cond: load_embeddings(found[cond]) for cond in row_order(found)}
