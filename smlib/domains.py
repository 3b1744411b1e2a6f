"""The two kinds of text every synthetic person has: a dating profile and a hiring résumé."""

DOMAINS = ("dating", "hiring")
