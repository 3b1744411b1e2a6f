"""Dating profiles and hiring résumés rendered from a PersonSchema, in the registered text variants.

A text variant is one registered object (register_variant): its wording (vocabulary and templates, data under
smlib.data.wording), the attributes both texts reveal, and the random stream its choices draw from. Built in:
``verbatim`` reproduces the original templates (docs/design.md#texts), which copy attributes word for word into
both domains; ``disjoint`` reveals the same traits in both texts but with a vocabulary of its own per domain, so a
lexical matcher cannot pair the texts while a model can still learn the mapping; ``heldout`` is ``disjoint`` for
training people, and writes validation people (``held_out=True``) with phrasings and templates no training
text uses (smlib.data.wording.heldout), so the split decides the wording.
"""
from __future__ import annotations

import random
import string
from dataclasses import dataclass

from .. import compat
from ..domains import DOMAINS
from .schema import BIG_FIVE, PersonSchema
from .wording.dev import DEV_TEMPLATES, DEV_VOCAB
from .wording.disjoint import (
    DEFAULT_PHRASINGS,
    DISJOINT_CAREER_GOALS,
    DISJOINT_EXPERIENCE_BANDS,
    DISJOINT_TEMPLATES,
    DISJOINT_VOCAB,
)
from .wording.heldout import HELDOUT_TEMPLATES, HELDOUT_VOCAB
from .wording.verbatim import (
    GOAL_PHRASES,
    KIDS_CLAUSES,
    MBTI_NICKNAMES,
    TEMPLATE_NAMES,
    VERBATIM_BIG_FIVE,
    VERBATIM_TEMPLATE_OFFSET,
    VERBATIM_TEMPLATES,
)

__all__ = ["DISJOINT_TEMPLATES", "DISJOINT_VOCAB", "HIGH_SCORE", "LOW_SCORE", "TEMPLATE_NAMES", "TextVariant",
           "VerbatimVariant", "WordingVariant", "big_five_level", "get_variant", "heldout_phrases",
           "register_variant", "render_dating_profile", "render_hiring_resume", "revealed_signature",
           "template_name", "variant_names"]

HIGH_SCORE = 65
LOW_SCORE = 35
BIG_FIVE_LEVEL_ATTRIBUTES = tuple(f"{trait}_level" for trait in BIG_FIVE)
SHARED_TRAITS = (*BIG_FIVE_LEVEL_ATTRIBUTES, "core_values", "communication_style", "attachment_style")
_FORMATTER = string.Formatter()


def big_five_level(score: float) -> str:
    """The level a Big Five score is revealed as: "high" (>= 65), "low" (< 35) or "mid"."""
    if score >= HIGH_SCORE:
        return "high"
    if score < LOW_SCORE:
        return "low"
    return "mid"


WORDINGS = ("train", "dev", "test")  # who a text is written for: training people, the dev slice, validation people


@dataclass(frozen=True)
class TextVariant:
    """How a person's two texts are written: a name, the attributes both texts reveal, and whether a study runs
    it by default. Subclasses say which template writes a text and how (template_name, render).

    wording: "train" (training people and their clones), "dev" (the dev slice, smlib.selection) or "test"
    (validation people); phrasings: use only the first n training phrases per value; view: 0 is the text itself,
    v > 0 an augmented re-telling of it (another draw of phrases and template, sentences in another order).
    """

    name: str
    revealed: tuple[str, ...]
    default: bool = True  # in the default study (--variants)

    def template_name(self, person: PersonSchema, domain: str, seed: int, wording: str = "train",
                      phrasings: int | None = None, view: int = 0) -> str:
        raise NotImplementedError

    def render(self, person: PersonSchema, domain: str, seed: int, wording: str = "train",
               phrasings: int | None = None, view: int = 0) -> str:
        raise NotImplementedError

    def validation_only_phrases(self) -> set[str]:
        """Phrases only validation texts use (what the leakage checks look for in training texts)."""
        return set()

    def max_phrasings(self) -> int | None:
        """The most training phrases per value data.train_phrasings may ask for (None: the variant has no table)."""
        return None

    def has_own_dev_wording(self) -> bool:
        """Whether the dev slice is written with a wording of its own (then it selects by leave-wording-out)."""
        return False


