"""The training loop: every condition trains, the loss falls on a fixed batch, schedule, determinism."""
from __future__ import annotations

import copy
import math

import pytest
import torch

import smlib.training as training
from smlib.config import CONDITIONS
from smlib.losses import build_loss
from smlib.models import build_model
from smlib.training import lr_lambda, plan_steps, train

from conftest import LOSS_PARTS, fast_params

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


def test_loss_columns_cover_every_condition():
    assert set(LOSS_COLUMNS) == set(CONDITIONS)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_each_condition_trains_and_logs_its_loss_components(runs, condition):
    params, result, _, _ = runs[condition]
    h = result.history
    assert len(h) == params.train.max_steps == 2
    assert list(h["step"]) == [0, 1]
    loss_cols = {c for c in ("within", "cross", "adversarial", "total") if c in h.columns}
    assert loss_cols == LOSS_COLUMNS[condition]
    assert {"lr", "grad_norm", "domain", "seconds"} <= set(h.columns)
    for col in loss_cols:
        assert h[col].map(math.isfinite).all() and (h[col] >= 0).all()
    assert (h["grad_norm"] > 0).all()
    expected_domains = [params.train.domains[s % len(params.train.domains)] for s in range(2)]
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
    assert all(b > a for a, b in zip(values[:10], values[1:10]))  # linear warm-up
    assert values[9] == pytest.approx(1.0) and values[10] == pytest.approx(1.0)
    assert all(b <= a for a, b in zip(values[10:], values[11:]))  # cosine decay
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
    triplets = smoke_dataset.triplets["train"][domain][:4]
    pairs = smoke_dataset.cross_pairs["train"][:4]
    use_cross = params.loss.cross_domain != "none"
    texts = [smoke_dataset.text(domain, t[i]) for i in range(3) for t in triplets]
    if use_cross:
        texts += [smoke_dataset.text("dating", p[0]) for p in pairs] + [smoke_dataset.text("hiring", p[1]) for p in pairs]
    trainable = [p for p in list(model.parameters()) + list(loss_fn.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    losses = []
    for _ in range(5):
        pooled = model.embed(texts)  # (12 [+ 8], H)
        task = model.task_embedding(pooled[:12])  # (12, D)
        cross = model.identity_embedding(pooled[12:]).split(4) if use_cross else ()
        parts = loss_fn(task[:4], task[4:8], task[8:12], *cross)
        assert set(parts) == LOSS_COLUMNS[condition]
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        losses.append(float(parts["total"].detach()))
    assert losses[-1] < losses[0], losses
