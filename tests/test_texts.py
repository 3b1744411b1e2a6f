"""Text rendering (verbatim and disjoint variants), lexical baselines and the leakage audit."""
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from conftest import assert_reveals_traits

from smlib.audit import audit_table, content_tokens, leakage_audit
from smlib.baselines import identifiability_ceiling, tfidf_similarity
from smlib.data.people import generate_people
from smlib.data.schema import BIG_FIVE, CAREERS, CITIES, CORE_VALUES
from smlib.data.texts import (
    DISJOINT_VOCAB,
    REVEALED_ATTRIBUTES,
    TEMPLATE_NAMES,
    VARIANTS,
    big_five_level,
    render_dating_profile,
    render_hiring_resume,
    revealed_signature,
    template_name,
)
from smlib.metrics import match_summary, top1_and_mrr

# One phrase that only the named verbatim template writes (in a sentence it always keeps).
VERBATIM_MARKERS = {
    "dating": {
        "intro-first": "Hi! I'm a", "personality-led": " here, the ", "values-first": "My values come first",
        "casual": "Big on ", "interests-led": "I'd call myself a", "brief": "Want: ", "narrative": "I moved to",
        "psychology-forward": "Myers-Briggs",
    },
    "hiring": {
        "resume-style": "Preferred work style", "skills-first": "Skilled in", "narrative bio": "Guided by",
        "culture-fit": "Looking for a team", "LinkedIn": "building expertise in", "brief": " yrs, ",
        "ambition-led": "My goals:", "team-fit": "Works best in a",
    },
}
RENDER = {"dating": render_dating_profile, "hiring": render_hiring_resume}
SHARED_ATTRIBUTES = (*BIG_FIVE, "core_values", "communication_style", "attachment_style")


@pytest.fixture(scope="module")
def people():
    return generate_people(3000, 7)


@pytest.fixture(scope="module")
def disjoint_texts(people):
    return [(render_dating_profile(p, "disjoint"), render_hiring_resume(p, "disjoint")) for p in people]


def _vocab_words(domain):
    return {w for attr in DISJOINT_VOCAB[domain].values() for phrases in attr.values() for ph in phrases
            for w in content_tokens(ph)}


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendering_is_deterministic_and_sized(people, variant):
    for p in people[:300]:
        for render in RENDER.values():
            text = render(p, variant)
            assert text == render(p, variant)
            assert 20 <= len(text.split()) <= 180, text


def test_disjoint_seed_changes_wording(people):
    changed = sum(render_dating_profile(p, "disjoint", seed=0) != render_dating_profile(p, "disjoint", seed=1)
                  for p in people[:100])
    assert changed > 80


def test_unknown_variant_is_named():
    person = generate_people(1, 0)[0]
    for render in RENDER.values():
        with pytest.raises(ValueError, match="leaky"):
            render(person, "leaky")


def test_big_five_levels():
    assert [big_five_level(s) for s in (100, 65, 64.9, 35, 34.9, 0)] == ["high", "high", "mid", "mid", "low", "low"]


def test_verbatim_template_rotation(people):
    for p in people[:400]:
        for domain, offset in (("dating", 0), ("hiring", 3)):
            expected = TEMPLATE_NAMES[domain][(p.person_id + offset) % 8]
            assert template_name(p, domain, "verbatim") == expected
            text = RENDER[domain](p, "verbatim")
            present = {name for name, marker in VERBATIM_MARKERS[domain].items() if marker in text}
            assert present == {expected}, (expected, text)


def test_verbatim_copies_attributes_into_both_domains(people):
    for p in people[:300]:
        for text in (render_dating_profile(p), render_hiring_resume(p)):
            lowered = text.lower()
            for item in (*p.core_values, p.mbti.lower(), p.city.lower(), p.career.lower(), p.communication_style):
                assert item in lowered, (item, text)


def test_disjoint_template_pair_is_not_a_function(people):
    pairs = Counter((template_name(p, "dating", "disjoint"), template_name(p, "hiring", "disjoint")) for p in people)
    for dating_name in TEMPLATE_NAMES["dating"]:
        assert len({h for d, h in pairs if d == dating_name}) == 8
    plus_three = sum(n for (d, h), n in pairs.items()
                     if TEMPLATE_NAMES["hiring"][(TEMPLATE_NAMES["dating"].index(d) + 3) % 8] == h)
    assert plus_three < 0.2 * len(people)


