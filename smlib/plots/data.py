"""Figures of a dataset (01_data): attribute distributions, template usage, token lengths."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data.schema import BIG_FIVE
from ..data.texts import HIGH_SCORE, LOW_SCORE, TEMPLATE_NAMES, template_name
from ..domains import DOMAINS
from .base import DOMAIN_COLORS, _figure


def attribute_distributions(people) -> Figure:
    """Age, height by sex, the Big Five (with level cuts) and career counts of a population."""
    fig, axes = _figure(3, 3, 10, 9)  # ~1000 px wide: legible where a notebook shows it
    ax = axes[0, 0]
    ax.hist([p.age for p in people], bins=np.arange(21.5, 46.5, 1), color="tab:gray")
    ax.set(title="Age", xlabel="age (years)", ylabel="people")
    ax = axes[0, 1]
    for sex, color in (("male", "tab:blue"), ("female", "tab:red")):
        ax.hist([p.height_in for p in people if p.sex == sex], bins=np.arange(58.5, 79.5, 1), alpha=0.6,
                color=color, label=sex)
    ax.set(title="Height by sex", xlabel="height (inches)", ylabel="people")
    ax.legend()
    for ax, trait in zip([axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2], axes[2, 0]], BIG_FIVE, strict=False):
        ax.hist([getattr(p, trait) for p in people], bins=np.linspace(0, 100, 21), color="tab:green")
        for cut in (LOW_SCORE, HIGH_SCORE):
            ax.axvline(cut, color="black", linestyle="--", linewidth=1)
        ax.set(title=f"{trait.capitalize()} (cuts {LOW_SCORE}, {HIGH_SCORE})", xlabel="score", ylabel="people")
    axes[2, 2].set_axis_off()
    ax = axes[2, 1]
    careers = Counter(p.career for p in people).most_common()[::-1]
    ax.barh([c for c, _ in careers], [n for _, n in careers], color="tab:cyan")
    ax.set(title="Careers", xlabel="people", ylabel="career")
    ax.tick_params(axis="y", labelsize=8)
    fig.suptitle(f"Attributes of {len(people)} people")
    return fig


def template_usage(people, variant: str, seed: int, held_out_ids=()) -> Figure:
    """How often each dating and hiring template is used, and which dating/hiring templates co-occur.

    held_out_ids: validation people, whom the heldout variant writes with templates of their own.
    """
    held = set(held_out_ids)
    names = {dom: [template_name(p, dom, variant, seed, p.person_id in held) for p in people] for dom in DOMAINS}
    labels = {dom: list(TEMPLATE_NAMES[dom]) + sorted(set(names[dom]) - set(TEMPLATE_NAMES[dom])) for dom in DOMAINS}
    fig = Figure(figsize=(10, 9), layout="constrained")
    grid = fig.subplot_mosaic([["dating", "hiring"], ["pairs", "pairs"]], height_ratios=[1, 1.4])
    for ax, dom in ((grid["dating"], "dating"), (grid["hiring"], "hiring")):
        counts = Counter(names[dom])
        ax.barh(labels[dom][::-1], [counts[n] for n in labels[dom][::-1]], color=DOMAIN_COLORS[dom])
        ax.set(title=f"{dom.capitalize()} templates", xlabel="people", ylabel="template")
    co = pd.crosstab(pd.Categorical(names["dating"], labels["dating"]),
                     pd.Categorical(names["hiring"], labels["hiring"]), dropna=False)
    import seaborn as sns  # only this figure needs it; importing it costs ~1 s per notebook

    sns.heatmap(co, ax=grid["pairs"], annot=True, fmt="d", cmap="Blues", cbar=False)
    how = "fixed by person_id" if variant == "verbatim" else "seeded random"
    grid["pairs"].set(title=f"Template pairs ({how})", xlabel="hiring template", ylabel="dating template")
    fig.suptitle(f"Template usage, {variant} variant, seed {seed}, {len(people)} people")
    return fig


def _token_counts(tokenizer, texts: list[str]) -> np.ndarray:
    """Untruncated token count (special tokens included) of each text."""
    ids = tokenizer(list(texts), truncation=False)["input_ids"]
    return np.asarray([len(x) for x in ids])


def token_lengths(texts_by_domain: dict[str, list[str]], tokenizer, max_length: int) -> Figure:
    """Histogram of token counts per domain, with the truncation length and the share cut off."""
    fig, axes = _figure(1, len(texts_by_domain), 6 * len(texts_by_domain), 4)
    for ax, (dom, texts) in zip(axes[0], texts_by_domain.items(), strict=False):
        counts = _token_counts(tokenizer, texts)
        ax.hist(counts, bins=30, color=DOMAIN_COLORS.get(dom, "tab:gray"))
        ax.axvline(max_length, color="black", linestyle="--", label=f"max_length {max_length}")
        ax.set(title=f"{dom}: {np.mean(counts > max_length):.1%} of {len(counts)} truncated",
               xlabel="tokens per text", ylabel="texts")
        ax.legend()
    fig.suptitle("Token lengths")
    return fig
