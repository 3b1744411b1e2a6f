"""The held-out selection of the trained TF-IDF reference rows, shown in full for one quick dataset.

Run: .venv/bin/python benchmarks/trained_reference_grid.py [variant] [seed]   (default: disjoint 43)
Prints, for each flavour, the held-out top-1 (mean of both directions, 15% of the training people) over
min_df x lr x epochs, what was chosen, and the validation top-1 of the refit map. This is how the grid of
smlib.baselines.select_tfidf_map was sized: at min_df 1 the word map memorises words that only one person
uses and reaches ~0.5-0.76 on validation people; pruning them (min_df 10-30) lifts it to ~1.0.
"""
import sys
import time

from smlib.baselines import _mean_top1, pair_map_similarity, select_tfidf_map
from smlib.data import load_or_build
from smlib.evaluation import TRAINED_TFIDF
from smlib.study import study_params

variant = sys.argv[1] if len(sys.argv) > 1 else "disjoint"
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 43
p = study_params("v3_contrastive", "quick", variant, seed)
ds, _ = load_or_build(p, "data")
tr = {d: [ds.text(d, i) for i in ds.split["train"]] for d in ("dating", "hiring")}
va = {d: [ds.text(d, i) for i in ds.split["val"]] for d in ("dating", "hiring")}
for flavour, (analyzer, ngrams) in TRAINED_TFIDF.items():
    t = time.perf_counter()
    vec, model, ch = select_tfidf_map(tr["dating"], tr["hiring"], analyzer, ngrams, out_dim=p.model.prefix_dim,
                                      temperature=p.loss.temperature, seed=seed)
    val = _mean_top1(pair_map_similarity(model, vec.transform(va["dating"]), vec.transform(va["hiring"])))
    print(f"{variant} seed {seed} {flavour}: chose min_df {ch['min_df']} lr {ch['lr']} epochs {ch['epochs']} "
          f"({ch['features']} terms), held-out {ch['holdout_top1']:.3f}, validation {val:.3f}, "
          f"{time.perf_counter() - t:.0f} s")
    for min_df, by_lr in ch["holdout_top1_by_min_df_lr_and_epochs"].items():
        for lr, row in by_lr.items():
            print(f"  min_df {min_df:>3} lr {lr:<6} " + "  ".join(f"{e} ep {v:.3f}" for e, v in row.items()))