def test_disjoint_vocabulary_is_declared_and_disjoint():
    for domain in ("dating", "hiring"):
        vocab = DISJOINT_VOCAB[domain]
        assert set(vocab) == set(SHARED_ATTRIBUTES)
        assert set(vocab["core_values"]) == set(CORE_VALUES)
        for attr in BIG_FIVE:
            assert set(vocab[attr]) == {"high", "low"}
        for values in vocab.values():
            assert all(len(set(phrases)) >= 3 for phrases in values.values())
    assert not _vocab_words("dating") & _vocab_words("hiring")


def test_disjoint_texts_never_share_attribute_words(people, disjoint_texts):
    dating_words, hiring_words = _vocab_words("dating"), _vocab_words("hiring")
    leaky_strings = [c.lower() for c in CITIES] + [c.lower() for c in CAREERS]
    for p, (dating, hiring) in zip(people, disjoint_texts, strict=False):
        dating_tokens, hiring_tokens = content_tokens(dating), content_tokens(hiring)
        assert not dating_words & hiring_tokens, (dating_words & hiring_tokens, hiring)
        assert not hiring_words & dating_tokens, (hiring_words & dating_tokens, dating)
        assert p.mbti not in dating or p.mbti not in hiring
        for s in leaky_strings:
            assert s not in dating.lower() or s not in hiring.lower(), s


def test_disjoint_texts_reveal_the_shared_attributes(people, disjoint_texts):
    assert set(REVEALED_ATTRIBUTES["disjoint"]) == {f"{t}_level" for t in BIG_FIVE} | set(SHARED_ATTRIBUTES[5:])
    for p, texts in zip(people[:500], disjoint_texts, strict=False):
        for domain, text in zip(("dating", "hiring"), texts, strict=False):
            assert_reveals_traits(p, text, DISJOINT_VOCAB[domain])


def test_true_match_ranks_and_metrics():
    sim = np.array([[0.9, 0.1, 0.2], [0.5, 0.5, 0.1], [0.3, 0.8, 0.2]])
    assert match_summary(sim).ranks.tolist() == [1, 2, 3]
    top1, mrr = top1_and_mrr(sim)
    assert top1 == pytest.approx(1 / 3)
    assert mrr == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_tfidf_similarity_shape_and_analyzers():
    texts = ["alpha beta", "gamma delta", "beta gamma"]
    for analyzer in ("word", "char_wb"):
        sim = tfidf_similarity(texts, texts, analyzer=analyzer)
        assert sim.shape == (3, 3)
        assert np.allclose(np.diag(sim), 1.0)
    with pytest.raises(ValueError, match="char"):
        tfidf_similarity(texts, texts, analyzer="char")


def test_identifiability_ceiling(people):
    a, b = people[0], people[1]
    assert revealed_signature(a, "disjoint") != revealed_signature(b, "disjoint")
    assert identifiability_ceiling([a, b], "disjoint") == 1.0
    twin = replace(a, person_id=10_000, city="Nowhere", career="chef")
    assert revealed_signature(twin, "disjoint") == revealed_signature(a, "disjoint")
    assert identifiability_ceiling([a, twin, b], "disjoint") == pytest.approx((0.5 + 0.5 + 1) / 3)
    assert identifiability_ceiling([a, twin, b], "verbatim") == 1.0


def test_audit_is_reproducible_and_separates_variants():
    val = generate_people(1000, 42)[850:]
    first = leakage_audit(val, "disjoint")
    assert first == leakage_audit(val, "disjoint")
    assert first["chance"] == pytest.approx(1 / 150)
    verbatim = leakage_audit(val, "verbatim")
    assert verbatim["tfidf_char_top1"] > 0.85 and verbatim["identifiability_ceiling"] > 0.95
    assert first["tfidf_char_top1"] < 0.05 and first["tfidf_word_top1"] < 0.05
    assert first["identifiability_ceiling"] >= 0.9
    table = audit_table(val[:40])
    assert list(table.index) == list(VARIANTS)


# --- the grown training table ------------------------------------------------------------------------------------

