"""What the encoder's prior carries to new wording, phrase by phrase, and the identification it allows.

Run:  .venv/bin/python benchmarks/phrase_prior.py [--seeds 42,43,44] [--draws 20] [--phrasings 3] [--name frozen]
      .venv/bin/python benchmarks/phrase_prior.py --checkpoint DIR --name finetuned_seed42   (a trained encoder)

Every trait phrase of the dev and heldout wordings is embedded alone (the frozen bundled encoder's pooled output,
or with --checkpoint a trained run's identity prefix and its full embedding) and read as the trait value whose
training phrases' centroid is nearest among every value of its domain (smlib.phrase_prior). Printed per wording and
domain: the phrases read right (value, and attribute), per attribute. Then the prior's ceiling: readings of the
validation people of the quick `heldout` dataset of each seed drawn from the measured confusions, matched by the
likelihood matcher (which knows the wording's own confusions: an oracle ceiling) and by the agreement count
(`--draws` draws, 2.5-97.5 percentile interval); for heldout also the likelihood matcher that models the readers by
the dev wording's confusions (`likelihood_modelled`, smoothed with MODEL_EPS), and beside them chance and the
committed record's `v3_contrastive` and best matcher rows of that seed. Written to --out:
`<name>_readings.csv` (per wording, domain and attribute), `<name>[_<space>]_confusion_<wording>_<domain>.csv`,
`<name>_ceiling.csv`, and the printed text as `<name>.txt`.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from smlib.config import load_params  # noqa: E402
from smlib.data import load_or_build  # noqa: E402
from smlib.data.wording.dev import DEV_VOCAB  # noqa: E402
from smlib.data.wording.disjoint import DEFAULT_PHRASINGS, DISJOINT_VOCAB, MAX_PHRASINGS  # noqa: E402
from smlib.data.wording.heldout import HELDOUT_VOCAB  # noqa: E402
from smlib.phrase_prior import identification_ceiling, read_phrases  # noqa: E402
from smlib.provenance import cpu_flags, cpu_model  # noqa: E402

WORDINGS = {"dev": DEV_VOCAB, "heldout": HELDOUT_VOCAB}
MODEL_EPS = 0.1  # fixed before any run, never tuned: the smoothing of the modelled confusions
MATCHERS = ("tfidf", "tfidf_trained_word", "tfidf_trained_char", "zero_shot", "frozen_probe", "procrustes", "cca")


def embedders(checkpoint: str | None, seed: int) -> dict:
    """space -> embed(texts, domain): the frozen bundled encoder's pooled output, or a trained run's identity prefix
    and its full embedding."""
    from smlib.models import build_model, load_checkpoint

    if checkpoint is None:
        model = build_model(load_params("v3_contrastive", "quick", {"data.variant": "heldout", "seed": seed})).eval()
        return {"frozen": lambda texts, domain: model.embed(list(texts))}
    model, _, _ = load_checkpoint(checkpoint)
    model.eval()
    return {"prefix": lambda texts, domain: model.encode_prefix(list(texts), domain),
            "full": lambda texts, domain: model.encode(list(texts), domain)}


def _smoothed(confusion):
    """(1 - MODEL_EPS) confusion + MODEL_EPS uniform."""
    return (1 - MODEL_EPS) * confusion + MODEL_EPS / confusion.shape[1]


def record_rows(seed: int) -> dict:
    """The committed record's heldout prefix top-1 of v3_contrastive and the best matcher row for one seed."""
    frame = pd.read_csv(ROOT / "runs" / "quick" / "results_long.csv")
    rows = frame[(frame["variant"] == "heldout") & (frame["seed"] == seed) & ~frame["condition"].str.contains("@")]
    top1 = rows.set_index("condition")["prefix_top1"]
    best = top1.reindex(MATCHERS).dropna()
    return {"trained": float(top1.get("v3_contrastive", float("nan"))),
            "best_matcher": best.idxmax() if len(best) else None,
            "best_matcher_top1": float(best.max()) if len(best) else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--checkpoint", default=None, help="a trained run's checkpoint folder (default: the frozen encoder)")
    ap.add_argument("--phrasings", type=int, default=DEFAULT_PHRASINGS,
                    help=f"training phrases per value the centroids use (default {DEFAULT_PHRASINGS}, the record's; "
                         f"at most {MAX_PHRASINGS})")
    ap.add_argument("--name", default="frozen", help="the output files' prefix")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "phrase_prior"))
    args = ap.parse_args()
    torch.set_num_threads(1)  # a phrase near two centroids reads the same on every thread count (the sums' order)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not 1 <= args.phrasings <= MAX_PHRASINGS:
        ap.error(f"--phrasings {args.phrasings}: expected 1..{MAX_PHRASINGS}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        print(f"# {cpu_model()} ({cpu_flags()}); torch {torch.__version__}; "
              f"python benchmarks/phrase_prior.py --seeds {args.seeds} --draws {args.draws} --phrasings {args.phrasings}"
              + (f" --checkpoint {args.checkpoint} --name {args.name}" if args.checkpoint else ""))
        readings, ceilings = [], []
        training = {d: {a: {v: phs[: args.phrasings] for v, phs in values.items()} for a, values in attrs.items()}
                    for d, attrs in DISJOINT_VOCAB.items()}  # the centroids: the first --phrasings training phrases
        for space, embed in embedders(args.checkpoint, seeds[0]).items():
            confusions = {}
            for wording, vocab in WORDINGS.items():
                for domain in ("dating", "hiring"):
                    with torch.no_grad():
                        r = read_phrases(functools.partial(embed, domain=domain), training[domain], vocab[domain])
                    confusions[(wording, domain)] = r
                    label = args.name if space == args.name else f"{args.name}_{space}"
                    r.confusion_frame().to_csv(out / f"{label}_confusion_{wording}_{domain}.csv", float_format="%.3f")
                    table = r.by_attribute().assign(space=space, wording=wording, domain=domain)
                    readings.append(table)
                    print(f"\n{space} / {wording} / {domain}: {len(r.phrases)} phrases, {r.accuracy:.3f} read as "
                          "the right value")
                    print(table[["attribute", "phrases", "value_accuracy", "attribute_accuracy"]]
                          .to_string(index=False, float_format="%.3f"))
            for seed in seeds:
                params = load_params("v3_contrastive", "quick", {"data.variant": "heldout", "seed": seed})
                dataset, _ = load_or_build(params, ROOT / "data")
                by_id = {p.person_id: p for p in dataset.people}
                people = [by_id[i] for i in dataset.split["val"]]
                for wording in WORDINGS:
                    rd, rh = confusions[(wording, "dating")], confusions[(wording, "hiring")]
                    if rd.labels != rh.labels:
                        raise SystemExit("the dating and hiring tables hold different trait values")
                    # heldout: also the matcher that models the readers by the dev wording's confusions (what the
                    # leave-wording-out rule may look at), mixed with MODEL_EPS of uniform so no reading is impossible
                    modelled = tuple(_smoothed(confusions[("dev", d)].confusion()) for d in ("dating", "hiring")) \
                        if wording == "heldout" else None
                    c = identification_ceiling(people, rd.labels, rd.confusion(), rh.confusion(), args.draws, seed,
                                               population=dataset.people, modelled=modelled)
                    ceilings.append({"space": space, "wording": wording, "seed": seed, **c,
                                     **(record_rows(seed) if wording == "heldout" and args.checkpoint is None else {})})
        frame = pd.DataFrame(ceilings)
        print("\nThe prior's ceiling: top-1 of matching the validation people by their phrase readings "
              f"({args.draws} draws, 2.5-97.5 percentile), both directions averaged:")
        print(frame.to_string(index=False, float_format="%.3f"))
    pd.concat(readings).to_csv(out / f"{args.name}_readings.csv", index=False, float_format="%.4f")
    frame.to_csv(out / f"{args.name}_ceiling.csv", index=False, float_format="%.4f")
    (out / f"{args.name}.txt").write_text(text.getvalue())
    print(text.getvalue())


if __name__ == "__main__":
    main()
