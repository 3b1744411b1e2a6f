"""Model selection that never peeks: the dev slice, its third wording, augmented views, fewer phrasings, keep-best."""
from __future__ import annotations

import pytest
import torch
from conftest import assert_reveals_traits, fast_params

from smlib.audit import content_tokens, heldout_leaks
from smlib.baselines import select_pair_map, select_tfidf_map
from smlib.config import ParamsError, load_params
from smlib.data import build_dataset
from smlib.data.dataset import TRAINING_WORDING, dataset_id, read_dataset, write_dataset
from smlib.data.people import generate_people
from smlib.data.texts import DISJOINT_TEMPLATES, DISJOINT_VOCAB, render_dating_profile, render_hiring_resume, template_name
from smlib.data.wording.dev import DEV_TEMPLATES, DEV_VOCAB
from smlib.data.wording.heldout import HELDOUT_TEMPLATES, HELDOUT_VOCAB
from smlib.references import reference_rows
from smlib.selection import dev_refs, dev_rule
from smlib.training import Embedder, iter_batches, prefix_top1, train

RENDER = {"dating": render_dating_profile, "hiring": render_hiring_resume}
SMOKE_DEV = {"data.dev_fraction": 0.25, "data.n_people": 120}


def _phrases(vocab, domain):
    return [ph for attr in vocab[domain].values() for phrases in attr.values() for ph in phrases]


def _content_words(vocab, domain):
    """Content words of a wording: stop words and contraction stubs ('m', 't', 'll', 've') left out."""
    return {w for ph in _phrases(vocab, domain) for w in content_tokens(ph) if len(w) > 2}


def test_dev_wording_is_a_third_wording_new_to_training_and_test():
    test_words = _content_words(HELDOUT_VOCAB, "dating") | _content_words(HELDOUT_VOCAB, "hiring")
    for domain in ("dating", "hiring"):
        assert set(DEV_VOCAB[domain]) == set(DISJOINT_VOCAB[domain])
        for attr, values in DEV_VOCAB[domain].items():
            assert set(values) == set(DISJOINT_VOCAB[domain][attr]), attr
            assert all(len(set(phrases)) >= 2 for phrases in values.values()), attr
        others = _phrases(DISJOINT_VOCAB, domain) + _phrases(HELDOUT_VOCAB, domain)
        for ph in _phrases(DEV_VOCAB, domain):  # not a training or test phrase, none inside it or around it
            assert all(ph.lower() not in t.lower() and t.lower() not in ph.lower() for t in others), ph
        assert not _content_words(DEV_VOCAB, domain) & test_words, _content_words(DEV_VOCAB, domain) & test_words
        assert not set(DEV_TEMPLATES[domain]) & (set(DISJOINT_TEMPLATES[domain]) | set(HELDOUT_TEMPLATES[domain]))
    # no content word crosses the domains, in any of the three wordings
    tables = (DEV_VOCAB, DISJOINT_VOCAB, HELDOUT_VOCAB)
    dating = set().union(*(_content_words(t, "dating") for t in tables))
    hiring = set().union(*(_content_words(t, "hiring") for t in tables))
    assert not dating & hiring, dating & hiring


def test_dev_wording_reveals_the_traits_and_only_heldout_has_one():
    for p in generate_people(300, 5):
        for domain, render in RENDER.items():
            text = render(p, "heldout", seed=4, wording="dev")
            assert template_name(p, domain, "heldout", 4, wording="dev") in DEV_TEMPLATES[domain]
            assert_reveals_traits(p, text, DEV_VOCAB[domain])
            assert not any(ph.lower() in text.lower() for ph in _phrases(HELDOUT_VOCAB, domain))
            # disjoint and verbatim write the dev slice like the training people (the training-wording rule)
            for variant in ("disjoint", "verbatim"):
                assert render(p, variant, seed=4, wording="dev") == render(p, variant, seed=4)
    with pytest.raises(ValueError, match="unknown wording"):
        render_dating_profile(generate_people(1, 0)[0], "heldout", wording="tested")


@pytest.fixture(scope="module")
def heldout_dev():
    params = load_params("v3_contrastive", "smoke", overrides={**SMOKE_DEV, "data.variant": "heldout",
                                                               "data.hard_negative_fraction": 0.5})
    return params, build_dataset(params)


