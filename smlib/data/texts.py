"""Dating profiles and hiring résumés rendered from a PersonSchema, in three text variants.

``verbatim`` reproduces the original templates, which copy attributes word for word into both
domains. ``disjoint`` reveals the same traits in both texts but with a vocabulary of its own per
domain, so a lexical matcher cannot pair the texts while a model can still learn the mapping.
``heldout`` is ``disjoint`` for training people; validation people (``held_out=True``) are written
with phrasings and templates no training text uses (``heldout_wording``), so the split decides the wording.
"""
from __future__ import annotations

import random
import string

from ..config import DOMAINS, VARIANTS, ordered_variants  # noqa: F401 - re-exported for the data modules
from .heldout_wording import HELDOUT_TEMPLATES, HELDOUT_VOCAB
from .schema import BIG_FIVE, PersonSchema

HIGH_SCORE = 65
LOW_SCORE = 35

TEMPLATE_NAMES = {
    "dating": ("intro-first", "personality-led", "values-first", "casual", "interests-led", "brief",
               "narrative", "psychology-forward"),
    "hiring": ("resume-style", "skills-first", "narrative bio", "culture-fit", "LinkedIn", "brief",
               "ambition-led", "team-fit"),
}
# Offset added to person_id to pick the verbatim template (the original rotation).
VERBATIM_TEMPLATE_OFFSET = {"dating": 0, "hiring": 3}

BIG_FIVE_LEVEL_ATTRIBUTES = tuple(f"{trait}_level" for trait in BIG_FIVE)
REVEALED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "verbatim": (*BIG_FIVE_LEVEL_ATTRIBUTES, "core_values", "communication_style", "mbti", "city", "career"),
    "disjoint": (*BIG_FIVE_LEVEL_ATTRIBUTES, "core_values", "communication_style", "attachment_style"),
    "heldout": (*BIG_FIVE_LEVEL_ATTRIBUTES, "core_values", "communication_style", "attachment_style"),
}

