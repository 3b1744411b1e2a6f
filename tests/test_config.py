"""Params: every condition x profile loads, merge order, and errors that name the file and the key."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from smlib.config import PARAMS_DIR, ParamsError, conditions, load_params

CONDITIONS = conditions()  # every params/conditions/*.yaml

PROFILES = ("smoke", "quick", "paper")


@pytest.fixture()
def params_dir(tmp_path) -> Path:
    """A private copy of params/ that a test may corrupt."""
    return Path(shutil.copytree(PARAMS_DIR, tmp_path / "params"))


def _edit(path: Path, **sections) -> None:
    """Deep-set sections in a YAML file: _edit(p, train={'lr': 0.5})."""
    d = yaml.safe_load(path.read_text()) or {}
    for section, values in sections.items():
        if isinstance(values, dict):
            d.setdefault(section, {}).update(values)
        else:
            d[section] = values
    path.write_text(yaml.safe_dump(d))


def test_shipped_files_match_the_known_conditions_and_profiles():
    assert sorted(p.stem for p in (PARAMS_DIR / "conditions").glob("*.yaml")) == sorted(CONDITIONS)
    assert {p.stem for p in (PARAMS_DIR / "profiles").glob("*.yaml")} >= set(PROFILES)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("condition", CONDITIONS)
def test_every_condition_and_profile_loads(condition, profile):
    p = load_params(condition, profile)
    assert p.condition == condition
    assert p.model.prefix_dim in p.model.matryoshka_dims
    if condition in ("v3_no_prefix", "single_dating", "single_hiring"):
        assert p.loss.cross_domain == "none"
    if condition == "single_dating":
        assert p.train.domains == ["dating"]
    if condition == "single_hiring":
        assert p.train.domains == ["hiring"]
    if condition in ("projection_heads", "adversarial"):
        assert p.model.architecture == condition
    if condition == "v3_mse":
        assert p.loss.cross_domain == "mse"


def test_shipped_values_follow_the_design():
    """The paper profile keeps the original's scale (docs/design.md#defaults)."""
    base = load_params("v3_contrastive", "paper")
    assert base.seed == 42 and base.model.prefix_dim == 64
    assert base.model.matryoshka_dims == [32, 64, 128, 256, 384]
    assert base.loss.temperature == pytest.approx(0.07)
    smoke = load_params("v3_contrastive", "smoke")
    assert smoke.model.base_model == "tiny"


def test_merge_order_base_profile_condition_overrides(params_dir):
    _edit(params_dir / "base.yaml", train={"lr": 0.1, "weight_decay": 0.1, "grad_clip": 0.1, "epochs": 1})
    _edit(params_dir / "profiles" / "smoke.yaml", train={"lr": 0.2, "weight_decay": 0.2, "grad_clip": 0.2})
    _edit(params_dir / "conditions" / "v3_mse.yaml", train={"lr": 0.3, "weight_decay": 0.3})
    p = load_params("v3_mse", "smoke", overrides={"train.lr": 0.4}, params_dir=params_dir)
    assert p.train.lr == 0.4               # overrides win over everything
    assert p.train.weight_decay == 0.3     # condition wins over profile
    assert p.train.grad_clip == 0.2        # profile wins over base
    assert p.train.epochs == 1             # base fills the rest
    assert p.loss.cross_domain == "mse"    # untouched keys of a layer survive the deep merge


def test_overrides_accept_dotted_and_nested_keys():
    dotted = load_params("v3_contrastive", "smoke", overrides={"train.lr": 0.5, "data.n_people": 90})
    nested = load_params("v3_contrastive", "smoke", overrides={"train": {"lr": 0.5}, "data": {"n_people": 90}})
    assert dotted.train.lr == nested.train.lr == 0.5
    assert dotted.data.n_people == nested.data.n_people == 90
    assert dotted.train.batch_size == load_params("v3_contrastive", "smoke").train.batch_size  # siblings kept
    assert dotted.hash() == nested.hash()


