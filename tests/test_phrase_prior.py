"""The phrase-level prior diagnostic on cases whose answers are known in closed form."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from smlib.data.people import generate_people
from smlib.phrase_prior import (
    Field,
    identification_ceiling,
    read_phrases,
    simulate_top1,
    table_labels,
    trait_fields,
)


def test_phrases_are_read_as_the_nearest_training_centroid_among_every_attribute():
    """Four labels on the axes; a phrase pointing between two of them is read as the nearer centroid, whatever
    attribute it is about: one of (a, x)'s phrases is read as (b, u), so a's value accuracy is 3/4 and its attribute
    accuracy 3/4, b's both 1, and the confusion row of (a, x) is [1/2, 0, 1/2, 0]."""
    train = {"a": {"x": ("ax1", "ax2"), "y": ("ay1",)}, "b": {"u": ("bu1",), "w": ("bw1",)}}
    table = {"a": {"x": ("tx1", "tx2"), "y": ("ty1", "ty2")}, "b": {"u": ("tu1",), "w": ("tw1",)}}
    e = torch.eye(4)
    vectors = {"ax1": e[0] + 0.1 * e[1], "ax2": e[0] - 0.1 * e[1], "ay1": e[1], "bu1": e[2], "bw1": e[3],
               "tx1": e[0] + 0.2 * e[2], "tx2": 0.4 * e[0] + e[2], "ty1": e[1], "ty2": e[1] + 0.3 * e[3],
               "tu1": e[2] + 0.5 * e[0], "tw1": e[3]}
    reading = read_phrases(lambda texts: torch.stack([vectors[t] for t in texts]), train, table)
    assert reading.labels == (("a", "x"), ("a", "y"), ("b", "u"), ("b", "w"))
    assert reading.read.tolist() == [0, 2, 1, 1, 2, 3]
    assert reading.accuracy == pytest.approx(5 / 6)
    by_attr = reading.by_attribute().set_index("attribute")
    assert by_attr.loc["a", "value_accuracy"] == pytest.approx(3 / 4)
    assert by_attr.loc["a", "attribute_accuracy"] == pytest.approx(3 / 4)
    assert by_attr.loc["b", ["value_accuracy", "attribute_accuracy"]].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(reading.confusion()[0], [0.5, 0, 0.5, 0])
    with pytest.raises(ValueError, match="values the training table lacks"):
        read_phrases(lambda texts: torch.ones(len(texts), 4), train, {"a": {"z": ("p",)}})


def test_the_likelihood_matcher_reaches_the_closed_form_top1_of_symmetric_readers():
    """One field of G equally likely values, read right with probability q and otherwise as any other value: the true
    match is at the top exactly when its two readings agree (probability s = q^2 + (1-q)^2/(G-1)), tied with every
    other candidate whose reading agrees (each independently with probability 1/G), so top-1 = s (1 - (1-1/G)^n) /
    (n/G) + (1 - s) (1 - 1/G)^(n-1) / n. 400 simulations of 20 people; the agreement count ranks the same way."""
    g, q, n = 4, 0.9, 20
    confusion = np.full((g, g), (1 - q) / (g - 1)) + np.eye(g) * (q - (1 - q) / (g - 1))
    field = Field("style", tuple((v,) for v in range(g)), np.full(g, 1 / g))
    rng = np.random.default_rng(0)
    frames = [simulate_top1([field], [{"style": (int(v),)} for v in rng.integers(0, g, n)], confusion, confusion,
                            draws=4, seed=k) for k in range(100)]
    s = q ** 2 + (1 - q) ** 2 / (g - 1)
    expected = s * (1 - (1 - 1 / g) ** n) / (n / g) + (1 - s) * (1 - 1 / g) ** (n - 1) / n
    got = np.concatenate([f["likelihood"].to_numpy() for f in frames])
    assert abs(got.mean() - expected) < 4 * got.std() / np.sqrt(len(got)) + 1e-3, (got.mean(), expected)
    np.testing.assert_allclose(np.concatenate([f["agreement"].to_numpy() for f in frames]), got)


def test_perfect_readers_find_everyone_up_to_people_with_the_same_traits():
    """With the identity confusion the readings are the traits: top-1 is the mean over people of 1 / (people whose
    revealed traits are all the same), for both matchers, in every draw."""
    people = generate_people(60, 3)
    labels = table_labels(_table())
    fields, truth = trait_fields(people, labels)
    profile = [tuple(sorted((k, tuple(sorted(v)) if k == "traits" else v) for k, v in t.items())) for t in truth]
    sizes = Counter(profile)
    expected = float(np.mean([1 / sizes[p] for p in profile]))
    eye = np.eye(len(labels))
    result = identification_ceiling(people, labels, eye, eye, draws=2)
    assert result["likelihood"] == pytest.approx(expected) and result["agreement"] == pytest.approx(expected)
    assert result["likelihood_low"] == pytest.approx(expected) and result["chance"] == pytest.approx(1 / 60)


def test_readers_at_chance_find_people_only_by_how_many_phrases_their_fields_hold():
    """Readings that say nothing (every row of the confusion the same): what is left is what any reader counts, how
    many trait phrases and how many core values a text holds, so top-1 = mean of 1 / (people with the same counts)."""
    people = generate_people(40, 5)
    labels = table_labels(_table())
    flat = np.full((len(labels), len(labels)), 1 / len(labels))
    fields, truth = trait_fields(people, labels)
    counts = [(len(t["traits"]), sum(bool(v) for k, v in t.items() if k.startswith("value"))) for t in truth]
    sizes = Counter(counts)
    result = identification_ceiling(people, labels, flat, flat, draws=2)
    assert result["likelihood"] == pytest.approx(float(np.mean([1 / sizes[c] for c in counts])))


def _table() -> dict:
    from smlib.data.wording.disjoint import DISJOINT_VOCAB

    return DISJOINT_VOCAB["dating"]