# ---------------------------------------------------------------- verbatim wording
VERBATIM_BIG_FIVE = {
    "dating": {
        "openness": {"high": "curious and adventurous", "low": "down-to-earth and traditional"},
        "conscientiousness": {"high": "organized and reliable", "low": "spontaneous and easygoing"},
        "extraversion": {"high": "outgoing and social", "low": "quiet and introspective"},
        "agreeableness": {"high": "warm and caring", "low": "blunt and independent-minded"},
        "neuroticism": {"high": "sensitive and emotional", "low": "calm and even-keeled"},
    },
    "hiring": {
        "openness": {"high": "an innovative thinker open to new ideas", "low": "practical and process-oriented"},
        "conscientiousness": {"high": "detail-oriented and dependable", "low": "flexible with shifting priorities"},
        "extraversion": {"high": "an energetic collaborator who enjoys client work", "low": "a focused individual contributor"},
        "agreeableness": {"high": "a supportive team player", "low": "assertive and candid in negotiations"},
        "neuroticism": {"high": "highly attentive to risk", "low": "composed under pressure"},
    },
}
MBTI_NICKNAMES = {
    "INTJ": "quiet strategist", "INTP": "curious tinkerer", "ENTJ": "natural organizer", "ENTP": "idea sparker",
    "INFJ": "gentle visionary", "INFP": "idealistic dreamer", "ENFJ": "warm motivator", "ENFP": "eager explorer",
    "ISTJ": "steady planner", "ISFJ": "caring guardian", "ESTJ": "practical manager", "ESFJ": "social host",
    "ISTP": "hands-on fixer", "ISFP": "easygoing artist", "ESTP": "bold doer", "ESFP": "lively entertainer",
}
# Each template is a sequence of sentences; a sentence whose fields are all non-empty is kept.
VERBATIM_TEMPLATES = {
    "dating": {
        "intro-first": (
            "Hi! I'm a {age}-year-old {career} living in {city}.",
            "People describe me as {traits}.",
            "What matters most to me: {values}.",
            "I'm an {mbti} ({mbti_phrase}) and my communication style is {communication}.",
            "In my free time I enjoy {interests}.",
            "I'm looking for: {goal}. Dealbreakers for me are {dealbreakers}.",
        ),
        "personality-led": (
            "{mbti} here, the {mbti_phrase} type.",
            "I'm {traits}.",
            "{age}, {career}, based in {city}.",
            "My core values are {values}, and I'm {communication} when I talk things through.",
            "You'll often find me into {interests}.",
            "I'm a {lifestyles}, and a {smoking}.",
            "Hoping for {goal}, {style}.",
            "Dealbreakers: {dealbreakers}.",
        ),
        "values-first": (
            "My values come first: {values}.",
            "I'm a {career} in {city}, {age} years young.",
            "Friends say I'm {traits}.",
            "Communication style: {communication}. MBTI: {mbti} ({mbti_phrase}).",
            "Religion: {religion}. Politics: {politics}.",
            "On weekends: {interests}.",
            "Looking for {goal}; I {kids}.",
        ),
        "casual": (
            "hey, {age} here, {career} in {city}.",
            "kinda {traits}.",
            "big on {values}.",
            "{mbti} ({mbti_phrase}), pretty {communication} talker.",
            "into {interests}; {lifestyles}.",
            "{smoking}; I {kids}.",
            "down for {goal}. hard pass on {dealbreakers}.",
        ),
        "interests-led": (
            "Love {interests}.",
            "I'd call myself a {lifestyles}.",
            "{age}-year-old {career} from {city}.",
            "I'm {traits}.",
            "I care about {values}, my way of talking is {communication}, and I'm an {mbti} ({mbti_phrase}).",
            "{religion}, {politics}, {smoking}.",
            "Seeking {goal} ({style}); I {kids}.",
        ),
        "brief": (
            "{age}. {career}. {city}.",
            "{mbti}, {mbti_phrase}.",
            "{traits}.",
            "Values: {values}.",
            "Style: {communication}.",
            "Into: {interests}.",
            "Want: {goal}. No: {dealbreakers}.",
        ),
        "narrative": (
            "I moved to {city} a while ago and work as a {career}.",
            "At {age}, I know myself pretty well: I'm {traits}.",
            "The things I hold onto are {values}.",
            "As an {mbti} ({mbti_phrase}) my communication style is {communication}.",
            "Weekends are for {interests}.",
            "I'm {religion}, {politics}, a {smoking}, and I {kids}.",
            "I'm hoping to find {goal}.",
        ),
        "psychology-forward": (
            "Myers-Briggs: {mbti}, the {mbti_phrase}.",
            "Big Five-wise I'm {traits}.",
            "Attachment style: {attachment}. Communication style: {communication}.",
            "Core values: {values}.",
            "{age}, {career}, {city}.",
            "I spend my time on {interests}.",
            "Looking for {goal}, {style}.",
            "Dealbreakers: {dealbreakers}.",
        ),
    },
    "hiring": {
        "resume-style": (
            "{career} | {industry} | {city}.",
            "{years} years of experience, {seniority} level.",
            "Skills: {skills}.",
            "Profile: {traits}.",
            "Core values: {values}. Communication style: {communication}.",
            "MBTI: {mbti} ({mbti_phrase}).",
            "Preferred work style: {work_style}, in a {team_size}.",
            "Career goals: {ambitions}.",
        ),
        "skills-first": (
            "Skilled in {skills}.",
            "{seniority} {career} with {years} years in {industry}, based in {city}.",
            "Known as {traits}.",
            "Values {values}; communication style is {communication}.",
            "{mbti} ({mbti_phrase}). Prefers {work_style} work in a {team_size}.",
            "Next steps: {ambitions}.",
        ),
        "narrative bio": (
            "{seniority} {career} in {city} with {years} years in {industry}.",
            "Colleagues describe this person as {traits}.",
            "Guided by {values}; communication style: {communication}.",
            "As an {mbti} ({mbti_phrase}), works best {work_style}.",
            "Core skills include {skills}.",
            "Goals: {ambitions}. Prefers a {team_size}, {work_style}.",
        ),
        "culture-fit": (
            "Looking for a team that shares my values: {values}.",
            "I'm {traits}.",
            "My communication style is {communication}.",
            "{mbti} ({mbti_phrase}).",
            "{career} in {industry}, {years} years, {seniority}, {city}.",
            "Best fit: {work_style}, {team_size}.",
            "Skills: {skills}. Aiming to {ambitions}.",
        ),
        "LinkedIn": (
            "{seniority} {career} | {industry} | {city}.",
            "{years} years building expertise in {skills}.",
            "I'm {traits}.",
            "Values: {values}. {communication} communicator. {mbti} ({mbti_phrase}).",
            "Open to {work_style} roles in a {team_size}. Goals: {ambitions}.",
        ),
        "brief": (
            "{career}, {city}.",
            "{years} yrs, {seniority}.",
            "{traits}.",
            "Values: {values}.",
            "{communication}, {mbti} ({mbti_phrase}).",
            "{work_style}, {team_size}.",
            "Skills: {skills}.",
        ),
        "ambition-led": (
            "My goals: {ambitions}.",
            "{seniority} {career} in {city} with {years} years in {industry}.",
            "I'm {traits}.",
            "Driven by {values}; communication style {communication}; {mbti} ({mbti_phrase}).",
            "Skills: {skills}. Work style: {work_style}, {team_size}.",
        ),
        "team-fit": (
            "Works best in a {team_size}, {work_style}.",
            "{career} ({seniority}, {years} years) in {city}.",
            "Teammates see me as {traits}.",
            "I bring {values} to the team; my communication style is {communication}.",
            "{mbti} ({mbti_phrase}). Skills: {skills}.",
            "Long-term: {ambitions}.",
        ),
    },
}

