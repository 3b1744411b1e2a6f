"""Every number the record's reading (runs/<profile>/README.md) cites, printed from what is committed, by label.

Run:  .venv/bin/python benchmarks/reading.py [--record runs/quick] [--out benchmarks/reading_quick.txt]
      .venv/bin/python benchmarks/reading.py --fill FILE     (write each {{label}} of FILE as a marked value)
      .venv/bin/python benchmarks/reading.py --check FILE    (what in FILE is stale or unlabelled)

Nothing is trained. The values come from the record's results_long.csv and paired_differences.csv (written by
`python -m smlib.study --table-only`), each run's train.json and metrics.json, the dataset params in
references.json, and sources beside the record: the stored learning-rate choice (benchmarks/disjoint_lr/), the
stored heldout search (benchmarks/heldout_search/), the wording diagnostics (benchmarks/phrase_prior/,
benchmarks/shift_decomposition/) and, through git, the previous record's results.md.

Each line is `label  value`. In the reading a number is written `<!--=label-->value<!--/-->` (the comments do not
render), and tests/test_docs.py checks every such pair against this output and that the reading's prose holds no
other number, so an edited record cannot leave a stale sentence behind. Intervals are 95% Student-t over seeds
unless the label says `paired` (paired bootstrap over people and seeds, from paired_differences.csv); a label
`by_seed` is a difference paired by seed with its t-interval.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from smlib.config import PROPOSED, REFERENCE_ROWS, ordered_variants, row_order  # noqa: E402
from smlib.metrics import seed_interval  # noqa: E402
from smlib.record import iter_runs, sweep_prefix  # noqa: E402

BAG_OF_WORDS = ("tfidf", "tfidf_trained_word", "tfidf_trained_char")
BOUNDS = ("chance", "ceiling")
LEVEL = 0.95  # every interval's level
NULL_QUANTILE = 0.975  # the permutation null's upper quantile a run records (cka_debiased_null_high@d)
PREVIOUS = "6adfc7d"  # the record before this one: trained on every training person, the last step kept
# (metric, label part, with interval): what the reading may cite per condition
METRICS = (("prefix_top1", "top1", True), ("prefix_d2h_top1", "top1_d2h", False),
           ("full_d2h_top1", "full_top1_d2h", False), ("prefix_hungarian_top1", "hungarian_top1", False),
           ("triplet_acc_dating", "triplet_dating", True), ("triplet_acc_hiring", "triplet_hiring", True),
           ("prefix_variance_dating", "variance_dating", False), ("prefix_hubness_d2h", "hubness_d2h", False))


def fmt(x: float, signed: bool = False) -> str:
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def interval(values, signed: bool = False) -> str:
    mean, low, high = seed_interval(list(values), LEVEL)
    if np.isnan(low):
        return fmt(mean, signed)
    return f"{fmt(mean, signed)} [{fmt(low, signed)}, {fmt(high, signed)}]"


def words(items) -> str:
    """'42', '42 and 43', '42, 43 and 44'."""
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def lr_text(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def by_seed(frame: pd.DataFrame, a: str, b: str, metric: str) -> dict[str, str]:
    """a minus b on metric, paired by seed: the t-interval of the mean difference, its verdict and the per-seed
    differences."""
    x = frame[frame["condition"] == a].set_index("seed")[metric]
    y = frame[frame["condition"] == b].set_index("seed")[metric]
    seeds = sorted(set(x.dropna().index) & set(y.dropna().index))
    if not seeds:
        return {}
    d = [float(x[s] - y[s]) for s in seeds]
    _, low, high = seed_interval(d, LEVEL)
    out = {"": interval(d, signed=True), ".seeds": ", ".join(fmt(v, True) for v in d)}
    if not np.isnan(low):
        out[".verdict"] = "resolved" if low > 0 or high < 0 else "not resolved"
    return out


def split_sizes(record: Path, variant: str) -> dict[str, str]:
    """Validation, training, dev-slice and trained-on people of the variant's first dataset, from the data params
    its references.json records (smlib.data.dataset.split_people on the same people)."""
    from smlib.data import generate_people
    from smlib.data.dataset import split_people

    for path in sorted((record / variant).glob("seed*/references.json")):
        data = json.loads(path.read_text())["data_params"]
        d, seed = data["data"], data["seed"]
        split = split_people(generate_people(d["n_people"], seed), d["val_fraction"], seed, d.get("dev_fraction", 0.0))
        dev = len(split.get("dev", []))
        return {"val_people": str(len(split["val"])), "train_people": str(len(split["train"]) + dev),
                "dev_people": str(dev), "trained_people": str(len(split["train"])),
                "one_person": fmt(1 / len(split["val"]))}
    return {}


def selection_facts(record: Path) -> dict[str, str]:
    """Per variant: how many runs kept their best dev check (and by which rule) and how many their last step; the
    kept steps' range and median; the planned steps; the recipe of the proposed condition."""
    rows = []
    for variant, _, name, path in iter_runs(record, "train.json"):
        if "@" in name:
            continue
        sel = json.loads(path.read_text()).get("selection") or {}
        params = json.loads((path.parent / "metrics.json").read_text())["params"]
        rows.append({"variant": variant, "run": name, "best": sel.get("keep") == "best_dev", "rule": sel.get("rule"),
                     "kept": sel.get("kept_step"), "params": params})
    out: dict[str, str] = {}
    for variant in ordered_variants({r["variant"] for r in rows}):
        mine = [r for r in rows if r["variant"] == variant]
        best = [r for r in mine if r["best"]]
        out[f"{variant}.runs_kept_best"] = str(len(best))
        out[f"{variant}.runs_kept_last"] = str(len(mine) - len(best))
        if best:
            kept = [int(r["kept"]) for r in best]
            out[f"{variant}.kept_rule"] = best[0]["rule"]
            out[f"{variant}.kept_steps"] = f"{min(kept)}-{max(kept)}"
            out[f"{variant}.kept_median"] = f"{np.median(kept):.0f}"
        proposed = next((r["params"] for r in mine if r["run"] == PROPOSED), None)
        if proposed:
            train, data = proposed["train"], proposed["data"]
            out[f"{variant}.lr"] = lr_text(train["lr"])
            out[f"{variant}.max_steps"] = str(train["max_steps"])
            out[f"{variant}.trainable_layers"] = str(train["trainable_layers"])
            out[f"{variant}.augment_views"] = str(data.get("augment_views", 0))
    return out