def _evaluation_words() -> set[str]:
    from smlib.data.wording.dev import DEV_VOCAB
    from smlib.data.wording.heldout import HELDOUT_VOCAB

    return {w for vocab in (DEV_VOCAB, HELDOUT_VOCAB) for attrs in vocab.values() for values in attrs.values()
            for phrases in values.values() for ph in phrases for w in content_tokens(ph)}


def test_the_training_table_grew_to_twelve_phrasings_without_the_evaluation_wordings_words():
    """Every value has MAX_PHRASINGS distinct phrases per domain; those past the first DEFAULT_PHRASINGS (written
    later) use no content word of the dev or heldout tables (the cross-domain rule is the test above)."""
    from smlib.data.wording.disjoint import DEFAULT_PHRASINGS, MAX_PHRASINGS

    reserved = _evaluation_words()
    assert (DEFAULT_PHRASINGS, MAX_PHRASINGS) == (3, 12)
    for domain, attrs in DISJOINT_VOCAB.items():
        for attr, values in attrs.items():
            for value, phrases in values.items():
                assert len(set(phrases)) == len(phrases) == MAX_PHRASINGS, (domain, attr, value)
                for ph in phrases[DEFAULT_PHRASINGS:]:
                    assert not content_tokens(ph) & reserved, (domain, attr, value, ph, content_tokens(ph) & reserved)


def test_null_train_phrasings_still_renders_every_committed_dataset_as_recorded():
    """The texts of every committed dataset of a wording variant (runs/quick and runs/smoke), rebuilt from a run's
    recorded params, hash to the dataset_hash that run recorded: growing the table changed none of them.
    Budget: about 25 s (seven datasets of up to 1000 people)."""
    import json
    from pathlib import Path

    from smlib.data.dataset import build_dataset, content_hash
    from smlib.params_schema import params_from_dict

    root = Path(__file__).resolve().parents[1] / "runs"
    checked = 0
    for profile in ("quick", "smoke"):
        for metrics in sorted((root / profile).glob("*/seed*/v3_contrastive/metrics.json")):
            record = json.loads(metrics.read_text())
            if record["variant"] not in ("disjoint", "heldout"):
                continue
            params = params_from_dict(record["params"])
            assert params.data.train_phrasings is None
            assert content_hash(build_dataset(params)) == record["dataset_hash"], metrics
            checked += 1
    assert checked >= 7


def test_the_new_phrasings_lie_no_nearer_to_the_evaluation_wordings_than_the_first_three():
    """Written without working from the dev and heldout tables, and checked: under the frozen bundled encoder the
    mean cosine of a value's new phrases to that value's dev and heldout phrases, averaged over values, is no higher
    than the first three phrases' (per domain). Budget: about 15 s (the bundled encoder, ~1,500 short phrases)."""
    import torch

    from smlib.config import load_params
    from smlib.data.wording.dev import DEV_VOCAB
    from smlib.data.wording.disjoint import DEFAULT_PHRASINGS
    from smlib.data.wording.heldout import HELDOUT_VOCAB
    from smlib.models import build_model

    model = build_model(load_params("v3_contrastive", "quick", {"data.variant": "disjoint"})).eval()

    def unit(texts):
        with torch.no_grad():
            return torch.nn.functional.normalize(model.embed(list(texts)), dim=-1)

    for domain, attrs in DISJOINT_VOCAB.items():
        old, new = [], []
        for attr, values in attrs.items():
            for value, phrases in values.items():
                target = unit(DEV_VOCAB[domain][attr][value] + HELDOUT_VOCAB[domain][attr][value])
                old.append(float((unit(phrases[:DEFAULT_PHRASINGS]) @ target.T).mean()))
                new.append(float((unit(phrases[DEFAULT_PHRASINGS:]) @ target.T).mean()))
        assert np.mean(new) <= np.mean(old), (domain, np.mean(new), np.mean(old))


def test_train_phrasings_past_the_table_is_refused_naming_it():
    from smlib.config import ParamsError, load_params

    assert load_params("v3_contrastive", "smoke", {"data.variant": "disjoint", "data.train_phrasings": 12})
    with pytest.raises(ParamsError, match="train_phrasings=13 asks for more than the 12 training phrases"):
        load_params("v3_contrastive", "smoke", {"data.variant": "disjoint", "data.train_phrasings": 13})
