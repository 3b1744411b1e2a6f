"""Evaluate a model on validation people through encode/encode_prefix only; reference rows beside it."""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__
from .baselines import (identifiability_ceiling, pair_map_similarity, select_pair_map, select_tfidf_map,
                        tfidf_similarity)
from .config import DOMAINS, Params, params_from_dict, row_order
from .data import Dataset
from .embeddings import truncate_normalize
from .kernel import runtime_info
from .metrics import bootstrap_ci, cka_across_dims, dim_sweep, match_summary, prefix_variance, triplet_accuracy
from .record import RunFolderError, dataset_in, iter_datasets, iter_runs, run_state, write_completion

EMBEDDING_KEYS = ("person_ids", "dating", "hiring", "dating_prefix", "hiring_prefix",
                  "triplets_dating", "triplets_hiring")


def embed_validation(model, dataset: Dataset, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """Full and identity embeddings of every validation person's two texts, plus validation triplets.

    batch_size (eval.batch_size) is the number of texts per encoder pass; None keeps the model's own.
    """
    ids = dataset.split["val"]
    out: dict[str, np.ndarray] = {"person_ids": np.asarray(ids, dtype=np.int64)}
    for domain in DOMAINS:
        texts = [dataset.text(domain, i) for i in ids]
        out[domain] = model.encode(texts, domain, batch_size).numpy()  # (N, D)
        out[f"{domain}_prefix"] = model.encode_prefix(texts, domain, batch_size).numpy()  # (N, K)
        out[f"triplets_{domain}"] = np.asarray([t[:3] for t in dataset.triplets["val"][domain]], dtype=np.int64)
    return out


def prefix_is_nested(emb: dict[str, np.ndarray]) -> bool:
    """True if the identity embedding is the first K dims of the full one (Matryoshka), False for a separate head."""
    k = emb["dating_prefix"].shape[1]
    if k > emb["dating"].shape[1]:
        return False
    for domain in DOMAINS:
        head = torch.from_numpy(np.asarray(emb[domain], dtype=np.float32))
        nested = truncate_normalize(head, k).numpy()
        if not np.allclose(nested, emb[f"{domain}_prefix"], atol=1e-4):
            return False
    return True


def identity_space_cka(emb: dict[str, np.ndarray], matryoshka_dims: list[int]) -> dict[str, float | None]:
    """cka@d of dating vs hiring in each model's identity space.

    Matryoshka models: dims 0:d of the full embedding. A model with a separate identity head
    (projection_heads): dims 0:d of that head, and None (n/a) for d beyond its width.
    """
    nested = prefix_is_nested(emb)
    space = "" if nested else "_prefix"
    dating = torch.from_numpy(np.asarray(emb[f"dating{space}"]))
    hiring = torch.from_numpy(np.asarray(emb[f"hiring{space}"]))
    fits = [d for d in matryoshka_dims if d <= dating.shape[1]]
    values = cka_across_dims(dating, hiring, fits)
    return {f"cka@{d}": values.get(d) for d in matryoshka_dims}


def retrieval_metrics(sims: torch.Tensor, n_resamples: int, seed: int, prefix: str,
                      margin: bool = False) -> dict[str, float]:
    """Top-1, MRR, recall@5/10 (with bootstrap 95% intervals for top-1 and MRR) of the diagonal matches,
    and with margin=True the mean margin; all from one metrics.match_summary of sims."""
    s = match_summary(sims)
    out = {f"{prefix}top1": s.top1.mean().item(), f"{prefix}mrr": s.reciprocal_rank.mean().item(),
           f"{prefix}recall@5": s.recall(5).mean().item(), f"{prefix}recall@10": s.recall(10).mean().item()}
    for name, values in (("top1", s.top1), ("mrr", s.reciprocal_rank)):
        low, high, method = bootstrap_ci(values.cpu(), n_resamples, seed, with_method=True)
        out[f"{prefix}{name}_ci_low"], out[f"{prefix}{name}_ci_high"] = low, high
        out[f"{prefix}{name}_ci_bca"] = float(method == "BCa")  # 0: BCa undefined here, percentile interval
    if margin:
        out[f"{prefix}margin"] = s.margin.mean().item()
    return out


def cross_domain_metrics(dating: torch.Tensor, hiring: torch.Tensor | None, n_resamples: int, seed: int,
                         prefix: str) -> dict[str, float]:
    """Both directions of cross-domain retrieval for row-aligned dating/hiring embeddings (one similarity
    matrix: hiring -> dating reads its transpose). hiring None: `dating` already is that (N, N) matrix."""
    sims = dating if hiring is None else truncate_normalize(dating) @ truncate_normalize(hiring).T  # (N, N)
    out = {}
    for direction, s in (("d2h", sims), ("h2d", sims.T)):
        out |= retrieval_metrics(s, n_resamples, seed, f"{prefix}{direction}_", margin=True)
    return out


@dataclass
class SavedRun:
    """What every embedding metric reads: a run's validation embeddings (as saved in embeddings.npz) and the
    evaluation settings of its params."""

    emb: dict[str, np.ndarray]
    matryoshka_dims: list[int]
    n_resamples: int  # eval.bootstrap_resamples
    seed: int

    def tensor(self, key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.emb[key]))


