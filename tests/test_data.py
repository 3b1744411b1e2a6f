"""People, scores, mining, hard negatives, the split and the dataset folder."""
from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter

import pytest

from smlib.config import load_params
from smlib.data import (
    FLIP_TYPES,
    SCORE_FNS,
    DatasetError,
    build_dataset,
    dating_compatibility,
    generate_hard_negative,
    generate_people,
    hiring_compatibility,
    identity_score,
    mine_cross_domain_pairs,
    mine_triplets,
    read_dataset,
    write_dataset,
)
from smlib.data.mining import DOMAIN_FLIP_TYPES
from smlib.data.schema import (
    ATTACHMENT_STYLES,
    CAREERS,
    CITIES,
    COMMUNICATION_STYLES,
    CORE_VALUES,
    DEALBREAKERS,
    ETHNICITIES,
    INTERESTS,
    LIFESTYLES,
    POLITICS,
    RELATIONSHIP_STYLES,
    RELIGIONS,
    SENIORITY_INCOME,
    SMOKING,
    WANTS_KIDS,
    PersonSchema,
)

SCORES = {"identity": identity_score, "dating": dating_compatibility, "hiring": hiring_compatibility}
FLIP_FIELD = {"religion": "religion", "kids": "wants_kids", "smoking": "smoking", "politics": "politics",
              "relationship_style": "relationship_style", "lifestyle": "lifestyles",
              "work_style": "work_style", "team_size": "team_size", "skill": "skills", "industry": "industry"}


# ---------------------------------------------------------------- people
def test_generate_people_is_deterministic_per_seed():
    a = [p.to_dict() for p in generate_people(50, 3)]
    b = [p.to_dict() for p in generate_people(50, 3)]
    c = [p.to_dict() for p in generate_people(50, 4)]
    assert a == b
    assert a != c
    assert sum(x == y for x, y in zip(a, c, strict=False)) == 0
    assert [p["person_id"] for p in a] == list(range(50))


def test_generate_people_prefix_stable():
    """The first n people do not depend on how many are generated after them."""
    assert [p.to_dict() for p in generate_people(20, 9)] == [p.to_dict() for p in generate_people(40, 9)[:20]]


def test_generate_people_rejects_n_below_one():
    with pytest.raises(ValueError):
        generate_people(0, 1)


def test_attributes_are_coherent(people_2000):
    for p in people_2000:
        assert 22 <= p.age <= 45
        industry, skills = CAREERS[p.career]
        assert p.industry == industry and p.skills == list(skills)
        assert abs(p.years_experience - (p.age - 22)) <= 2 and p.years_experience >= 0
        if p.age >= 40 or p.years_experience >= 15:
            assert p.seniority in ("senior", "lead", "executive"), p
        elif p.age >= 32 or p.years_experience >= 8:
            assert p.seniority in ("mid", "senior"), p
        else:
            assert p.seniority in ("junior", "mid"), p
        assert p.income_bracket == SENIORITY_INCOME[p.seniority]
        if p.sex == "male":
            assert 64 <= p.height_in <= 78
        else:
            assert p.sex == "female" and 59 <= p.height_in <= 72
        assert all(0 <= x <= 100 for x in p.big_five)
        assert 2 <= len(p.core_values) <= 4 and len(set(p.core_values)) == len(p.core_values)
        assert set(p.core_values) <= set(CORE_VALUES)
        assert 2 <= len(p.lifestyles) <= 4 and len(set(p.lifestyles)) == len(p.lifestyles)
        assert set(p.lifestyles) <= set(LIFESTYLES)
        assert 3 <= len(p.interests) <= 6 and len(set(p.interests)) == len(p.interests) and set(p.interests) <= set(INTERESTS)
        assert 1 <= len(p.dealbreakers) <= 3 and set(p.dealbreakers) <= set(DEALBREAKERS)
        assert 2 <= len(p.ambitions) <= 3
        assert p.city in CITIES and p.ethnicity in ETHNICITIES
        assert p.communication_style in COMMUNICATION_STYLES and p.attachment_style in ATTACHMENT_STYLES
        assert p.religion in RELIGIONS and p.politics in POLITICS and p.smoking in SMOKING
        assert p.wants_kids in WANTS_KIDS and p.relationship_style in RELATIONSHIP_STYLES
        assert 1 <= p.religion_intensity <= 5 and 1 <= p.politics_intensity <= 5
        assert len(p.mbti) == 4 and p.mbti[0] in "EI" and p.mbti[1] in "NS" and p.mbti[2] in "FT" and p.mbti[3] in "JP"


