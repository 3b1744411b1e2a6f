"""What an encoder's prior carries, phrase by phrase, and the identification it allows.

Reading: each trait phrase of a wording (dev, heldout) is embedded alone and read as the trait value whose training
phrases' centroid is nearest (cosine), among every trait value of its domain: the reader is not told which attribute
a phrase is about. `read_phrases` gives the readings, their accuracy per attribute and the confusion matrix (row: the
phrase's true value, column: what it was read as, each row the share of that value's phrases).

Identification: `identification_ceiling` draws readings of every person's traits in both domains from the measured
confusions and matches people, so its top-1 is what readers of that quality can reach on this wording. A person's
texts hold four fields of trait phrases (smlib.data.texts): the extreme Big Five levels in a shuffled order, the
core values in the person's order (the same in both texts), one communication style and one attachment style. The
matcher sees each field's readings (and so how many phrases a field holds, as any reader of the text does), not
the traits. Two matchers:

- `likelihood`: the likelihood ratio of the two readings being one person's under the measured confusions, with the
  traits' population frequencies as the prior (the best matcher for these readers; core values are taken as
  independent draws per position, a slight simplification of drawing without replacement). It knows how this
  wording's phrases are read, which no method trained without the wording can: an oracle, so its top-1 is a
  ceiling on what the readings carry, not a method. `modelled` runs the same matcher assuming other confusions
  (e.g. measured on the dev wording, which the leave-wording-out rule may look at);
- `agreement`: how many readings agree (the multiset overlap of the shuffled field, equal readings at equal
  positions of the ordered ones).

A query's top-1 counts 1 / (number of candidates tied at the top) when its person is among them: the expectation of
breaking ties at random. Both directions are averaged, as in the headline metric.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .data.schema import BIG_FIVE
from .data.texts import big_five_level
from .metrics import both_ways, mean_both_ways

Label = tuple[str, str]  # (attribute, value)


@dataclass(frozen=True)
class PhraseReading:
    """How one encoder reads one wording's phrases of one domain."""

    labels: tuple[Label, ...]  # every (attribute, value) of the training table, in its order
    phrases: tuple[str, ...]
    truth: np.ndarray  # (P,) each phrase's true label index
    read: np.ndarray  # (P,) the label index it was read as

    @property
    def accuracy(self) -> float:
        return float((self.truth == self.read).mean())

    def by_attribute(self) -> pd.DataFrame:
        """Per attribute: phrases, the share read as the right value, and the share read as the right attribute."""
        rows = []
        for attr in dict.fromkeys(a for a, _ in self.labels):
            mine = np.array([self.labels[t][0] == attr for t in self.truth])
            right_attr = np.array([self.labels[r][0] == attr for r in self.read])
            rows.append({"attribute": attr, "phrases": int(mine.sum()),
                         "value_accuracy": float((self.truth == self.read)[mine].mean()),
                         "attribute_accuracy": float(right_attr[mine].mean())})
        return pd.DataFrame(rows)

    def confusion(self) -> np.ndarray:
        """(L, L) row-normalised: row t, the share of value t's phrases read as each label (a row without phrases
        reads as itself)."""
        n = len(self.labels)
        counts = np.zeros((n, n))
        np.add.at(counts, (self.truth, self.read), 1.0)
        empty = counts.sum(1) == 0
        counts[empty, np.flatnonzero(empty)] = 1.0
        return counts / counts.sum(1, keepdims=True)

    def confusion_frame(self) -> pd.DataFrame:
        names = [f"{a}:{v}" for a, v in self.labels]
        return pd.DataFrame(self.confusion(), index=names, columns=names)


def table_labels(table: dict) -> tuple[Label, ...]:
    """Every (attribute, value) of one domain's phrase table, in its order."""
    return tuple((a, v) for a, values in table.items() for v in values)


def read_phrases(embed: Callable[[list[str]], torch.Tensor], train_table: dict, table: dict) -> PhraseReading:
    """Read each phrase of `table` (one domain: attribute -> value -> phrases) as the label of `train_table` (the same
    domain's training phrases) whose centroid of unit-length phrase embeddings is nearest in cosine."""
    labels = table_labels(train_table)
    index = {label: i for i, label in enumerate(labels)}
    unknown = {(a, v) for a, values in table.items() for v in values} - set(index)
    if unknown:
        raise ValueError(f"read_phrases: values the training table lacks: {sorted(unknown)}")
    train = [(index[(a, v)], ph) for a, values in train_table.items() for v, phs in values.items() for ph in phs]
    tested = [(index[(a, v)], ph) for a, values in table.items() for v, phs in values.items() for ph in phs]
    if not tested:
        raise ValueError("read_phrases: the table holds no phrase")
    vectors = torch.nn.functional.normalize(embed([ph for _, ph in train] + [ph for _, ph in tested]).float(), dim=-1)
    train_vec, test_vec = vectors[: len(train)], vectors[len(train):]
    owner = torch.tensor([i for i, _ in train])
    centroids = torch.zeros(len(labels), vectors.shape[1]).index_add(0, owner, train_vec)
    centroids = torch.nn.functional.normalize(centroids, dim=-1)
    read = (test_vec @ centroids.T).argmax(1).numpy()
    return PhraseReading(labels, tuple(ph for _, ph in tested), np.array([i for i, _ in tested]), read)


