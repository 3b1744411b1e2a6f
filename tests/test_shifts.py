"""The four renderings of the shift decomposition: each changes only the tables it names."""
from __future__ import annotations

import pytest

from smlib.data.people import generate_people
from smlib.data.shifts import SHIFTS, shifted_text
from smlib.data.texts import render_dating_profile, render_hiring_resume
from smlib.data.wording.disjoint import DEFAULT_PHRASINGS, DISJOINT_TEMPLATES, DISJOINT_VOCAB
from smlib.data.wording.heldout import HELDOUT_TEMPLATES, HELDOUT_VOCAB

RENDER = {"dating": render_dating_profile, "hiring": render_hiring_resume}


def _phrases(vocab, domain, first=None):
    return {ph.lower() for values in vocab[domain].values() for phrases in values.values() for ph in phrases[:first]}


@pytest.mark.parametrize("domain", ["dating", "hiring"])
def test_each_shift_writes_with_the_tables_it_names_and_both_is_todays_heldout(domain):
    people = generate_people(120, 9)
    train, held = _phrases(DISJOINT_VOCAB, domain, DEFAULT_PHRASINGS), _phrases(HELDOUT_VOCAB, domain)
    later = _phrases(DISJOINT_VOCAB, domain) - train  # written after the record: no shift uses them
    for p in people:
        texts = {s: shifted_text(p, domain, 7, s) for s in SHIFTS}
        assert texts["both"] == RENDER[domain](p, "heldout", seed=7, held_out=True)
        names = {s: SHIFTS[s].template_name(p, domain, 7) for s in SHIFTS}
        for shift, (phrases, templates) in {"none": (train, DISJOINT_TEMPLATES), "phrases": (held, DISJOINT_TEMPLATES),
                                            "templates": (train, HELDOUT_TEMPLATES),
                                            "both": (held, HELDOUT_TEMPLATES)}.items():
            text = texts[shift].lower()
            assert names[shift] in templates[domain], (shift, names[shift])
            other = held if phrases is train else train
            assert any(ph in text for ph in phrases), (shift, text)
            assert not any(ph in text for ph in other | later), (shift, text)
    with pytest.raises(ValueError, match="unknown shift 'sideways'"):
        shifted_text(people[0], domain, 7, "sideways")