@dataclass(frozen=True)
class VerbatimVariant(TextVariant):
    """The original's templates, rotated by person id, attributes copied word for word."""

    def template_name(self, person, domain, seed, wording="train", phrasings=None, view=0):
        names = TEMPLATE_NAMES[domain]
        return names[(person.person_id + VERBATIM_TEMPLATE_OFFSET[domain] + view) % len(names)]

    def render(self, person, domain, seed, wording="train", phrasings=None, view=0):
        sentences = VERBATIM_TEMPLATES[domain][self.template_name(person, domain, seed, wording, phrasings, view)]
        if view:
            sentences = _reordered(sentences, random.Random(f"verbatim/{seed}/{person.person_id}/{domain}/{view}"))
        return _fill(sentences, _verbatim_fields(person, domain))


@dataclass(frozen=True)
class WordingVariant(TextVariant):
    """Traits written with a vocabulary and templates of each domain's own, drawn from a random stream per
    (stream, seed, person, domain); the dev slice and validation people get their own wording where given
    (dev_vocab, held_out_vocab), else the training wording."""

    vocab: dict | None = None  # [domain][attribute][value] -> phrases
    templates: dict | None = None  # [domain][template name] -> sentences
    stream: str = ""  # the name the random stream is seeded with (the same texts for the same stream)
    held_out_vocab: dict | None = None
    held_out_templates: dict | None = None
    held_out_stream: str = ""
    dev_vocab: dict | None = None
    dev_templates: dict | None = None
    dev_stream: str = ""

    def _wording(self, wording: str, phrasings: int | None) -> tuple[dict, dict, str]:
        if wording not in WORDINGS:
            raise ValueError(f"unknown wording {wording!r}; expected one of {WORDINGS}")
        if wording == "test" and self.held_out_vocab is not None:
            return self.held_out_vocab, self.held_out_templates, self.held_out_stream
        if wording == "dev" and self.dev_vocab is not None:
            return self.dev_vocab, self.dev_templates, self.dev_stream
        return _first_phrases(self.vocab, phrasings), self.templates, self.stream

    def _rng(self, person, domain, seed, wording, phrasings, view) -> tuple[random.Random, dict, dict]:
        vocab, templates, stream = self._wording(wording, phrasings)
        tail = f"/view{view}" if view else ""
        return random.Random(f"{stream}/{seed}/{person.person_id}/{domain}{tail}"), vocab, templates

    def template_name(self, person, domain, seed, wording="train", phrasings=None, view=0):
        rng, _, templates = self._rng(person, domain, seed, wording, phrasings, view)
        return rng.choice(tuple(templates[domain]))

    def render(self, person, domain, seed, wording="train", phrasings=None, view=0):
        rng, vocab, templates = self._rng(person, domain, seed, wording, phrasings, view)
        sentences = templates[domain][rng.choice(tuple(templates[domain]))]
        fields = _disjoint_fields(person, domain, rng, vocab)
        return _fill(_reordered(sentences, rng) if view else sentences, fields)

    def max_phrasings(self) -> int | None:
        return min(len(phrases) for attrs in self.vocab.values() for values in attrs.values()
                   for phrases in values.values())

    def validation_only_phrases(self) -> set[str]:
        vocab = self.held_out_vocab or {}
        return {ph for dom in vocab.values() for attr in dom.values() for phrases in attr.values() for ph in phrases}

    def has_own_dev_wording(self) -> bool:
        return self.dev_vocab is not None


def _first_phrases(vocab: dict, n: int | None) -> dict:
    """vocab with only the first n training phrases of each value; None: the first DEFAULT_PHRASINGS (the
    committed record's wording, from before the table grew)."""
    n = DEFAULT_PHRASINGS if n is None else n
    return {dom: {attr: {value: phrases[:n] for value, phrases in values.items()} for attr, values in attrs.items()}
            for dom, attrs in vocab.items()}


def _reordered(sentences: tuple[str, ...], rng: random.Random) -> tuple[str, ...]:
    """The template's sentences in another order, the opening one kept first (an augmented view)."""
    rest = list(sentences[1:])
    rng.shuffle(rest)
    return (sentences[0], *rest)