def test_every_career_and_seniority_band_occurs(people_2000):
    assert {p.career for p in people_2000} == set(CAREERS)
    assert {p.seniority for p in people_2000} == set(SENIORITY_INCOME)


def test_mbti_follows_big_five_at_three_to_one(people_2000):
    n = len(people_2000)
    e = sum((p.mbti[0] == "E") == (p.extraversion >= 50) for p in people_2000) / n
    n_ = sum((p.mbti[1] == "N") == (p.openness >= 50) for p in people_2000) / n
    f = sum((p.mbti[2] == "F") == (p.agreeableness >= 50) for p in people_2000) / n
    j = sum(p.mbti[3] == "J" for p in people_2000) / n
    assert 0.70 <= e <= 0.80, e
    assert 0.70 <= n_ <= 0.80, n_
    assert 0.70 <= f <= 0.80, f
    assert 0.45 <= j <= 0.55, j


def test_marginal_distributions(people_2000):
    n = len(people_2000)
    smoking = Counter(p.smoking for p in people_2000)
    assert 0.65 <= smoking["non-smoker"] / n <= 0.75
    style = Counter(p.relationship_style for p in people_2000)
    assert 0.70 <= style["monogamous"] / n <= 0.80
    mean_ext = sum(p.extraversion for p in people_2000) / n
    mean_neu = sum(p.neuroticism for p in people_2000) / n
    assert 47 <= mean_ext <= 53 and 37 <= mean_neu <= 43
    males = [p.height_in for p in people_2000 if p.sex == "male"]
    females = [p.height_in for p in people_2000 if p.sex == "female"]
    assert 69 <= sum(males) / len(males) <= 71 and 64 <= sum(females) / len(females) <= 66


def test_person_dict_round_trip(people_2000):
    p = people_2000[5]
    assert PersonSchema.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError):
        PersonSchema.from_dict({**p.to_dict(), "shoe_size": 9})


# ---------------------------------------------------------------- scores
@pytest.mark.parametrize("name", list(SCORES))
def test_scores_in_unit_range_and_symmetric(people_2000, name):
    fn = SCORES[name]
    rng = random.Random(0)
    values = []
    for _ in range(1500):
        a, b = rng.sample(people_2000, 2)
        s = fn(a, b)
        assert 0.0 <= s <= 1.0
        assert s == pytest.approx(fn(b, a), abs=1e-12)
        values.append(s)
    assert max(values) - min(values) > 0.2  # the score actually varies


def test_identity_score_of_self_is_high(people_2000):
    for p in people_2000[:300]:
        assert identity_score(p, p) >= 0.9


def test_identity_score_hand_example():
    base = generate_people(1, 0)[0]
    a = dataclasses.replace(base, openness=50.0, conscientiousness=50.0, extraversion=50.0, agreeableness=50.0,
                            neuroticism=50.0, core_values=["honesty", "loyalty"], mbti="ENFJ",
                            communication_style="direct", attachment_style="secure", religion="Jewish",
                            religion_intensity=4, politics="liberal", politics_intensity=1)
    b = dataclasses.replace(a, core_values=["honesty", "family"], mbti="INFP", attachment_style="anxious",
                            religion_intensity=2, politics="moderate", politics_intensity=2)
    expected = 0.35 * 1.0 + 0.25 * (1 / 3) + 0.15 * (2 / 4) + 0.15 * 0.5 + 0.05 * (2 / 5) + 0.05 * 0.5
    assert identity_score(a, b) == pytest.approx(expected)