def test_the_dev_slice_is_never_trained_on_and_one_split_serves_every_run(heldout_dev):
    params, ds = heldout_dev
    train_ids, val, dev = set(ds.split["train"]), set(ds.split["val"]), set(ds.split["dev"])
    assert len(dev) == round((120 - 30) * 0.25) and not dev & train_ids and not dev & val
    assert train_ids | val | dev == set(range(120))
    sources = {r["text_id"]: r["source_id"] for r in ds.hard_negatives}
    for domain, triplets in ds.triplets["train"].items():
        for a, p, n, _ in triplets:
            assert {a, p, sources.get(n, n)} <= train_ids, (domain, a, p, n)
    assert {a for a, _, _ in ds.cross_pairs["train"]} <= train_ids
    trained_on = ds.training_texts()
    for domain in ds.texts:
        for pid in dev:
            assert ds.text(domain, pid) not in trained_on
            assert ds.text(domain, ds.views[TRAINING_WORDING][domain][pid]) not in trained_on
    assert heldout_leaks(trained_on) == []
    assert not any(ph.lower() in t.lower() for t in trained_on for d in ("dating", "hiring")
                   for ph in _phrases(DEV_VOCAB, d))
    # the same people form the dev slice for another variant and another condition (one split for every run)
    other = build_dataset(load_params("v3_mse", "smoke", overrides={**SMOKE_DEV, "data.variant": "disjoint"}))
    assert other.split == ds.split and TRAINING_WORDING not in other.views


def test_dev_people_are_written_per_rule(heldout_dev):
    params, ds = heldout_dev
    for pid in ds.split["dev"][:10]:
        person = ds.person(pid)
        for domain, render in RENDER.items():
            assert ds.text(domain, pid) == render(person, "heldout", params.seed, wording="dev")
            trained = ds.text(domain, ds.views[TRAINING_WORDING][domain][pid])
            assert trained == render(person, "heldout", params.seed)  # the training wording
    assert dev_rule(ds) == "leave-wording-out" and set(dev_refs(ds)) == {"dev_top1", "dev_top1_training_wording"}


def test_no_dev_slice_leaves_datasets_and_hashes_as_they_were():
    plain = load_params("v3_contrastive", "smoke")
    explicit = load_params("v3_contrastive", "smoke", overrides={"data.dev_fraction": 0.0, "train.keep": "last",
                                                                 "data.augment_views": 0, "data.train_phrasings": None})
    assert plain.hash() == explicit.hash() and dataset_id(plain) == dataset_id(explicit)
    assert "dev_fraction" not in plain.data_params()["data"]
    with_dev = load_params("v3_contrastive", "smoke", overrides={"data.dev_fraction": 0.1})
    assert with_dev.hash() != plain.hash() and dataset_id(with_dev) != dataset_id(plain)
    ds = build_dataset(plain)
    assert set(ds.split) == {"train", "val"} and ds.views == {} and dev_rule(ds) is None


@pytest.mark.parametrize("overrides, message", [
    ({"train.keep": "best_dev"}, "train.keep=best_dev needs"),
    ({"train.keep": "best_dev", "data.dev_fraction": 0.2, "train.eval_every": None}, "train.keep=best_dev needs"),
    ({"data.dev_fraction": 0.9}, "dev_fraction"),
    ({"data.dev_fraction": 0.01}, "people in the dev slice; it needs at least 3"),
    ({"train.keep": "best"}, "train.keep"),
    ({"data.augment_views": -1}, "augment_views"),
    ({"data.train_phrasings": 0}, "train_phrasings"),
])
def test_bad_selection_params_are_refused_by_name(overrides, message):
    with pytest.raises(ParamsError, match=message):
        load_params("v3_contrastive", "smoke", overrides=overrides)


def test_views_round_trip_and_augmented_batches_draw_from_them(tmp_path):
    params = load_params("v3_contrastive", "smoke", overrides={**SMOKE_DEV, "data.variant": "disjoint",
                                                               "data.augment_views": 2})
    ds = build_dataset(params)
    assert set(ds.views) == {"aug1", "aug2"}
    back = read_dataset(write_dataset(ds, tmp_path / "d"))
    assert back.views == ds.views and back.texts == ds.texts
    changed = 0
    for pid in ds.split["train"]:
        person = ds.person(pid)
        for domain in ("dating", "hiring"):
            for name in ("aug1", "aug2"):
                text = ds.text(domain, ds.views[name][domain][pid])
                assert_reveals_traits(person, text, DISJOINT_VOCAB[domain])  # another telling of the same traits
                changed += text != ds.text(domain, pid)
    assert changed > 0.9 * 4 * len(ds.split["train"])
    assert not set(ds.split["val"]) & set(ds.views["aug1"]["dating"])  # only training people are re-told
    options = {d: ds.augmented(d) for d in ("dating", "hiring")}
    seen = set()
    batches = list(zip(iter_batches(params, ds), range(20), strict=False))
    for batch, _ in batches:
        for a, *_ in batch.triplets:
            assert any(a in opts for opts in options[batch.domain].values())
        seen |= {a for a, _, _ in batch.pairs}
    assert seen - set(ds.split["train"])  # some pairs were drawn as an augmented view
    again = [b.pairs for b, _ in zip(iter_batches(params, ds), range(20), strict=False)]
    assert again == [b.pairs for b, _ in batches]  # the draw is seeded


