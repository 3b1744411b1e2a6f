"""Study parameters from their files: YAML layers merged base <- profile <- condition <- overrides, then validated
(smlib.params_schema, whose names this module re-exports); the conditions and variants a study knows, and the
order of a table's rows."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import compat
from .encoder_info import encoder_limits  # noqa: F401 - part of this API
from .params_schema import (  # noqa: F401 - the schema's names are part of this API
    ADDED_KEYS,
    DOMAINS,
    MAX_COUNT,
    MAX_PEOPLE,
    MAX_SEED,
    DataParams,
    EvalParams,
    LossParams,
    ModelParams,
    Params,
    TrainParams,
    _check_known_keys,
    params_from_dict,
    params_hash,
    validate_params,
    without_added_keys,
)
from .params_yaml import ParamsError, _read_yaml, parse_yaml  # noqa: F401 - parse_yaml is part of this API
from .project import PARAMS_DIR, PARAMS_ENV, REPO_ROOT, params_root, project_root  # noqa: F401 - where params/ is
from .record import MAX_NAME, MAX_RUN_NAME, is_sweep_run, safe_component, sweep_prefix, sweep_run_name  # noqa: F401 - names of folders
from .registrations import import_modules

PROPOSED = "v3_contrastive"  # the condition the others are read against (first in tables, paired differences)
# Rows every results table carries beside the conditions (evaluation.reference_rows computes them per dataset):
# untrained (chance, tfidf, zero_shot), trained on the training people's pairs (tfidf_trained_*, frozen_probe),
# and the identifiability ceiling.
REFERENCE_ROWS = ("chance", "tfidf", "tfidf_trained_word", "tfidf_trained_char", "zero_shot", "frozen_probe",
                  "procrustes", "cca", "ceiling")


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


__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)


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
    layers = _layers(condition, profile, overrides, params_dir)
    import_named(layers)  # first: the modules may register a loss term, variant or metric the layers name
    profile_path, profile_layer = layers[1]
    variant_blocks = _variant_blocks(profile_layer.pop("variants", {}), profile_path)
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


def _layers(condition: str, profile: str, overrides: dict | None, params_dir) -> list[tuple[str, dict]]:
    """The params layers of one run as read, unchecked: (source, dict) of base, profile, condition, overrides."""
    params_dir = params_root(params_dir)
    for kind, name in (("profiles", profile), ("conditions", condition)):
        # a name, never a path: '--profile ../base' would read params/base.yaml and write outside the out folder
        if not isinstance(name, str) or not safe_component(name) or not (params_dir / kind / f"{name}.yaml").is_file():
            raise ParamsError(f"unknown {kind[:-1]} '{name}': choose one of {available(kind, params_dir)}")
    condition_path = params_dir / "conditions" / f"{condition}.yaml"
    return [(str(params_dir / "base.yaml"), _read_yaml(params_dir / "base.yaml", may_be_empty=False)),
            (str(params_dir / "profiles" / f"{profile}.yaml"), _read_yaml(params_dir / "profiles" / f"{profile}.yaml")),
            (str(condition_path), _read_yaml(condition_path, may_be_empty=False)),
            ("overrides", _dotted_overrides(overrides or {}))]


def import_study_modules(profile: str, names=None, overrides: dict | None = None,
                         params_dir: str | Path | None = None) -> None:
    """Import the modules every condition's params name under `imports` (smlib.registrations), so that what they
    register (a text variant on --variants, a loss term, a metric) is known while the study is planned. A file or
    name that cannot be read is left to the plan's own checks, which say what is wrong with it; a module that
    cannot be imported is one ParamsError here."""
    for condition in conditions(params_dir) if names is None else names:
        try:
            layers = _layers(condition, profile, overrides, params_dir)
        except (ParamsError, TypeError):
            continue
        import_named(layers)


def import_named(layers: list[tuple[str, dict]]) -> tuple[str, ...]:
    """Import the modules the params layers name under `imports` (the last layer that sets the key wins, as in the
    merge), before any other key is checked (smlib.registrations); one ParamsError naming the file otherwise."""
    source, names = "params", None
    for where, layer in layers:
        if isinstance(layer, dict) and "imports" in layer:
            source, names = where, layer["imports"]
    return import_modules(names, source)


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
        for key in ("condition", "seed", "imports"):
            if key in block:
                raise ParamsError(f"{where}: key '{key}' cannot depend on the variant")
        if isinstance(block.get("data"), dict) and "variant" in block["data"]:
            raise ParamsError(f"{where}: key 'data.variant' cannot be set inside a variant's own block")
        _check_known_keys(block, Params, where)
    return blocks


def study_params(condition: str, profile: str, variant: str, seed: int, overrides: dict | None = None) -> Params:
    """Params of one run of a study: the profile and condition, plus the variant, the seed and any overrides."""
    return load_params(condition, profile, overrides={"data.variant": variant, "seed": seed, **(overrides or {})})


def dataset_params(profile: str, variant: str, seed: int, overrides: dict | None = None) -> Params:
    """Params a dataset and its reference rows are built from (the data section does not depend on the condition)."""
    return study_params(PROPOSED, profile, variant, seed, overrides)
