"""Synthetic people, their two texts, compatibility scores, mining and the dataset folder."""
from .dataset import Dataset, DatasetError, build_dataset, load_or_build, read_dataset, write_dataset
from .mining import FLIP_TYPES, generate_hard_negative, mine_cross_domain_pairs, mine_triplets
from .people import generate_people
from .schema import PersonSchema
from .scores import SCORE_FNS, dating_compatibility, hiring_compatibility, identity_score
from .texts import render_dating_profile, render_hiring_resume

__all__ = [
    "Dataset", "DatasetError", "FLIP_TYPES", "PersonSchema", "SCORE_FNS", "build_dataset", "dating_compatibility",
    "generate_hard_negative", "generate_people", "hiring_compatibility", "identity_score", "load_or_build",
    "mine_cross_domain_pairs", "mine_triplets", "read_dataset", "render_dating_profile", "render_hiring_resume",
    "write_dataset",
]
