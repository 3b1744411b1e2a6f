"""The boundary of every numeric params key, walked: the smallest and largest value the planner accepts and one past
each are found against the schema's own bounds; every accepted edge then runs in-process through the data, one
training step, the evaluation and the reference rows (no kernels), because accepted must mean it finishes.

Each key is walked alone, the others at the smoke profile shrunk for speed (WALK_BASE). The upper edges of the
sizes whose cost grows with the value (COSTLY) are walked through planning only: a million people or ten million
triplets finish, but in hours. Budget: about 60 s at one thread.
"""
from __future__ import annotations

import math
import typing

import pytest
import torch
from pydantic import BaseModel

from smlib.config import Params, ParamsError, study_params
from smlib.data import build_dataset
from smlib.data.dataset import dataset_id
from smlib.evaluation import evaluate_run
from smlib.models import build_model
from smlib.references import reference_rows
from smlib.study.plan import plan_study
from smlib.training import train
from smlib.trunk_cache import cached_embedder

WALK_BASE = {"model.max_length": 16, "train.batch_size": 2, "train.max_steps": 1, "train.precision": "fp32",
             "data.n_triplets": 24, "data.n_val_triplets": 12, "data.n_cross_pairs": 24, "eval.bootstrap_resamples": 10}
VARIANT = "heldout"  # the variant with the most code paths: own test and dev wordings, views
# the condition under which a key acts (default: the proposed one) and what else it needs set to act
CONDITION = {"model.identity_head_dim": "projection_heads", "model.adversarial_hidden_dim": "adversarial",
             "loss.adversarial_weight": "adversarial", "loss.grl_lambda": "adversarial"}
COMPANIONS = {"model.prefix_dim": lambda v: {"model.matryoshka_dims": sorted({32, 64, 128, 256, 384, v})},
              "train.max_steps": lambda v: {"train.epochs": 1},  # one pass at most: a few steps, not ten million
              "train.epochs": lambda v: {"train.max_steps": 1}}
COSTLY = {"data.n_people", "data.n_triplets", "data.n_val_triplets", "data.n_cross_pairs", "eval.bootstrap_resamples"}
# the reference rows train maps on the training people and choose on a held-out slice: the split's sizes decide
# whether they can; every other key that they read gets the untrained rows (chance, TF-IDF, zero-shot, ceiling)
REFERENCE_KEYS = {"data.n_people", "data.val_fraction", "data.dev_fraction"}
TRAIN_ONLY = ("loss.", "train.")  # keys the evaluation does not read, but for these:
EVALUATED = {"train.trainable_layers", "train.encode_chunk", "train.precision", "train.max_steps", "train.epochs"}
SEARCH_CAP = 10**7  # the end searched for a key the schema leaves unbounded
START = {"train.trainable_layers": 0}  # an accepted number for a key whose smoke value is not one


def numeric_keys() -> dict[str, tuple[type, float, float, bool, bool]]:
    """dotted key -> (int or float, low, high, low included, high included), read off the params schema."""
    out = {}

    def add(key, field):
        if typing.get_origin(field.annotation) is list:  # matryoshka_dims: a list, checked by its own rule
            return
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        kind = int if int in kinds else float if float in kinds else None
        if kind is None:
            return
        low, high, low_in, high_in = -math.inf, math.inf, True, True
        for m in field.metadata:  # pydantic's Field(ge=..) etc.: one constraint object each, read by its name
            if hasattr(m, "ge"):
                low = m.ge
            elif hasattr(m, "gt"):
                low, low_in = m.gt, False
            elif hasattr(m, "le"):
                high = m.le
            elif hasattr(m, "lt"):
                high, high_in = m.lt, False
        out[key] = (kind, low, high, low_in, high_in)

    for name, field in Params.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            for sub, subfield in field.annotation.model_fields.items():
                add(f"{name}.{sub}", subfield)
        else:
            add(name, field)
    return out


KEYS = numeric_keys()


def _overrides(key: str, value) -> dict:
    return {**WALK_BASE, **COMPANIONS.get(key, lambda v: {})(value), key: value}


def _params(key: str, value) -> Params | None:
    """The run's params with key at value, or None where the params' checks refuse it."""
    seed, overrides = (value, WALK_BASE) if key == "seed" else (42, _overrides(key, value))
    try:
        return study_params(CONDITION.get(key, "v3_contrastive"), "smoke", VARIANT, seed, overrides)
    except ParamsError:
        return None


def _planned(key: str, value) -> bool:
    seeds, overrides = ((value,), WALK_BASE) if key == "seed" else ((42,), _overrides(key, value))  # --seeds sets it
    try:
        plan_study("smoke", (CONDITION.get(key, "v3_contrastive"),), seeds, (VARIANT,), overrides)
    except ParamsError:
        return False
    return True


