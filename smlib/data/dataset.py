"""Build a dataset (people, texts, split, triplets, pairs) and write/read it as a folder of JSON Lines."""
from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__, atomic
from ..domains import DOMAINS
from ..params_schema import Params, params_hash, without_added_keys
from .mining import DOMAIN_FLIP_TYPES, generate_hard_negative, mine_cross_domain_pairs, mine_triplets
from .people import generate_people
from .schema import PersonSchema
from .scores import SCORE_FNS
from .texts import get_variant, render_dating_profile, render_hiring_resume

RENDER = {"dating": render_dating_profile, "hiring": render_hiring_resume}
DATA_FILES = ("people.jsonl", "texts.jsonl", "hard_negatives.jsonl", "triplets.jsonl", "cross_pairs.jsonl", "split.json")
VIEWS_FILE = "views.jsonl"  # only where a dataset has views (augmented re-tellings, the dev slice's training wording)
TRAINING_WORDING = "training_wording"  # the view of the dev slice written with the training wording


class DatasetError(RuntimeError):
    """A dataset folder is missing, incomplete or does not match its manifest."""


@dataclass
class Dataset:
    """Everything one training run reads; texts are looked up by (domain, text id)."""

    people: list[PersonSchema]
    texts: dict[str, dict[int, str]]           # domain -> text id -> text (ids < n_people are people)
    split: dict[str, list[int]]                # "train" / "val" -> person ids
    triplets: dict[str, dict[str, list]]       # split -> domain -> [(anchor, positive, negative, hard)]
    cross_pairs: dict[str, list]               # split -> [(i, i, [negative ids])]
    hard_negatives: list[dict] = field(default_factory=list)  # {text_id, source_id, flip, domain}
    manifest: dict = field(default_factory=dict)
    # view name -> domain -> person id -> text id: "aug1".. (augmented re-tellings of training people's texts) and
    # TRAINING_WORDING (the dev slice written with the training wording, where the dev slice has its own)
    views: dict[str, dict[str, dict[int, int]]] = field(default_factory=dict)

    def text(self, domain: str, text_id: int) -> str:
        """The text of a person (or hard-negative clone) in one domain."""
        return self.texts[domain][text_id]

    def person(self, person_id: int) -> PersonSchema:
        """The person with this id."""
        return self.people[person_id]

    def split_people(self, split: str) -> list[PersonSchema]:
        """People of one split, in id order."""
        return [self.people[i] for i in self.split[split]]

    def people_texts(self) -> dict[str, list[str]]:
        """Every person's text per domain, in person order (hard-negative clones left out)."""
        return {d: [self.text(d, p.person_id) for p in self.people] for d in self.texts}

    def training_texts(self) -> list[str]:
        """Every text that training can see: both domains, training people, their clones and augmented views."""
        unseen = set(self.split["val"]) | set(self.split.get("dev", ()))
        unseen_views = {tid for name, doms in self.views.items() if not name.startswith("aug")
                        for ids in doms.values() for tid in ids.values()}
        return [t for dom in self.texts.values() for tid, t in dom.items() if tid not in unseen and tid not in unseen_views]

    def augmented(self, domain: str) -> dict[int, list[int]]:
        """Training person id -> the text ids training may use for that person's text in domain (itself first)."""
        views = [v[domain] for name, v in sorted(self.views.items()) if name.startswith("aug")]
        return {pid: [pid, *(v[pid] for v in views if pid in v)] for pid in self.split["train"]} if views else {}

    def examples(self, split: str = "val", n: int = 2) -> str:
        """The first n people of a split: their traits and both texts."""
        blocks = []
        for p in self.split_people(split)[:n]:
            blocks.append(f"--- person {p.person_id}: {p.career}, {p.age}, MBTI {p.mbti}, values {p.core_values}\n"
                          f"DATING: {self.text('dating', p.person_id)}\nHIRING: {self.text('hiring', p.person_id)}")
        return "\n\n".join(blocks)


def data_params(params: Params) -> dict:
    """The part of the params that determines a dataset (data section, seed): Params.data_params."""
    return params.data_params()


def dataset_id(params: Params) -> str:
    """A folder name that names the variant, the seed and the data params hash."""
    d = data_params(params)
    return f"{params.data.variant}_seed{params.seed}_{params_hash(d)}"