def test_dating_smoking_dealbreaker_costs_its_penalty(people_2000):
    a0, b0 = next((a, b) for a, b in zip(people_2000[::2], people_2000[1::2], strict=False)
                  if 0.3 < dating_compatibility(a, b) < 0.7)
    a = dataclasses.replace(a0, dealbreakers=["smoking"], smoking="non-smoker")
    b = dataclasses.replace(b0, dealbreakers=["rudeness"], smoking="non-smoker")
    c = dataclasses.replace(b, smoking="regular smoker")
    # regular smoker: 0.15 dealbreaker penalty + 0.03 smoking mismatch
    assert dating_compatibility(a, b) - dating_compatibility(a, c) == pytest.approx(0.18)
    assert hiring_compatibility(a, b) == hiring_compatibility(a, c)  # smoking is not a hiring attribute


# ---------------------------------------------------------------- mining
@pytest.mark.parametrize("domain", ["dating", "hiring"])
def test_triplets_order_positive_above_negative(people_2000, domain):
    people = people_2000[:300]
    fn = SCORE_FNS[domain]
    triplets = mine_triplets(people, fn, 300, seed=1, n_candidates=20)
    assert len(triplets) == 300
    by_id = {p.person_id: p for p in people}
    for a, pos, neg in triplets:
        assert len({a, pos, neg}) == 3
        assert fn(by_id[a], by_id[pos]) >= fn(by_id[a], by_id[neg])
    assert mine_triplets(people, fn, 50, seed=1) == mine_triplets(people, fn, 50, seed=1)
    assert mine_triplets(people, fn, 50, seed=1) != mine_triplets(people, fn, 50, seed=2)


def test_mining_stays_within_the_given_people(people_2000):
    subset = people_2000[100:130]
    ids = {p.person_id for p in subset}
    for t in mine_triplets(subset, identity_score, 200, seed=3, n_candidates=50):
        assert set(t) <= ids
    for a, p, negs in mine_cross_domain_pairs(subset, 100, seed=3, n_negatives=50):
        assert {a, p, *negs} <= ids


def test_cross_pairs_anchor_is_positive_and_negatives_exclude_it(people_2000):
    people = people_2000[:60]
    pairs = mine_cross_domain_pairs(people, 120, seed=5, n_negatives=15)
    assert len(pairs) == 120
    for a, p, negs in pairs:
        assert a == p
        assert a not in negs and len(negs) == 15 and len(set(negs)) == 15
    # the first len(people) pairs cover everyone once before anyone repeats
    assert sorted(a for a, _, _ in pairs[:60]) == [p.person_id for p in people]


# ---------------------------------------------------------------- hard negatives
@pytest.mark.parametrize("flip", FLIP_TYPES)
def test_hard_negative_differs_in_exactly_the_flipped_attribute(people_2000, flip):
    rng = random.Random(11)
    field = FLIP_FIELD[flip]
    for person in people_2000[:200]:
        before = person.to_dict()
        clone = generate_hard_negative(person, flip, rng)
        assert person.to_dict() == before, "the source person was mutated"
        a, b = person.to_dict(), clone.to_dict()
        assert [k for k in a if a[k] != b[k]] == [field]
        if flip == "lifestyle":
            assert len(b[field]) == len(a[field]) and len(set(b[field])) == len(b[field])
            assert set(b[field]) <= set(LIFESTYLES)
            assert len(set(a[field]) - set(b[field])) == 1


@pytest.mark.parametrize("variant", ["verbatim", "disjoint"])
def test_realised_hard_negative_share_matches_the_fraction_in_both_domains(variant):
    """Hiring used to get no hard negatives at all (no flippable attribute reached a résumé)."""
    params = load_params("v3_contrastive", "smoke", overrides={
        "data.variant": variant, "data.n_people": 200, "data.n_triplets": 300, "data.hard_negative_fraction": 0.2})
    ds = build_dataset(params)
    for domain in ("dating", "hiring"):
        triplets = ds.triplets["train"][domain]
        share = sum(t[3] for t in triplets) / len(triplets)
        assert abs(share - 0.2) <= 0.05, (domain, share)
        assert ds.manifest["hard_negative_share"][domain] == pytest.approx(share, abs=1e-4)
    clones = {r["text_id"]: r for r in ds.hard_negatives}
    for domain in ("dating", "hiring"):
        for a, p, n, hard in ds.triplets["train"][domain]:
            if hard:
                record = clones[n]
                assert record["domain"] == domain and record["flip"] in DOMAIN_FLIP_TYPES[domain]
                assert ds.text(domain, n) != ds.text(domain, p)  # the flip shows in this domain's text
                score = SCORE_FNS[domain]
                assert score(ds.person(a), PersonSchema.from_dict(record["person"])) < score(ds.person(a), ds.person(p))