def _step(kind, value, direction: int):
    """The next representable value past value in direction (+1 up, -1 down)."""
    return value + direction if kind is int else math.nextafter(value, direction * math.inf)


def _edge(key: str, inside, outside):
    """Bisect between an accepted value and a refused one; return (last accepted, first refused)."""
    kind = KEYS[key][0]
    for _ in range(200):
        if kind is int and abs(outside - inside) <= 1:
            break
        toward = 1 if outside > inside else -1
        if kind is float and (abs(outside - inside) <= 1e-9 * max(1.0, abs(inside)) or _step(kind, inside, toward) == outside):
            break
        mid = (inside + outside) // 2 if kind is int else (inside + outside) / 2
        if _params(key, mid) is not None:
            inside = mid
        else:
            outside = mid
    return inside, outside


def boundary(key: str) -> tuple[list, list]:
    """(accepted edges, refused values one past them) of key, in the walk's context."""
    kind, low, high, low_in, high_in = KEYS[key]
    base = study_params("v3_contrastive", "smoke", VARIANT, 42, WALK_BASE).to_dict()
    current = base[key] if "." not in key else base[key.split(".")[0]][key.split(".")[1]]
    if not isinstance(current, (int, float)) or isinstance(current, bool):  # None or a word: start at a number
        current = START.get(key, low if low_in else _step(kind, low, 1))
    low = low if math.isfinite(low) else -SEARCH_CAP
    accepted, refused = [], []
    for end, included, direction in ((low, low_in, -1), (high if math.isfinite(high) else SEARCH_CAP, high_in, 1)):
        edge = end if included else _step(kind, end, -direction)
        if _params(key, edge) is not None:
            accepted.append(edge)
            refused.append(_step(kind, edge, direction))
        else:
            assert _params(key, current) is not None, (key, current)
            inside, outside = _edge(key, current, edge)
            accepted.append(inside)
            refused.append(outside)
    return accepted, refused


def test_every_numeric_key_is_walked():
    """The walk covers every numeric key of the schema, so a new key is walked as soon as it exists."""
    assert {"seed", "data.n_people", "train.batch_size", "eval.bootstrap_resamples", "model.prefix_dim"} <= set(KEYS)
    assert set(CONDITION) | set(COMPANIONS) | COSTLY | REFERENCE_KEYS <= set(KEYS)
    assert len(KEYS) >= 30


@pytest.fixture(scope="module")
def walk_cache():
    return {"datasets": {}, "references": set()}


@pytest.mark.parametrize("key", sorted(KEYS))
def test_boundary(key, walk_cache, tmp_path):
    accepted, refused = boundary(key)
    for value in refused:
        if value is not None and not (isinstance(value, float) and math.isinf(value)):
            assert not _planned(key, value), f"{key}={value!r} is one past an edge, yet planned"
    for i, value in enumerate(accepted):
        if i == 1 and key in COSTLY:
            assert key == "data.n_people" or _planned(key, value), f"{key}={value!r} is refused by the planner"
            continue  # a million people take the planner's check 40 s (it draws them): the schema's bound is read
        assert _planned(key, value), f"{key}={value!r} passes the params' checks but not the planner's"
        _run_in_process(_params(key, value), key, walk_cache, tmp_path)


def _run_in_process(params: Params, key: str, cache: dict, tmp_path) -> None:
    """What a run does, in this process: its dataset, one training step, the evaluation and the reference rows."""
    torch.set_num_threads(1)
    ds_id = dataset_id(params)
    if ds_id not in cache["datasets"]:
        cache["datasets"] = {ds_id: build_dataset(params)}  # one kept: the walk moves on to another dataset
    dataset = cache["datasets"][ds_id]
    result = train(params, dataset, progress=False, embedder=cached_embedder(tmp_path / "cache"))
    assert len(result.history) >= 1
    if key.startswith(TRAIN_ONLY) and key not in EVALUATED:
        return
    _, record = evaluate_run(result.model, dataset, params)
    assert record["metrics"]["prefix_d2h_top1"] >= 0
    refs_key = (ds_id, params.model.prefix_dim, params.loss.temperature, params.eval.model_dump_json(),
                params.model.max_length, params.seed)
    if refs_key not in cache["references"]:
        cache["references"].add(refs_key)
        rows = reference_rows(dataset, params, zero_shot_model=build_model(params), trained=key in REFERENCE_KEYS)
        assert {"chance", "zero_shot", "ceiling"} <= {r["condition"] for r in rows}
