"""Vocabulary data of the text variants, kept apart from the rendering logic (smlib.data.texts).

verbatim.py: the original's templates and phrases (docs/design.md#texts); disjoint.py: a vocabulary per domain;
heldout.py: the wording only the heldout variant's validation texts use.
"""