EMBEDDING_METRICS: list = []  # every function metrics_from_embeddings runs, in order (see embedding_metric)


def embedding_metric(fn):
    """Register fn(SavedRun) -> {name: value} as an evaluation metric: every new run computes it, and
    `python -m smlib.study --recompute-metrics` brings it to every recorded run from its embeddings.npz."""
    EMBEDDING_METRICS.append(fn)
    return fn


@embedding_metric
def _counts(run: SavedRun) -> dict:
    return {"n_val_people": len(run.emb["person_ids"]),
            **{f"n_val_triplets_{d}": len(run.emb[f"triplets_{d}"]) for d in DOMAINS}}


@embedding_metric
def _cross_domain(run: SavedRun) -> dict:
    """Both directions of cross-domain retrieval on the identity space (prefix_) and the full embedding (full_)."""
    return {**cross_domain_metrics(run.tensor("dating_prefix"), run.tensor("hiring_prefix"), run.n_resamples,
                                   run.seed, "prefix_"),
            **cross_domain_metrics(run.tensor("dating"), run.tensor("hiring"), run.n_resamples, run.seed, "full_")}


@embedding_metric
def _within_domain(run: SavedRun) -> dict:
    """Triplet accuracy of the full embedding on validation triplets, and the spread of each domain's prefix."""
    row = {pid: r for r, pid in enumerate(run.emb["person_ids"].tolist())}
    out = {}
    for domain in DOMAINS:
        idx = torch.tensor([[row[int(i)] for i in t3] for t3 in run.emb[f"triplets_{domain}"]], dtype=torch.long)  # (T, 3)
        x = run.tensor(domain)
        out[f"triplet_acc_{domain}"] = triplet_accuracy(x[idx[:, 0]], x[idx[:, 1]], x[idx[:, 2]])
        prefix = run.tensor(f"{domain}_prefix")
        out[f"prefix_variance_{domain}"] = prefix_variance(prefix, prefix.shape[1])
    return out


@embedding_metric
def _cka(run: SavedRun) -> dict:
    width = run.emb["dating"].shape[1]
    return identity_space_cka(run.emb, [d for d in run.matryoshka_dims if d <= width])


def metrics_from_embeddings(emb: dict[str, np.ndarray], matryoshka_dims: list[int], n_resamples: int,
                            seed: int) -> dict[str, float]:
    """Every registered evaluation metric (EMBEDDING_METRICS) from saved embeddings, so metrics.json can be
    recomputed from embeddings.npz."""
    run = SavedRun(emb, list(matryoshka_dims), n_resamples, seed)
    out: dict[str, float] = {}
    for fn in EMBEDDING_METRICS:
        out |= fn(run)
    return out


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
        raise RunFolderError(f"{path} is corrupted ({_one_line(e)}); nothing of it was rewritten") from None
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


