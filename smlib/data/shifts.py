"""Which shift costs what: the same validation people written four ways, from the training wording to `heldout`'s.

A `heldout` validation text differs from a training text in two things at once: its trait phrases (HELDOUT_VOCAB,
none of them a training phrase) and its templates (HELDOUT_TEMPLATES). SHIFTS separates them:

- `none`: training phrases (the first DEFAULT_PHRASINGS per value, as the record's runs trained on) in training
  templates;
- `phrases`: heldout phrases in training templates;
- `templates`: training phrases in heldout templates;
- `both`: heldout phrases in heldout templates, exactly the texts `heldout` gives its validation people.

The tables and the stream are read off the registered `heldout` variant; all four draw from its validation
stream, so for one person only the tables differ, never the draw.
"""
from __future__ import annotations

from .schema import PersonSchema
from .texts import SHARED_TRAITS, WordingVariant, get_variant

_HELDOUT = get_variant("heldout")  # its training and validation tables and its validation stream
STREAM = _HELDOUT.held_out_stream
SHIFTS = {
    "none": WordingVariant("shift_none", SHARED_TRAITS, vocab=_HELDOUT.vocab, templates=_HELDOUT.templates,
                           stream=STREAM, default=False),
    "phrases": WordingVariant("shift_phrases", SHARED_TRAITS, vocab=_HELDOUT.held_out_vocab,
                              templates=_HELDOUT.templates, stream=STREAM, default=False),
    "templates": WordingVariant("shift_templates", SHARED_TRAITS, vocab=_HELDOUT.vocab,
                                templates=_HELDOUT.held_out_templates, stream=STREAM, default=False),
    "both": WordingVariant("shift_both", SHARED_TRAITS, vocab=_HELDOUT.held_out_vocab,
                           templates=_HELDOUT.held_out_templates, stream=STREAM, default=False),
}


def shifted_text(person: PersonSchema, domain: str, seed: int, shift: str) -> str:
    """A validation person's text of one domain under one shift (SHIFTS)."""
    if shift not in SHIFTS:
        raise ValueError(f"unknown shift {shift!r}; expected one of {tuple(SHIFTS)}")
    return SHIFTS[shift].render(person, domain, seed)  # wording "train": the variant's own tables, first 3 phrases