# --- identification from readings ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One field of a text's trait phrases: the hypotheses of what it holds (each a tuple of label indices, in the
    order they are written), their prior probabilities, and whether the text shuffles them."""

    name: str
    hypotheses: tuple[tuple[int, ...], ...]
    prior: np.ndarray
    shuffled: bool = False


def reading_likelihoods(field: Field, confusion: np.ndarray, readings: Sequence[tuple[int, ...]]) -> np.ndarray:
    """(people, hypotheses): P(a person's readings of this field | hypothesis), 0 where the counts differ. A shuffled
    field's readings are a uniformly shuffled order: the permanent of the hypothesis-by-reading matrix over n!."""
    out = np.zeros((len(readings), len(field.hypotheses)))
    by_size: dict[int, list[int]] = {}
    for h, hyp in enumerate(field.hypotheses):
        by_size.setdefault(len(hyp), []).append(h)
    for n, hs in by_size.items():
        mine = [p for p, seen in enumerate(readings) if len(seen) == n]
        if n == 0:  # an empty field: certain under every empty hypothesis
            out[np.ix_(mine, hs)] = 1.0
            continue
        labels = np.array([field.hypotheses[h] for h in hs], dtype=np.int64)  # (H_n, n)
        perms = np.array(list(itertools.permutations(range(n))) if field.shuffled else [tuple(range(n))],
                         dtype=np.int64)  # (n! or 1, n)
        for p in mine:
            seen = readings[p]
            m = confusion[labels][:, :, np.asarray(seen)]  # (H_n, n, n): hypothesis slot k read as reading l
            out[p, hs] = m[:, np.arange(n)[None, :], perms].prod(-1).mean(-1)  # (H_n, n!) -> (H_n,)
    return out


def pair_scores(fields: Sequence[Field], conf_a: np.ndarray, conf_b: np.ndarray, read_a: list[dict],
                read_b: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(log likelihood ratio, agreement count), each (people_a, people_b): row i, person i's side-a readings against
    column j's side-b readings."""
    log_lr = np.zeros((len(read_a), len(read_b)))
    agree = np.zeros((len(read_a), len(read_b)))
    for f in fields:
        a = reading_likelihoods(f, conf_a, [r[f.name] for r in read_a])  # (Na, H)
        b = reading_likelihoods(f, conf_b, [r[f.name] for r in read_b])  # (Nb, H)
        joint = (a * f.prior) @ b.T  # P(both readings | one person)
        marginal = np.outer(a @ f.prior, b @ f.prior)  # P(each reading | two people)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_lr += np.where(joint > 0, np.log(joint) - np.log(marginal), -np.inf)
        agree += _agreement(f, conf_a.shape[1], [r[f.name] for r in read_a], [r[f.name] for r in read_b])
    return log_lr, agree


def _agreement(field: Field, n_labels: int, read_a: list[tuple], read_b: list[tuple]) -> np.ndarray:
    """(Na, Nb) readings that agree: the multiset overlap of a shuffled field, equal readings at equal positions
    of an ordered one."""
    if field.shuffled:
        ca, cb = np.zeros((len(read_a), n_labels)), np.zeros((len(read_b), n_labels))
        for c, reads in ((ca, read_a), (cb, read_b)):
            for i, seen in enumerate(reads):
                np.add.at(c[i], list(seen), 1.0)
        return np.minimum(ca[:, None, :], cb[None, :, :]).sum(-1)
    width = max((len(r) for r in (*read_a, *read_b)), default=0)
    out = np.zeros((len(read_a), len(read_b)))
    for k in range(width):
        xa = np.array([r[k] if len(r) > k else -1 for r in read_a])
        xb = np.array([r[k] if len(r) > k else -2 for r in read_b])
        out += xa[:, None] == xb[None, :]
    return out


def top1_with_ties(scores: np.ndarray) -> float:
    """Mean over rows of 1 / (candidates tied at the row's maximum) where the row's own column is among them."""
    best = scores.max(1, keepdims=True)
    at_top = scores == best
    own = np.diag(at_top)
    return float(np.mean(np.where(own, 1.0 / at_top.sum(1), 0.0)))


def trait_fields(people, labels: Sequence[Label], population=None) -> tuple[list[Field], list[dict]]:
    """The four trait fields of the texts (smlib.data.texts) over `labels`, with priors from `population` (default:
    the people themselves), and each person's true label indices per field."""
    index = {label: i for i, label in enumerate(labels)}
    population = list(population if population is not None else people)
    fields, truth = [], [dict() for _ in people]
    # Big Five: every combination of levels; the text shows the extreme ones, shuffled
    level_p = {t: Counter(big_five_level(getattr(p, t)) for p in population) for t in BIG_FIVE}
    combos = list(itertools.product(("high", "low", "mid"), repeat=len(BIG_FIVE)))
    hyps = tuple(tuple(index[(t, lv)] for t, lv in zip(BIG_FIVE, c, strict=True) if lv != "mid") for c in combos)
    prior = np.array([math.prod(level_p[t][lv] / len(population) for t, lv in zip(BIG_FIVE, c, strict=True))
                      for c in combos])
    fields.append(Field("traits", hyps, prior, shuffled=True))
    for k, p in enumerate(people):
        truth[k]["traits"] = tuple(index[(t, big_five_level(getattr(p, t)))] for t in BIG_FIVE
                                   if big_five_level(getattr(p, t)) != "mid")
    # core values: position k holds a value (independent draws from their frequency) or nothing
    counts = Counter(len(p.core_values) for p in population)
    values = Counter(v for p in population for v in p.core_values)
    total = sum(values.values())
    for pos in range(max(counts)):
        present = sum(c for n, c in counts.items() if n > pos) / len(population)
        vs = [v for a, v in labels if a == "core_values"]
        fields.append(Field(f"value{pos}", ((),) + tuple((index[("core_values", v)],) for v in vs),
                            np.array([1 - present] + [present * values[v] / total for v in vs])))
        for k, p in enumerate(people):
            truth[k][f"value{pos}"] = (index[("core_values", p.core_values[pos])],) if len(p.core_values) > pos else ()
    for attr in ("communication_style", "attachment_style"):
        freq = Counter(getattr(p, attr) for p in population)
        vs = [v for a, v in labels if a == attr]
        fields.append(Field(attr, tuple((index[(attr, v)],) for v in vs),
                            np.array([freq[v] / len(population) for v in vs])))
        for k, p in enumerate(people):
            truth[k][attr] = (index[(attr, getattr(p, attr))],)
    return fields, truth


def draw_readings(truth: list[dict], confusion: np.ndarray, rng: np.random.Generator,
                  shuffled: Sequence[str] = ("traits",)) -> list[dict]:
    """Each person's readings: every true label replaced by a draw from its confusion row (shuffled fields shuffled)."""
    out = []
    for person in truth:
        mine = {}
        for name, labels in person.items():
            seen = [int(rng.choice(len(confusion), p=confusion[t])) for t in labels]
            if name in shuffled:
                rng.shuffle(seen)
            mine[name] = tuple(seen)
        out.append(mine)
    return out


def headline_top1(scores: np.ndarray) -> float:
    """top1_with_ties of a (dating, hiring) score matrix read both ways, averaged as the headline metric is."""
    return mean_both_ways(*(top1_with_ties(s) for s in both_ways(scores)))


def simulate_top1(fields: Sequence[Field], truth: list[dict], conf_a: np.ndarray, conf_b: np.ndarray,
                  draws: int = 20, seed: int = 0, modelled: tuple[np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per draw: the likelihood and agreement matchers' top-1, both directions averaged; with modelled
    (the confusions a matcher assumes, e.g. measured on another wording), the likelihood matcher under those too."""
    rng = np.random.default_rng(seed)
    shuffled = tuple(f.name for f in fields if f.shuffled)
    rows = []
    for d in range(draws):
        read_a = draw_readings(truth, conf_a, rng, shuffled)
        read_b = draw_readings(truth, conf_b, rng, shuffled)
        lr, agree = pair_scores(fields, conf_a, conf_b, read_a, read_b)
        row = {"draw": d, "likelihood": headline_top1(lr), "agreement": headline_top1(agree)}
        if modelled is not None:
            row["likelihood_modelled"] = headline_top1(pair_scores(fields, *modelled, read_a, read_b)[0])
        rows.append(row)
    return pd.DataFrame(rows)


def identification_ceiling(people, labels: Sequence[Label], conf_dating: np.ndarray, conf_hiring: np.ndarray,
                           draws: int = 20, seed: int = 0, population=None,
                           modelled: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The prior's ceiling: top-1 of each matcher over `draws` draws of readings, its mean and the 2.5-97.5
    percentile interval over draws, and chance. The likelihood matcher knows the confusions the readings are drawn
    from (measured on the wording itself: an oracle); `modelled` adds one that assumes other confusions."""
    if draws < 2:
        raise ValueError(f"identification_ceiling needs at least 2 draws for an interval, got {draws}")
    fields, truth = trait_fields(people, labels, population)
    frame = simulate_top1(fields, truth, conf_dating, conf_hiring, draws, seed, modelled)
    out = {"people": len(people), "draws": draws, "chance": 1 / len(people)}
    for m in [c for c in frame.columns if c != "draw"]:
        out[m] = float(frame[m].mean())
        out[f"{m}_low"], out[f"{m}_high"] = (float(x) for x in np.percentile(frame[m], [2.5, 97.5]))
    return out