# ---------------------------------------------------------------- disjoint wording
# DISJOINT_VOCAB[domain][attribute][value] -> paraphrases. Dating phrases are first-person
# sentences, hiring phrases are résumé fragments; no content word is shared between the domains.
DISJOINT_VOCAB: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "dating": {
        "openness": {
            "high": ("I'm forever chasing strange new experiences", "my curiosity pulls me toward anything unusual",
                     "I love wandering somewhere unfamiliar just to see what happens"),
            "low": ("I like my routines and familiar comforts", "I'm happiest sticking with the things I already love",
                    "give me my usual cozy spot over a surprise any day"),
        },
        "conscientiousness": {
            "high": ("I plan our dates weeks ahead", "my apartment is always tidy", "I never forget a birthday"),
            "low": ("I'm spontaneous and a little messy", "plans are more like suggestions to me",
                    "I tend to wing it and see where the night goes"),
        },
        "extraversion": {
            "high": ("I'm the life of the party", "I recharge by being around my friends",
                     "you'll find me chatting with strangers at the bar"),
            "low": ("quiet nights in with a blanket are my favorite", "I'm a bit shy until I warm up",
                    "a tiny circle of close pals suits me"),
        },
        "agreeableness": {
            "high": ("I'm soft-hearted and easy to get along with", "I'd give a stranger my umbrella",
                     "people say I'm sweet and forgiving"),
            "low": ("I don't sugarcoat anything", "I can be stubborn in an argument", "I'm not here to be a pushover"),
        },
        "neuroticism": {
            "high": ("I overthink texts", "I feel things deeply and worry a lot", "my mood can swing with the weather"),
            "low": ("I'm chill and tough to rattle", "hardly anything fazes me", "I stay mellow when plans fall apart"),
        },
        "core_values": {
            "honesty": ("I never play games", "I'll always tell you the truth", "no lies, no mind tricks"),
            "loyalty": ("once I'm in, I'm all in", "I stand by my people", "I'm ride-or-die for the ones I love"),
            "family": ("Sunday dinners with my folks mean everything", "my siblings are my closest buddies",
                       "I'm close to my parents and cousins"),
            "adventure": ("I'll book a last-minute flight on a whim", "skydiving is on my bucket list",
                          "I'm always up for a road trip"),
            "ambition": ("I dream big", "I'm chasing big dreams", "I hustle toward my dreams"),
            "creativity": ("I'm always making something with my hands", "I doodle on every napkin",
                           "my sketchbook goes everywhere with me"),
            "kindness": ("I hold doors and feed stray cats", "little gestures of tenderness mean a lot to me",
                         "being nice to waiters says a lot"),
            "independence": ("I need my own space", "I'm fine doing my own thing",
                             "I keep a life of my own outside of love"),
            "security": ("I want a safe harbor", "I crave a safe, sheltered nest", "knowing where I stand matters to me"),
            "growth": ("I'm always becoming a better version of me", "therapy and journaling let me evolve",
                       "I want someone who blossoms with me"),
            "humor": ("I'll make you laugh", "puns are my love language", "laughing till it hurts is pure joy"),
            "faith": ("I lean on my faith", "prayer grounds me", "believing in something bigger than me matters"),
            "health": ("I'm at the gym by six", "I eat clean and never skimp on sleep",
                       "looking after my body comes first"),
            "knowledge": ("I'm always reading something", "I love a good documentary", "I ask a million questions"),
            "freedom": ("don't try to fence me in", "I need room to roam", "I like being untethered"),
            "community": ("I know all my neighbors", "I pitch in at the local shelter", "my neighborhood feels like home"),
            "stability": ("I'm ready to settle down", "a calm, predictable life sounds great", "slow and steady wins my heart"),
            "authenticity": ("what you see is what you get", "I don't pretend to be someone I'm not",
                             "I'm real, no filters"),
            "generosity": ("I always pick up the tab", "I'd give you my last slice of pizza", "gift-giving is my thing"),
            "balance": ("I make time for play and rest", "no burning the midnight oil for me", "I guard my weekends"),
        },
        "communication_style": {
            "direct": ("I say what I mean", "I'll tell you straight up how I feel", "I don't beat around the bush"),
            "diplomatic": ("I try to see both sides of every fight", "I pick my words gently",
                           "I'm the peacemaker in my friend group"),
            "analytical": ("I think things through before I text back", "I love a late-night talk that untangles a puzzle",
                           "I'm the one making pros-and-cons lists"),
            "expressive": ("I wear my heart on my sleeve", "I talk with my hands", "you'll always know what I'm feeling"),
        },
        "attachment_style": {
            "secure": ("I feel at ease getting close to someone", "I don't panic when you want time apart",
                       "love feels safe and easy to me"),
            "anxious": ("I need lots of reassurance", "I get nervous when replies are slow", "I sometimes cling a little"),
            "avoidant": ("I take a while to let someone in", "I keep people at arm's length at first",
                         "too much closeness makes me restless"),
            "fearful": ("I want love but it scares me", "I push people away and then miss them",
                        "getting close feels thrilling and terrifying"),
        },
    },
    "hiring": {
        "openness": {
            "high": ("embraces unconventional approaches", "tinkers with emerging tools and methods",
                     "adopts innovations quickly"),
            "low": ("prefers proven procedures", "applies conventional, tested practices", "favors well-documented processes"),
        },
        "conscientiousness": {
            "high": ("meticulous about deadlines and documentation", "detail-oriented, highly organized",
                     "delivers thorough, audit-proof work"),
            "low": ("adaptable about schedules", "comfortable improvising when specs shift",
                    "favors agility over rigid planning"),
        },
        "extraversion": {
            "high": ("energized by client-facing work", "excels at networking events",
                     "outgoing presence in cross-functional settings"),
            "low": ("does concentrated work in focused solitude", "reserved, excels at heads-down execution",
                    "prefers written async channels over large meetings"),
        },
        "agreeableness": {
            "high": ("cooperative, accommodating with peers", "a collegial teammate", "prioritizes harmony within projects"),
            "low": ("challenges assumptions assertively", "resists firmly in negotiations",
                    "competitive, uncompromising on standards"),
        },
        "neuroticism": {
            "high": ("sometimes stressed under intense load", "vigilant about what might go wrong",
                     "sensitive to workplace pressure"),
            "low": ("composed under deadline crunch", "unflappable during incidents", "emotionally resilient in crises"),
        },
        "core_values": {
            "honesty": ("transparent with leadership", "flags problems promptly, candidly", "admits mistakes without delay"),
            "loyalty": ("multi-year tenure with prior employers", "stays with an organization through difficult quarters",
                        "rarely changes employers"),
            "family": ("supports maternity and paternity leave policies", "prioritizes household obligations alongside work",
                       "advocates caregiver-friendly scheduling"),
            "adventure": ("volunteers for greenfield launches", "thrives on uncharted markets",
                          "seeks high-risk, novel assignments"),
            "ambition": ("targets stretch goals, rapid promotion", "pursues aggressive career advancement",
                         "driven to exceed quotas"),
            "creativity": ("generates original concepts in brainstorms", "known for inventive solutions",
                           "reframes problems with fresh ideas"),
            "kindness": ("considerate toward coworkers", "assists struggling teammates",
                         "courteous, supportive in every interaction"),
            "independence": ("self-directed, requires minimal supervision", "works autonomously",
                             "takes initiative without oversight"),
            "security": ("prefers established employers with solid benefits", "seeks a secure role with a pension",
                         "risk-averse about employment"),
            "growth": ("invests in certifications and upskilling", "pursues continuous professional development",
                       "seeks feedback to improve"),
            "humor": ("lightens tense meetings with wit", "brings levity to the office", "lifts morale with jokes"),
            "faith": ("requests observance-friendly scheduling", "guided by religious convictions at work",
                      "observes religious holidays"),
            "health": ("champions workplace wellness programs", "maintains ergonomic work habits",
                       "advocates occupational wellbeing"),
            "knowledge": ("authoritative subject expertise", "studies thoroughly before deciding",
                          "scholarly, evidence-driven approach"),
            "freedom": ("requires latitude to set own methods", "prefers loose mandates over prescriptive processes",
                        "excels with broad discretion"),
            "community": ("runs employee resource groups", "active in professional associations",
                          "sponsors regional nonprofit partnerships"),
            "stability": ("consistent performer in mature organizations", "favors incremental change over upheaval",
                          "prefers established operations"),
            "authenticity": ("genuine leadership presence", "leads without corporate posturing",
                             "unassuming with clients"),
            "generosity": ("quick to share credit", "contributes to colleagues' success",
                           "freely distributes playbooks and templates"),
            "balance": ("advocates sustainable workloads", "protects focus blocks, avoids exhaustion",
                        "respects boundaries between shifts and off-duty periods"),
        },
        "communication_style": {
            "direct": ("gives concise, unambiguous feedback", "communicates plainly, decisively",
                       "states positions explicitly in meetings"),
            "diplomatic": ("navigates conflicts tactfully", "builds consensus across departments",
                           "mediates between competing stakeholders"),
            "analytical": ("presents data-driven arguments", "structures updates around metrics",
                           "communicates via rigorous written analysis"),
            "expressive": ("an energetic, persuasive presenter", "animated storyteller in pitches",
                           "engages audiences with vivid presentations"),
        },
        "attachment_style": {
            "secure": ("relaxed under managerial oversight", "builds reliable rapport with supervisors",
                       "comfortable escalating and delegating"),
            "anxious": ("seeks frequent check-ins with supervisors", "appreciates periodic performance validation",
                        "requests tight feedback loops"),
            "avoidant": ("operates best with minimal managerial contact", "maintains strictly professional interactions with coworkers",
                         "limits dependencies on other contributors"),
            "fearful": ("hesitant to rely on others, yet eager for approval", "cautious about delegation but craves recognition",
                        "ambivalent about collaboration"),
        },
    },
}
GOAL_PHRASES = {
    "long-term relationship": "a long-term relationship", "marriage": "marriage", "casual dating": "something casual",
    "friendship first": "friendship first",
}
KIDS_CLAUSES = {"wants kids": "want kids", "doesn't want kids": "don't want kids", "open to kids": "am open to kids"}
# Hiring-only wording for facts that the dating side never mentions.
DISJOINT_EXPERIENCE_BANDS = ((3, "recent entrant to the profession"), (8, "several seasons of practice"), (15, "a decade-scale track record"),
                             (99, "veteran of the trade"))
