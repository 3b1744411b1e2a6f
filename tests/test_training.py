"""The training loop: every condition trains, the loss falls on a fixed batch, schedule, determinism."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import LOSS_PARTS, REPORTED_PARTS, fast_params

import smlib.training as training
from smlib.config import conditions
from smlib.losses import build_loss
from smlib.models import build_model
from smlib.training import lr_lambda, plan_steps, train

CONDITIONS = conditions()  # every params/conditions/*.yaml

LOSS_COLUMNS = LOSS_PARTS
# v3_contrastive trains exactly as a user would (train builds the full model); the others get a model whose
# 30k x 384 word-embedding table is frozen: train() honours requires_grad and AdamW on that table is most of a
# CPU step's time.
FULL_MODEL_CONDITION = "v3_contrastive"


def _frozen_model(params):
    model = build_model(params)
    model.transformer.embeddings.word_embeddings.weight.requires_grad_(False)
    return model


@pytest.fixture(scope="module")
def runs(smoke_dataset):
    """condition -> (params, TrainResult, loss state at creation, loss state right after train)."""
    created = []
    real_build_loss = training.build_loss

    def recording_build_loss(params):
        loss = real_build_loss(params)
        created.append(copy.deepcopy(loss.state_dict()))
        return loss

    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "build_loss", recording_build_loss)
        for condition in CONDITIONS:
            params = fast_params(condition)
            model = None if condition == FULL_MODEL_CONDITION else _frozen_model(params)
            result = train(params, smoke_dataset, model=model, progress=False)
            out[condition] = (params, result, created[-1], copy.deepcopy(result.loss.state_dict()))
    return out


@pytest.mark.parametrize("condition", CONDITIONS)
def test_each_condition_trains_and_logs_its_loss_components(runs, condition):
    params, result, _, _ = runs[condition]
    h = result.history
    # one schedule of max_steps = 2 steps (dating, hiring): a single-domain condition takes only its own step
    expected_domains = [d for d in ("dating", "hiring") if d in params.train.domains]
    assert len(h) == len(expected_domains)
    assert list(h["step"]) == list(range(len(h)))
    loss_cols = {c for c in ("within", "cross", "adversarial", "total") if c in h.columns}
    assert loss_cols == LOSS_COLUMNS[condition]
    assert {"lr", "grad_norm", "domain", "seconds"} <= set(h.columns)
    for col in loss_cols:
        assert h[col].map(math.isfinite).all() and (h[col] >= 0).all()
    assert (h["grad_norm"] > 0).all()
    assert list(h["domain"]) == expected_domains
    if condition == "single_dating":
        assert set(h["domain"]) == {"dating"}
    if condition == "single_hiring":
        assert set(h["domain"]) == {"hiring"}
    assert not result.model.training  # train() leaves the model in eval mode
    assert result.seconds > 0


def test_training_changes_the_encoder(runs, smoke_dataset):
    params, result, _, _ = runs["v3_no_prefix"]
    fresh = build_model(params)
    texts = [smoke_dataset.text("dating", 0), smoke_dataset.text("hiring", 1)]
    assert not torch.allclose(fresh.encode(texts, "dating"), result.model.encode(texts, "dating"), atol=1e-4)


def test_domain_classifier_learns_during_adversarial_training(runs):
    _, result, before, after = runs["adversarial"]
    keys = [k for k in before if "classifier" in k]
    assert keys, "the adversarial loss has no classifier parameters"
    changed = [k for k in keys if not torch.equal(before[k], after[k])]
    assert changed == keys, f"classifier tensors that never moved: {sorted(set(keys) - set(changed))}"


def test_training_is_deterministic_for_a_seed(runs, smoke_dataset):
    params, first, _, _ = runs[FULL_MODEL_CONDITION]
    again = train(params, smoke_dataset, progress=False)
    for col in ("within", "cross", "total"):
        assert first.history[col].iloc[0] == again.history[col].iloc[0]  # identical first-step loss
        assert first.history[col].tolist() == pytest.approx(again.history[col].tolist(), rel=1e-5)


def test_history_lr_is_the_lr_each_step_used(runs):
    """Row s of the history must log the learning rate step s trained with (not the next step's)."""
    params, result, _, _ = runs[FULL_MODEL_CONDITION]
    total = params.train.max_steps
    factor = lr_lambda(total, params.train.warmup_fraction)
    expected = [params.train.lr * factor(s) for s in range(total)]
    assert result.history["lr"].tolist() == pytest.approx(expected)


def test_plan_steps_uses_the_longest_loader_and_max_steps(smoke_dataset):
    p = fast_params("v3_contrastive", train__max_steps=None, train__batch_size=8, train__epochs=3)
    per_epoch, total = plan_steps(p, smoke_dataset)
    assert per_epoch == max(len(smoke_dataset.triplets["train"]["dating"]), len(smoke_dataset.cross_pairs["train"])) // 8
    assert total == 3 * per_epoch
    assert plan_steps(fast_params("v3_contrastive", train__max_steps=2), smoke_dataset)[1] == 2


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = lr_lambda(100, 0.1)
    values = [f(s) for s in range(101)]
    assert values[0] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(values[:10], values[1:10], strict=False))  # linear warm-up
    assert values[9] == pytest.approx(1.0) and values[10] == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(values[10:], values[11:], strict=False))  # cosine decay
    assert values[55] == pytest.approx(0.5, abs=0.02)
    assert values[99] < 0.01 and values[100] == pytest.approx(0.0, abs=1e-12)
    assert max(values) <= 1.0 + 1e-12 and min(values) >= 0.0
    no_warmup = lr_lambda(10, 0.0)
    assert no_warmup(0) == pytest.approx(1.0)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_total_loss_falls_on_a_fixed_batch(runs, smoke_dataset, condition):
    params, result, _, _ = runs[condition]
    model, loss_fn = result.model, result.loss  # continue from the trained state with a fresh optimizer
    model.eval()  # no dropout: the same batch gives the same loss before each step
    model.transformer.embeddings.word_embeddings.weight.requires_grad_(False)  # speed (see _frozen_model)
    domain = params.train.domains[0]
    batch = training.Batch(domain, smoke_dataset.triplets["train"][domain][:4],
                           smoke_dataset.cross_pairs["train"][:4] if params.loss.cross_domain != "none" else None)
    trainable = [p for p in list(model.parameters()) + list(loss_fn.parameters()) if p.requires_grad]
    run = training.TrainingRun(model, loss_fn, training.Embedder(model, smoke_dataset),
                               torch.optim.AdamW(trainable, lr=1e-3), trainable, 0.0)
    losses = []
    for _ in range(5):  # the training loop's own step (training.train_step)
        parts, _ = training.train_step(run, batch, grad_clip=1e6)
        assert set(parts) == REPORTED_PARTS[condition]
        losses.append(float(parts["total"].detach()))
    assert losses[-1] < losses[0], losses


