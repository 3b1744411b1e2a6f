"""Triplet and cross-domain pair mining, and attribute-flipped hard negatives."""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from .schema import (
    CAREERS,
    LIFESTYLES,
    POLITICS,
    RELATIONSHIP_STYLES,
    RELIGIONS,
    SMOKING,
    TEAM_SIZES,
    WANTS_KIDS,
    WORK_STYLES,
    PersonSchema,
)

# Flips that change a dating profile (and can lower dating_compatibility) and flips that change a résumé
# (and can lower hiring_compatibility: work style, team size, one skill, the industry).
DOMAIN_FLIP_TYPES = {
    "dating": ("religion", "kids", "smoking", "politics", "relationship_style", "lifestyle"),
    "hiring": ("work_style", "team_size", "skill", "industry"),
}
FLIP_TYPES = DOMAIN_FLIP_TYPES["dating"] + DOMAIN_FLIP_TYPES["hiring"]
ALL_SKILLS = tuple(sorted({s for _, skills in CAREERS.values() for s in skills}))
INDUSTRIES = tuple(sorted({industry for industry, _ in CAREERS.values()}))


def mine_triplets(people: list[PersonSchema], score_fn: Callable, n: int, seed: int,
                  n_candidates: int = 20) -> list[tuple[int, int, int]]:
    """Semi-hard (anchor, positive, negative) person ids: best of random candidates vs one from the lower half."""
    if len(people) < 3:
        raise ValueError(f"mine_triplets needs at least 3 people, got {len(people)}")
    rng = random.Random(seed)
    k = min(n_candidates, len(people) - 1)
    triplets = []
    for _ in range(n):
        anchor = rng.choice(people)
        pool = rng.sample(people, k + 1)
        candidates = [p for p in pool if p.person_id != anchor.person_id][:k]
        ranked = sorted(candidates, key=lambda p: (-score_fn(anchor, p), p.person_id))
        positive = ranked[0]
        negative = rng.choice(ranked[len(ranked) // 2:])
        triplets.append((anchor.person_id, positive.person_id, negative.person_id))
    return triplets


def mine_cross_domain_pairs(people: list[PersonSchema], n: int, seed: int,
                            n_negatives: int = 15) -> list[tuple[int, int, list[int]]]:
    """(i, i, [other ids]): a person's dating text matches their own résumé, not the others'."""
    if len(people) < 2:
        raise ValueError(f"mine_cross_domain_pairs needs at least 2 people, got {len(people)}")
    rng = random.Random(seed)
    ids = [p.person_id for p in people]
    k = min(n_negatives, len(ids) - 1)
    order: list[int] = []
    pairs = []
    for _ in range(n):
        if not order:  # cycle through everyone before repeating anyone
            order = ids[:]
            rng.shuffle(order)
        i = order.pop()
        negatives = rng.sample([j for j in ids if j != i], k)
        pairs.append((i, i, negatives))
    return pairs


def _flip_choice(rng: random.Random, options, current):
    return rng.choice([o for o in options if o != current])


def _swap_one(rng: random.Random, items: list, vocabulary) -> list:
    """items with one member replaced by a vocabulary word it does not already hold."""
    out = list(items)
    out[rng.randrange(len(out))] = rng.choice([x for x in vocabulary if x not in out])
    return out


# flip type -> (person field, vocabulary, whether the field is a list of which one member is swapped)
_FLIPS = {
    "religion": ("religion", RELIGIONS, False), "kids": ("wants_kids", WANTS_KIDS, False),
    "smoking": ("smoking", SMOKING, False), "politics": ("politics", POLITICS, False),
    "relationship_style": ("relationship_style", RELATIONSHIP_STYLES, False),
    "lifestyle": ("lifestyles", LIFESTYLES, True),
    "work_style": ("work_style", WORK_STYLES, False), "team_size": ("team_size", TEAM_SIZES, False),
    "skill": ("skills", ALL_SKILLS, True), "industry": ("industry", INDUSTRIES, False),
}


def generate_hard_negative(person: PersonSchema, flip_type: str, rng: random.Random) -> PersonSchema:
    """A clone of person with exactly one attribute group (flip_type) changed."""
    if flip_type in _FLIPS:
        field, vocabulary, is_list = _FLIPS[flip_type]
        current = getattr(person, field)
        value = _swap_one(rng, current, vocabulary) if is_list else _flip_choice(rng, vocabulary, current)
        return dataclasses.replace(person, **{field: value})
    raise ValueError(f"unknown flip_type {flip_type!r}: choose one of {FLIP_TYPES}")
