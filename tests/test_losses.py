"""Losses on random tensors: InfoNCE by hand, Matryoshka, prefix losses, gradient reversal, build_loss."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import LOSS_PARTS, REPORTED_PARTS

from smlib.config import conditions, load_params
from smlib.losses import (
    CombinedLoss,
    DomainAdversarialLoss,
    MatryoshkaInfoNCE,
    PrefixInfoNCE,
    PrefixMSE,
    build_loss,
    grad_reverse,
    info_nce,
)

CONDITIONS = conditions()  # every params/conditions/*.yaml


def _unit(rows):
    t = torch.tensor(rows, dtype=torch.float64)
    return t / t.norm(dim=1, keepdim=True)


def test_info_nce_matches_hand_computation():
    q = [[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]
    k = [[0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]]
    tau = 0.5
    expected = 0.0
    for i in range(3):
        sims = [sum(a * b for a, b in zip(q[i], k[j], strict=False)) / tau for j in range(3)]
        expected += -(sims[i] - math.log(sum(math.exp(s) for s in sims)))
    expected /= 3
    got = info_nce(torch.tensor(q, dtype=torch.float64), torch.tensor(k, dtype=torch.float64), tau)
    assert float(got) == pytest.approx(expected, rel=1e-10)


def test_info_nce_uses_extra_keys_as_negatives():
    torch.manual_seed(0)
    q, k = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    assert float(info_nce(q, k, 0.1)) > float(info_nce(q, k[:4], 0.1))  # more negatives -> higher loss


def test_info_nce_is_low_when_queries_match_keys():
    x = F.normalize(torch.eye(5), dim=1)
    assert float(info_nce(x, x, 0.05)) < 1e-6
    assert float(info_nce(x, x.roll(1, 0), 0.05)) > 10


@pytest.mark.parametrize("dim", [3, 8, 16])
def test_matryoshka_single_dim_equals_info_nce_on_cat_keys(dim):
    torch.manual_seed(1)
    a, p, n = torch.randn(5, 16), torch.randn(5, 16), torch.randn(5, 16)
    got = MatryoshkaInfoNCE([dim], 0.07)(a, p, n)
    keys = torch.cat([F.normalize(p[:, :dim], dim=1), F.normalize(n[:, :dim], dim=1)])
    logits = F.normalize(a[:, :dim], dim=1) @ keys.T / 0.07
    expected = F.cross_entropy(logits, torch.arange(5))
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_matryoshka_averages_over_dims():
    torch.manual_seed(2)
    a, p, n = torch.randn(4, 32), torch.randn(4, 32), torch.randn(4, 32)
    per_dim = [float(MatryoshkaInfoNCE([d], 0.1)(a, p, n)) for d in (4, 16, 32)]
    assert float(MatryoshkaInfoNCE([4, 16, 32], 0.1)(a, p, n)) == pytest.approx(sum(per_dim) / 3, rel=1e-5)


def test_matryoshka_only_sees_leading_dims():
    torch.manual_seed(3)
    a, p, n = torch.randn(4, 32), torch.randn(4, 32), torch.randn(4, 32)
    loss = MatryoshkaInfoNCE([8], 0.1)
    a2 = a.clone()
    a2[:, 8:] = torch.randn(4, 24)
    assert float(loss(a, p, n)) == pytest.approx(float(loss(a2, p, n)), rel=1e-6)


def test_prefix_info_nce_is_symmetric_and_prefix_only():
    torch.manual_seed(4)
    x, y = torch.randn(6, 32), torch.randn(6, 32)
    loss = PrefixInfoNCE(8, 0.07)
    assert float(loss(x, y)) == pytest.approx(float(loss(y, x)), rel=1e-6)
    one_way = F.cross_entropy(F.normalize(x[:, :8], dim=1) @ F.normalize(y[:, :8], dim=1).T / 0.07, torch.arange(6))
    other_way = F.cross_entropy(F.normalize(y[:, :8], dim=1) @ F.normalize(x[:, :8], dim=1).T / 0.07, torch.arange(6))
    assert float(loss(x, y)) == pytest.approx(0.5 * float(one_way + other_way), rel=1e-5)
    x2 = x.clone()
    x2[:, 8:] = 0.0
    assert float(loss(x2, y)) == pytest.approx(float(loss(x, y)), rel=1e-6)


def test_prefix_mse_is_the_mean_squared_distance_of_normalised_prefixes():
    """Summed over the K dims, averaged over pairs: 2 - 2 cos for unit vectors (F.mse_loss would divide by K too)."""
    torch.manual_seed(6)
    a, p = torch.randn(5, 48), torch.randn(5, 48)
    an, pn = F.normalize(a[:, :16], dim=1), F.normalize(p[:, :16], dim=1)
    expected = ((an - pn) ** 2).sum(dim=1).mean()
    assert float(PrefixMSE(16)(a, p)) == pytest.approx(float(expected), rel=1e-6)
    assert float(PrefixMSE(16)(a, p)) == pytest.approx(float((2 - 2 * (an * pn).sum(1)).mean()), rel=1e-5)


def test_prefix_mse_gradient_is_on_the_scale_of_the_within_domain_term():
    """The old MSE's gradient was ~250x weaker than the InfoNCE terms: v3_mse was v3_no_prefix in disguise."""
    torch.manual_seed(7)
    b, d = 16, 384
    task = [torch.randn(b, d, requires_grad=True) for _ in range(3)]
    within = MatryoshkaInfoNCE([32, 64, 128, 256, 384], 0.07)(*task)
    g_within = torch.autograd.grad(within, task[0])[0].norm()
    x, y = torch.randn(b, d, requires_grad=True), torch.randn(b, d)
    g_mse = torch.autograd.grad(PrefixMSE(64)(x, y), x)[0].norm()
    assert float(g_mse / g_within) > 0.05, float(g_mse / g_within)