def test_hard_negative_unknown_flip_rejected(people_2000):
    with pytest.raises(ValueError, match="flip"):
        generate_hard_negative(people_2000[0], "height", random.Random(0))


# ---------------------------------------------------------------- built dataset: split and leakage
def _train_val(ds):
    return set(ds.split["train"]), set(ds.split["val"])


def test_split_is_disjoint_and_complete(smoke_dataset):
    train, val = _train_val(smoke_dataset)
    assert not train & val
    assert train | val == {p.person_id for p in smoke_dataset.people}
    assert len(val) == round(len(smoke_dataset.people) * 0.25)


def test_no_person_crosses_the_split(smoke_dataset):
    ds = smoke_dataset
    train, val = _train_val(ds)
    for dom in ("dating", "hiring"):
        for a, p, n, hard in ds.triplets["train"][dom]:
            assert {a, p} <= train
            assert n in train or hard
        for a, p, n, hard in ds.triplets["val"][dom]:
            assert {a, p, n} <= val and not hard
    for a, p, negs in ds.cross_pairs["train"]:
        assert {a, p, *negs} <= train
    for a, p, negs in ds.cross_pairs["val"]:
        assert {a, p, *negs} <= val
    assert sorted(a for a, _, _ in ds.cross_pairs["val"]) == sorted(val)


def test_dataset_texts_cover_everyone_in_both_domains(smoke_dataset):
    for dom in ("dating", "hiring"):
        for p in smoke_dataset.people:
            assert smoke_dataset.text(dom, p.person_id).strip()
    assert smoke_dataset.text("dating", 0) != smoke_dataset.text("hiring", 0)


@pytest.mark.parametrize("domain", ["dating", "hiring"])
def test_dataset_triplets_order_positive_above_negative(smoke_dataset, domain):
    fn = SCORE_FNS[domain]
    ds = smoke_dataset
    clones = {r["text_id"]: PersonSchema.from_dict(r["person"]) for r in ds.hard_negatives}
    for split in ("train", "val"):
        for a, p, n, hard in ds.triplets[split][domain]:
            negative = clones[n] if hard else ds.person(n)
            assert fn(ds.person(a), ds.person(p)) >= fn(ds.person(a), negative)


@pytest.fixture(scope="module")
def hard_dataset():
    return build_dataset(load_params("v3_contrastive", "smoke", overrides={
        "data.hard_negative_fraction": 1.0, "data.n_people": 120, "data.n_triplets": 120}))


def test_hard_negatives_exist_and_come_from_training_people(hard_dataset):
    """hard_negative_fraction=1.0 must actually put flipped clones into training triplets (the original never trained
    on them: defect 4 in docs/design.md)."""
    ds = hard_dataset
    train, _ = _train_val(ds)
    n_hard = sum(h for dom in ("dating", "hiring") for *_, h in ds.triplets["train"][dom])
    assert n_hard > 0, "hard_negative_fraction=1.0 produced no hard triplets: hard negatives are never used"
    records = {r["text_id"]: r for r in ds.hard_negatives}
    for dom in ("dating", "hiring"):
        for a, p, n, hard in ds.triplets["train"][dom]:
            if not hard:
                continue
            r = records[n]
            assert r["source_id"] in train and r["source_id"] in (a, p) and r["domain"] == dom
            assert n >= len(ds.people) and n in ds.texts[dom]
            clone = PersonSchema.from_dict(r["person"])
            assert SCORE_FNS[dom](ds.person(a), ds.person(p)) >= SCORE_FNS[dom](ds.person(a), clone)


def test_hard_negative_fraction_zero_yields_no_hard_negatives():
    ds = build_dataset(load_params("v3_contrastive", "smoke", overrides={"data.hard_negative_fraction": 0.0}))
    assert ds.hard_negatives == []
    assert not any(h for s in ds.triplets for d in ("dating", "hiring") for *_, h in ds.triplets[s][d])


