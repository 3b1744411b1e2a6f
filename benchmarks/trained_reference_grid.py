"""Wider held-out grid for the trained TF-IDF maps on quick/disjoint seed 43: does the selection grid of
evaluation.reference_rows (lr 3e-3..3e-2, up to 40 epochs) understate them? Run: .venv/bin/python benchmarks/trained_reference_grid.py"""
import json
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from smlib.study import study_params
from smlib.data import load_or_build
from smlib.baselines import select_pair_map, pair_map_similarity, top1_and_mrr
p = study_params("v3_contrastive", "quick", "disjoint", 43)
ds, _ = load_or_build(p, "data")
tr = {d: [ds.text(d, i) for i in ds.split["train"]] for d in ("dating", "hiring")}
va = {d: [ds.text(d, i) for i in ds.split["val"]] for d in ("dating", "hiring")}
for analyzer, ng in (("word", (1, 2)),):  # char_wb (3, 5) takes ~4x longer
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=ng).fit(tr["dating"] + tr["hiring"])
    X = {k: {d: vec.transform(v[d]) for d in v} for k, v in (("tr", tr), ("va", va))}
    t = time.perf_counter()
    m, ch = select_pair_map(X["tr"]["dating"], X["tr"]["hiring"], lrs=(3e-4, 1e-3, 3e-3), epochs=(10, 20, 40, 80), seed=43)
    s = pair_map_similarity(m, X["va"]["dating"], X["va"]["hiring"])
    print(analyzer, "val top1", (top1_and_mrr(s)[0] + top1_and_mrr(s.T)[0]) / 2, "chosen", ch["lr"], ch["epochs"], round(ch["holdout_top1"], 3),
          "secs", round(time.perf_counter() - t, 1), json.dumps({k: {e: round(x, 2) for e, x in v.items()} for k, v in ch["holdout_top1_by_lr_and_epochs"].items()}), flush=True)