DISJOINT_CAREER_GOALS = {
    "lead a team": "head a team", "start my own company": "found a company",
    "become a recognized expert": "become a recognized expert", "move into management": "move into management",
    "work internationally": "work internationally", "mentor younger colleagues": "coach junior colleagues",
}
DISJOINT_TEMPLATES = {
    "dating": {
        "intro-first": ("Hi there! I'm {age} and I live in {city}.", "{traits}", "{values}", "{communication}",
                        "{attachment}", "I'm into {interests}.", "I'm looking for {goal}."),
        "personality-led": ("A few things about me.", "{traits}", "{communication}", "{attachment}", "{values}",
                            "{age}, {city}.", "Hoping for {goal}, {style}."),
        "values-first": ("What I cherish:", "{values}", "{traits}", "{attachment}", "{communication}",
                         "I'm {age}, in {city}. Spiritually I'm {religion}; politically {politics}.",
                         "I'm looking for {goal}, and I {kids}."),
        "casual": ("hey! {age}, {city}.", "{traits}", "{values}", "{communication}", "{attachment}",
                   "I'm a {lifestyles}, {smoking}.", "down for {goal}."),
        "interests-led": ("Love {interests}.", "I'd call myself a {lifestyles}.", "{values}", "{traits}",
                          "{attachment}", "{communication}", "{age} and living in {city}; hoping for {goal}."),
        "brief": ("{age}. {city}.", "{traits}", "{values}", "{communication}", "{attachment}", "Want: {goal}."),
        "narrative": ("I'm {age} and I've made my home in {city}.", "{values}", "{traits}", "{communication}",
                      "{attachment}", "My weekends are for {interests}.",
                      "I'm {religion}, {politics}, a {smoking}, and I {kids}. I'd love {goal}."),
        "psychology-forward": ("My type is {mbti}, if you're into that.", "{traits}", "{attachment}",
                               "{communication}", "{values}", "I'm {age}, {city}. No-gos: {dealbreakers}.",
                               "Looking for {goal}, {style}."),
    },
    "hiring": {
        "resume-style": ("{career} ({seniority}), {industry}.", "Experience: {experience}.", "Profile: {traits}.",
                         "Principles: {values}.", "Communication: {communication}.", "Reporting: {attachment}.",
                         "Competencies: {skills}. Work arrangement: {work_style}, {team_size}.", "Objective: {goal}."),
        "skills-first": ("Competencies: {skills}.", "{seniority} {career}; {experience}.", "Principles: {values}.",
                         "Behavioral profile: {traits}.", "{communication}; {attachment}.",
                         "Arrangement: {work_style}, {team_size}.", "Objective: {goal}."),
        "narrative bio": ("{seniority} {career} in {industry} ({experience}).", "Colleagues cite: {traits}.",
                          "Guided by these principles: {values}.", "Communication: {communication}.",
                          "Management fit: {attachment}.", "Competencies: {skills}.", "Aims to {goal}; {work_style}, {team_size}."),
        "culture-fit": ("Culture fit summary. Principles: {values}.", "Behavioral profile: {traits}.",
                        "Communication: {communication}.", "Oversight preference: {attachment}.",
                        "{career}, {industry}, {seniority}; {experience}; {work_style}, {team_size}.", "Competencies: {skills}."),
        "LinkedIn": ("{seniority} {career} | {industry} | {experience}.", "Core competencies: {skills}.",
                     "Summary: {traits}.", "Principles: {values}.", "{communication}; {attachment}.",
                     "Seeking {work_style} roles, {team_size}. Objective: {goal}."),
        "brief": ("{career}, {seniority}.", "{traits}.", "{values}.", "{communication}.", "{attachment}.",
                  "{work_style}, {team_size}.", "Competencies: {skills}."),
        "ambition-led": ("Objective: {goal}.", "{seniority} {career} in {industry}; {experience}.",
                         "Principles: {values}.", "Profile: {traits}.", "Communication: {communication}.",
                         "Supervision: {attachment}.", "Competencies: {skills}.", "Arrangement: {work_style}, {team_size}."),
        "team-fit": ("Ideal setup: {team_size}, {work_style}.", "{career} ({seniority}, {experience}).",
                     "Peers cite: {traits}.", "Principles: {values}.", "Communication: {communication}.",
                     "Supervision: {attachment}.", "Competencies: {skills}. Objective: {goal}."),
    },
}
_FORMATTER = string.Formatter()