def split_people(people: list[PersonSchema], val_fraction: float, seed: int,
                 dev_fraction: float = 0.0) -> dict[str, list[int]]:
    """A seeded split by person, no one in two parts: "val" (the test people), "train" and, with dev_fraction > 0,
    "dev": that share of the training side, never trained on, on which settings are chosen (smlib.selection). The
    dev slice depends only on the people, the seed and the two fractions, so one split serves every run."""
    ids = [p.person_id for p in people]
    random.Random(seed).shuffle(ids)
    n_val = round(len(ids) * val_fraction)
    n_dev = round((len(ids) - n_val) * dev_fraction)
    split = {"train": sorted(ids[n_val + n_dev:]), "val": sorted(ids[:n_val])}
    return split | ({"dev": sorted(ids[n_val:n_val + n_dev])} if n_dev else {})


def _add_hard_negatives(triplets, people, domain, texts, hard_negatives, fraction, variant, seed, rng, phrasings=None):
    """Replace the negative of round(fraction x n) triplets by an attribute-flipped clone of the positive.

    The clone reads almost like the positive but one attribute of this domain's flips is changed; it is
    used only if its text differs from the positive's and it scores strictly below the positive for the
    anchor, so every triplet still orders positive above negative. (A clone of the anchor itself would
    score above the positive almost always, contradicting the triplet's order.) Triplets are tried in a
    seeded random order until the target count is met, so the realised share matches `fraction` unless
    too few triplets admit a lowering flip.
    """
    score = SCORE_FNS[domain]
    out = [(a, p, n, False) for a, p, n in triplets]
    target = round(fraction * len(triplets))
    made = 0
    for k in rng.sample(range(len(triplets)), len(triplets)) if target else ():
        if made == target:
            break
        anchor_id, pos_id, _ = triplets[k]
        anchor, positive = people[anchor_id], people[pos_id]
        for flip in rng.sample(DOMAIN_FLIP_TYPES[domain], len(DOMAIN_FLIP_TYPES[domain])):
            clone = generate_hard_negative(positive, flip, rng)
            text = RENDER[domain](clone, variant=variant, seed=seed, phrasings=phrasings)
            if text != texts[domain][pos_id] and score(anchor, clone) < score(anchor, positive):
                neg_id = len(people) + len(hard_negatives)
                texts[domain][neg_id] = text
                hard_negatives.append({"text_id": neg_id, "source_id": pos_id, "flip": flip, "domain": domain,
                                       "person": clone.to_dict()})
                out[k] = (anchor_id, pos_id, neg_id, True)
                made += 1
                break
    return out


def build_dataset(params: Params) -> Dataset:
    """Generate people and texts, split by person, and mine triplets and pairs within each split."""
    d = params.data
    t0 = time.perf_counter()
    people = generate_people(d.n_people, params.seed)
    split = split_people(people, d.val_fraction, params.seed, d.dev_fraction)
    # rendered after the split: a variant may write validation people and the dev slice with wordings of their own
    wording = {pid: w for w, part in (("test", "val"), ("dev", "dev")) for pid in split.get(part, ())}
    texts = {dom: {p.person_id: RENDER[dom](p, variant=d.variant, seed=params.seed, phrasings=d.train_phrasings,
                                            wording=wording.get(p.person_id, "train"))
                   for p in people} for dom in DOMAINS}
    rng = random.Random(params.seed + 1)
    hard_negatives: list[dict] = []
    triplets: dict[str, dict[str, list]] = {}
    cross_pairs = {}
    counts = {"train": d.n_triplets, "val": d.n_val_triplets, "dev": d.n_val_triplets}
    for s_i, (split_name, ids) in enumerate(split.items()):
        members = [people[i] for i in ids]
        triplets[split_name] = {}
        for d_i, dom in enumerate(DOMAINS):
            mined = mine_triplets(members, SCORE_FNS[dom], counts[split_name], seed=triplet_seed(params.seed, s_i, d_i),
                                  n_candidates=d.n_candidates)
            fraction = d.hard_negative_fraction if split_name == "train" else 0.0
            triplets[split_name][dom] = _add_hard_negatives(mined, people, dom, texts, hard_negatives, fraction,
                                                            d.variant, params.seed, rng, d.train_phrasings)
        n_pairs = d.n_cross_pairs if split_name == "train" else len(members)
        cross_pairs[split_name] = mine_cross_domain_pairs(members, n_pairs, seed=params.seed * 100 + 50 + s_i)
    views = _add_views(people, split, texts, params)
    manifest = {
        "dataset_id": dataset_id(params),
        "params": data_params(params),
        "smlib_version": __version__,
        "build_seconds": round(time.perf_counter() - t0, 2),
        "counts": {
            "people": len(people), "train_people": len(split["train"]), "val_people": len(split["val"]),
            **{f"{s}_triplets_{dom}": len(triplets[s][dom]) for s in triplets for dom in DOMAINS},
            **{f"{s}_hard_triplets_{dom}": sum(t[3] for t in triplets[s][dom]) for s in triplets for dom in DOMAINS},
            **{f"{s}_cross_pairs": len(cross_pairs[s]) for s in cross_pairs},
            **({f"view_{name}_texts": sum(map(len, v.values())) for name, v in views.items()}),
        },
        "hard_negative_share": {  # realised share of training triplets whose negative is a flipped clone
            dom: round(sum(t[3] for t in triplets["train"][dom]) / max(1, len(triplets["train"][dom])), 4) for dom in DOMAINS
        },
    }
    return Dataset(people, texts, split, triplets, cross_pairs, hard_negatives, manifest, views)


