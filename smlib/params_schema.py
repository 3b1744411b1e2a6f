"""The params of one run: the validated schema (data, model, loss, train, eval), its content hash, and rebuilding it
from a saved dict. What every layer may read.

Where params come from (YAML files merged base <- profile <- condition <- overrides, the conditions on disk, the
order of a table's rows) is smlib.config, which re-exports these names. ADDED_KEYS lists the keys added after the
committed record was trained, with the value that keeps the earlier behaviour: at that value a key is left out of
the hash, so the record stays valid.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .domains import DOMAINS  # noqa: F401 - part of this API
from .encoder_info import encoder_limits
from .limits import BATCH_ITEMS, MIN_LR, data_needs_problem
from .params_yaml import ParamsError
from .registrations import MAX_IMPORTS, import_modules

# Upper bounds that catch typos (1e20 people, lr 10) rather than limit research; base.yaml documents each range.
MAX_PEOPLE = 1_000_000
MAX_COUNT = 10_000_000
MAX_SEED = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class DataParams(_Strict):
    n_people: int = Field(ge=10, le=MAX_PEOPLE)
    val_fraction: float = Field(gt=0, lt=1)
    variant: str  # a registered text variant (smlib.data.texts.register_variant)
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
        from .data.texts import get_variant, variant_names  # the registry of text variants

        if self.variant not in variant_names():
            raise ValueError(f"unknown text variant {self.variant!r} (choose from {', '.join(variant_names())})")
        most = get_variant(self.variant).max_phrasings()
        if self.train_phrasings is not None and most is not None and self.train_phrasings > most:
            raise ValueError(f"train_phrasings={self.train_phrasings} asks for more than the {most} training phrases "
                             f"per trait value that variant {self.variant!r} has")
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
    # modules imported before these params are checked, in every process that loads them (smlib.registrations);
    # added after the record (ADDED_KEYS)
    imports: list[str] = Field(default_factory=list, max_length=MAX_IMPORTS)
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
              ("train", "keep"): "last", ("model", "dropout"): None, ("imports",): []}


def without_added_keys(d: dict) -> dict:
    """A params dict (or its seed + data part) with the keys added after the record left out at their earlier
    behaviour: the form hashes and dataset comparisons use."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items()}
    for path, neutral in ADDED_KEYS.items():
        *section, key = path  # a top-level key, or a key one level inside a section
        where = out.get(section[0]) if section else out
        if isinstance(where, dict) and where.get(key, neutral) == neutral:
            where.pop(key, None)
    return out


def params_hash(d: dict) -> str:
    """SHA-256 (first 12 hex digits) of a dict's canonical JSON."""
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


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


def validate_params(d: dict, origin: dict | None = None) -> Params:
    """Validate a merged dict, naming the source file and dotted key of the first problem."""
    origin = origin or {}
    if isinstance(d, dict):
        import_modules(d.get("imports"), origin.get(("imports",), "params"))  # first: they may register what d names
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
    """Rebuild Params from a saved dict (a manifest or checkpoint), with clear errors; the modules it names under
    `imports` are imported first (smlib.registrations)."""
    if isinstance(d, dict):
        import_modules(d.get("imports"), "saved params")
    _check_known_keys(d, Params, "saved params")
    return validate_params(d)
