"""A checkpoint as a sentence-transformers folder, its model card, and the intended-use statement."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import fast_params
from sentence_transformers import SentenceTransformer

from smlib.evaluation import evaluate_run
from smlib.losses import build_loss
from smlib.models import build_model, load_checkpoint, save_checkpoint
from smlib.models.card import INTENDED_USE, write_card
from smlib.models.export import TASK, ExportError, write_sentence_transformers
from smlib.training import train

ROOT = Path(__file__).resolve().parents[1]
LONG = "Open-minded, curious and warm; I love hiking, jazz, cooking for friends and long talks about books. " * 6
TEXTS = ["Hi! I'm a teacher from Denver who loves hiking.", LONG, "Nurse.", "Python, SQL and ten years in finance."]


def _saved(tmp_path, condition: str, **overrides):
    """A smoke model (tiny encoder, fp32, max_length 16) with every weight moved off its init, saved."""
    params = fast_params(condition, **overrides)
    model, loss = build_model(params), build_loss(params)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model, params, save_checkpoint(model, loss, params, tmp_path / condition)


def _st(path, **kwargs) -> SentenceTransformer:
    return SentenceTransformer(str(path), device="cpu", local_files_only=True, **kwargs)


def test_the_long_text_is_truncated():
    params = fast_params("v3_contrastive")
    assert len(build_model(params).tokenizer(LONG)["input_ids"]) > 3 * params.model.max_length


@pytest.mark.parametrize("condition", ["v3_contrastive", "projection_heads"])
def test_sentence_transformers_gives_encode_prefix(tmp_path, condition):
    """SentenceTransformer(path, truncate_dim=K).encode(..., normalize_embeddings=True) == encode_prefix."""
    model, params, folder = _saved(tmp_path, condition)
    k = params.model.identity_dim
    st = _st(folder, truncate_dim=k)
    assert st.max_seq_length == params.model.max_length
    got = torch.from_numpy(st.encode(TEXTS, normalize_embeddings=True, batch_size=3))
    want = model.encode_prefix(TEXTS, "dating")
    assert got.shape == want.shape == (len(TEXTS), k)
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert config["similarity_fn_name"] == "cosine"
    modules = json.loads((folder / "modules.json").read_text())
    if condition == "projection_heads":  # the identity head is a Dense module with no activation (not Tanh)
        dense = json.loads((folder / "2_Dense" / "config.json").read_text())
        assert dense["activation_function"] == "torch.nn.modules.linear.Identity"
        assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Dense"]
        assert config["matryoshka_dims"] == [k]
    else:
        assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling"]
        assert config["matryoshka_dims"] == params.model.matryoshka_dims


@pytest.mark.parametrize("condition", ["v3_contrastive", "projection_heads"])
def test_the_task_embedding_loads_too(tmp_path, condition):
    """The full Matryoshka embedding (no truncate_dim), or projection_heads' task/ folder, == encode."""
    model, params, folder = _saved(tmp_path, condition)
    where = folder / TASK if condition == "projection_heads" else folder
    got = torch.from_numpy(_st(where).encode(TEXTS, normalize_embeddings=True))
    assert torch.allclose(got, model.encode(TEXTS, "hiring"), atol=1e-5)


def test_task_folder_shares_the_weights_and_never_writes_through_them(tmp_path):
    _, params, folder = _saved(tmp_path, "projection_heads")
    weights, linked = folder / "encoder" / "model.safetensors", folder / TASK / "encoder" / "model.safetensors"
    assert linked.read_bytes() == weights.read_bytes()
    assert json.loads((folder / "encoder" / "sentence_bert_config.json").read_text())["max_seq_length"] == 16
    # saving the same folder again (another run's params) leaves both consistent and drops the stale task/ folder
    model2, params2, _ = _saved(tmp_path, "projection_heads", model__max_length=24)
    assert json.loads((folder / TASK / "encoder" / "sentence_bert_config.json").read_text())["max_seq_length"] == 24
    assert json.loads((folder / "encoder" / "sentence_bert_config.json").read_text())["max_seq_length"] == 24
    params3 = fast_params("v3_contrastive")
    save_checkpoint(build_model(params3), build_loss(params3), params3, folder)
    assert not (folder / TASK).exists() and not (folder / "2_Dense").exists()
    assert load_checkpoint(folder)[2].hash() == params3.hash()


def test_a_pooling_adapter_gets_no_folder_and_a_card_that_says_why(tmp_path):
    model, params, folder = _saved(tmp_path, "v3_contrastive", train__trainable_layers=0)
    assert not (folder / "modules.json").exists()
    card = (folder / "README.md").read_text()
    assert "no sentence-transformers form" in card and "pooling adapter" in card and "load_checkpoint" in card
    with pytest.raises(ExportError, match="trainable_layers 0"):
        write_sentence_transformers(model, folder)
    assert load_checkpoint(folder, params)[2].hash() == params.hash()  # the smlib checkpoint is still whole


def test_the_card_at_save_time_and_after_evaluation(tmp_path, smoke_dataset):
    """Trained: what, how and the intended use; evaluated: the metrics with intervals and the reference rows."""
    params = fast_params("v3_contrastive")
    folder = tmp_path / "ckpt"
    train(params, smoke_dataset, progress=False, checkpoint_dir=folder)
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: sentence-transformers\n")
    for fact in ("v3_contrastive", params.hash(), f"truncate_dim={params.model.identity_dim}", "steps: 2",
                 "precision: fp32", "Not evaluated yet", INTENDED_USE, "## Params"):
        assert fact in card, fact
    training = json.loads((folder / "training.json").read_text())
    assert training["steps"] == 2 and training["dataset_id"] == smoke_dataset.manifest["dataset_id"]

    run = tmp_path / "out" / "v3_contrastive"  # a study run folder: references.json sits beside it
    run.mkdir(parents=True)
    refs = {"rows": [{"condition": "chance", "prefix_d2h_top1": 0.05, "prefix_h2d_top1": 0.05},
                     {"condition": "tfidf_trained_word", "prefix_d2h_top1": 0.875, "prefix_h2d_top1": 0.8125}]}
    (run.parent / "references.json").write_text(json.dumps(refs))
    model, _, _ = load_checkpoint(folder, params)
    _, record = evaluate_run(model, smoke_dataset, params, run, checkpoint_dir=folder)
    card = (folder / "README.md").read_text()
    m = record["metrics"]
    row = (f"| prefix top-1, dating → hiring | {m['prefix_d2h_top1']:.3f} "
           f"[{m['prefix_d2h_top1_ci_low']:.3f}, {m['prefix_d2h_top1_ci_high']:.3f}] |")
    assert row in card
    assert f"{m['triplet_acc_hiring']:.3f}" in card and f"{m[f'cka_debiased@{params.model.identity_dim}']:.3f}" in card
    assert "| tfidf_trained_word | 0.875 | 0.812 |" in card and "Not evaluated yet" not in card
    assert "steps: 2" in card  # the training facts survive the rewrite
    assert write_card(folder).read_text().count("Not evaluated yet") == 1  # no record: back to the save-time card
