"""Reference rows: what every results table carries beside the conditions, computed per dataset on validation
people by the same metrics (chance, TF-IDF untrained and trained, the frozen encoder zero-shot and probed, the
identifiability ceiling), with the hyper-parameters each trained row chose on held-out training people."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import atomic
from .baselines import identifiability_ceiling, pair_map_similarity, select_pair_map, select_tfidf_map, tfidf_similarity
from .config import DOMAINS, Params
from .data import Dataset
from .invariance import cca_similarity, one_to_one_metrics, procrustes_similarity
from .metrics import DIRECTIONS, both_ways, cosine_similarities
from .run_metrics import cross_domain_metrics, metrics_from_embeddings, retrieval_metrics
from .selection import dev_rule


def reference_table(rows: list[dict]) -> pd.DataFrame:
    """The reference rows' headline columns (both prefix directions, MRR, full-embedding top-1)."""
    cols = ["condition", "prefix_d2h_top1", "prefix_h2d_top1", "prefix_d2h_mrr", "full_d2h_top1"]
    return pd.DataFrame(rows).reindex(columns=cols)


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
    rows.append({**base, "condition": "tfidf", **from_similarity(torch.from_numpy(sims["tfidf"]), params)})
    dev_ids = dataset.split.get("dev") or []  # with a dev slice the trained rows choose on it (smlib.selection)
    dev_texts = {d: [dataset.text(d, i) for i in dev_ids] for d in DOMAINS} if dev_ids else None
    if trained:
        train_texts = {d: [dataset.text(d, i) for i in dataset.split["train"]] for d in DOMAINS}
        for flavour, (analyzer, ngrams) in TRAINED_TFIDF.items():
            rows.append(_trained_tfidf_row(flavour, analyzer, ngrams, train_texts, val_texts, params, base,
                                           selection, sims, dev_texts, dev_rule(dataset)))
    if zero_shot_model is not None:
        from .evaluation import embed_validation  # evaluation imports nothing of this module at load time

        emb = embed_validation(zero_shot_model, dataset, params.eval.batch_size)
        m = metrics_from_embeddings(emb, params.model.matryoshka_dims, params.eval.bootstrap_resamples, params.seed)
        sims["zero_shot"] = cosine_similarities(emb["dating_prefix"], emb["hiring_prefix"]).numpy().astype(np.float32)
        # its prefix retrieval read off the float32 matrix that is saved, as --recompute-metrics reads it
        m |= cross_domain_metrics(torch.from_numpy(sims["zero_shot"]), None, params.eval.bootstrap_resamples,
                                  params.seed, "prefix_")
        rows.append({**base, "condition": "zero_shot", **m})
        if trained:
            feats = {"val": {d: emb[d] for d in DOMAINS},
                     "train": {d: zero_shot_model.encode(train_texts[d], d).numpy() for d in DOMAINS}}
            if dev_texts:
                feats["dev"] = {d: zero_shot_model.encode(dev_texts[d], d).numpy() for d in DOMAINS}
            rows.append(_trained_row("frozen_probe", feats, params, base, selection, sims, dev_rule(dataset)))
            rows += alignment_rows(feats, params, base, sims)
    ceiling = identifiability_ceiling(dataset.split_people("val"), params.data.variant)
    rows.append({**base, "condition": "ceiling", "prefix_d2h_top1": ceiling, "prefix_h2d_top1": ceiling,
                 "full_d2h_top1": ceiling})
    return rows


TRAINED_TFIDF = {"word": ("word", (1, 2)), "char": ("char_wb", (3, 5))}
ALIGNMENT_CCA_DIMS = 64


def alignment_rows(feats: dict, params: Params, base: dict, sims: dict) -> list[dict]:
    """Post-hoc alignments of the frozen encoder's full embeddings, fit on the training people only: orthogonal
    Procrustes (centred, normalised, top-1 in the rotated space) and CCA with ALIGNMENT_CCA_DIMS canonical dims."""
    args = (feats["train"]["dating"], feats["train"]["hiring"], feats["val"]["dating"], feats["val"]["hiring"])
    rows = []
    for name, fit in (("procrustes", procrustes_similarity),
                      ("cca", lambda *a: cca_similarity(*a, n_components=ALIGNMENT_CCA_DIMS))):
        t0 = time.perf_counter()
        sims[name] = fit(*args).astype(np.float32)
        rows.append({**base, "condition": name, **from_similarity(torch.from_numpy(sims[name]), params),
                     "fit_seconds": round(time.perf_counter() - t0, 2)})
    return rows


