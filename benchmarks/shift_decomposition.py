"""Which shift costs what: one trained `heldout` model and the reference rows on four renderings of the same
validation people (smlib.data.shifts): no shift, phrase shift, template shift, both (today's heldout).

Run:  .venv/bin/python benchmarks/shift_decomposition.py --checkpoint DIR [--seed 42] [--out benchmarks/shift_decomposition]

DIR is the checkpoint of a `v3_contrastive` run of the quick profile's `heldout` recipe for that seed (a study
keeps it under checkpoints/quick/heldout/seed<seed>/v3_contrastive-<params hash>; none is committed, so a
reproduction retrains it: `python -m smlib.study --profile quick --variants heldout --conditions v3_contrastive
--seeds 42 --out <scratch>`). Per shift: the model's identity top-1 (mean of both directions) and every reference
row of the record (TF-IDF, trained TF-IDF, zero-shot, frozen probe, Procrustes, CCA: trained on the training people
and chosen on the dev slice exactly as 01_data does, only the validation texts differ). Written to --out as
`seed<seed>.csv` and `seed<seed>.txt` (what it printed).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from smlib.data import load_or_build  # noqa: E402
from smlib.data.shifts import SHIFTS, shifted_text  # noqa: E402
from smlib.domains import DOMAINS  # noqa: E402
from smlib.evaluation import embed_validation  # noqa: E402
from smlib.models import build_model, load_checkpoint  # noqa: E402
from smlib.provenance import cpu_flags, cpu_model  # noqa: E402
from smlib.references import from_similarity, reference_rows  # noqa: E402


def shifted(dataset, seed: int, shift: str):
    """The dataset with every validation person's two texts rewritten under one shift."""
    by_id = {p.person_id: p for p in dataset.people}
    val = dataset.split["val"]
    texts = {d: {**dataset.texts[d], **{i: shifted_text(by_id[i], d, seed, shift) for i in val}} for d in DOMAINS}
    return dataclasses.replace(dataset, texts=texts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "shift_decomposition"))
    args = ap.parse_args()
    model, _, saved = load_checkpoint(args.checkpoint)
    if saved.data.variant != "heldout" or saved.seed != args.seed:
        raise SystemExit(f"{args.checkpoint} is a {saved.data.variant} run of seed {saved.seed}, not heldout seed "
                         f"{args.seed}")
    model.eval()
    dataset, _ = load_or_build(saved, ROOT / "data")
    frozen = build_model(saved).eval()  # the untrained encoder, as 01_data's zero-shot row
    text, rows = io.StringIO(), []
    with contextlib.redirect_stdout(text):
        print(f"# {cpu_model()} ({cpu_flags()}); torch {torch.__version__}; python benchmarks/shift_decomposition.py "
              f"--checkpoint {args.checkpoint} --seed {args.seed}")
        for shift in SHIFTS:
            t0 = time.perf_counter()
            ds = shifted(dataset, args.seed, shift)
            with torch.no_grad():
                emb = embed_validation(model, ds, saved.eval.batch_size)
            sims = torch.from_numpy(emb["dating_prefix"]) @ torch.from_numpy(emb["hiring_prefix"]).T
            trained = {"condition": "v3_contrastive", **from_similarity(sims, saved)}
            refs = reference_rows(ds, saved, zero_shot_model=frozen, selection={})
            for row in [trained, *refs]:
                rows.append({"shift": shift, "condition": row["condition"],
                             "prefix_top1": (row["prefix_d2h_top1"] + row["prefix_h2d_top1"]) / 2})
            print(f"{shift}: {time.perf_counter() - t0:.0f} s")
        frame = pd.DataFrame(rows).pivot(index="condition", columns="shift", values="prefix_top1")[list(SHIFTS)]
        print("\nIdentity top-1 (mean of both directions) of the validation people under each shift, seed "
              f"{args.seed}:")
        print(frame.to_string(float_format="%.3f"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / f"seed{args.seed}.csv", float_format="%.4f")
    (out / f"seed{args.seed}.txt").write_text(text.getvalue())
    print(text.getvalue())


if __name__ == "__main__":
    main()