def search_facts() -> dict[str, str]:
    """The stored disjoint learning-rate choice and heldout recipe search (their own scripts' rules)."""
    import disjoint_lr
    import heldout_search

    out: dict[str, str] = {}
    lr_rows = heldout_search.stored_rows(ROOT / "benchmarks" / "disjoint_lr")
    for r in lr_rows:
        out[f"disjoint_lr.dev_top1.{lr_text(r['lr'])}"] = fmt(r["dev_top1"])
    chosen = disjoint_lr.choose(lr_rows)
    if chosen:
        out["disjoint_lr.seed"] = str(chosen["seed"])
        out["disjoint_lr.chosen"] = lr_text(chosen["lr"])
        out["disjoint_lr.tried"] = " / ".join(lr_text(r["lr"]) for r in lr_rows)
    rows = heldout_search.stored_rows(ROOT / "benchmarks" / "heldout_search")
    budget = heldout_search.budget_of(rows)
    cands = heldout_search.candidates(rows, budget)
    out["search.settings"] = str(sum(r["setting"] in heldout_search.SETTINGS for r in rows))
    out["search.candidates"] = str(len(cands))
    best = heldout_search.best_oracle_check(rows)
    if best:
        out["search.best_any_check"] = fmt(best[1]["val_top1"])
    pick = heldout_search.choose(rows, budget)
    if pick:
        out["search.seed"] = str(pick["seed"])
        out["search.chosen_kept_step"] = str(pick["kept_step"])
        out["search.chosen_dev_top1"] = fmt(pick["dev_top1"])
        out["search.chosen_test_top1"] = fmt(pick["oracle_val_top1"])
    return out


