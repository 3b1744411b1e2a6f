"""The original's wording (the ``verbatim`` variant): attributes copied word for word into both domains.

TEMPLATE_NAMES are the 8 templates per domain, chosen by person id (VERBATIM_TEMPLATE_OFFSET; docs/design.md#texts);
GOAL_PHRASES and KIDS_CLAUSES phrase the facts only the dating side mentions, in every variant.
"""
from __future__ import annotations

TEMPLATE_NAMES = {
    "dating": ("intro-first", "personality-led", "values-first", "casual", "interests-led", "brief",
               "narrative", "psychology-forward"),
    "hiring": ("resume-style", "skills-first", "narrative bio", "culture-fit", "LinkedIn", "brief",
               "ambition-led", "team-fit"),
}
# Offset added to person_id to pick the verbatim template (the original rotation).
VERBATIM_TEMPLATE_OFFSET = {"dating": 0, "hiring": 3}

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

GOAL_PHRASES = {
    "long-term relationship": "a long-term relationship", "marriage": "marriage", "casual dating": "something casual",
    "friendship first": "friendship first",
}
KIDS_CLAUSES = {"wants kids": "want kids", "doesn't want kids": "don't want kids", "open to kids": "am open to kids"}