def _one_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:200]


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
        raise RunFolderError(f"{path} or its similarities are corrupted ({_one_line(e)}); nothing of it was "
                             "rewritten") from None
    changed = {}
    for row in saved["rows"]:
        name = row["condition"]
        if name not in sims:
            continue
        if name == "zero_shot":
            new = cross_domain_metrics(sims[name], None, params.eval.bootstrap_resamples, params.seed, "prefix_")
        else:
            new = _from_similarity(sims[name], params)
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


def evaluate(model, dataset: Dataset, params: Params, out_dir: str | Path | None = None,
             extra: dict | None = None, emb: dict[str, np.ndarray] | None = None) -> dict:
    """Embed validation people (unless emb is given), compute every metric, and write both files to out_dir."""
    t0 = time.perf_counter()
    emb = emb if emb is not None else embed_validation(model, dataset, params.eval.batch_size)
    t1 = time.perf_counter()
    metrics = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
    record = {
        "condition": params.condition, "variant": params.data.variant, "seed": params.seed,
        "metrics": metrics,
        "params": params.to_dict(), "params_hash": params.hash(),
        "encoder": params.model.base_model,
        "dataset_id": dataset.manifest.get("dataset_id"), "dataset_hash": dataset.manifest.get("content_hash"),
        "timings": {"embed_seconds": round(t1 - t0, 2), "metrics_seconds": round(time.perf_counter() - t1, 2),
                    **(extra or {}).get("timings", {})},
        "smlib_version": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "runtime": runtime_info(),  # threads, and which smlib (folder, commit) computed this record
        **{k: v for k, v in (extra or {}).items() if k != "timings"},
    }
    if out_dir is not None:
        write_results(record, emb, out_dir)
    return record


def evaluate_run(model, dataset: Dataset, params: Params, out_dir: str | Path | None = None):
    """03_evaluate's work: embed the validation people, compute every metric, and record them with the run's
    timings (train.json's, if out_dir holds one, plus the embedding time). Returns (embeddings, record)."""
    train_json = Path(out_dir) / "train.json" if out_dir else None
    timings = json.loads(train_json.read_text()) if train_json is not None and train_json.exists() else {}
    t0 = time.perf_counter()
    emb = embed_validation(model, dataset, params.eval.batch_size)
    timings["embed_seconds"] = round(time.perf_counter() - t0, 2)
    return emb, evaluate(model, dataset, params, out_dir=out_dir, extra={"timings": timings}, emb=emb)


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Cross-domain retrieval per space (prefix, full) and direction: top-1 with its bootstrap 95% interval,
    MRR, recall@5/10 and the margin."""
    rows = []
    for space in ("prefix", "full"):
        for direction in ("d2h", "h2d"):
            key = f"{space}_{direction}"
            low, high = metrics.get(f"{key}_top1_ci_low"), metrics.get(f"{key}_top1_ci_high")
            rows.append({"space": space, "direction": direction, "top1": metrics[f"{key}_top1"],
                         "top1 95% CI": f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else "-",
                         "mrr": metrics.get(f"{key}_mrr"), "recall@5": metrics.get(f"{key}_recall@5"),
                         "recall@10": metrics.get(f"{key}_recall@10"), "margin": metrics.get(f"{key}_margin")})
    return pd.DataFrame(rows)


def other_metrics(metrics: dict, name: str) -> pd.DataFrame:
    """Every metric that is not a retrieval score of metrics_table (triplet accuracy, prefix variance, CKA, counts)."""
    shown = {f"{space}_{d}_{m}" for space in ("prefix", "full") for d in ("d2h", "h2d")
             for m in ("top1", "mrr", "recall@5", "recall@10", "margin", "top1_ci_low", "top1_ci_high",
                       "mrr_ci_low", "mrr_ci_high")}
    return pd.Series({k: v for k, v in metrics.items() if k not in shown}, name=name, dtype=object).to_frame()


def reference_table(rows: list[dict]) -> pd.DataFrame:
    """The reference rows' headline columns (both prefix directions, MRR, full-embedding top-1)."""
    cols = ["condition", "prefix_d2h_top1", "prefix_h2d_top1", "prefix_d2h_mrr", "full_d2h_top1"]
    return pd.DataFrame(rows).reindex(columns=cols)


