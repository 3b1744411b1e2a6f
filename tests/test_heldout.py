"""The heldout variant: validation people are written with wording and templates no training text uses."""
from __future__ import annotations

import pytest
from conftest import assert_reveals_traits

from smlib.audit import content_tokens, heldout_leaks, leakage_audit
from smlib.config import load_params
from smlib.data import build_dataset
from smlib.data.people import generate_people
from smlib.data.schema import CORE_VALUES
from smlib.data.texts import DISJOINT_TEMPLATES, DISJOINT_VOCAB, render_dating_profile, render_hiring_resume, template_name
from smlib.data.wording.heldout import HELDOUT_TEMPLATES, HELDOUT_VOCAB

RENDER = {"dating": render_dating_profile, "hiring": render_hiring_resume}


def _words(vocab, domain):
    return {w for attr in vocab[domain].values() for phrases in attr.values() for ph in phrases for w in content_tokens(ph)}


@pytest.fixture(scope="module")
def people():
    return generate_people(600, 11)


def test_heldout_wording_covers_every_shared_value_twice_with_new_phrases():
    for domain in ("dating", "hiring"):
        vocab, train = HELDOUT_VOCAB[domain], DISJOINT_VOCAB[domain]
        assert set(vocab) == set(train)
        assert set(vocab["core_values"]) == set(CORE_VALUES)
        for attr, values in vocab.items():
            assert set(values) == set(train[attr]), attr
            for value, phrases in values.items():
                assert len(set(phrases)) >= 2, (attr, value)
                for ph in phrases:  # new: not a training phrase, and no training phrase inside it or around it
                    assert all(ph.lower() not in t.lower() and t.lower() not in ph.lower()
                               for vals in train.values() for ts in vals.values() for t in ts), ph
        assert not set(HELDOUT_TEMPLATES[domain]) & set(DISJOINT_TEMPLATES[domain])
    # no content word crosses the domains, within the held-out wording or between it and the training wording
    dating = _words(HELDOUT_VOCAB, "dating") | _words(DISJOINT_VOCAB, "dating")
    hiring = _words(HELDOUT_VOCAB, "hiring") | _words(DISJOINT_VOCAB, "hiring")
    assert not dating & hiring, dating & hiring


def test_training_people_read_exactly_as_in_disjoint(people):
    for p in people[:200]:
        for domain, render in RENDER.items():
            assert render(p, "heldout", seed=3) == render(p, "disjoint", seed=3)
            assert template_name(p, domain, "heldout", 3) == template_name(p, domain, "disjoint", 3)


def test_validation_people_use_held_out_wording_that_still_reveals_their_traits(people):
    for p in people[:300]:
        for domain, render in RENDER.items():
            text = render(p, "heldout", seed=3, held_out=True).lower()
            assert template_name(p, domain, "heldout", 3, held_out=True) in HELDOUT_TEMPLATES[domain]
            assert_reveals_traits(p, text, HELDOUT_VOCAB[domain])
            train_vocab = DISJOINT_VOCAB[domain]
            assert not any(t.lower() in text for vals in train_vocab.values() for ts in vals.values() for t in ts)


def test_the_split_decides_the_wording_and_no_validation_phrase_reaches_training_text():
    params = load_params("v3_contrastive", "smoke", overrides={"data.variant": "heldout", "data.n_people": 200,
                                                               "data.hard_negative_fraction": 0.5})
    ds = build_dataset(params)
    val, train = set(ds.split["val"]), set(ds.split["train"])
    train_texts = [t for dom in ds.texts.values() for pid, t in dom.items() if pid not in val]  # clones included
    val_texts = [ds.texts[dom][pid] for dom in ds.texts for pid in val]
    assert heldout_leaks(train_texts) == []
    assert len(heldout_leaks(val_texts)) > 50  # the checker does find held-out wording where it is
    by_id = {p.person_id: p for p in ds.people}
    for pid in list(val)[:20]:
        assert ds.texts["dating"][pid] == render_dating_profile(by_id[pid], "heldout", params.seed, held_out=True)
    for pid in list(train)[:20]:
        assert ds.texts["hiring"][pid] == render_hiring_resume(by_id[pid], "heldout", params.seed)


def test_leakage_audit_of_held_out_validation_people():
    val = generate_people(1000, 42)[850:]
    audit = leakage_audit(val, "heldout", held_out=True)
    assert audit["tfidf_char_top1"] < 0.05 and audit["tfidf_word_top1"] < 0.05  # near chance (1/150)
    assert audit["identifiability_ceiling"] >= 0.9