def previous_facts(variant: str = "disjoint") -> dict[str, str]:
    """The previous record's prefix top-1 of the proposed condition, read through git from its results.md (empty
    where the clone lacks that commit)."""
    try:
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS}:runs/quick/results.md"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    header = next((line for line in text.splitlines() if "| prefix_top1 |" in line), None)
    if header is None:
        return {}
    col = [c.strip() for c in header.strip("|").split("|")].index("prefix_top1")
    for line in text[text.index(header):].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == [variant, PROPOSED]:
            return {f"previous.{variant}.top1.{PROPOSED}": cells[col].split(" ")[0], "previous.commit": PREVIOUS}
    return {}


def wording_facts() -> dict[str, str]:
    """What the stored wording diagnostics found (benchmarks/phrase_prior/, benchmarks/shift_decomposition/): the
    share of each wording's phrases read right, the identification the readings allow, and each shift's top-1."""
    out: dict[str, str] = {}
    prior = ROOT / "benchmarks" / "phrase_prior"
    for name in ("frozen", "finetuned_seed42"):
        if not (prior / f"{name}_readings.csv").exists():
            continue
        readings = pd.read_csv(prior / f"{name}_readings.csv")
        def base(space: str, name: str = name) -> str:  # prior.frozen, prior.finetuned_seed42.prefix
            return f"prior.{name}" if space == name else f"prior.{name}.{space}"

        for (space, wording, domain), g in readings.groupby(["space", "wording", "domain"], sort=False):
            right = float((g["value_accuracy"] * g["phrases"]).sum() / g["phrases"].sum())
            out[f"{base(space)}.{wording}.{domain}.read_right"] = fmt(right)
        ceiling = pd.read_csv(prior / f"{name}_ceiling.csv")
        for (space, wording), g in ceiling.groupby(["space", "wording"], sort=False):
            tag = f"{base(space)}.{wording}"
            out[f"{tag}.seeds"] = words(sorted(int(s) for s in g["seed"]))
            out[f"{tag}.draws"] = str(int(g["draws"].iloc[0]))
            for matcher in ("likelihood", "agreement", "likelihood_modelled"):
                if matcher in g and g[matcher].notna().any():
                    values = g[matcher].dropna()
                    out[f"{tag}.{matcher}"] = fmt(values.mean())
                    if len(values) > 1:
                        out[f"{tag}.{matcher}.range"] = f"{fmt(values.min())}-{fmt(values.max())}"
            if "trained" in g and g["trained"].notna().any():
                out[f"{tag}.trained.range"] = f"{fmt(g['trained'].min())}-{fmt(g['trained'].max())}"
    tables = {}
    for path in sorted((ROOT / "benchmarks" / "shift_decomposition").glob("seed*.csv")):
        tables[int(path.stem.removeprefix("seed"))] = table = pd.read_csv(path, index_col="condition")
        for cond, row in table.iterrows():
            for shift, value in row.items():
                out[f"shift.{path.stem}.{cond}.{shift}"] = fmt(value)
    if len(tables) > 1:  # each shift's top-1 over seeds, with its t-interval
        out["shift.seeds"] = words(sorted(tables))
        first = next(iter(tables.values()))
        for cond in first.index:
            for shift in first.columns:
                out[f"shift.{cond}.{shift}"] = interval([t.loc[cond, shift] for t in tables.values()])
    return out