def write_results(record: dict, emb: dict[str, np.ndarray], out_dir: str | Path) -> None:
    """embeddings.npz first, then metrics.json (its presence marks a finished run), each via a temp file."""
    out_dir = Path(out_dir)
    bad = {k: int((~np.isfinite(v)).sum()) for k, v in emb.items() if np.issubdtype(np.asarray(v).dtype, np.floating)
           and not np.isfinite(v).all()}
    if bad:
        raise ValueError(f"non-finite embeddings ({', '.join(f'{k}: {n} values' for k, n in bad.items())}); "
                         f"nothing written to {out_dir}")
    record = strict_json_record(record)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "embeddings.tmp.npz"
    np.savez_compressed(tmp, **emb)  # full float32, so metrics.json is exactly recomputable
    tmp.replace(out_dir / "embeddings.npz")
    tmp = out_dir / "metrics.json.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False))
    tmp.replace(out_dir / "metrics.json")


def strict_json_record(record: dict) -> dict:
    """The record with every NaN/inf metric replaced by null and listed under 'non_finite_metrics' (strict JSON)."""
    metrics = dict(record.get("metrics", {}))
    non_finite = sorted(k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v))
    if not non_finite:
        return record
    return {**record, "metrics": {k: (None if k in non_finite else v) for k, v in metrics.items()},
            "non_finite_metrics": non_finite}


def load_embeddings(path: str | Path) -> dict[str, np.ndarray]:
    """Read embeddings.npz back (float32 embeddings, integer ids and triplets); RunFolderError naming the file
    (one line) if it cannot be read back whole."""
    try:
        with np.load(path) as z:
            missing = [k for k in EMBEDDING_KEYS if k not in z.files]
            if missing:
                raise ValueError(f"not an smlib embeddings file, missing {missing}")
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - BadZipFile, EOFError, a truncated member, a missing key
        raise RunFolderError(f"{path} cannot be read ({_one_line(e)}); the run was left as it is (to retrain it, "
                             "move its folder away and rerun the study)") from None


def reference_rows(dataset: Dataset, params: Params, zero_shot_model=None, trained: bool = True,
                   selection: dict | None = None, sims: dict | None = None) -> list[dict]:
    """Rows every result table carries, computed on validation people by the same metrics as the conditions.

    Untrained: chance, tfidf (char n-grams), zero_shot (untrained encoder), ceiling (identifiability).
    Trained on the training people's pairs (trained=True): tfidf_trained_word, tfidf_trained_char (TF-IDF
    fit on training texts of both domains, a linear map per domain to prefix_dim dims trained with the
    prefix InfoNCE) and frozen_probe (the same map on the untrained encoder's pooled embedding). Their lr
    and epochs (and the TF-IDF rows' min_df) are chosen on a held-out slice of the training people; the
    choices go into `selection`.
    sims, if given, receives each matcher's (N_val, N_val) similarities (dating rows, hiring columns, in
    split["val"] order): the per-person record that paired differences and gallery curves are computed from.
    """
    sims = sims if sims is not None else {}
    ids = dataset.split["val"]
    n = len(ids)
    base = {"variant": params.data.variant, "seed": params.seed}
    harmonic = sum(1 / r for r in range(1, n + 1)) / n
    rows = [{**base, "condition": "chance", "prefix_d2h_top1": 1 / n, "prefix_h2d_top1": 1 / n,
             "prefix_d2h_mrr": harmonic, "full_d2h_top1": 1 / n}]
    val_texts = {d: [dataset.text(d, i) for i in ids] for d in DOMAINS}
    sims["tfidf"] = tfidf_similarity(val_texts["dating"], val_texts["hiring"], analyzer="char_wb").astype(np.float32)
    rows.append({**base, "condition": "tfidf", **_from_similarity(torch.from_numpy(sims["tfidf"]), params)})
    if trained:
        train_texts = {d: [dataset.text(d, i) for i in dataset.split["train"]] for d in DOMAINS}
        for flavour, (analyzer, ngrams) in TRAINED_TFIDF.items():
            rows.append(_trained_tfidf_row(flavour, analyzer, ngrams, train_texts, val_texts, params, base,
                                           selection, sims))
    if zero_shot_model is not None:
        emb = embed_validation(zero_shot_model, dataset, params.eval.batch_size)
        m = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
        rows.append({**base, "condition": "zero_shot", **m})
        sims["zero_shot"] = (truncate_normalize(torch.from_numpy(emb["dating_prefix"]))
                             @ truncate_normalize(torch.from_numpy(emb["hiring_prefix"])).T).numpy()
        if trained:
            feats = {"val": {d: emb[d] for d in DOMAINS},
                     "train": {d: zero_shot_model.encode(train_texts[d], d).numpy() for d in DOMAINS}}
            rows.append(_trained_row("frozen_probe", feats, params, base, selection, sims))
    ceiling = identifiability_ceiling(dataset.split_people("val"), params.data.variant)
    rows.append({**base, "condition": "ceiling", "prefix_d2h_top1": ceiling, "prefix_h2d_top1": ceiling,
                 "full_d2h_top1": ceiling})
    return rows


