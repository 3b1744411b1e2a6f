"""Evaluating a run: embed its validation people through encode/encode_prefix only, compute every registered
metric (smlib.run_metrics), and write metrics.json and embeddings.npz; the display frames 03 and 04 show.

Reference rows live in smlib.references, recomputing a record in smlib.recompute; their old names here keep
the committed executed notebooks importable.
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import __version__, atomic, compat
from .atomic import RunFolderError
from .data import Dataset
from .domains import DOMAINS
from .metrics import DIRECTIONS, cosine_similarities, dim_sweep, match_summary
from .params_schema import Params
from .provenance import runtime_info
from .run_metrics import metrics_from_embeddings, retrieval_keys

# names that moved, still importable from here (lazily: references and recompute import this module)
__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)

SPACES = ("prefix", "full")  # the identity space and the full embedding: the two spaces every run is scored in
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
        if hasattr(model, "encode_both"):  # one encoder pass for both (the same vectors as the two calls)
            full, prefix = model.encode_both(texts, domain, batch_size)
        else:
            full, prefix = model.encode(texts, domain, batch_size), model.encode_prefix(texts, domain, batch_size)
        out[domain] = full.numpy()  # (N, D)
        out[f"{domain}_prefix"] = prefix.numpy()  # (N, K)
        out[f"triplets_{domain}"] = np.asarray([t[:3] for t in dataset.triplets["val"][domain]], dtype=np.int64)
    return out


def evaluate(model, dataset: Dataset, params: Params, out_dir: str | Path | None = None,
             extra: dict | None = None, emb: dict[str, np.ndarray] | None = None) -> dict:
    """Embed validation people (unless emb is given), compute every metric, and write both files to out_dir.

    The embedding time is recorded when this call embeds; a caller that passes emb passes its time in
    extra["timings"] (evaluate_run does)."""
    t0 = time.perf_counter()
    embed_time = {}
    if emb is None:
        emb = embed_validation(model, dataset, params.eval.batch_size)
        embed_time = {"embed_seconds": round(time.perf_counter() - t0, 2)}
    t1 = time.perf_counter()
    metrics = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
    record = {
        "condition": params.condition, "variant": params.data.variant, "seed": params.seed,
        "metrics": metrics,
        "params": params.to_dict(), "params_hash": params.hash(),
        "encoder": params.model.base_model,
        "dataset_id": dataset.manifest.get("dataset_id"), "dataset_hash": dataset.manifest.get("content_hash"),
        "timings": {**embed_time, "metrics_seconds": round(time.perf_counter() - t1, 2),
                    **(extra or {}).get("timings", {})},
        "smlib_version": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "runtime": runtime_info(),  # threads, and which smlib (folder, commit) computed this record
        **{k: v for k, v in (extra or {}).items() if k != "timings"},
    }
    if out_dir is not None:
        write_results(record, emb, out_dir)
    return record


def evaluate_run(model, dataset: Dataset, params: Params, out_dir: str | Path | None = None,
                 checkpoint_dir: str | Path | None = None):
    """03_evaluate's work: embed the validation people, compute every metric, and record them with the run's
    timings (train.json's, if out_dir holds one, plus the embedding time). Returns (embeddings, record).

    With checkpoint_dir, the checkpoint's model card is rewritten with these metrics and the dataset's reference
    rows (references.json beside the run folder, when out_dir is a study's run folder)."""
    train_json = Path(out_dir) / "train.json" if out_dir else None
    timings = json.loads(train_json.read_text()) if train_json is not None and train_json.exists() else {}
    t0 = time.perf_counter()
    emb = embed_validation(model, dataset, params.eval.batch_size)
    timings["embed_seconds"] = round(time.perf_counter() - t0, 2)
    record = evaluate(model, dataset, params, out_dir=out_dir, extra={"timings": timings}, emb=emb)
    if checkpoint_dir is not None:
        from .models.card import write_card

        refs = Path(out_dir).parent / "references.json" if out_dir else None
        write_card(checkpoint_dir, record, json.loads(refs.read_text()) if refs is not None and refs.is_file() else None)
    return emb, record


def metrics_table(metrics: dict) -> pd.DataFrame:
    """Cross-domain retrieval per space (prefix, full) and direction: top-1 with its bootstrap 95% interval,
    MRR, recall@5/10 and the margin."""
    rows = []
    for space in SPACES:
        for direction in DIRECTIONS:
            key = f"{space}_{direction}"
            low, high = metrics.get(f"{key}_top1_ci_low"), metrics.get(f"{key}_top1_ci_high")
            rows.append({"space": space, "direction": direction, "top1": metrics[f"{key}_top1"],
                         "top1 95% CI": f"[{low:.3f}, {high:.3f}]" if low is not None and high is not None else "-",
                         "mrr": metrics.get(f"{key}_mrr"), "recall@5": metrics.get(f"{key}_recall@5"),
                         "recall@10": metrics.get(f"{key}_recall@10"), "margin": metrics.get(f"{key}_margin")})
    return pd.DataFrame(rows)


def other_metrics(metrics: dict, name: str) -> pd.DataFrame:
    """Every metric that is not a retrieval score of metrics_table (triplet accuracy, prefix variance, CKA, counts)."""
    shown = {k for space in SPACES for d in DIRECTIONS for k in retrieval_keys(f"{space}_{d}_")
             if not k.endswith("_ci_bca")}  # which interval method was used stays listed here
    return pd.Series({k: v for k, v in metrics.items() if k not in shown}, name=name, dtype=object).to_frame()


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
    with atomic.replacing(out_dir / "embeddings.npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **emb)  # full float32, so metrics.json is exactly recomputable
    atomic.write_text(out_dir / "metrics.json", json.dumps(record, indent=2, sort_keys=True, allow_nan=False))


def strict_json_record(record: dict) -> dict:
    """The record with every NaN/inf metric replaced by null and listed under 'non_finite_metrics' (strict JSON)."""
    metrics = dict(record.get("metrics", {}))
    non_finite = sorted(k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v))
    if not non_finite:
        return record
    return {**record, "metrics": {k: (None if k in non_finite else v) for k, v in metrics.items()},
            "non_finite_metrics": non_finite}


def one_line(e: BaseException) -> str:
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"[:200]


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
        raise RunFolderError(f"{path} cannot be read ({one_line(e)}); the run was left as it is (to retrain it, "
                             "move its folder away and rerun the study)") from None


def embedding_pair(emb: dict, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Dating and hiring rows of one kind ("prefix" or "full") as float tensors."""
    suffix = "_prefix" if kind == "prefix" else ""
    return tuple(torch.from_numpy(np.asarray(emb[f"{dom}{suffix}"], dtype=np.float32)) for dom in DOMAINS)


def hardest_misses(emb: dict, dataset, k: int = 5) -> pd.DataFrame:
    """The k dating queries whose true résumé ranks worst on the identity prefix, with the texts."""
    dating, hiring = embedding_pair(emb, "prefix")
    ids = np.asarray(emb["person_ids"]).tolist()
    s = match_summary(cosine_similarities(dating, hiring))  # (N, N) dating x hiring
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


def slider_frame(embs: dict[str, dict], d: int) -> pd.DataFrame:
    """CKA (biased and debiased) and top-1 (both directions) of the full embeddings truncated to d dims, one row per
    condition."""
    if not embs:
        raise ValueError("no embeddings given")
    frames = []
    for cond, emb in embs.items():
        dating, hiring = embedding_pair(emb, "full")
        frames.append(dim_sweep(dating, hiring, d).assign(condition=cond))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["condition", "dim", "cka_debiased", "cka", "top1_d2h", "top1_h2d"]]