def big_five_level(score: float) -> str:
    """The level a Big Five score is revealed as: "high" (>= 65), "low" (< 35) or "mid"."""
    if score >= HIGH_SCORE:
        return "high"
    if score < LOW_SCORE:
        return "low"
    return "mid"


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown text variant {variant!r}; expected one of {VARIANTS}")


def revealed_signature(person: PersonSchema, variant: str) -> tuple:
    """A hashable tuple of the attributes that both texts of this person reveal under variant."""
    _check_variant(variant)
    signature = []
    for attribute in REVEALED_ATTRIBUTES[variant]:
        if attribute in BIG_FIVE_LEVEL_ATTRIBUTES:
            signature.append(big_five_level(getattr(person, attribute.removesuffix("_level"))))
        else:
            value = getattr(person, attribute)
            signature.append(tuple(sorted(value)) if isinstance(value, list) else value)
    return tuple(signature)


def _disjoint_rng(person: PersonSchema, domain: str, seed: int, held_out: bool = False) -> random.Random:
    # heldout's training texts draw exactly what disjoint's do; its validation texts draw from their own stream
    return random.Random(f"{'heldout' if held_out else 'disjoint'}/{seed}/{person.person_id}/{domain}")


def _wording(variant: str, held_out: bool) -> tuple[dict, dict]:
    """(vocabulary, templates) a non-verbatim text is written with."""
    if variant == "heldout" and held_out:
        return HELDOUT_VOCAB, HELDOUT_TEMPLATES
    return DISJOINT_VOCAB, DISJOINT_TEMPLATES