TRAINED_TFIDF = {"word": ("word", (1, 2)), "char": ("char_wb", (3, 5))}


def _trained_row(name: str, feats: dict, params: Params, base: dict, selection: dict | None, sims: dict) -> dict:
    """A PairMap chosen on held-out training people, scored on validation people like any condition."""
    t0 = time.perf_counter()
    model, chosen = select_pair_map(feats["train"]["dating"], feats["train"]["hiring"], out_dim=params.model.prefix_dim,
                                    temperature=params.loss.temperature, seed=params.seed)
    return _scored_map_row(name, model, feats["val"], {**chosen, "features": int(feats["train"]["dating"].shape[1])},
                           t0, params, base, selection, sims)


def _trained_tfidf_row(flavour: str, analyzer: str, ngrams: tuple[int, int], train_texts: dict, val_texts: dict,
                       params: Params, base: dict, selection: dict | None, sims: dict) -> dict:
    """tfidf_trained_<flavour>: vocabulary (min_df) and map chosen on held-out training people, no validation text."""
    t0 = time.perf_counter()
    name = f"tfidf_trained_{flavour}"
    vec, model, chosen = select_tfidf_map(train_texts["dating"], train_texts["hiring"], analyzer, ngrams,
                                          out_dim=params.model.prefix_dim, temperature=params.loss.temperature,
                                          seed=params.seed)
    val = {d: vec.transform(val_texts[d]) for d in DOMAINS}
    return _scored_map_row(name, model, val, {**chosen, "analyzer": analyzer, "ngram_range": list(ngrams)},
                           t0, params, base, selection, sims)


def _scored_map_row(name: str, model, val: dict, chosen: dict, t0: float, params: Params, base: dict,
                    selection: dict | None, sims: dict) -> dict:
    """A trained map's validation similarities (into sims), its choice record (into selection) and its row."""
    sims[name] = pair_map_similarity(model, val["dating"], val["hiring"]).astype(np.float32)
    if selection is not None:
        selection[name] = {**chosen, "seconds": round(time.perf_counter() - t0, 2)}
    return {**base, "condition": name, **_from_similarity(torch.from_numpy(sims[name]), params)}


def selection_table(selection: dict) -> pd.DataFrame:
    """The trained reference rows' choices, one row each (the full held-out grids stay in references.json)."""
    rows = {name: {k: v for k, v in chosen.items() if not k.startswith("holdout_top1_by")}
            for name, chosen in selection.items()}
    return pd.DataFrame(rows).T.rename_axis("trained row")


