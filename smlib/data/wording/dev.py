"""A third wording, for the dev slice: how a run chooses its settings without looking at the test wording.

Under the *leave-wording-out* rule (smlib.selection) the dev people, a slice of the training people that no
run trains on, are written with the phrasings and templates below: two per value and domain, none of them a
training (DISJOINT_VOCAB) or test (HELDOUT_VOCAB) phrase, no content word of the test wording among them,
and, as in the other tables, no content word shared between the dating and the hiring side. A setting that
generalises from the training phrases to these is chosen without having seen the heldout test's wording.
"""
from __future__ import annotations

DEV_VOCAB: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "dating": {
        "openness": {
            "high": ("I jump at every offbeat invitation", "unexplored corners of the world excite me"),
            "low": ("I stick to my tried-and-true haunts", "I would rather skip surprises altogether"),
        },
        "conscientiousness": {
            "high": ("my to-do lists have to-do lists", "I'm never late, not once"),
            "low": ("I lose my keys twice a day", "punctuality and I don't get along"),
        },
        "extraversion": {
            "high": ("I chat up everyone in line at the bakery", "dance floors are where I shine"),
            "low": ("my ideal Friday is tea and a puzzle at home", "I'm more of a listener than a talker"),
        },
        "agreeableness": {
            "high": ("I let you pick the movie, always", "I'm a total softie at heart"),
            "low": ("I won't back down just to keep the peace", "I'll voice my opinion even if it stings"),
        },
        "neuroticism": {
            "high": ("I fret about the tiniest stuff", "my nerves get the better of me sometimes"),
            "low": ("I'm cool as a cucumber", "I take bumps in the road in stride"),
        },
        "core_values": {
            "honesty": ("every word out of my mouth is sincere", "candor beats flattery for me any day"),
            "loyalty": ("I've got your back through thick and thin", "my pals know I'll never bail on them"),
            "family": ("my mom is my number one confidante", "my huge, loud clan is my everything"),
            "adventure": ("I've backpacked across three continents", "I'd hop on a sailboat tomorrow"),
            "ambition": ("I chase lofty aspirations relentlessly", "I'm hungry to climb to the top someday"),
            "creativity": ("I knit, bake and dabble in poetry", "my camera is always in my bag"),
            "kindness": ("I bring soup to anyone who's sick", "gentle souls win me over"),
            "independence": ("I roam the globe by myself", "I pay my own way and stand on my own feet"),
            "security": ("a sure, trustworthy romance is my hope", "someone I can count on is the aim"),
            "growth": ("I'm a masterpiece in progress", "I sign up for classes just to level up"),
            "humor": ("a silly streak is a must", "I'll crack you up on our first date"),
            "faith": ("God is at the center of everything I do", "my beliefs shape my choices"),
            "health": ("yoga and greens keep me going", "I hike or swim most mornings"),
            "knowledge": ("I'm a lifelong learner and bookworm", "I get giddy over lectures and libraries"),
            "freedom": ("I go where the wind blows me", "I'm a free spirit at heart"),
            "community": ("I coach the neighborhood kids' soccer", "you'll see me at every town fair"),
            "stability": ("an unhurried home routine suits me", "putting down roots appeals to me"),
            "authenticity": ("I'm just me, no masks", "I keep it unfiltered with everyone"),
            "generosity": ("you can have half my dessert", "giving back is pure delight"),
            "balance": ("I never let my job swallow my downtime", "rest is as important as hustle for me"),
        },
        "communication_style": {
            "direct": ("I'm upfront about my wishes", "I tell it exactly as it is"),
            "diplomatic": ("I'm good at smoothing over a quarrel", "I choose a soft tone when we disagree"),
            "analytical": ("I dig to the bottom of every conversation", "I weigh every side before I speak"),
            "expressive": ("my emotions spill out instantly", "my laugh echoes for miles"),
        },
        "attachment_style": {
            "secure": ("I'm serene and unworried in romance", "intimacy is effortless for me"),
            "anxious": ("I worry when your messages stop", "reminders that you're still into me soothe me"),
            "avoidant": ("my heart remains guarded for months", "I get uneasy once romance gets serious"),
            "fearful": ("I yearn to be close but I'm afraid of getting hurt", "I blow hot and cold whenever intimacy deepens"),
        },
    },
    "hiring": {
        "openness": {
            "high": ("explores cutting-edge technologies", "champions exploratory prototyping"),
            "low": ("follows proven-by-precedent protocols", "keeps to customary workflows"),
        },
        "conscientiousness": {
            "high": ("precise in record-keeping and compliance", "punctual, systematic planner"),
            "low": ("works flexibly around evolving requirements", "unbothered by formal timetables"),
        },
        "extraversion": {
            "high": ("visible representative at conferences", "cultivates wide contact networks"),
            "low": ("effective on solitary desk-bound investigations", "understated participant in small forums"),
        },
        "agreeableness": {
            "high": ("supportive, conciliatory collaborator", "defers to coworkers' priorities"),
            "low": ("assertive in contract conflicts", "unbending stance under scrutiny"),
        },
        "neuroticism": {
            "high": ("anticipates contingencies with visible unease", "strained by critical crises"),
            "low": ("unperturbed through quarterly crunches", "collected operator during critical incidents"),
        },
        "core_values": {
            "honesty": ("forthright in milestone reporting", "discloses errors promptly to customers"),
            "loyalty": ("stayed through mergers and acquisitions", "committed to a single company for a decade"),
            "family": ("arranges shifts around parenting", "champions childcare subsidies"),
            "adventure": ("welcomes overseas postings eagerly", "volunteers for startup-stage expansions"),
            "ambition": ("eyes executive promotion", "routinely surpasses sales quotas"),
            "creativity": ("originates campaign themes", "credited with imaginative merchandise ideas"),
            "kindness": ("respectful toward assistants and junior personnel", "helps onboard recent hires generously"),
            "independence": ("flourishes in self-managed posts", "owns projects end to end unaided"),
            "security": ("prioritizes guaranteed compensation packages", "opts for salaried posts with retirement savings"),
            "growth": ("finishes accredited courses yearly", "attends specialist seminars regularly"),
            "humor": ("injects drollery into briefings", "recognized for a lighthearted demeanor with customers"),
            "faith": ("arranges absences for holy festivals", "practicing believer who takes worship breaks"),
            "health": ("organizes company exercise challenges", "encourages ergonomics and employee health"),
            "knowledge": ("recognized technical authority", "publishes in specialist trade journals"),
            "freedom": ("insists on discretion over timetables", "performs optimally with unrestricted mandates"),
            "community": ("heads company outreach efforts", "serves on municipal charity boards"),
            "stability": ("gravitates to venerable enterprises", "dependable in settled operations"),
            "authenticity": ("candid, unvarnished executive manner", "identical character with customers and board members"),
            "generosity": ("publicly credits coworkers' contributions", "donates expertise to peer projects"),
            "balance": ("backs reasonable workweeks", "discourages off-the-clock email for employees"),
        },
        "communication_style": {
            "direct": ("provides straightforward assessments", "gives frank, to-the-point direction"),
            "diplomatic": ("brokers agreements among departments", "conducts sensitive negotiations with tact"),
            "analytical": ("substantiates pitches with statistical modeling", "produces structured numerical briefs"),
            "expressive": ("dynamic, engaging public orator", "gives lively, story-driven demos"),
        },
        "attachment_style": {
            "secure": ("works confidently with managerial guidance", "healthy rapport with bosses"),
            "anxious": ("asks bosses for recurring encouragement", "welcomes continual appraisal from bosses"),
            "avoidant": ("limits contact with superiors", "keeps coworker ties formal and distant"),
            "fearful": ("reluctant to depend on bosses, though eager for endorsement",
                        "torn between self-sufficiency and guidance"),
        },
    },
}

# Templates only dev texts use (names distinct from every training and heldout template's).
DEV_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "dating": {
        "letter-style": ("Dear future match,", "{traits}", "{attachment}", "{values}", "{communication}",
                         "I'm {age} and based in {city}.", "Here for {goal}."),
        "two-truths": ("Some truths about me, {age}, {city}:", "{communication}", "{values}", "{traits}",
                       "{attachment}", "Free time goes to {interests}.", "Goal: {goal}."),
    },
    "hiring": {
        "executive-brief": ("Candidate brief: {career}, {seniority} level, {industry}.", "Attributes: {traits}.",
                            "Workplace ethic: {values}.", "Interaction: {communication}.",
                            "Leadership preference: {attachment}.", "Skill set: {skills}.",
                            "Environment: {work_style}, {team_size}."),
        "reference-check": ("Reference summary for a {career} ({experience}).", "Observed: {traits}.",
                            "Ethic: {values}.", "{communication}; {attachment}.", "Skill set: {skills}.",
                            "Next step: {goal}, {work_style}."),
    },
}
