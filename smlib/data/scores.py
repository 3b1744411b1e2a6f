"""Compatibility scores between two people, all clipped to [0, 1]."""
from __future__ import annotations

import math

from .schema import PersonSchema


def _jaccard(a, b) -> float:
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def _cosine(u, v) -> float:
    nu, nv = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(x * x for x in v))
    if nu == 0 or nv == 0:
        return 0.0
    return sum(x * y for x, y in zip(u, v, strict=False)) / (nu * nv)


def _alignment(label_a: str, intensity_a: int, label_b: str, intensity_b: int) -> float:
    """Same label: min intensity / 5; both mild (<= 2): 0.5; else 0."""
    if label_a == label_b:
        return min(intensity_a, intensity_b) / 5
    if intensity_a <= 2 and intensity_b <= 2:
        return 0.5
    return 0.0


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def identity_score(a: PersonSchema, b: PersonSchema) -> float:
    """How alike two people are as persons, independent of domain (symmetric)."""
    mbti = sum(x == y for x, y in zip(a.mbti, b.mbti, strict=False)) / 4
    style = 0.5 * (a.communication_style == b.communication_style) + 0.5 * (a.attachment_style == b.attachment_style)
    return _clip(
        0.35 * _cosine(a.big_five, b.big_five)
        + 0.25 * _jaccard(a.core_values, b.core_values)
        + 0.15 * mbti
        + 0.15 * style
        + 0.05 * _alignment(a.religion, a.religion_intensity, b.religion, b.religion_intensity)
        + 0.05 * _alignment(a.politics, a.politics_intensity, b.politics, b.politics_intensity)
    )


def dealbreaker_penalty(me: PersonSchema, partner: PersonSchema) -> float:
    """Penalty for the partner triggering my dealbreakers (one direction)."""
    penalty = 0.0
    if "smoking" in me.dealbreakers and partner.smoking == "regular smoker":
        penalty += 0.15
    if "different religion" in me.dealbreakers and me.religion_intensity >= 3 and partner.religion != me.religion:
        penalty += 0.15
    if "different politics" in me.dealbreakers and me.politics_intensity >= 3 and partner.politics != me.politics:
        penalty += 0.10
    if "doesn't want kids" in me.dealbreakers and partner.wants_kids == "doesn't want kids":
        penalty += 0.15
    return penalty


def dating_compatibility(a: PersonSchema, b: PersonSchema) -> float:
    """Romantic compatibility: identity plus dating attributes minus dealbreakers (symmetric)."""
    return _clip(
        identity_score(a, b)
        + 0.12 * (a.relationship_goal == b.relationship_goal)
        + 0.08 * _jaccard(a.lifestyles, b.lifestyles)
        + 0.08 * _jaccard(a.interests, b.interests)
        + 0.05 * (a.relationship_style == b.relationship_style)
        + 0.05 * (a.wants_kids == b.wants_kids)
        - 0.03 * (a.smoking != b.smoking)
        - dealbreaker_penalty(a, b)
        - dealbreaker_penalty(b, a)
    )


def hiring_compatibility(a: PersonSchema, b: PersonSchema) -> float:
    """Team fit between two professionals: identity plus work attributes (symmetric)."""
    skills = _jaccard(a.skills, b.skills)
    return _clip(
        identity_score(a, b)
        + 0.08 * (a.work_style == b.work_style)
        + 0.05 * (a.team_size == b.team_size)
        + 0.08 * (1 - abs(skills - 0.4) / 0.6)
        + 0.04 * (a.industry == b.industry)
    )


SCORE_FNS = {"dating": dating_compatibility, "hiring": hiring_compatibility}