_VARIANTS: dict[str, TextVariant] = {}  # name -> variant, in the study's order


def register_variant(variant: TextVariant) -> TextVariant:
    """Add a text variant: from then on data.variant, --variants, the data, the audits, tables and figures know it."""
    if not isinstance(variant, TextVariant):
        raise TypeError(f"register_variant takes a TextVariant, got {type(variant).__name__}")
    if not variant.name or not variant.name.replace("_", "").isalnum():
        raise ValueError(f"a text variant's name is letters, digits and _, got {variant.name!r}")
    _VARIANTS[variant.name] = variant
    return variant


def variant_names(default_only: bool = False) -> tuple[str, ...]:
    """Every registered variant's name in the study's order (or only those a default study runs)."""
    return tuple(n for n, v in _VARIANTS.items() if v.default or not default_only)


def get_variant(name: str) -> TextVariant:
    """The registered variant of that name; ValueError naming the choices otherwise."""
    if name not in _VARIANTS:
        raise ValueError(f"unknown text variant {name!r}; expected one of {variant_names()}")
    return _VARIANTS[name]


register_variant(VerbatimVariant("verbatim", (*BIG_FIVE_LEVEL_ATTRIBUTES, "core_values", "communication_style",
                                              "mbti", "city", "career")))
register_variant(WordingVariant("disjoint", SHARED_TRAITS, vocab=DISJOINT_VOCAB, templates=DISJOINT_TEMPLATES,
                                stream="disjoint"))
# heldout's training texts draw exactly what disjoint's do; its validation texts draw from a stream of their own
# and its dev slice is written with a third wording (smlib.data.wording.dev), so settings are chosen leaving it out
register_variant(WordingVariant("heldout", SHARED_TRAITS, vocab=DISJOINT_VOCAB,
                                templates=DISJOINT_TEMPLATES, stream="disjoint", held_out_vocab=HELDOUT_VOCAB,
                                held_out_templates=HELDOUT_TEMPLATES, held_out_stream="heldout",
                                dev_vocab=DEV_VOCAB, dev_templates=DEV_TEMPLATES, dev_stream="dev"))


def default_variant_names() -> tuple[str, ...]:
    """The registered variants a study runs unless told otherwise."""
    return variant_names(default_only=True)


def revealed_attributes() -> dict[str, tuple[str, ...]]:
    """Each registered variant's name -> the attributes both of a person's texts reveal."""
    return {n: v.revealed for n, v in _VARIANTS.items()}


__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)


def revealed_signature(person: PersonSchema, variant: str) -> tuple:
    """A hashable tuple of the attributes that both texts of this person reveal under variant."""
    signature = []
    for attribute in get_variant(variant).revealed:
        if attribute in BIG_FIVE_LEVEL_ATTRIBUTES:
            signature.append(big_five_level(getattr(person, attribute.removesuffix("_level"))))
        else:
            value = getattr(person, attribute)
            signature.append(tuple(sorted(value)) if isinstance(value, list) else value)
    return tuple(signature)


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")


def _wording_of(held_out: bool, wording: str | None) -> str:
    return wording or ("test" if held_out else "train")


def template_name(person: PersonSchema, domain: str, variant: str = "verbatim", seed: int = 0,
                  held_out: bool = False, *, wording: str | None = None, phrasings: int | None = None,
                  view: int = 0) -> str:
    """The name of the template that renders this person's text in domain under variant.

    held_out: the person is a validation person (only a variant with validation wording writes them differently);
    wording ("train", "dev", "test"), phrasings and view as in TextVariant.
    """
    v = get_variant(variant)
    _check_domain(domain)
    return v.template_name(person, domain, seed, _wording_of(held_out, wording), phrasings, view)


