"""Wording that only validation people's texts use in the ``heldout`` variant.

``heldout`` is ``disjoint`` for training people. Validation people's texts reveal the same traits with
the phrasings below (two more per value and domain, none of them in DISJOINT_VOCAB) inside templates no
training text uses, so a matcher is tested on wording it never saw. Dating phrases are first-person
sentences, hiring phrases are résumé fragments; no content word is shared between the two domains, in
this table or across it and DISJOINT_VOCAB.
"""
from __future__ import annotations

HELDOUT_VOCAB: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "dating": {
        "openness": {
            "high": ("I'll try any weird dish on a menu", "odd museums and unknown trails call my name"),
            "low": ("I order the same meal at my favorite diner", "old rituals feel like a warm hug to me"),
        },
        "conscientiousness": {
            "high": ("my calendar is color-coded", "I show up ten minutes before everything"),
            "low": ("my laundry pile has its own zip code", "I make it up as I go"),
        },
        "extraversion": {
            "high": ("karaoke nights are my happy place", "I can turn a coffee into a three-hour hangout"),
            "low": ("a book and a quiet cafe beat a crowded club", "big crowds drain my battery fast"),
        },
        "agreeableness": {
            "high": ("I apologize to furniture when I bump into it", "I can't stay mad at anyone"),
            "low": ("I'll argue about pizza toppings for sport", "I'm hard-headed and proud of it"),
        },
        "neuroticism": {
            "high": ("I replay awkward moments at 3am", "little things can knot up my stomach"),
            "low": ("I shrug off bad days easily", "drama rolls right off my back"),
        },
        "core_values": {
            "honesty": ("I'd rather hear a hard truth than a sweet fib", "secrets and fibs are a no from me"),
            "loyalty": ("my oldest buddy and I go back twenty summers", "I show up for my crew no matter what"),
            "family": ("my nieces think I'm the coolest grown-up around", "Thanksgiving means a packed house with my relatives"),
            "adventure": ("my passport is running out of pages", "I've slept in a hammock near a volcano"),
            "ambition": ("I keep a vision collage of my dreams on the fridge", "I want to build something that lasts"),
            "creativity": ("I paint murals on weekends", "my guitar and I write songs at midnight"),
            "kindness": ("I foster rescue kittens", "I write sweet notes for strangers"),
            "independence": ("I'm happy taking myself out to dinner", "I cherish my solo evenings"),
            "security": ("I like knowing we're on firm footing", "a safe, cozy love is my dream"),
            "growth": ("I read books on becoming wiser without shame", "each birthday I try to get wiser"),
            "humor": ("my puns groan-worthy and I'm proud of them", "I collect goofy one-liners"),
            "faith": ("church on Sundays grounds my week", "my spiritual life matters deeply to me"),
            "health": ("I meal-prep every Sunday", "morning jogs keep me sane"),
            "knowledge": ("trivia night is my Olympics", "I fall down rabbit holes of facts for fun"),
            "freedom": ("I hate feeling tied down", "I like to keep my options open"),
            "community": ("I organize our block party", "volunteering at the food bank fills my cup"),
            "stability": ("I've lived in the same cozy place for years", "I like a familiar rhythm to my days"),
            "authenticity": ("I wear my quirks proudly", "fake smiles aren't my style"),
            "generosity": ("I split my fries without being asked", "I love treating friends to brunch"),
            "balance": ("I log off at five and mean it", "lazy Sundays are sacred to me"),
        },
        "communication_style": {
            "direct": ("I'll say it to your face, kindly", "no mind reading required with me"),
            "diplomatic": ("I calm the room when tempers flare", "I look for the middle ground in a spat"),
            "analytical": ("I like to talk things out logically", "I'll send you a thoughtful paragraph, not an emoji"),
            "expressive": ("my face shows every emotion", "I gush when I'm excited"),
        },
        "attachment_style": {
            "secure": ("trusting a partner comes naturally to me", "I'm comfy with closeness and with space"),
            "anxious": ("I sometimes need to hear that we're okay", "an unanswered text can spin me out"),
            "avoidant": ("I need lots of breathing room in love", "opening up needs ages for me"),
            "fearful": ("I crave closeness and then run from it", "love feels like a rollercoaster I dread and adore"),
        },
    },
    "hiring": {
        "openness": {
            "high": ("pilots experimental frameworks", "first-wave adopter of novel methodologies"),
            "low": ("relies on standard operating procedures", "upholds traditional, established methods"),
        },
        "conscientiousness": {
            "high": ("maintains rigorous checklists and tracking", "consistently ships before deadlines"),
            "low": ("handles ambiguity without fixed roadmaps", "prefers loose timelines and iterative scoping"),
        },
        "extraversion": {
            "high": ("leads workshops and industry panels", "thrives in stakeholder-facing roles"),
            "low": ("most productive in independent deep-work settings", "favors documentation over live discussion"),
        },
        "agreeableness": {
            "high": ("accommodates colleague requests readily", "fosters cordial cross-team relations"),
            "low": ("pushes back firmly on weak proposals", "exacting, unyielding negotiator"),
        },
        "neuroticism": {
            "high": ("monitors risks with heightened concern", "reacts strongly to high-stakes pressure"),
            "low": ("unshaken during outages and escalations", "maintains equanimity in emergencies"),
        },
        "core_values": {
            "honesty": ("reports setbacks openly to management", "practices full disclosure in audits"),
            "loyalty": ("extended tenure at each employer", "retained through reorganizations and layoffs"),
            "family": ("values parental leave and dependent-care benefits", "balances caregiving duties with deliverables"),
            "adventure": ("accepts frontier assignments in emerging regions", "drawn to pioneering ventures"),
            "ambition": ("on an accelerated leadership track", "sets aggressive targets for advancement"),
            "creativity": ("designs original product concepts", "holds patents on inventive designs"),
            "kindness": ("mentors peers with patience", "known for courteous support of colleagues"),
            "independence": ("operates without direct supervision", "autonomous owner of complex deliverables"),
            "security": ("seeks permanent positions with robust benefits", "prefers tenured, low-risk employment"),
            "growth": ("completes regular professional training", "pursues advanced credentials annually"),
            "humor": ("defuses tension with wit", "brings levity to team syncs"),
            "faith": ("requests accommodation for religious observance", "adheres to devotional commitments beyond the workday"),
            "health": ("promotes occupational wellness initiatives", "sponsors ergonomic and fitness programs"),
            "knowledge": ("deep domain scholarship", "researches exhaustively prior to recommendations"),
            "freedom": ("requests autonomy over methods and scheduling", "excels given broad operational latitude"),
            "community": ("coordinates corporate pro bono drives", "trustee of civic nonprofits"),
            "stability": ("prefers mature, orderly business units", "reliable contributor in established firms"),
            "authenticity": ("transparent, unpretentious leadership", "consistent persona with clients and executives"),
            "generosity": ("attributes successes to teammates", "shares tooling and templates freely"),
            "balance": ("advocates humane workloads", "enforces off-hours boundaries for staff"),
        },
        "communication_style": {
            "direct": ("delivers blunt, actionable critiques", "articulates positions crisply"),
            "diplomatic": ("resolves interdepartmental disputes tactfully", "negotiates compromise between stakeholders"),
            "analytical": ("frames recommendations with quantitative evidence", "writes detailed analytical memos"),
            "expressive": ("charismatic, animated keynote speaker", "compelling narrative presentations"),
        },
        "attachment_style": {
            "secure": ("trusts supervisors and delegates comfortably", "constructive manager relationships"),
            "anxious": ("requests frequent performance affirmation", "prefers daily status syncs with management"),
            "avoidant": ("minimizes reliance on supervisors", "maintains strictly transactional workplace relationships"),
            "fearful": ("wary of dependence yet seeks validation", "conflicted about teamwork and oversight"),
        },
    },
}

# Templates only validation texts use (names distinct from every training template's).
HELDOUT_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "dating": {
        "question-led": ("Who am I? {age}, from {city}.", "{values}", "{attachment}", "{traits}", "{communication}",
                         "Weekends? {interests}.", "What am I after? {goal}."),
        "list-style": ("About me, in short:", "{traits}", "{communication}", "{values}", "{attachment}",
                       "Age {age}; home is {city}.", "Seeking {goal}; I {kids}."),
    },
    "hiring": {
        "bullet-summary": ("Summary: {seniority} {career}, {industry}.", "Strengths: {traits}.",
                           "Values at work: {values}.", "Style: {communication}.", "Management: {attachment}.",
                           "Toolkit: {skills}.", "Setting: {work_style}, {team_size}."),
        "cover-letter": ("Applicant: {career} with {experience}.", "Peers describe: {traits}.",
                         "Operating principles: {values}.", "{communication}; {attachment}.",
                         "Toolkit: {skills}.", "Target: {goal}, {work_style}."),
    },
}