def test_prefix_mse_zero_for_identical_and_positive_otherwise():
    torch.manual_seed(5)
    x = torch.randn(6, 32)
    loss = PrefixMSE(16)
    assert float(loss(x, x.clone())) == pytest.approx(0.0, abs=1e-12)
    assert float(loss(x, 3.0 * x)) == pytest.approx(0.0, abs=1e-10)  # compares normalised prefixes
    assert float(loss(x, torch.randn(6, 32))) > 0.01
    y = x.clone()
    y[:, 16:] = torch.randn(6, 16)
    assert float(loss(x, y)) == pytest.approx(0.0, abs=1e-12)  # only the prefix matters


def test_grad_reverse_is_identity_forward_and_negates_backward():
    x = torch.randn(3, 4, requires_grad=True)
    w = torch.randn(3, 4)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.allclose(x.grad, -0.5 * w)


@pytest.mark.parametrize("lam", [1.0, 0.3])
def test_adversarial_loss_reverses_the_encoder_gradient_only(lam):
    torch.manual_seed(6)
    encoder = torch.nn.Linear(10, 384)
    x = torch.randn(8, 10)
    labels = torch.tensor([0, 1] * 4)
    adv = DomainAdversarialLoss(64, 16, lam)

    adv(encoder(x), labels).backward()
    reversed_enc = encoder.weight.grad.clone()
    reversed_cls = [p.grad.clone() for p in adv.classifier.parameters()]
    encoder.zero_grad()
    adv.zero_grad()

    # The same classifier without reversal.
    logits = adv.classifier(F.normalize(encoder(x)[:, :64], dim=1)).squeeze(-1)
    F.binary_cross_entropy_with_logits(logits, labels.float()).backward()
    plain_enc = encoder.weight.grad.clone()
    plain_cls = [p.grad.clone() for p in adv.classifier.parameters()]

    assert plain_enc.abs().sum() > 0
    assert torch.allclose(reversed_enc, -lam * plain_enc, atol=1e-7)
    for r, p in zip(reversed_cls, plain_cls, strict=False):  # the classifier itself learns normally
        assert torch.allclose(r, p, atol=1e-7)