def test_unknown_key_in_a_file_names_file_and_dotted_key(params_dir):
    path = params_dir / "profiles" / "smoke.yaml"
    _edit(path, train={"learning_rate": 0.1})
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and "train.learning_rate" in str(e.value)


def test_unknown_top_level_key_names_file(params_dir):
    path = params_dir / "conditions" / "adversarial.yaml"
    _edit(path, optimiser={"name": "sgd"})
    with pytest.raises(ParamsError) as e:
        load_params("adversarial", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and "optimiser" in str(e.value)


def test_unknown_override_key_is_rejected():
    with pytest.raises(ParamsError, match=r"train\.nonsense"):
        load_params("v3_contrastive", "smoke", overrides={"train.nonsense": 1})


@pytest.mark.parametrize("layer, key", [("base.yaml", "grad_clip"), ("profiles/smoke.yaml", "grad_clip"),
                                        ("conditions/v3_contrastive.yaml", "grad_clip"),
                                        ("conditions/v3_contrastive.yaml", "lr")])
def test_wrong_type_names_file_and_key(params_dir, layer, key):
    path = params_dir / layer
    _edit(path, train={key: "fast"})  # no shipped layer above base sets grad_clip
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and f"train.{key}" in str(e.value)


def test_bool_is_not_an_int(params_dir):
    with pytest.raises(ParamsError, match="train.batch_size"):
        load_params("v3_contrastive", "smoke", overrides={"train.batch_size": True})


def test_wrong_type_in_overrides_names_overrides():
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", overrides={"data.n_people": "many"})
    assert "overrides" in str(e.value) and "data.n_people" in str(e.value)


def test_section_that_is_not_a_mapping_is_rejected(params_dir):
    path = params_dir / "conditions" / "v3_mse.yaml"
    _edit(path, loss=5)
    with pytest.raises(ParamsError) as e:
        load_params("v3_mse", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and "loss" in str(e.value)


def test_prefix_dim_outside_matryoshka_dims_is_rejected():
    with pytest.raises(ParamsError, match="prefix_dim"):
        load_params("v3_contrastive", "smoke", overrides={"model.prefix_dim": 48})
    ok = load_params("v3_contrastive", "smoke", overrides={"model.prefix_dim": 128})
    assert ok.model.prefix_dim == 128


def test_model_level_error_blames_the_layer_that_set_the_value(params_dir):
    """A cross-field check (prefix_dim vs matryoshka_dims) must name the layer that broke it, not base.yaml."""
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", overrides={"model.prefix_dim": 48})
    assert str(e.value).startswith("overrides"), str(e.value)[:200]
    path = params_dir / "conditions" / "v3_contrastive.yaml"
    _edit(path, model={"prefix_dim": 48})
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    assert str(e.value).startswith(str(path)), str(e.value)[:200]


def test_unsorted_matryoshka_dims_rejected():
    with pytest.raises(ParamsError, match="matryoshka_dims"):
        load_params("v3_contrastive", "smoke", overrides={"model.matryoshka_dims": [64, 32, 384]})


@pytest.mark.parametrize("bad", [0, 0.0, 1.0, 1.5, -0.1])
def test_val_fraction_out_of_range_rejected(bad):
    with pytest.raises(ParamsError, match="val_fraction"):
        load_params("v3_contrastive", "smoke", overrides={"data.val_fraction": bad})


def test_val_fraction_leaving_too_few_people_rejected():
    with pytest.raises(ParamsError, match="val_fraction"):
        load_params("v3_contrastive", "smoke", overrides={"data.n_people": 10, "data.val_fraction": 0.1})


def test_cross_domain_loss_needs_both_domains():
    with pytest.raises(ParamsError, match="domains"):
        load_params("v3_contrastive", "smoke", overrides={"train.domains": ["dating"]})


def test_unknown_condition_lists_choices():
    with pytest.raises(ParamsError) as e:
        load_params("v4_magic", "smoke")
    msg = str(e.value)
    assert "v4_magic" in msg and all(c in msg for c in CONDITIONS)


def test_unknown_profile_lists_choices():
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "huge")
    msg = str(e.value)
    assert "huge" in msg and all(p in msg for p in PROFILES)


def test_malformed_yaml_names_file(params_dir):
    path = params_dir / "profiles" / "quick.yaml"
    path.write_text("train:\n  lr: [1, 2\n  epochs: 3\n")
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "quick", params_dir=params_dir)
    assert str(path) in str(e.value)