def facts(record: Path) -> dict[str, str]:
    """label -> value (as the reading writes it) for everything the reading of `record` may cite."""
    from scipy.stats import t

    everything = pd.read_csv(record / "results_long.csv")
    swept = everything["condition"].str.contains("@", regex=False)
    long = everything[~swept]
    paired = pd.read_csv(record / "paired_differences.csv") if (record / "paired_differences.csv").exists() else None
    first = next(iter_runs(record, "metrics.json"), None)
    k = json.loads(first[3].read_text())["params"]["model"]["prefix_dim"] if first else 64
    seeds = sorted(int(s) for s in long["seed"].dropna().unique())
    trained = everything[~everything["condition"].isin(REFERENCE_ROWS)]
    out = {"record.K": str(k), "record.seeds": words(seeds), "record.n_seeds": str(len(seeds)),
           "record.n_variants": str(long["variant"].nunique()),
           "record.n_conditions": str(long.loc[~long["condition"].isin(REFERENCE_ROWS), "condition"].nunique()),
           "record.trained_runs": str(len(trained)),
           "record.interval_level": f"{LEVEL:.0%}", "record.null_quantile": f"{NULL_QUANTILE:.1%}",
           "record.t_quantile": f"{t.ppf(0.5 + LEVEL / 2, len(seeds) - 1):.1f}"}
    sweep_k = sorted({int(c.rsplit("=", 1)[1]) for c in everything.loc[swept, "condition"]
                      if c.startswith(sweep_prefix(PROPOSED, "model.prefix_dim"))})
    if sweep_k:
        out["record.sweep_K"] = words(sweep_k)
    for variant in ordered_variants(long["variant"]):
        v = long[long["variant"] == variant]
        out[f"{variant}.seeds"] = words(sorted(int(s) for s in v["seed"].dropna().unique()))
        out.update({f"{variant}.{key}": value for key, value in split_sizes(record, variant).items()})
        for cond in row_order(v["condition"].unique()):
            g = v[v["condition"] == cond].sort_values("seed")
            for metric, name, with_interval in (*METRICS, (f"cka_debiased@{k}", "cka", True),
                                                (f"domain_probe_acc@{k}", "probe", True),
                                                ("cka_debiased@384", "cka384", False), ("cka@384", "cka384_biased", False)):
                if metric in g and g[metric].notna().any():
                    out[f"{variant}.{name}.{cond}"] = interval(g[metric]) if with_interval else fmt(g[metric].mean())
            if g["prefix_top1"].notna().any():
                out[f"{variant}.top1_mean.{cond}"] = fmt(g["prefix_top1"].mean())
                out[f"{variant}.top1_seeds.{cond}"] = ", ".join(fmt(x) for x in g["prefix_top1"])
            null = f"cka_debiased_null_high@{k}"
            if null in g and g[null].notna().any():
                out[f"{variant}.cka_null.{cond}"] = fmt(g[null].mean())
        matchers = [c for c in v["condition"].unique() if c in REFERENCE_ROWS and c not in BOUNDS]
        means = v[v["condition"].isin(matchers)].groupby("condition")["prefix_top1"].mean()
        if len(means):
            out[f"{variant}.best_reference"] = means.idxmax()
        if paired is not None:
            rows = list(paired[paired["variant"] == variant].itertuples())
            for r in rows:
                out[f"{variant}.paired.{r.method}-{r.vs}"] = f"{r.diff:+.3f} [{r.low:+.3f}, {r.high:+.3f}]"
                out[f"{variant}.paired.{r.method}-{r.vs}.verdict"] = "resolved" if r.resolved else "not resolved"
            for r in rows:  # the same draws read the other way round, where the table has no such row
                if r.vs == PROPOSED:
                    out.setdefault(f"{variant}.paired.{PROPOSED}-{r.method}",
                                   f"{-r.diff:+.3f} [{-r.high:+.3f}, {-r.low:+.3f}]")
        pairs = [(PROPOSED, name, "prefix_top1", "top1") for name in BAG_OF_WORDS]
        pairs += [(PROPOSED, "v3_no_prefix", f"triplet_acc_{d}", f"triplet_{d}") for d in ("dating", "hiring")]
        pairs += [("adversarial", PROPOSED, f"domain_probe_acc@{k}", "probe"), ("adversarial", PROPOSED, "prefix_top1", "top1")]
        for a, b, metric, name in pairs:
            if metric in v:
                for suffix, value in by_seed(v, a, b, metric).items():
                    out[f"{variant}.by_seed.{a}-{b}.{name}{suffix}"] = value
        tag = sweep_prefix(PROPOSED, "model.prefix_dim")
        points = everything[(everything["variant"] == variant) & everything["condition"].str.startswith(tag, na=False)]
        if not points.empty:
            sweep_seeds = sorted(points["seed"].dropna().astype(int).unique())
            base = v[(v["condition"] == PROPOSED) & v["seed"].isin(sweep_seeds)]
            out[f"{variant}.sweep.seeds"] = words(sweep_seeds)
            for kk, g in sorted([(k, base), *((int(n[len(tag):]), g) for n, g in points.groupby("condition"))],
                                key=lambda kg: kg[0]):
                for metric, name in (("prefix_top1", "top1"), ("full_d2h_top1", "full_top1_d2h"),
                                     ("triplet_acc_dating", "triplet_dating"), ("triplet_acc_hiring", "triplet_hiring")):
                    out[f"{variant}.sweep.{kk}.{name}"] = fmt(g[metric].mean())
    out.update(selection_facts(record))
    out.update(search_facts())
    out.update(previous_facts())
    out.update(wording_facts())
    return out


