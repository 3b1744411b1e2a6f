"""Study parameters: YAML layers merged base <- profile <- condition <- overrides, then validated."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .encoder_info import encoder_limits  # noqa: F401 - part of this API
from .limits import BATCH_ITEMS, MIN_LR, data_needs_problem
from .params_yaml import ParamsError, _read_yaml, parse_yaml  # noqa: F401 - parse_yaml is part of this API
from .project import REPO_ROOT, project_root  # noqa: F401 - where params/ and notebooks/ are
from .record import MAX_NAME, MAX_RUN_NAME, is_sweep_run, safe_component, sweep_prefix, sweep_run_name  # noqa: F401 - names of folders

PARAMS_DIR = REPO_ROOT / "params"
PARAMS_ENV = "SMLIB_PARAMS_DIR"  # another params folder for every load (and the notebooks a study runs)
PROPOSED = "v3_contrastive"  # the condition the others are read against (first in tables, paired differences)
DOMAINS = ("dating", "hiring")
# Rows every results table carries beside the conditions (evaluation.reference_rows computes them per dataset):
# untrained (chance, tfidf, zero_shot), trained on the training people's pairs (tfidf_trained_*, frozen_probe),
# and the identifiability ceiling.
REFERENCE_ROWS = ("chance", "tfidf", "tfidf_trained_word", "tfidf_trained_char", "zero_shot", "frozen_probe",
                  "procrustes", "cca", "ceiling")


def params_root(params_dir: str | Path | None = None) -> Path:
    """The params folder: params_dir if given, else $SMLIB_PARAMS_DIR, else the repository's params/."""
    root = Path(params_dir or os.environ.get(PARAMS_ENV) or PARAMS_DIR)
    if not root.is_dir():
        where = ("" if params_dir or os.environ.get(PARAMS_ENV) else
                 " (smlib is installed outside its project folder: run it from a clone of the repository, or set "
                 f"{PARAMS_ENV})")
        raise ParamsError(f"no params folder at {root}{where}")
    return root


def conditions(params_dir: str | Path | None = None) -> tuple[str, ...]:
    """Every condition: one YAML file each under <params>/conditions, the proposed one first, then by name.

    This is the only list of conditions: the runner, the tables, the figures and the tests derive theirs from it.
    """
    names = available("conditions", params_dir)
    return tuple(sorted(names, key=lambda n: (n != PROPOSED, n)))


def variants(default_only: bool = False) -> tuple[str, ...]:
    """Every text variant (smlib.data.texts.register_variant), in the study's order; default_only: those a study
    runs unless told otherwise (every shipped one; a registered variant may opt out). This is the only list of
    variants."""
    from .data.texts import variant_names

    return variant_names(default_only)