def test_condition_file_must_name_its_condition(params_dir):
    path = params_dir / "conditions" / "v3_mse.yaml"
    _edit(path, condition="v3_contrastive")
    with pytest.raises(ParamsError) as e:
        load_params("v3_mse", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value)


def test_params_are_frozen():
    p = load_params("v3_contrastive", "smoke")
    with pytest.raises(ValidationError, match="frozen"):
        p.train.lr = 1.0


def test_hash_is_stable_and_tracks_values():
    a = load_params("v3_contrastive", "smoke")
    b = load_params("v3_contrastive", "smoke")
    assert a.hash() == b.hash() and len(a.hash()) == 12
    assert load_params("v3_contrastive", "smoke", overrides={"train.lr": 0.002}).hash() != a.hash()
    assert load_params("v3_contrastive", "smoke", overrides={"seed": 7}).hash() != a.hash()
    assert load_params("v3_mse", "smoke").hash() != a.hash()
    assert load_params("v3_contrastive", "quick").hash() != a.hash()


def test_hash_survives_a_dict_round_trip():
    from smlib.config import params_from_dict

    p = load_params("projection_heads", "quick")
    assert params_from_dict(p.to_dict()) == p
    assert params_from_dict(p.to_dict()).hash() == p.hash()


def test_unused_keys_are_gone():
    """data.n_cross_negatives was read by nothing (training uses in-batch negatives): it is no longer accepted."""
    with pytest.raises(ParamsError, match="n_cross_negatives"):
        load_params("v3_contrastive", "smoke", overrides={"data.n_cross_negatives": 15})


@pytest.mark.parametrize("profile, value", [("smoke", "all"), ("smoke", 0), ("smoke", 2), ("quick", 6)])
def test_trainable_layers_accepts_all_or_a_count(profile, value):
    assert load_params("v3_contrastive", profile, overrides={"train.trainable_layers": value}).train.trainable_layers == value


def test_trainable_layers_beyond_the_encoders_layers_is_refused():
    with pytest.raises(ParamsError, match="more than the 2 layers of base_model 'tiny'"):
        load_params("v3_contrastive", "smoke", overrides={"train.trainable_layers": 3})


@pytest.mark.parametrize("bad", [-1, "top", True, 1.5])
def test_trainable_layers_rejects_anything_else(bad):
    with pytest.raises(ParamsError, match="trainable_layers"):
        load_params("v3_contrastive", "smoke", overrides={"train.trainable_layers": bad})


def test_precision_auto_uses_bf16_only_where_the_cpu_runs_it_natively(tmp_path, monkeypatch):
    import torch

    import smlib.models.shared as shared

    avx2 = tmp_path / "avx2"
    avx2.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    bf16 = tmp_path / "bf16"
    bf16.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16\n")
    assert not shared.cpu_has_native_bf16(str(avx2)) and shared.cpu_has_native_bf16(str(bf16))
    assert not shared.cpu_has_native_bf16(str(tmp_path / "missing"))
    cpu = torch.device("cpu")
    detect = shared.cpu_has_native_bf16.__wrapped__
    for path, expected in ((avx2, "fp32"), (bf16, "bf16")):
        monkeypatch.setattr(shared, "cpu_has_native_bf16", lambda p=str(path): detect(p))
        assert shared.resolve_precision("auto", cpu) == expected
    assert shared.resolve_precision("fp32", cpu) == "fp32" and shared.resolve_precision("bf16", cpu) == "bf16"


