"""The structured person behind every text, and the attribute vocabularies."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

BIG_FIVE = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
# (mean, sd) on the 0-100 scale; draws are clamped to [0, 100].
BIG_FIVE_PRIORS = {
    "openness": (55, 18),
    "conscientiousness": (55, 18),
    "extraversion": (50, 20),
    "agreeableness": (55, 18),
    "neuroticism": (40, 18),
}

SEXES = ("male", "female")
CITIES = (
    "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Philadelphia",
    "San Antonio", "San Diego", "Dallas", "Austin", "San Francisco", "Seattle",
    "Denver", "Boston", "Atlanta", "Miami", "Portland", "Minneapolis",
)
ETHNICITIES = ("White", "Black", "Hispanic", "Asian", "Middle Eastern", "Mixed")

CORE_VALUES = (
    "honesty", "loyalty", "family", "adventure", "ambition", "creativity", "kindness",
    "independence", "security", "growth", "humor", "faith", "health", "knowledge",
    "freedom", "community", "stability", "authenticity", "generosity", "balance",
)
COMMUNICATION_STYLES = ("direct", "diplomatic", "analytical", "expressive")
ATTACHMENT_STYLES = ("secure", "anxious", "avoidant", "fearful")

# career -> (industry, five coherent skills)
CAREERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "software engineer": ("technology", ("Python", "distributed systems", "code review", "cloud infrastructure", "API design")),
    "data scientist": ("technology", ("statistics", "machine learning", "SQL", "experiment design", "data visualization")),
    "product manager": ("technology", ("roadmapping", "user research", "prioritization", "stakeholder management", "analytics")),
    "UX designer": ("design", ("wireframing", "prototyping", "usability testing", "Figma", "interaction design")),
    "registered nurse": ("healthcare", ("patient care", "triage", "medication administration", "charting", "care coordination")),
    "physician": ("healthcare", ("diagnosis", "clinical research", "patient communication", "treatment planning",
                                 "evidence-based medicine")),
    "teacher": ("education", ("lesson planning", "classroom management", "curriculum design", "assessment", "mentoring")),
    "financial analyst": ("finance", ("financial modeling", "Excel", "forecasting", "valuation", "reporting")),
    "accountant": ("finance", ("bookkeeping", "tax preparation", "auditing", "GAAP", "reconciliation")),
    "marketing manager": ("marketing", ("brand strategy", "campaign management", "SEO", "content strategy", "market research")),
    "sales executive": ("sales", ("negotiation", "pipeline management", "CRM", "prospecting", "account management")),
    "lawyer": ("legal", ("contract drafting", "litigation", "legal research", "compliance", "negotiation")),
    "mechanical engineer": ("manufacturing", ("CAD", "thermodynamics", "prototyping", "quality control", "failure analysis")),
    "architect": ("construction", ("building design", "AutoCAD", "project coordination", "zoning codes", "3D modeling")),
    "chef": ("hospitality", ("menu development", "kitchen management", "food safety", "inventory control", "plating")),
    "journalist": ("media", ("reporting", "interviewing", "fact-checking", "editing", "storytelling")),
}
SENIORITY_INCOME = {
    "junior": "$45k-$70k",
    "mid": "$70k-$100k",
    "senior": "$100k-$150k",
    "lead": "$150k-$200k",
    "executive": "$200k+",
}
CAREER_GOALS = (
    "lead a team", "start my own company", "become a recognized expert", "move into management",
    "work internationally", "mentor younger colleagues",
)
FAMILY_GOALS = ("raise a family", "buy a home", "be close to my parents", "have a stable home life")
PERSONAL_GOALS = ("run a marathon", "write a book", "travel to 30 countries", "learn a new language", "volunteer regularly")

RELIGIONS = ("Christian", "Catholic", "Jewish", "Muslim", "Hindu", "Buddhist", "Spiritual", "Agnostic", "Atheist")
POLITICS = ("progressive", "liberal", "moderate", "conservative", "libertarian")
SMOKING = ("non-smoker", "social smoker", "regular smoker")
SMOKING_WEIGHTS = (0.70, 0.15, 0.15)
WANTS_KIDS = ("wants kids", "doesn't want kids", "open to kids")

RELATIONSHIP_GOALS = ("long-term relationship", "marriage", "casual dating", "friendship first")
RELATIONSHIP_STYLES = ("monogamous", "open-minded", "polyamorous")
RELATIONSHIP_STYLE_WEIGHTS = (0.75, 0.15, 0.10)
LIFESTYLES = (
    "fitness enthusiast", "foodie", "homebody", "night owl", "early riser", "traveler",
    "outdoorsy", "social butterfly", "minimalist", "pet lover", "vegetarian", "wine lover",
    "gamer", "bookworm",
)
INTERESTS = (
    "hiking", "cooking", "photography", "yoga", "jazz", "board games", "painting", "running",
    "podcasts", "gardening", "cycling", "theater", "rock climbing", "meditation", "dancing",
    "film", "poetry", "surfing", "chess", "baking", "camping", "live music", "museums",
    "skiing", "tennis", "volunteering", "astronomy", "karaoke",
)
DEALBREAKERS = (
    "smoking", "different religion", "different politics", "doesn't want kids",
    "long distance", "no ambition", "dishonesty", "heavy drinking", "rudeness", "no sense of humor",
)
WORK_STYLES = ("remote", "hybrid", "in-office", "flexible")
TEAM_SIZES = ("solo", "small team", "medium team", "large team")


@dataclass
class PersonSchema:
    """Every attribute of one synthetic person; both of their texts are rendered from it."""

    person_id: int
    age: int
    sex: str
    city: str
    height_in: int
    ethnicity: str
    openness: float
    conscientiousness: float
    extraversion: float
    agreeableness: float
    neuroticism: float
    mbti: str
    core_values: list[str]
    communication_style: str
    attachment_style: str
    career: str
    industry: str
    skills: list[str]
    years_experience: int
    seniority: str
    income_bracket: str
    ambitions: list[str]
    religion: str
    religion_intensity: int
    politics: str
    politics_intensity: int
    smoking: str
    has_kids: bool
    wants_kids: str
    relationship_goal: str
    relationship_style: str
    lifestyles: list[str]
    interests: list[str]
    dealbreakers: list[str]
    work_style: str
    team_size: str

    @property
    def big_five(self) -> tuple[float, ...]:
        """The five trait scores in BIG_FIVE order."""
        return tuple(getattr(self, t) for t in BIG_FIVE)

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PersonSchema:
        """Inverse of to_dict; unknown or missing keys are an error."""
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"person record keys differ from PersonSchema: extra={sorted(set(d) - names)}, "
                             f"missing={sorted(names - set(d))}")
        return cls(**d)