def test_fewer_training_phrasings_use_only_the_first_phrases():
    params = load_params("v3_contrastive", "smoke", overrides={"data.variant": "disjoint", "data.train_phrasings": 1})
    ds = build_dataset(params)
    first = {d: {ph for attr in DISJOINT_VOCAB[d].values() for phrases in attr.values() for ph in phrases[:1]}
             for d in ("dating", "hiring")}
    later = {d: {ph for attr in DISJOINT_VOCAB[d].values() for phrases in attr.values() for ph in phrases[1:]}
             for d in ("dating", "hiring")}
    for pid in ds.split["train"]:
        for d in ("dating", "hiring"):
            text = ds.text(d, pid).lower()
            assert not any(ph.lower() in text for ph in later[d] if not any(ph.lower() in f.lower() for f in first[d]))
    full = build_dataset(load_params("v3_contrastive", "smoke", overrides={"data.variant": "disjoint"}))
    assert full.texts != ds.texts


def test_keep_best_dev_puts_back_the_best_checks_weights(heldout_dev):
    _, ds = heldout_dev
    params = fast_params("v3_contrastive", **{"data.variant": "heldout", "data.dev_fraction": 0.25,
                                              "data.n_people": 120, "data.hard_negative_fraction": 0.5,
                                              "train.max_steps": 6, "train.eval_every": 2, "train.lr": 3e-3,
                                              "train.keep": "best_dev"})
    result = train(params, ds, progress=False)
    sel = result.selection
    assert sel["rule"] == "leave-wording-out" and sel["keep"] == "best_dev" and len(sel["checks"]) == 3
    best = max(sel["checks"], key=lambda c: c["dev_top1"])
    assert sel["kept_step"] == best["step"] and sel["best_dev_top1"] == pytest.approx(best["dev_top1"], abs=1e-4)
    embedder = Embedder(result.model, ds)
    dating, hiring = dev_refs(ds)["dev_top1"]
    now = sum(prefix_top1(result.model, embedder, dating, hiring)) / 2
    assert now == pytest.approx(best["dev_top1"], abs=1e-4)  # the weights in hand are the best check's
    assert "dev_top1" in result.history and "dev_top1_training_wording" in result.history
    assert result.summary()["selection"]["kept_step"] == best["step"]


def test_reference_rows_choose_on_the_dev_slice(heldout_dev):
    params, ds = heldout_dev
    selection: dict = {}
    rows = reference_rows(ds, params, trained=True, selection=selection)
    assert {r["condition"] for r in rows} >= {"tfidf_trained_word", "tfidf_trained_char"}
    for name in ("tfidf_trained_word", "tfidf_trained_char"):
        assert selection[name]["chosen_on"] == "dev slice" and selection[name]["rule"] == "leave-wording-out"
        assert selection[name]["n_holdout"] == len(ds.split["dev"]) and selection[name]["n_fit"] == len(ds.split["train"])


def test_selection_on_dev_rows_scores_those_rows():
    x = torch.randn(60, 8, generator=torch.Generator().manual_seed(0)).numpy()
    kw = {"lrs": (3e-2,), "epochs": (30,), "out_dim": 4}
    _, aligned = select_pair_map(x, x.copy(), dev=(x[:10], x[:10]), **kw)  # the dev pairs match row for row
    _, shuffled = select_pair_map(x, x.copy(), dev=(x[:10], x[10:20]), **kw)  # they do not
    assert aligned["n_holdout"] == 10 and aligned["n_fit"] == 60 and aligned["chosen_on"] == "dev slice"
    assert aligned["holdout_top1"] > shuffled["holdout_top1"] + 0.3
    _, plain = select_pair_map(x, x.copy(), **kw)
    assert "chosen_on" not in plain and plain["n_fit"] + plain["n_holdout"] == 60  # the record as before dev slices
    texts = [f"person {i} likes item{i} a lot" for i in range(40)]
    _, _, rec = select_tfidf_map(texts, texts, "word", (1, 1), min_dfs=(1,), lrs=(1e-2,), epochs=(5,), out_dim=4,
                                 dev_texts=(["person x item0"], ["person y item0"]))
    assert rec["chosen_on"] == "dev slice" and rec["n_holdout"] == 1 and rec["n_fit"] == 40