def triplet_seed(seed: int, split_index: int, domain_index: int) -> int:
    """The mining seed of one split's (in split order: train, val, dev) triplets of one domain (in DOMAINS order)."""
    return seed * 100 + 10 * split_index + domain_index


def batch_problem(params: Params) -> str | None:
    """Why training on the dataset these params build could never form a batch (None if it can), without building
    it: the training triplets of a domain where every two share a person (training.iter_batches needs BATCH_ITEMS
    items of different people). Mines only as many triplets as it takes to find two that share nobody. Conservative
    where hard negatives replace a negative (a clone counts as its positive's person, so such a triplet involves
    fewer people than the one mined here)."""
    from ..limits import BATCH_ITEMS

    d = params.data  # cross-domain pairs cycle through every training person: any two are of different people
    people = generate_people(d.n_people, params.seed)
    split = split_people(people, d.val_fraction, params.seed, d.dev_fraction)
    members = [people[i] for i in split["train"]]
    for d_i, dom in enumerate(DOMAINS):
        if dom not in params.train.domains:
            continue
        n, found = min(d.n_triplets, 64), False
        while not found:  # the first n triplets mined are the first n of the full list (one RNG, drawn in order)
            mined = mine_triplets(members, SCORE_FNS[dom], n, seed=triplet_seed(params.seed, 0, d_i),
                                  n_candidates=d.n_candidates)
            distinct = list({frozenset(t) for t in mined})  # few when the people are few
            found = any(not a & b for i, a in enumerate(distinct) for b in distinct[i + 1:])
            if found or n == d.n_triplets:
                break
            n = min(d.n_triplets, n * 8)
        if not found:
            return (f"data.n_triplets={d.n_triplets}: every two of the {len(mined)} training {dom} triplets share a "
                    f"person, so no batch of {BATCH_ITEMS} can form (raise data.n_triplets or the training people)")
    return None


def _add_views(people, split, texts, params) -> dict[str, dict[str, dict[int, int]]]:
    """Extra texts under new ids after every other text: data.augment_views re-tellings of each training person's
    texts, and the dev slice in the training wording where the variant gives the dev slice a wording of its own."""
    d = params.data
    views: dict[str, dict[str, dict[int, int]]] = {}
    next_id = max(max(t) for t in texts.values()) + 1
    wanted = [(f"aug{v}", split["train"], {"wording": "train", "view": v}) for v in range(1, d.augment_views + 1)]
    if split.get("dev") and get_variant(d.variant).has_own_dev_wording():
        wanted.append((TRAINING_WORDING, split["dev"], {"wording": "train"}))
    for name, ids, how in wanted:
        views[name] = {dom: {} for dom in DOMAINS}
        for dom in DOMAINS:
            for pid in ids:
                texts[dom][next_id] = RENDER[dom](people[pid], variant=d.variant, seed=params.seed,
                                                  phrasings=d.train_phrasings, **how)
                views[name][dom][pid] = next_id
                next_id += 1
    return views


def _jsonl(rows) -> str:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)


def _serialise(ds: Dataset) -> dict[str, str]:
    return {
        "people.jsonl": _jsonl(p.to_dict() for p in ds.people),
        "texts.jsonl": _jsonl({"domain": dom, "text_id": i, "text": t}
                              for dom in DOMAINS for i, t in sorted(ds.texts[dom].items())),
        "hard_negatives.jsonl": _jsonl(ds.hard_negatives),
        "triplets.jsonl": _jsonl({"split": s, "domain": dom, "anchor": a, "positive": p, "negative": n, "hard": h}
                                 for s in ds.triplets for dom in DOMAINS for a, p, n, h in ds.triplets[s][dom]),
        "cross_pairs.jsonl": _jsonl({"split": s, "anchor": a, "positive": p, "negatives": negs}
                                    for s in ds.cross_pairs for a, p, negs in ds.cross_pairs[s]),
        "split.json": json.dumps(ds.split, sort_keys=True),
    } | ({VIEWS_FILE: _jsonl({"view": name, "domain": dom, "person_id": pid, "text_id": tid}
                             for name in sorted(ds.views) for dom in DOMAINS
                             for pid, tid in sorted(ds.views[name][dom].items()))} if ds.views else {})


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_hash(ds: Dataset) -> str:
    """The dataset's content hash (what its manifest and every run's metrics.json record as its dataset_hash)."""
    return _content_hash({name: _sha(text) for name, text in _serialise(ds).items()})