def template_name(person: PersonSchema, domain: str, variant: str = "verbatim", seed: int = 0,
                  held_out: bool = False) -> str:
    """The name of the template that renders this person's text in domain under variant.

    held_out: the person is a validation person (only the heldout variant writes them differently).
    """
    _check_variant(variant)
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    names = TEMPLATE_NAMES[domain]
    if variant == "verbatim":
        return names[(person.person_id + VERBATIM_TEMPLATE_OFFSET[domain]) % len(names)]
    held = variant == "heldout" and held_out
    _, templates = _wording(variant, held_out)
    return _disjoint_rng(person, domain, seed, held).choice(tuple(templates[domain]))


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
        "lifestyles": _join(person.lifestyles), "goal": GOAL_PHRASES[person.relationship_goal], "style": person.relationship_style,
        "kids": KIDS_CLAUSES[person.wants_kids],
        "religion": person.religion, "politics": person.politics, "smoking": person.smoking,
        "dealbreakers": _join(person.dealbreakers), "skills": _join(person.skills),
        "years": str(person.years_experience), "seniority": person.seniority, "ambitions": _join(person.ambitions),
        "work_style": person.work_style, "team_size": person.team_size,
    }


def _disjoint_phrases(person: PersonSchema, domain: str, rng: random.Random,
                      vocabulary: dict = DISJOINT_VOCAB) -> dict[str, list[str]]:
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
                     vocabulary: dict = DISJOINT_VOCAB) -> dict[str, str]:
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