def _trained_row(name: str, feats: dict, params: Params, base: dict, selection: dict | None, sims: dict,
                 rule: str | None = None) -> dict:
    """A PairMap chosen on held-out training people (or the dev slice), scored on validation people like any condition."""
    t0 = time.perf_counter()
    dev = (feats["dev"]["dating"], feats["dev"]["hiring"]) if "dev" in feats else None
    model, chosen = select_pair_map(feats["train"]["dating"], feats["train"]["hiring"], out_dim=params.model.prefix_dim,
                                    temperature=params.loss.temperature, seed=params.seed, dev=dev)
    chosen = {**chosen, "features": int(feats["train"]["dating"].shape[1])} | ({"rule": rule} if dev else {})
    return _scored_map_row(name, model, feats["val"], chosen, t0, params, base, selection, sims)


def _trained_tfidf_row(flavour: str, analyzer: str, ngrams: tuple[int, int], train_texts: dict, val_texts: dict,
                       params: Params, base: dict, selection: dict | None, sims: dict, dev_texts: dict | None = None,
                       rule: str | None = None) -> dict:
    """tfidf_trained_<flavour>: vocabulary (min_df) and map chosen on held-out training people (or the dev slice),
    no validation text."""
    t0 = time.perf_counter()
    name = f"tfidf_trained_{flavour}"
    dev = (dev_texts["dating"], dev_texts["hiring"]) if dev_texts else None
    vec, model, chosen = select_tfidf_map(train_texts["dating"], train_texts["hiring"], analyzer, ngrams,
                                          out_dim=params.model.prefix_dim, temperature=params.loss.temperature,
                                          seed=params.seed, dev_texts=dev)
    val = {d: vec.transform(val_texts[d]) for d in DOMAINS}
    chosen = {**chosen, "analyzer": analyzer, "ngram_range": list(ngrams)} | ({"rule": rule} if dev else {})
    return _scored_map_row(name, model, val, chosen, t0, params, base, selection, sims)


def _scored_map_row(name: str, model, val: dict, chosen: dict, t0: float, params: Params, base: dict,
                    selection: dict | None, sims: dict) -> dict:
    """A trained map's validation similarities (into sims), its choice record (into selection) and its row."""
    sims[name] = pair_map_similarity(model, val["dating"], val["hiring"]).astype(np.float32)
    if selection is not None:
        selection[name] = {**chosen, "seconds": round(time.perf_counter() - t0, 2)}
    return {**base, "condition": name, **from_similarity(torch.from_numpy(sims[name]), params)}


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
        with atomic.replacing(path.parent / "reference_sims.npz") as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, person_ids=np.asarray(person_ids, dtype=np.int64),
                                **{k: np.asarray(v, dtype=np.float32) for k, v in sims.items()})
    from .models.shared import pick_device
    from .provenance import run_provenance

    atomic.write_text(path, json.dumps({"rows": rows, "data_params": params.data_params(),
                                        "encoder": params.model.base_model, "selection": selection or {},
                                        "provenance": run_provenance(pick_device(params.train.device), params.imports)},
                                       indent=2, sort_keys=True))
    return path


def from_similarity(sims: torch.Tensor, params: Params) -> dict[str, float]:
    """Retrieval metrics of a matcher given by its similarities, filed under both the prefix and full columns, with
    its one-to-one matching and hubness."""
    out = {}
    for direction, s in zip(DIRECTIONS, both_ways(sims), strict=True):
        m = retrieval_metrics(s, params.eval.bootstrap_resamples, params.seed, "")
        out |= {f"prefix_{direction}_{k}": v for k, v in m.items()}
        out[f"full_{direction}_top1"] = m["top1"]
    return {**out, **one_to_one_metrics(sims)}


# ------------------------------------------------------------------ reading recorded embeddings back