def __getattr__(name: str):
    if name == "VARIANTS":  # the earlier constants, now read off the registry
        return variants()
    if name == "DEFAULT_VARIANTS":
        return variants(default_only=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def ordered_variants(found) -> list[str]:
    """Distinct variant names in the study's order (variants()); any unknown name after them, sorted."""
    found, known = set(found), variants()
    return [v for v in known if v in found] + sorted(found - set(known))


def row_order(names) -> list[str]:
    """Distinct table/figure row names in one order: conditions (a sweep point after its condition), reference
    rows, then anything else by name."""
    known = [*conditions(), *REFERENCE_ROWS]
    rank = {n: i for i, n in enumerate(known)}

    def key(name: str):
        base, _, point = name.partition("@")
        leaf, _, value = point.partition("=")
        try:
            number = float(value)  # sweep points in the order of their values: 16 before 128
        except ValueError:
            number = float("inf")
        return (rank.get(base, len(rank)), base, leaf, number, value)

    return sorted(dict.fromkeys(names), key=key)


# Upper bounds that catch typos (1e20 people, lr 10) rather than limit research; base.yaml documents each range.
MAX_PEOPLE = 1_000_000
MAX_COUNT = 10_000_000
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DataParams(_Strict):
    n_people: int = Field(ge=10, le=MAX_PEOPLE)
    val_fraction: float = Field(gt=0, lt=1)
    variant: str  # a registered text variant (config.variants())
    n_triplets: int = Field(ge=BATCH_ITEMS, le=MAX_COUNT)  # a batch needs two
    n_val_triplets: int = Field(ge=1, le=MAX_COUNT)
    n_cross_pairs: int = Field(ge=BATCH_ITEMS, le=MAX_COUNT)
    n_candidates: int = Field(ge=3, le=1000)
    hard_negative_fraction: float = Field(ge=0, le=1)
    # added after the committed record (ADDED_KEYS): their defaults are the earlier behaviour
    dev_fraction: float = Field(default=0.0, ge=0, le=0.5)
    train_phrasings: int | None = Field(default=None, ge=1, le=100)
    augment_views: int = Field(default=0, ge=0, le=16)

    @model_validator(mode="after")
    def _known_variant(self):
        if self.variant not in variants():
            raise ValueError(f"unknown text variant {self.variant!r} (choose from {', '.join(variants())})")
        return self


class ModelParams(_Strict):
    base_model: str = Field(min_length=1)
    architecture: Literal["matryoshka", "projection_heads", "adversarial"]
    prefix_dim: int = Field(ge=1)
    matryoshka_dims: list[int] = Field(min_length=1, max_length=64)
    identity_head_dim: int = Field(ge=1, le=65536)
    adversarial_hidden_dim: int = Field(ge=1, le=65536)
    max_length: int = Field(ge=8, le=65536)
    dropout: float | None = Field(default=None, ge=0, lt=1)  # added after the record (ADDED_KEYS)

    @property
    def identity_dim(self) -> int:
        """Width of the identity space: the Matryoshka prefix (dims 0:K), or projection_heads' separate identity head."""
        return self.identity_head_dim if self.architecture == "projection_heads" else self.prefix_dim

    @model_validator(mode="after")
    def _dims(self):
        dims = self.matryoshka_dims
        if sorted(set(dims)) != dims or dims[0] < 1:
            raise ValueError(f"matryoshka_dims must be strictly increasing positive ints, got {dims}")
        if self.prefix_dim not in dims:
            raise ValueError(f"prefix_dim={self.prefix_dim} is not one of matryoshka_dims {dims}")
        limits = encoder_limits(self.base_model)
        if limits is not None:
            width, positions, _ = limits
            if dims[-1] > width:
                raise ValueError(f"matryoshka_dims {dims} exceed the embedding width {width} of base_model "
                                 f"{self.base_model!r}")
            if self.max_length > positions:
                raise ValueError(f"max_length={self.max_length} exceeds the {positions} positions of base_model "
                                 f"{self.base_model!r}")
        return self


class LossParams(_Strict):
    """The built-in loss keys; a term registered with smlib.losses.register_loss_term adds its weight key (a
    number in [0, 1000]), which a params file may then set (left out, the term's default weight applies)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, allow_inf_nan=False)

    cross_domain: Literal["infonce", "mse", "none"]
    temperature: float = Field(ge=1e-3, le=100)
    within_weight: float = Field(ge=0, le=1000)
    cross_weight: float = Field(ge=0, le=1000)
    adversarial_weight: float = Field(ge=0, le=1000)
    grl_lambda: float = Field(ge=0, le=1000)

    @classmethod
    def extra_keys(cls) -> set[str]:
        """Keys beyond the fields: the weight keys of registered loss terms."""
        from .losses import loss_weight_keys

        return set(loss_weight_keys()) - set(cls.model_fields)

    @model_validator(mode="after")
    def _registered_weights(self):
        for key, value in (self.model_extra or {}).items():
            if key not in self.extra_keys():
                raise ValueError(f"unknown key 'loss.{key}'")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1000:
                raise ValueError(f"loss.{key} must be a number in [0, 1000], got {value!r}")
        return self


class TrainParams(_Strict):
    domains: list[Literal["dating", "hiring"]] = Field(min_length=1, max_length=2)
    lr: float = Field(ge=MIN_LR, le=1)
    head_lr: float = Field(ge=MIN_LR, le=1)
    trainable_layers: Literal["all"] | int
    weight_decay: float = Field(ge=0, le=100)
    warmup_fraction: float = Field(ge=0, lt=1)
    grad_clip: float = Field(gt=0, le=1e6)
    batch_size: int = Field(ge=2, le=65536)
    epochs: int = Field(ge=1, le=100_000)
    max_steps: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    precision: Literal["auto", "fp32", "bf16"]
    encode_chunk: int = Field(ge=1, le=65536)
    device: Literal["auto", "cpu", "cuda", "mps"]
    log_every: int = Field(ge=1, le=MAX_COUNT)
    eval_every: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    keep: Literal["last", "best_dev"] = "last"  # added after the record (ADDED_KEYS)

    @model_validator(mode="after")
    def _layers(self):
        if self.trainable_layers != "all" and (isinstance(self.trainable_layers, bool) or self.trainable_layers < 0):
            raise ValueError(f"trainable_layers must be 'all' or an int >= 0, got {self.trainable_layers!r}")
        return self


class EvalParams(_Strict):
    batch_size: int = Field(ge=1, le=65536)
    bootstrap_resamples: int = Field(ge=10, le=1_000_000)


class Params(_Strict):
    """The full, validated parameter set of one run."""

    condition: str = Field(pattern=r"^[A-Za-z0-9_]+$")  # a file under <params>/conditions (load_params checks)
    seed: int = Field(ge=0, le=MAX_SEED)
    data: DataParams
    model: ModelParams
    loss: LossParams
    train: TrainParams
    eval: EvalParams

    @model_validator(mode="after")
    def _consistent(self):
        limits = encoder_limits(self.model.base_model)
        layers = self.train.trainable_layers
        if limits is not None and limits[2] and layers != "all" and layers > limits[2]:
            raise ValueError(f"train.trainable_layers={layers} is more than the {limits[2]} layers of base_model "
                             f"{self.model.base_model!r} (use 'all' or 0..{limits[2]})")
        if len(set(self.train.domains)) != len(self.train.domains):
            raise ValueError(f"train.domains has duplicates: {self.train.domains}")
        if self.loss.cross_domain != "none" and len(self.train.domains) < 2:
            raise ValueError("loss.cross_domain needs train.domains to hold both dating and hiring")
        if self.model.architecture == "adversarial" and self.loss.cross_domain == "none":
            raise ValueError("architecture 'adversarial' needs a cross-domain loss")
        problem, n_dev = data_needs_problem(self.data, self.train.batch_size)
        if problem:
            raise ValueError(problem)
        if self.train.keep == "best_dev" and not (self.train.eval_every and n_dev):
            raise ValueError("train.keep=best_dev needs train.eval_every (the checks) and data.dev_fraction > 0 (the dev "
                             "slice it chooses on)")
        return self

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/YAML ready)."""
        return self.model_dump(mode="json")

    def data_params(self) -> dict:
        """What a dataset and its reference rows depend on: the seed and the data section (references.json keeps it);
        keys added after the record are left out at their earlier behaviour (ADDED_KEYS)."""
        return without_added_keys({"seed": self.seed, "data": self.data.model_dump()})

    def hash(self) -> str:
        """Short content hash of the params, stable across runs and machines (ADDED_KEYS at their defaults left out,
        so a committed run keeps its hash when a key is added)."""
        return params_hash(without_added_keys(self.to_dict()))


# Keys added after runs were recorded, with the value that reproduces the earlier behaviour. At that value a key is
# left out of the params hash and the dataset id, so the committed record stays valid; any other value counts.
ADDED_KEYS = {("data", "dev_fraction"): 0.0, ("data", "train_phrasings"): None, ("data", "augment_views"): 0,
              ("train", "keep"): "last", ("model", "dropout"): None}


def without_added_keys(d: dict) -> dict:
    """A params dict (or its seed + data part) with the keys added after the record left out at their earlier
    behaviour: the form hashes and dataset comparisons use."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for (section, key), neutral in ADDED_KEYS.items():
        if isinstance(out.get(section), dict) and out[section].get(key, neutral) == neutral:
            out[section].pop(key, None)
    return out


def params_hash(d: dict) -> str:
    """SHA-256 (first 12 hex digits) of a dict's canonical JSON."""
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _merge(into: dict, layer: dict, source: str, origin: dict, prefix: tuple = ()) -> None:
    """Deep-merge layer into `into`, recording which source set each leaf key."""
    for key, value in layer.items():
        path = prefix + (key,)
        if isinstance(value, dict):
            if not isinstance(into.get(key), dict):
                into[key] = {}
            _merge(into[key], value, source, origin, path)
        else:
            into[key] = value
            origin.pop(path, None)  # re-insert, so origin's order follows the order layers were applied
            origin[path] = source


def _check_known_keys(layer: dict, model: type[BaseModel], source: str, prefix: tuple = ()) -> None:
    """Reject keys that the schema does not know, naming the file and the dotted key."""
    for key, value in layer.items():
        path = ".".join(prefix + (str(key),))
        field = model.model_fields.get(key)
        extra = model.extra_keys() if hasattr(model, "extra_keys") else set()
        if field is None and key in extra:
            continue
        if field is None:
            raise ParamsError(f"{source}: unknown key '{path}' (allowed here: "
                              f"{', '.join([*model.model_fields, *sorted(extra)])})")
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if not isinstance(value, dict):
                raise ParamsError(f"{source}: key '{path}' must be a mapping, got {value!r}")
            _check_known_keys(value, sub, source, prefix + (key,))


def _dotted_overrides(overrides: dict) -> dict:
    """Turn {'train.lr': 1e-4} or nested dicts into one nested dict."""
    nested: dict = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(value, dict):
            _merge(node.setdefault(parts[-1], {}), value, "", {})
        else:
            node[parts[-1]] = value
    return nested


def available(kind: str, params_dir: str | Path | None = None) -> list[str]:
    """Names of the profiles or conditions on disk."""
    return sorted(p.stem for p in (params_root(params_dir) / kind).glob("*.yaml"))


def load_params(condition: str = PROPOSED, profile: str = "quick", overrides: dict | None = None,
                params_dir: str | Path | None = None) -> Params:
    """Merge base <- profile <- profile's block for the variant <- condition <- overrides and validate.

    A profile may hold a top-level `variants:` mapping, e.g. `variants: {verbatim: {train: {max_steps: 80}}}`:
    that block applies on top of the profile for runs of that text variant only (verbatim is learned far
    faster than disjoint, so it may get its own budget). Errors name the file and the dotted key.
    """
    params_dir = params_root(params_dir)
    for kind, name in (("profiles", profile), ("conditions", condition)):
        # a name, never a path: '--profile ../base' would read params/base.yaml and write outside the out folder
        if not isinstance(name, str) or not safe_component(name) or not (params_dir / kind / f"{name}.yaml").is_file():
            raise ParamsError(f"unknown {kind[:-1]} '{name}': choose one of {available(kind, params_dir)}")
    profile_path = str(params_dir / "profiles" / f"{profile}.yaml")
    profile_layer = _read_yaml(Path(profile_path))
    variant_blocks = _variant_blocks(profile_layer.pop("variants", {}), profile_path)
    condition_path = params_dir / "conditions" / f"{condition}.yaml"
    layers = [
        (str(params_dir / "base.yaml"), _read_yaml(params_dir / "base.yaml", may_be_empty=False)),
        (profile_path, profile_layer),
        (str(condition_path), _read_yaml(condition_path, may_be_empty=False)),
        ("overrides", _dotted_overrides(overrides or {})),
    ]
    merged, origin = _merge_layers(layers)
    variant = (merged.get("data") or {}).get("variant") if isinstance(merged.get("data"), dict) else None
    if variant_blocks.get(variant):
        layers.insert(2, (f"{profile_path} (variants.{variant})", variant_blocks[variant]))
        merged, origin = _merge_layers(layers)
    if merged.get("condition") != condition:
        raise ParamsError(f"{origin.get(('condition',), layers[-2][0])}: key 'condition' is "
                          f"{merged.get('condition')!r}, but this run is condition {condition!r}")
    if overrides:  # the files as written must be valid on their own: an override may not hide a bad file
        validate_params(*_merge_layers(layers[:-1]))
    return validate_params(merged, origin)


def _merge_layers(layers: list[tuple[str, dict]]) -> tuple[dict, dict]:
    merged: dict[str, Any] = {}
    origin: dict[tuple, str] = {}
    for source, layer in layers:
        _check_known_keys(layer, Params, source)
        _merge(merged, layer, source, origin)
    return merged, origin


def _variant_blocks(blocks: Any, source: str) -> dict[str, dict]:
    """A profile's `variants:` mapping, checked: known variant names, known keys, no variant/condition/seed."""
    if not isinstance(blocks, dict):
        raise ParamsError(f"{source}: key 'variants' must be a mapping of text variant to params, got {blocks!r}")
    for name, block in blocks.items():
        where = f"{source} (variants.{name})"
        if name not in variants():
            raise ParamsError(f"{source}: unknown variant '{name}' under 'variants' (choose from {', '.join(variants())})")
        if not isinstance(block, dict):
            raise ParamsError(f"{where}: must be a mapping of params, got {block!r}")
        for key in ("condition", "seed"):
            if key in block:
                raise ParamsError(f"{where}: key '{key}' cannot depend on the variant")
        if isinstance(block.get("data"), dict) and "variant" in block["data"]:
            raise ParamsError(f"{where}: key 'data.variant' cannot be set inside a variant's own block")
        _check_known_keys(block, Params, where)
    return blocks


def validate_params(d: dict, origin: dict | None = None) -> Params:
    """Validate a merged dict, naming the source file and dotted key of the first problem."""
    origin = origin or {}
    try:
        return Params.model_validate(_lists_to_plain(d))
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(str(x) for x in err["loc"] if not isinstance(x, int))
        source = next((origin[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in origin), None)
        if source is None:  # a model-level check: blame the deepest layer that touched that section
            source = next((s for p, s in reversed(list(origin.items())) if loc and p[: len(loc)] == loc), "params")
        if not loc:  # a check across fields: its message names them (the input is the whole params dict)
            raise ParamsError(f"{source}: {err['msg'].removeprefix('Value error, ')}") from None
        got = err.get("input")
        shown = f" (got {got!r})" if not isinstance(got, (dict, list)) or len(repr(got)) <= 200 else ""
        raise ParamsError(f"{source}: key '{'.'.join(loc)}': {err['msg']}{shown}") from None


def _lists_to_plain(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _lists_to_plain(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_lists_to_plain(v) for v in d]
    return d


def params_from_dict(d: dict) -> Params:
    """Rebuild Params from a saved dict (a manifest or checkpoint), with clear errors."""
    _check_known_keys(d, Params, "saved params")
    return validate_params(d)


def study_params(condition: str, profile: str, variant: str, seed: int, overrides: dict | None = None) -> Params:
    """Params of one run of a study: the profile and condition, plus the variant, the seed and any overrides."""
    return load_params(condition, profile, overrides={"data.variant": variant, "seed": seed, **(overrides or {})})


def dataset_params(profile: str, variant: str, seed: int, overrides: dict | None = None) -> Params:
    """Params a dataset and its reference rows are built from (the data section does not depend on the condition)."""
    return study_params(PROPOSED, profile, variant, seed, overrides)