def _render(person: PersonSchema, domain: str, variant: str, seed: int, held_out: bool) -> str:
    _check_variant(variant)
    if variant == "verbatim":
        name = template_name(person, domain, variant)
        return _fill(VERBATIM_TEMPLATES[domain][name], _verbatim_fields(person, domain))
    held = variant == "heldout" and held_out
    vocabulary, templates = _wording(variant, held_out)
    rng = _disjoint_rng(person, domain, seed, held)
    name = rng.choice(tuple(templates[domain]))
    return _fill(templates[domain][name], _disjoint_fields(person, domain, rng, vocabulary))


def render_dating_profile(person: PersonSchema, variant: str = "verbatim", seed: int = 0, held_out: bool = False) -> str:
    """The person's dating profile in the given text variant (held_out: a validation person)."""
    return _render(person, "dating", variant, seed, held_out)


def render_hiring_resume(person: PersonSchema, variant: str = "verbatim", seed: int = 0, held_out: bool = False) -> str:
    """The person's hiring résumé in the given text variant (held_out: a validation person)."""
    return _render(person, "hiring", variant, seed, held_out)


def heldout_phrases() -> set[str]:
    """Every phrase only validation texts of the heldout variant use (for the leakage checks)."""
    return {ph for dom in HELDOUT_VOCAB.values() for attr in dom.values() for phrases in attr.values() for ph in phrases}