def test_a_profile_may_give_a_variant_its_own_budget(params_dir):
    path = params_dir / "profiles" / "smoke.yaml"
    _edit(path, train={"max_steps": 7}, variants={"verbatim": {"train": {"max_steps": 3}}})
    verbatim = load_params("v3_contrastive", "smoke", overrides={"data.variant": "verbatim"}, params_dir=params_dir)
    disjoint = load_params("v3_contrastive", "smoke", overrides={"data.variant": "disjoint"}, params_dir=params_dir)
    assert verbatim.train.max_steps == 3 and disjoint.train.max_steps == 7
    assert verbatim.train.lr == disjoint.train.lr  # the rest of the profile applies to both
    # overrides still win over the variant's block, and the block is part of the params hash
    forced = load_params("v3_contrastive", "smoke", overrides={"data.variant": "verbatim", "train.max_steps": 7},
                         params_dir=params_dir)
    assert forced.train.max_steps == 7 and forced.hash() != verbatim.hash()


def test_the_shipped_quick_profile_gives_every_condition_of_a_variant_one_budget():
    for variant in ("verbatim", "disjoint"):
        budgets = {(p.train.max_steps, p.train.epochs, p.train.batch_size, p.train.lr, p.train.trainable_layers)
                   for p in (load_params(c, "quick", overrides={"data.variant": variant}) for c in CONDITIONS)}
        assert len(budgets) == 1, (variant, budgets)


@pytest.mark.parametrize("block, needle", [
    ({"verbatm": {"train": {"max_steps": 3}}}, "unknown variant 'verbatm'"),
    ({"verbatim": {"train": {"max_stepz": 3}}}, "train.max_stepz"),
    ({"verbatim": {"data": {"variant": "disjoint"}}}, "data.variant"),
    ({"verbatim": {"seed": 1}}, "'seed'"),
    ({"verbatim": 5}, "must be a mapping"),
    ([1, 2], "key 'variants' must be a mapping"),
])
def test_a_malformed_variants_block_names_the_file_and_the_key(params_dir, block, needle):
    path = params_dir / "profiles" / "smoke.yaml"
    _edit(path, variants=block)
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and needle in str(e.value)


def test_a_wrong_type_in_a_variant_block_names_the_block(params_dir):
    path = params_dir / "profiles" / "smoke.yaml"
    _edit(path, variants={"disjoint": {"train": {"lr": "fast"}}})
    with pytest.raises(ParamsError) as e:
        load_params("v3_contrastive", "smoke", overrides={"data.variant": "disjoint"}, params_dir=params_dir)
    assert "variants.disjoint" in str(e.value) and "train.lr" in str(e.value)


def test_variants_belong_in_profiles_only(params_dir):
    path = params_dir / "conditions" / "v3_mse.yaml"
    _edit(path, variants={"verbatim": {"train": {"max_steps": 3}}})
    with pytest.raises(ParamsError) as e:
        load_params("v3_mse", "smoke", params_dir=params_dir)
    assert str(path) in str(e.value) and "variants" in str(e.value)


def test_environment_yml_takes_its_dependencies_from_pyproject():
    """environment.yml cannot drift from pyproject.toml: it brings Python and pip, then installs the project."""
    import tomllib

    import yaml

    root = PARAMS_DIR.parent
    env = yaml.safe_load((root / "environment.yml").read_text())
    deps = env["dependencies"]
    pip = [d for d in deps if isinstance(d, dict)]
    assert sorted(d for d in deps if isinstance(d, str)) == ["pip", "python=3.11"]
    assert pip == [{"pip": ["-e .[test,lab]"]}]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert {"test", "lab"} <= set(project["optional-dependencies"])
    assert project["requires-python"] == ">=3.11"