# ---------------------------------------------------------------- batches: no false negatives, same data per condition
def _people_of(dataset, triplet):
    return training.triplet_people(dataset)(triplet)


@pytest.mark.parametrize("batch_size", [4, 8])
def test_triplet_batches_never_repeat_a_person(hard_smoke_dataset, batch_size):
    """An anchor's own person or its positive must never be another item's positive or negative in the batch."""
    ds = hard_smoke_dataset
    params = fast_params("v3_contrastive", train__batch_size=batch_size, train__max_steps=60, train__epochs=50)
    n_checked = 0
    for domain, triplets, pairs in training.iter_batches(params, ds):
        people = [_people_of(ds, t) for t in triplets]
        assert sum(len(p) for p in people) == len(set().union(*people)), f"a person repeats in a {domain} batch"
        assert len({p[0] for p in pairs}) == len(pairs)
        n_checked += 1
    assert n_checked == 60


def test_hard_negative_clone_counts_as_its_source_person(hard_smoke_dataset):
    ds = hard_smoke_dataset
    record = ds.hard_negatives[0]
    triplet = next(t for t in ds.triplets["train"][record["domain"]] if t[2] == record["text_id"])
    assert _people_of(ds, triplet) == {triplet[0], triplet[1]} == {triplet[0], record["source_id"]}


def test_batcher_defers_conflicting_items_instead_of_dropping_them():
    """A conflicting item waits for a later batch of the same pass: nearly every item comes before any repeats."""
    import random

    items = [(i % 7, 100 + i) for i in range(70)]  # ten items per "person" i % 7
    batches = training._batches(items, 5, random.Random(0), key=lambda it: {it[0]})
    seen: set = set()
    while True:
        batch = next(batches)
        assert len({it[0] for it in batch}) == len(batch)  # no person twice in a batch
        if seen & set(batch):
            break
        seen |= set(batch)
    assert len(seen) >= 60, f"only {len(seen)} of 70 items were used before the pass repeated"


def _stream(condition, dataset, steps=12):
    params = fast_params(condition, train__batch_size=4, train__max_steps=steps)
    return list(training.iter_batches(params, dataset))


def test_every_condition_sees_the_same_batches_at_the_same_steps(smoke_dataset):
    shared = {c: _stream(c, smoke_dataset) for c in ("v3_contrastive", "v3_mse", "v3_no_prefix", "adversarial",
                                                     "projection_heads")}
    reference = shared["v3_contrastive"]
    assert [d for d, _, _ in reference] == ["dating", "hiring"] * 6
    for condition, stream in shared.items():
        assert [(d, t) for d, t, _ in stream] == [(d, t) for d, t, _ in reference], condition
    assert all(p is None for _, _, p in shared["v3_no_prefix"])
    assert [p for _, _, p in shared["v3_mse"]] == [p for _, _, p in reference]
    for single, domain in (("single_dating", "dating"), ("single_hiring", "hiring")):
        stream = _stream(single, smoke_dataset)
        assert len(stream) == 6, "a single-domain condition trains as many batches of its domain as the shared ones"
        assert [t for _, t, _ in stream] == [t for d, t, _ in reference if d == domain]


