"""Leakage audit of a text variant: how well lexical matchers pair a person's two texts."""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .baselines import identifiability_ceiling, tfidf_similarity
from .data.schema import PersonSchema
from .data.texts import heldout_phrases, render_dating_profile, render_hiring_resume, variant_names
from .metrics import top1_and_mrr

_WORD = re.compile(r"[a-z0-9]+")
TABLE_TOP_TOKENS = 5


def content_tokens(text: str) -> set[str]:
    """Lowercased word tokens of text, English stop words removed."""
    return {t for t in _WORD.findall(text.lower()) if t not in ENGLISH_STOP_WORDS}


def leakage_audit(people: Sequence[PersonSchema], variant: str, seed: int = 0, top_tokens: int = 20,
                  held_out: bool = False) -> dict:
    """Chance, TF-IDF word/char matching, the identifiability ceiling and shared tokens for these people.

    held_out: these are validation people (the heldout variant writes them with its held-out wording).
    """
    dating = [render_dating_profile(p, variant, seed, held_out) for p in people]
    hiring = [render_hiring_resume(p, variant, seed, held_out) for p in people]
    result = {"variant": variant, "n_people": len(people), "chance": 1.0 / len(people)}
    for analyzer, label in (("word", "word"), ("char_wb", "char")):
        sim = tfidf_similarity(dating, hiring, analyzer=analyzer)  # (N, N)
        top1, mrr = top1_and_mrr(sim)
        result[f"tfidf_{label}_top1"] = top1
        result[f"tfidf_{label}_mrr"] = mrr
        result[f"tfidf_{label}_top1_h2d"] = top1_and_mrr(sim.T)[0]
    result["identifiability_ceiling"] = identifiability_ceiling(people, variant)
    shared = Counter(tok for d, h in zip(dating, hiring, strict=False) for tok in content_tokens(d) & content_tokens(h))
    result["shared_tokens"] = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:top_tokens]
    return result


def audit_table(people: Sequence[PersonSchema], variants: Sequence[str] | None = None, seed: int = 0,
                held_out: bool = False) -> pd.DataFrame:
    """One row of leakage_audit numbers per variant, with the most shared tokens abbreviated."""
    rows = []
    for variant in variants or variant_names():
        audit = leakage_audit(people, variant, seed, top_tokens=TABLE_TOP_TOKENS, held_out=held_out)
        tokens = audit.pop("shared_tokens")
        audit["top_shared_tokens"] = ", ".join(f"{tok}({n})" for tok, n in tokens)
        rows.append(audit)
    return pd.DataFrame(rows).set_index("variant")


def heldout_leak_report(train_texts: Sequence[str]) -> str:
    """One line: how many training texts were searched and which held-out phrasings they contain (none, we hope)."""
    return (f"held-out phrasings found in the {len(train_texts)} training texts (clones included): "
            f"{heldout_leaks(train_texts) or 'none'}")


def shared_tokens_report(people: Sequence[PersonSchema], variant: str, seed: int = 0, held_out: bool = False) -> str:
    """The content tokens a person's two texts share, most frequent first (what a lexical matcher can use)."""
    shared = leakage_audit(people, variant, seed=seed, held_out=held_out)["shared_tokens"]
    return (f"content tokens shared by a person's two {variant} texts (most frequent first):\n"
            + (", ".join(f"{tok} ({n})" for tok, n in shared) or "none"))


def heldout_leaks(train_texts: Sequence[str]) -> list[str]:
    """Held-out phrasings (validation wording of the heldout variant) found in any of these training texts."""
    lowered = [t.lower() for t in train_texts]
    return sorted(ph for ph in heldout_phrases() if any(ph.lower() in t for t in lowered))
