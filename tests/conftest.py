"""Shared fixtures: smoke params, people and datasets built once per session."""
from __future__ import annotations

import pytest
import torch

from smlib.config import conditions, load_params
from smlib.data import build_dataset, generate_people

CONDITIONS = conditions()  # every params/conditions/*.yaml

# Keeps model tests fast: short texts, tiny batches, few steps (the smoke profile's tiny in-process BERT).
# fp32: numerical checks must not depend on whether this CPU runs bf16 natively (precision auto).
FAST = {"model.max_length": 16, "train.batch_size": 2, "train.max_steps": 2, "train.log_every": 1,
        "train.precision": "fp32"}


def expected_loss_parts(params) -> set[str]:
    """The loss components a condition must report (CombinedLoss keys = history columns), read off its params:
    the within-domain loss always, the cross-domain one unless loss.cross_domain is none, the adversary's with
    architecture adversarial."""
    return ({"within", "total"} | ({"cross"} if params.loss.cross_domain != "none" else set())
            | ({"adversarial"} if params.model.architecture == "adversarial" else set()))


LOSS_PARTS = {c: expected_loss_parts(load_params(c, "smoke")) for c in CONDITIONS}
# what CombinedLoss returns: the loss components plus, for the adversary, its classifier's batch accuracy
REPORTED_PARTS = {c: parts | ({"domain_accuracy"} if "adversarial" in parts else set()) for c, parts in LOSS_PARTS.items()}


def fast_params(condition: str, **overrides):
    """Smoke params for a condition, shrunk for speed; keyword overrides use '__' for '.'."""
    return load_params(condition, "smoke", overrides={**FAST, **{k.replace("__", "."): v for k, v in overrides.items()}})


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The machine has 2 shared cores: one intra-op thread avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def conditions():
    return CONDITIONS


@pytest.fixture(scope="session")
def people_2000():
    return generate_people(2000, 123)


@pytest.fixture(scope="session")
def smoke_dataset():
    return build_dataset(load_params("v3_contrastive", "smoke"))


@pytest.fixture(scope="session")
def hard_smoke_dataset():
    """A smoke-sized dataset whose training triplets often carry hard-negative clones."""
    return build_dataset(load_params("v3_contrastive", "smoke", overrides={
        "data.hard_negative_fraction": 0.5, "data.n_people": 160, "data.n_triplets": 200}))


def assert_reveals_traits(person, text: str, domain_vocab: dict) -> None:
    """The text says each shared trait of the person through domain_vocab's phrases, and no other Big Five level."""
    from smlib.data.schema import BIG_FIVE
    from smlib.data.texts import big_five_level

    lowered = text.lower()

    def says(phrases):
        return any(ph.lower() in lowered for ph in phrases)

    for trait in BIG_FIVE:
        level = big_five_level(getattr(person, trait))
        for shown in ("high", "low"):
            assert says(domain_vocab[trait][shown]) == (shown == level), (trait, level, text)
    assert all(says(domain_vocab["core_values"][v]) for v in person.core_values)
    assert says(domain_vocab["communication_style"][person.communication_style])
    assert says(domain_vocab["attachment_style"][person.attachment_style])


def executed_notebook(path, cells=1, pending=0, error=False) -> None:
    """A minimal executed notebook: `cells` code cells that ran, then `pending` that never did (a killed run)."""
    import json

    code = [{"cell_type": "code", "source": f"x = {i}", "metadata": {}, "execution_count": i + 1,
             "outputs": []} for i in range(cells)]
    if error:
        code[-1]["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}]
    code += [{"cell_type": "code", "source": "y = 1", "metadata": {}, "execution_count": None, "outputs": []}
             for _ in range(pending)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": code, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def write_fake_run(folder, params, complete=True, **metrics) -> None:
    """Every file a finished run holds (metrics.json for params, embeddings.npz, both notebooks) and, with
    complete=True, the runner's completion record."""
    import json

    import numpy as np

    from smlib.record import write_completion

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params.seed)
    n = 4  # a tiny but well-formed embeddings file (4 validation people)
    emb = {"person_ids": np.arange(n), "triplets_dating": np.zeros((2, 3), dtype=np.int64),
           "triplets_hiring": np.zeros((2, 3), dtype=np.int64)}
    emb |= {k: rng.standard_normal((n, 8)).astype(np.float32)
            for k in ("dating", "hiring", "dating_prefix", "hiring_prefix")}
    np.savez_compressed(folder / "embeddings.npz", **emb)
    for name in ("02_train.ipynb", "03_evaluate.ipynb"):
        executed_notebook(folder / name)
    record = {"variant": params.data.variant, "condition": params.condition, "seed": params.seed,
              "params_hash": params.hash(), "metrics": metrics, "params": params.to_dict()}
    (folder / "metrics.json").write_text(json.dumps(record))
    if complete:
        write_completion(folder, params.hash())