def test_plan_steps_counts_this_conditions_steps(smoke_dataset):
    assert plan_steps(fast_params("v3_contrastive", train__max_steps=5), smoke_dataset)[1] == 5
    assert plan_steps(fast_params("single_dating", train__max_steps=5), smoke_dataset)[1] == 3
    assert plan_steps(fast_params("single_hiring", train__max_steps=5), smoke_dataset)[1] == 2


# ---------------------------------------------------------------- heads learn at their own rate
def test_new_heads_get_their_own_learning_rate(smoke_dataset):
    params = fast_params("adversarial", train__lr=1e-5, train__head_lr=3e-3, train__warmup_fraction=0.0)
    model = _frozen_model(params)
    loss_fn = build_loss(params)
    groups = {g["name"]: g for g in training.param_groups(model, loss_fn, params.train)}
    assert groups["encoder"]["lr"] == 1e-5 and groups["heads"]["lr"] == 3e-3
    classifier = {id(p) for p in loss_fn.adversarial.parameters()}
    assert classifier <= {id(p) for p in groups["heads"]["params"]}
    assert not classifier & {id(p) for p in groups["encoder"]["params"]}
    heads = fast_params("projection_heads")
    m = _frozen_model(heads)
    names = {id(p) for p in training.param_groups(m, build_loss(heads), heads.train)[1]["params"]}
    assert {id(p) for p in m.identity_head.parameters()} <= names


def test_history_logs_the_domain_classifier_accuracy_and_head_lr(runs):
    params, result, _, _ = runs["adversarial"]
    h = result.history
    assert h["domain_accuracy"].between(0, 1).all()
    assert h["head_lr"].iloc[-1] > 0
    assert "domain_accuracy" not in runs["v3_contrastive"][1].history


def test_domain_classifier_learns_to_tell_domains_apart(smoke_dataset):
    """With its own lr (head_lr) the classifier leaves log 2 on fixed prefixes; at the encoder's 2e-5 it barely moves."""
    from smlib.losses import DomainAdversarialLoss

    torch.manual_seed(0)
    dating = torch.randn(32, 64) + 0.5
    hiring = torch.randn(32, 64) - 0.5
    emb = torch.cat([dating, hiring])
    labels = torch.cat([torch.zeros(32), torch.ones(32)])
    finals = {}
    for lr in (2e-5, 1e-3):
        torch.manual_seed(1)
        adv = DomainAdversarialLoss(64, 128, 1.0)
        opt = torch.optim.AdamW(adv.parameters(), lr=lr)
        for _ in range(50):
            loss = adv(emb, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        finals[lr] = float(loss.detach())
    assert finals[1e-3] < 0.5 * math.log(2) < finals[2e-5]


# ---------------------------------------------------------------- convergence is measured, not assumed
def test_validation_top1_is_logged_every_eval_every_steps(smoke_dataset):
    params = fast_params("v3_contrastive", train__max_steps=4, train__eval_every=2)
    h = train(params, smoke_dataset, model=_frozen_model(params), progress=False).history
    logged = h[h["val_top1"].notna()]
    assert list(logged["step"]) == [1, 3]
    for col in ("val_top1", "val_top1_d2h", "val_top1_h2d"):
        assert logged[col].between(0, 1).all()
    assert (logged["val_top1"] == (logged["val_top1_d2h"] + logged["val_top1_h2d"]) / 2).all()


def test_validation_top1_matches_the_evaluator(smoke_dataset):
    """The in-training check and 03_evaluate's metric agree for the same model."""
    from smlib.evaluation import evaluate

    params = fast_params("v3_contrastive", train__max_steps=2, train__eval_every=2)
    result = train(params, smoke_dataset, model=_frozen_model(params), progress=False)
    last = result.history.iloc[-1]
    metrics = evaluate(result.model, smoke_dataset, params)["metrics"]
    assert last["val_top1_d2h"] == pytest.approx(metrics["prefix_d2h_top1"])
    assert last["val_top1_h2d"] == pytest.approx(metrics["prefix_h2d_top1"])


def test_training_stops_at_a_target_top1(smoke_dataset):
    params = fast_params("v3_contrastive", train__max_steps=6, train__eval_every=1)
    result = train(params, smoke_dataset, model=_frozen_model(params), progress=False, target_top1=0.0)
    assert len(result.history) == 1 and result.stopped_early