def reading(record: Path) -> str:
    """The facts as text: a header, then one `label  value` line each, a blank line between variants."""
    shown = record.resolve()
    shown = shown.relative_to(ROOT) if ROOT in shown.parents else shown  # the same header on every checkout
    lines = [f"Every number the reading of {shown} may cite, by label (see the docstring of benchmarks/reading.py)"]
    values = facts(record)
    width = max(map(len, values)) + 2
    sections: dict[str, list[str]] = {}  # by the label's first part, in the order first seen
    for label, value in values.items():
        sections.setdefault(label.split(".", 1)[0], []).append(f"{label:<{width}}{value}")
    for section in sections.values():
        lines += ["", *section]
    return "\n".join(lines)


PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")
MARKED = re.compile(r"<!--=([^>]*?)-->(.*?)<!--/-->", re.S)
GENERATED = re.compile(r"<!-- results:start -->.*?<!-- results:end -->", re.S)  # the tables: generated, not prose
# what is not prose: fenced code, inline code, link targets, HTML comments
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|\]\([^)\s]*\)|<!--.*?-->", re.S)
# a number a reader reads as one: not part of a name (v3, bf16, top-1, 02_train), signs and exponents included
NUMBER = re.compile(r"(?<![\w.\-/])[+-]?\d+(?:\.\d+)?(?:e-?\d+)?%?(?![\w])")


def fill(path: Path, values: dict[str, str]) -> str:
    """path's text with every {{label}} written as a marked value; an unknown label is an error naming it."""
    text = path.read_text()
    unknown = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if unknown:
        raise SystemExit(f"{path}: no such label: {', '.join(unknown)}")
    return PLACEHOLDER.sub(lambda m: f"<!--={m.group(1)}-->{values[m.group(1)]}<!--/-->", text)


def check_reading(text: str, values: dict[str, str]) -> list[str]:
    """What is wrong with a reading against the facts: a marked value whose label is unknown or whose value is not
    the label's value now, and every number of the prose outside a marked value (tables generated between the
    results markers, code, link targets and comments are not prose). Empty when the reading is current."""
    problems = []
    for label, shown in MARKED.findall(text):
        if label not in values:
            problems.append(f"{label}: no such label in benchmarks/reading.py's output")
        elif shown != values[label]:
            problems.append(f"{label}: the reading says {shown!r}, the record gives {values[label]!r}")
    prose = NOT_PROSE.sub(" ", MARKED.sub(" ", GENERATED.sub(" ", text)))
    for line in prose.splitlines():
        for number in NUMBER.findall(line):
            problems.append(f"unlabelled number {number!r} in: {line.strip()[:100]}")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--record", type=Path, default=ROOT / "runs" / "quick")
    ap.add_argument("--out", type=Path, default=None, help="also write the text here")
    ap.add_argument("--fill", type=Path, default=None, help="rewrite this file's {{label}} placeholders as marked values")
    ap.add_argument("--check", type=Path, default=None, help="list what in this reading is stale or unlabelled")
    args = ap.parse_args(argv)
    if not (args.record / "results_long.csv").exists():
        ap.error(f"{args.record}/results_long.csv is missing: run `python -m smlib.study --table-only` first")
    if args.check:
        problems = check_reading(args.check.read_text(), facts(args.record))
        print("\n".join(problems) or f"{args.check}: every number is labelled and current")
        return 1 if problems else 0
    if args.fill:
        args.fill.write_text(fill(args.fill, facts(args.record)))
        return 0
    text = reading(args.record)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
