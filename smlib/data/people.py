"""Deterministic generation of synthetic people."""
from __future__ import annotations

import random

from .schema import (
    ATTACHMENT_STYLES,
    BIG_FIVE,
    BIG_FIVE_PRIORS,
    CAREER_GOALS,
    CAREERS,
    CITIES,
    COMMUNICATION_STYLES,
    CORE_VALUES,
    DEALBREAKERS,
    ETHNICITIES,
    FAMILY_GOALS,
    INTERESTS,
    LIFESTYLES,
    PERSONAL_GOALS,
    POLITICS,
    RELATIONSHIP_GOALS,
    RELATIONSHIP_STYLE_WEIGHTS,
    RELATIONSHIP_STYLES,
    RELIGIONS,
    SENIORITY_INCOME,
    SEXES,
    SMOKING,
    SMOKING_WEIGHTS,
    TEAM_SIZES,
    WANTS_KIDS,
    WORK_STYLES,
    PersonSchema,
)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def _letter(rng: random.Random, trait_high: bool, high: str, low: str) -> str:
    """A letter that agrees with the trait at 3:1 odds."""
    agrees = rng.random() < 0.75
    return (high if trait_high else low) if agrees else (low if trait_high else high)


def seniority_for(age: int, years_experience: int, rng: random.Random) -> str:
    """Seniority band from age and experience, then a random level inside the band."""
    if age >= 40 or years_experience >= 15:
        return rng.choice(("senior", "lead", "executive"))
    if age >= 32 or years_experience >= 8:
        return rng.choice(("mid", "senior"))
    return rng.choice(("junior", "mid"))


def _person(pid: int, rng: random.Random) -> PersonSchema:
    age = rng.randint(22, 45)
    sex = rng.choice(SEXES)
    if sex == "male":
        height = round(_clamp(rng.gauss(70, 3), 64, 78))
    else:
        height = round(_clamp(rng.gauss(65, 2.5), 59, 72))
    b5 = {t: round(_clamp(rng.gauss(*BIG_FIVE_PRIORS[t]), 0, 100), 1) for t in BIG_FIVE}
    mbti = (
        _letter(rng, b5["extraversion"] >= 50, "E", "I")
        + _letter(rng, b5["openness"] >= 50, "N", "S")
        + _letter(rng, b5["agreeableness"] >= 50, "F", "T")
        + rng.choice("JP")
    )
    career = rng.choice(sorted(CAREERS))
    industry, skills = CAREERS[career]
    years = max(0, age - 22 + rng.randint(-2, 2))
    seniority = seniority_for(age, years, rng)
    ambitions = [rng.choice(CAREER_GOALS)]
    extra = rng.choice(("family", "personal", "both"))
    if extra in ("family", "both"):
        ambitions.append(rng.choice(FAMILY_GOALS))
    if extra in ("personal", "both"):
        ambitions.append(rng.choice(PERSONAL_GOALS))
    return PersonSchema(
        person_id=pid,
        age=age,
        sex=sex,
        city=rng.choice(CITIES),
        height_in=height,
        ethnicity=rng.choice(ETHNICITIES),
        mbti=mbti,
        core_values=rng.sample(CORE_VALUES, rng.randint(2, 4)),
        communication_style=rng.choice(COMMUNICATION_STYLES),
        attachment_style=rng.choice(ATTACHMENT_STYLES),
        career=career,
        industry=industry,
        skills=list(skills),
        years_experience=years,
        seniority=seniority,
        income_bracket=SENIORITY_INCOME[seniority],
        ambitions=ambitions,
        religion=rng.choice(RELIGIONS),
        religion_intensity=rng.randint(1, 5),
        politics=rng.choice(POLITICS),
        politics_intensity=rng.randint(1, 5),
        smoking=rng.choices(SMOKING, weights=SMOKING_WEIGHTS)[0],
        has_kids=rng.random() < 0.3,
        wants_kids=rng.choice(WANTS_KIDS),
        relationship_goal=rng.choice(RELATIONSHIP_GOALS),
        relationship_style=rng.choices(RELATIONSHIP_STYLES, weights=RELATIONSHIP_STYLE_WEIGHTS)[0],
        lifestyles=rng.sample(LIFESTYLES, rng.randint(2, 4)),
        interests=rng.sample(INTERESTS, rng.randint(3, 6)),
        dealbreakers=rng.sample(DEALBREAKERS, rng.randint(1, 3)),
        work_style=rng.choice(WORK_STYLES),
        team_size=rng.choice(TEAM_SIZES),
        **b5,
    )


def generate_people(n: int, seed: int) -> list[PersonSchema]:
    """n people with ids 0..n-1, identical for the same (n, seed)."""
    if n < 1:
        raise ValueError(f"generate_people: n must be >= 1, got {n}")
    rng = random.Random(seed)
    return [_person(pid, rng) for pid in range(n)]