@torch.no_grad()
def test_adversarial_loss_slices_wide_input_to_input_dim():
    torch.manual_seed(7)
    adv = DomainAdversarialLoss(64, 128, 1.0)
    emb = torch.randn(10, 384)
    labels = torch.tensor([0] * 5 + [1] * 5)
    loss = adv(emb, labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    emb2 = emb.clone()
    emb2[:, 64:] = torch.randn(10, 320)
    assert float(adv(emb2, labels)) == pytest.approx(float(loss), rel=1e-6)
    assert float(adv(emb[:, :64], labels)) == pytest.approx(float(loss), rel=1e-6)


def test_adversarial_classifier_can_learn():
    """Trained on its own, the classifier separates two shifted clouds (so its parameters are real)."""
    torch.manual_seed(8)
    adv = DomainAdversarialLoss(8, 16, 1.0)
    emb = torch.cat([torch.randn(32, 8) + 2.0, torch.randn(32, 8) - 2.0])
    labels = torch.cat([torch.zeros(32), torch.ones(32)])
    opt = torch.optim.Adam(adv.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = adv(emb, labels)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


EXPECTED_PARTS = LOSS_PARTS
CROSS_TYPE = {"infonce": PrefixInfoNCE, "mse": PrefixMSE}  # loss.cross_domain -> the loss class it builds


@pytest.mark.parametrize("condition", CONDITIONS)
def test_build_loss_components(condition):
    params = load_params(condition, "smoke")
    loss = build_loss(params)
    assert isinstance(loss, CombinedLoss)
    assert isinstance(loss.within, MatryoshkaInfoNCE)
    assert loss.within.matryoshka_dims == params.model.matryoshka_dims
    if params.loss.cross_domain != "none":
        assert isinstance(loss.cross, CROSS_TYPE[params.loss.cross_domain])
    else:
        assert loss.cross is None
    assert (loss.adversarial is not None) == (params.model.architecture == "adversarial")
    if loss.adversarial is not None:
        assert loss.adversarial.input_dim == params.model.prefix_dim
        assert loss.adversarial.grl_lambda == params.loss.grl_lambda
        assert len(list(loss.parameters())) > 0  # the classifier is a submodule (reaches the optimizer)

    torch.manual_seed(9)
    b, d, k = 4, 384, 64
    task = [torch.randn(b, d, requires_grad=True) for _ in range(3)]
    cross = [torch.randn(b, k, requires_grad=True) for _ in range(2)]
    parts = loss(*task, *cross) if loss.cross is not None else loss(*task)
    assert set(parts) == REPORTED_PARTS[condition]
    w = {"within": params.loss.within_weight, "cross": params.loss.cross_weight,
         "adversarial": params.loss.adversarial_weight}
    total = sum(w[name] * float(v.detach()) for name, v in parts.items() if name in w)
    assert float(parts["total"].detach()) == pytest.approx(total, rel=1e-6)
    parts["total"].backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in task)
    if loss.cross is not None:
        assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in cross)


@torch.no_grad()
def test_combined_loss_weights_apply():
    torch.manual_seed(10)
    p = load_params("adversarial", "smoke", overrides={"loss.cross_weight": 2.0, "loss.adversarial_weight": 0.5,
                                                       "loss.within_weight": 0.25})
    parts = build_loss(p)(*(torch.randn(4, 384) for _ in range(3)), torch.randn(4, 64), torch.randn(4, 64))
    expected = 0.25 * parts["within"] + 2.0 * parts["cross"] + 0.5 * parts["adversarial"]
    assert float(parts["total"]) == pytest.approx(float(expected), rel=1e-6)


def test_projection_heads_cross_loss_uses_identity_head_dim():
    p = load_params("projection_heads", "smoke", overrides={"model.identity_head_dim": 24})
    loss = build_loss(p)
    assert loss.cross.prefix_dim == 24
    parts = loss(*(torch.randn(4, 384) for _ in range(3)), torch.randn(4, 24), torch.randn(4, 24))
    assert torch.isfinite(parts["total"])