def write_references(rows: list[dict], params: Params, out_dir: str | Path, selection: dict | None = None,
                     sims: dict | None = None, person_ids=None) -> Path:
    """references.json beside a dataset's runs (via a temp file, so a partial write is never read).

    selection: the trained reference rows' hyperparameter choices (made on held-out training people).
    sims: reference_rows' similarity matrices, saved first as reference_sims.npz with the validation person_ids.
    """
    path = Path(out_dir) / "references.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if sims:
        if person_ids is None:
            raise ValueError("write_references: sims need the validation person_ids they are ordered by")
        tmp_npz = path.parent / "reference_sims.tmp.npz"
        np.savez_compressed(tmp_npz, person_ids=np.asarray(person_ids, dtype=np.int64),
                            **{k: np.asarray(v, dtype=np.float32) for k, v in sims.items()})
        tmp_npz.replace(path.parent / "reference_sims.npz")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"rows": rows, "data_params": params.data_params(),
                               "encoder": params.model.base_model, "selection": selection or {}}, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def _from_similarity(sims: torch.Tensor, params: Params) -> dict[str, float]:
    """Retrieval metrics of a lexical matcher, filed under both the prefix and full columns."""
    out = {}
    for direction, s in (("d2h", sims), ("h2d", sims.T)):
        m = retrieval_metrics(s, params.eval.bootstrap_resamples, params.seed, "")
        out |= {f"prefix_{direction}_{k}": v for k, v in m.items()}
        out[f"full_{direction}_top1"] = m["top1"]
    return out


# ------------------------------------------------------------------ reading recorded embeddings back
def embedding_pair(emb: dict, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Dating and hiring rows of one kind ("prefix" or "full") as float tensors."""
    suffix = "_prefix" if kind == "prefix" else ""
    return tuple(torch.from_numpy(np.asarray(emb[f"{dom}{suffix}"], dtype=np.float32)) for dom in DOMAINS)


def hardest_misses(emb: dict, dataset, k: int = 5) -> pd.DataFrame:
    """The k dating queries whose true résumé ranks worst on the identity prefix, with the texts."""
    dating, hiring = embedding_pair(emb, "prefix")
    ids = np.asarray(emb["person_ids"]).tolist()
    s = match_summary(truncate_normalize(dating) @ truncate_normalize(hiring).T)  # (N, N) dating x hiring
    sims, ranks, (best_sim, best_row) = s.sims, s.ranks, s.best_wrong
    rows = []
    for i in range(len(ids)):
        pid, other = ids[i], ids[int(best_row[i])]
        rows.append({"person_id": pid, "rank": int(ranks[i]), "true_sim": float(sims[i, i]),
                     "best_wrong_id": other, "best_wrong_sim": float(best_sim[i]),
                     "dating_text": dataset.text("dating", pid), "true_hiring_text": dataset.text("hiring", pid),
                     "best_wrong_hiring_text": dataset.text("hiring", other)})
    frame = pd.DataFrame(rows).sort_values(["rank", "true_sim"], ascending=[False, True], kind="stable")
    return frame.head(k).reset_index(drop=True)


def load_run_embeddings(profile_dir: str | Path, variant: str, seed: int) -> dict[str, dict]:
    """Condition -> embeddings of every run under profile_dir/variant/seed<seed> that saved them."""
    folder = dataset_in(profile_dir, variant, seed)
    found = {p.parent.name: p for p in folder.glob("*/embeddings.npz")}
    if not found:
        raise FileNotFoundError(f"no <condition>/embeddings.npz under {folder}: run the study first")
    return {cond: load_embeddings(found[cond]) for cond in row_order(found)}


def slider_frame(embs: dict[str, dict], d: int) -> pd.DataFrame:
    """CKA and top-1 (both directions) of the full embeddings truncated to d dims, one row per condition."""
    if not embs:
        raise ValueError("no embeddings given")
    frames = []
    for cond, emb in embs.items():
        dating, hiring = embedding_pair(emb, "full")
        frames.append(dim_sweep(dating, hiring, d).assign(condition=cond))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["condition", "dim", "cka", "top1_d2h", "top1_h2d"]]