def _content_hash(file_hashes: dict[str, str]) -> str:
    return _sha(json.dumps(file_hashes, sort_keys=True))[:16]


def write_dataset(ds: Dataset, folder: str | Path, overwrite: bool = False) -> Path:
    """Write the dataset folder with a manifest of content hashes; refuses to overwrite a different dataset."""
    folder = Path(folder).resolve()
    files = _serialise(ds)
    manifest = {**ds.manifest, "files": {name: _sha(text) for name, text in files.items()}}
    manifest["content_hash"] = _content_hash(manifest["files"])
    if (folder / "manifest.json").exists() and not overwrite:
        existing = json.loads((folder / "manifest.json").read_text())
        if existing.get("content_hash") != manifest["content_hash"]:
            raise DatasetError(f"{folder} already holds a different dataset (content hash {existing.get('content_hash')}); "
                               "remove it or choose another folder")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic.write_text(folder / name, text)
    atomic.write_text(folder / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True))  # last, whole
    ds.manifest = manifest
    return folder


def _read_lines(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text().splitlines() if line]


def read_dataset(folder: str | Path) -> Dataset:
    """Read a dataset folder, verifying every file against the manifest's hashes."""
    folder = Path(folder).resolve()  # errors name the folder wherever the reader runs (a kernel runs in notebooks/)
    if not (folder / "manifest.json").is_file():
        raise DatasetError(f"{folder}: no manifest.json (not a dataset folder, or an interrupted write)")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        expected = manifest["files"]
    except (json.JSONDecodeError, KeyError) as e:
        raise DatasetError(f"{folder}/manifest.json is corrupted: {e} (remove the folder: the next study rebuilds "
                           "it)") from None
    for name in DATA_FILES + ((VIEWS_FILE,) if VIEWS_FILE in expected else ()):
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"{folder}: {name} is missing")
        if _sha(path.read_text()) != expected.get(name):
            raise DatasetError(f"{folder}: {name} does not match the manifest's content hash (edited or corrupted)")
    people = [PersonSchema.from_dict(r) for r in _read_lines(folder, "people.jsonl")]
    texts: dict[str, dict[int, str]] = {dom: {} for dom in DOMAINS}
    for r in _read_lines(folder, "texts.jsonl"):
        texts[r["domain"]][r["text_id"]] = r["text"]
    triplets: dict[str, dict[str, list]] = {}
    for r in _read_lines(folder, "triplets.jsonl"):
        triplets.setdefault(r["split"], {dom: [] for dom in DOMAINS})[r["domain"]].append(
            (r["anchor"], r["positive"], r["negative"], r["hard"]))
    cross: dict[str, list] = {}
    for r in _read_lines(folder, "cross_pairs.jsonl"):
        cross.setdefault(r["split"], []).append((r["anchor"], r["positive"], r["negatives"]))
    split = json.loads((folder / "split.json").read_text())
    views: dict[str, dict[str, dict[int, int]]] = {}
    for r in _read_lines(folder, VIEWS_FILE) if VIEWS_FILE in expected else ():
        views.setdefault(r["view"], {dom: {} for dom in DOMAINS})[r["domain"]][r["person_id"]] = r["text_id"]
    return Dataset(people, texts, split, triplets, cross, _read_lines(folder, "hard_negatives.jsonl"), manifest, views)


def _unreadable_manifest(folder: Path) -> bool:
    try:
        return not isinstance(json.loads((folder / "manifest.json").read_text()).get("files"), dict)
    except (OSError, ValueError, AttributeError):
        return True


def load_or_build(params: Params, root: str | Path) -> tuple[Dataset, Path]:
    """Read the dataset for these params from root/<dataset_id>, building and writing it first if absent."""
    folder = Path(root).resolve() / dataset_id(params)
    if (folder / "manifest.json").exists() and not _unreadable_manifest(folder):
        ds = read_dataset(folder)
        if without_added_keys(ds.manifest.get("params") or {}) != data_params(params):
            raise DatasetError(f"{folder}: manifest params differ from the requested data params")
        return ds, folder
    if (folder / "manifest.json").exists():  # cut short by a kill before writes were atomic: the data are rebuilt
        print(f"dataset {folder.name}: manifest.json is unreadable; rebuilding the dataset", file=sys.stderr)
    write_dataset(build_dataset(params), folder, overwrite=True)
    return read_dataset(folder), folder  # the same object a later cached call returns (and a check of the write)