def test_validation_triplets_mined_among_validation_people():
    params = load_params("v3_contrastive", "quick", overrides={
        "data.n_people": 1000, "data.val_fraction": 0.15, "data.n_val_triplets": 600, "data.n_triplets": 200,
        "data.n_cross_pairs": 200})
    ds = build_dataset(params)
    val = set(ds.split["val"])
    assert len(val) == 150
    for dom in ("dating", "hiring"):
        assert len(ds.triplets["val"][dom]) >= 500
        assert all({a, p, n} <= val for a, p, n, _ in ds.triplets["val"][dom])
        assert len(ds.triplets["train"][dom]) == 200
    assert len(ds.cross_pairs["val"]) == 150


def test_build_dataset_is_deterministic():
    params = load_params("v3_contrastive", "smoke", overrides={"data.n_people": 40})
    a, b = build_dataset(params), build_dataset(params)
    assert a.triplets == b.triplets and a.cross_pairs == b.cross_pairs and a.texts == b.texts
    c = build_dataset(load_params("v3_contrastive", "smoke", overrides={"data.n_people": 40, "seed": 1}))
    assert c.triplets != a.triplets


# ---------------------------------------------------------------- dataset folder
def test_write_read_round_trip(smoke_dataset, tmp_path):
    folder = write_dataset(smoke_dataset, tmp_path / "ds")
    back = read_dataset(folder)
    assert [p.to_dict() for p in back.people] == [p.to_dict() for p in smoke_dataset.people]
    assert back.texts == smoke_dataset.texts
    assert back.split == smoke_dataset.split
    assert back.triplets == smoke_dataset.triplets
    assert back.cross_pairs == smoke_dataset.cross_pairs
    assert back.hard_negatives == smoke_dataset.hard_negatives
    assert back.manifest["content_hash"] == smoke_dataset.manifest["content_hash"]


def test_write_read_round_trip_with_hard_negatives(hard_dataset, tmp_path):
    back = read_dataset(write_dataset(hard_dataset, tmp_path / "hard"))
    assert back.texts == hard_dataset.texts and back.triplets == hard_dataset.triplets
    assert back.hard_negatives == json.loads(json.dumps(hard_dataset.hard_negatives))


def test_edited_file_is_detected(smoke_dataset, tmp_path):
    folder = write_dataset(smoke_dataset, tmp_path / "ds")
    path = folder / "texts.jsonl"
    path.write_text(path.read_text().replace("a", "e", 1))
    with pytest.raises(DatasetError, match="texts.jsonl"):
        read_dataset(folder)


def test_missing_data_file_is_detected(smoke_dataset, tmp_path):
    folder = write_dataset(smoke_dataset, tmp_path / "ds")
    (folder / "triplets.jsonl").unlink()
    with pytest.raises(DatasetError, match="triplets.jsonl"):
        read_dataset(folder)


def test_missing_manifest_is_detected(smoke_dataset, tmp_path):
    folder = write_dataset(smoke_dataset, tmp_path / "ds")
    (folder / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="manifest"):
        read_dataset(folder)
    with pytest.raises(DatasetError):
        read_dataset(tmp_path / "nowhere")


def test_write_refuses_to_overwrite_a_different_dataset(smoke_dataset, tmp_path):
    folder = write_dataset(smoke_dataset, tmp_path / "ds")
    assert write_dataset(smoke_dataset, folder) == folder  # the same dataset again is fine
    other = build_dataset(load_params("v3_contrastive", "smoke", overrides={"seed": 5}))
    with pytest.raises(DatasetError, match="different dataset"):
        write_dataset(other, folder)
    assert read_dataset(folder).texts == smoke_dataset.texts  # untouched
    write_dataset(other, folder, overwrite=True)
    assert read_dataset(folder).texts == other.texts


def test_load_or_build_returns_the_same_dataset_fresh_or_cached(tmp_path):
    """A fresh build and a later cached read must look identical (manifest key order included)."""
    from smlib.data import load_or_build
    params = load_params("v3_contrastive", "smoke")
    fresh, folder = load_or_build(params, tmp_path)
    cached, again = load_or_build(params, tmp_path)
    assert folder == again
    assert list(fresh.manifest["counts"].items()) == list(cached.manifest["counts"].items())
    assert fresh.manifest == cached.manifest and fresh.triplets == cached.triplets