def _join(items: list[str]) -> str:
    """English list: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _extreme_traits(person: PersonSchema) -> list[tuple[str, str]]:
    return [(t, level) for t in BIG_FIVE if (level := big_five_level(getattr(person, t))) != "mid"]


def _verbatim_fields(person: PersonSchema, domain: str) -> dict[str, str]:
    phrases = VERBATIM_BIG_FIVE[domain]
    return {
        "age": str(person.age), "city": person.city, "career": person.career, "industry": person.industry,
        "mbti": person.mbti, "mbti_phrase": MBTI_NICKNAMES[person.mbti],
        "traits": ", ".join(phrases[t][level] for t, level in _extreme_traits(person)),
        "values": _join(person.core_values), "communication": person.communication_style,
        "attachment": person.attachment_style, "interests": _join(person.interests),
        "lifestyles": _join(person.lifestyles), "goal": GOAL_PHRASES[person.relationship_goal],
        "style": person.relationship_style,
        "kids": KIDS_CLAUSES[person.wants_kids],
        "religion": person.religion, "politics": person.politics, "smoking": person.smoking,
        "dealbreakers": _join(person.dealbreakers), "skills": _join(person.skills),
        "years": str(person.years_experience), "seniority": person.seniority, "ambitions": _join(person.ambitions),
        "work_style": person.work_style, "team_size": person.team_size,
    }


def _disjoint_phrases(person: PersonSchema, domain: str, rng: random.Random,
                      vocabulary: dict) -> dict[str, list[str]]:
    vocab = vocabulary[domain]
    traits = [rng.choice(vocab[t][level]) for t, level in _extreme_traits(person)]
    rng.shuffle(traits)
    return {
        "traits": traits,
        "values": [rng.choice(vocab["core_values"][v]) for v in person.core_values],
        "communication": [rng.choice(vocab["communication_style"][person.communication_style])],
        "attachment": [rng.choice(vocab["attachment_style"][person.attachment_style])],
    }


def _disjoint_fields(person: PersonSchema, domain: str, rng: random.Random,
                     vocabulary: dict) -> dict[str, str]:
    phrases = _disjoint_phrases(person, domain, rng, vocabulary)
    if domain == "dating":
        fields = {k: " ".join(p[0].upper() + p[1:] + "." for p in v) for k, v in phrases.items()}
        fields |= {
            "age": str(person.age), "city": person.city, "mbti": person.mbti, "interests": _join(person.interests),
            "lifestyles": _join(person.lifestyles), "goal": GOAL_PHRASES[person.relationship_goal],
            "style": person.relationship_style,
            "kids": KIDS_CLAUSES[person.wants_kids],
            "religion": person.religion, "politics": person.politics, "smoking": person.smoking,
            "dealbreakers": _join(person.dealbreakers),
        }
        return fields
    experience = next(label for limit, label in DISJOINT_EXPERIENCE_BANDS if person.years_experience < limit)
    fields = {k: "; ".join(v) for k, v in phrases.items()}
    fields |= {
        "career": person.career, "industry": person.industry, "seniority": person.seniority,
        "experience": experience, "skills": ", ".join(person.skills), "goal": DISJOINT_CAREER_GOALS[person.ambitions[0]],
        "work_style": person.work_style, "team_size": person.team_size,
    }
    return fields


def _fill(sentences: tuple[str, ...], fields: dict[str, str]) -> str:
    """Format each sentence, dropping those with an empty field, and capitalise it."""
    kept = [s.format(**fields) for s in sentences
            if all(fields[name] for _, name, _, _ in _FORMATTER.parse(s) if name)]
    return " ".join(k[0].upper() + k[1:] for k in kept)


def render_dating_profile(person: PersonSchema, variant: str = "verbatim", seed: int = 0, held_out: bool = False, *,
                          wording: str | None = None, phrasings: int | None = None, view: int = 0) -> str:
    """The person's dating profile in the given text variant (held_out: a validation person; wording, phrasings and
    view as in TextVariant)."""
    return get_variant(variant).render(person, "dating", seed, _wording_of(held_out, wording), phrasings, view)


def render_hiring_resume(person: PersonSchema, variant: str = "verbatim", seed: int = 0, held_out: bool = False, *,
                          wording: str | None = None, phrasings: int | None = None, view: int = 0) -> str:
    """The person's hiring résumé in the given text variant (held_out: a validation person; wording, phrasings and
    view as in TextVariant)."""
    return get_variant(variant).render(person, "hiring", seed, _wording_of(held_out, wording), phrasings, view)


def heldout_phrases() -> set[str]:
    """Every phrase only validation texts of a registered variant use (for the leakage checks)."""
    return set().union(*(v.validation_only_phrases() for v in _VARIANTS.values()))
