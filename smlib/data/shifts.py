"""Which shift costs what: the same validation people written four ways, from the training wording to `heldout`'s.

A `heldout` validation text differs from a training text in two things at once: its trait phrases (HELDOUT_VOCAB,
none of them a training phrase) and its templates (HELDOUT_TEMPLATES). SHIFTS separates them:

- `none`: training phrases (the first DEFAULT_PHRASINGS per value, as the record's runs trained on) in training
  templates;
- `phrases`: heldout phrases in training templates;
- `templates`: training phrases in heldout templates;
- `both`: heldout phrases in heldout templates, exactly the texts `heldout` gives its validation people.

All four draw from the heldout validation stream, so for one person only the tables differ, never the draw.
"""
from __future__ import annotations

from .schema import PersonSchema
from .texts import SHARED_TRAITS, WordingVariant, get_variant
from .wording.disjoint import DISJOINT_TEMPLATES, DISJOINT_VOCAB
from .wording.heldout import HELDOUT_TEMPLATES, HELDOUT_VOCAB

STREAM = "heldout"  # the heldout variant's validation stream (smlib.data.texts)
SHIFTS = {
    "none": WordingVariant("shift_none", SHARED_TRAITS, vocab=DISJOINT_VOCAB, templates=DISJOINT_TEMPLATES,
                           stream=STREAM, default=False),
    "phrases": WordingVariant("shift_phrases", SHARED_TRAITS, vocab=HELDOUT_VOCAB, templates=DISJOINT_TEMPLATES,
                              stream=STREAM, default=False),
    "templates": WordingVariant("shift_templates", SHARED_TRAITS, vocab=DISJOINT_VOCAB, templates=HELDOUT_TEMPLATES,
                                stream=STREAM, default=False),
    "both": WordingVariant("shift_both", SHARED_TRAITS, vocab=HELDOUT_VOCAB, templates=HELDOUT_TEMPLATES,
                           stream=STREAM, default=False),
}


def shifted_text(person: PersonSchema, domain: str, seed: int, shift: str) -> str:
    """A validation person's text of one domain under one shift (SHIFTS)."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {tuple(SHIFTS)}")
    if get_variant("heldout").held_out_stream != STREAM:
        raise RuntimeError("the heldout variant's validation stream changed: update smlib.data.shifts.STREAM")
    return SHIFTS[shift].render(person, domain, seed)  # wording "train": the variant's own tables, first 3 phrases
