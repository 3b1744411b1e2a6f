"""Checkpoints carry checksums.json: a changed, truncated or missing file is one CheckpointError naming the folder
and the file, in load_checkpoint and in load_sentence_transformer; an intact or older checkpoint still loads."""
from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import torch
from conftest import fast_params

from smlib.losses import build_loss
from smlib.models import CheckpointError, build_model, load_checkpoint, save_checkpoint
from smlib.models.card import write_card
from smlib.models.checkpoint import CHECKSUMS
from smlib.models.export import TASK, load_sentence_transformer, write_sentence_transformers

TEXTS = ["Hi! I'm a teacher from Denver who loves hiking.", "Python, SQL and ten years in finance.", "Nurse."]
WEIGHTS = "encoder/model.safetensors"
ATTENTION = "encoder.layer.0.attention.self.query.weight"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One projection_heads checkpoint (tiny encoder, every weight moved off its init): (model, folder)."""
    params = fast_params("projection_heads", train__device="cpu")
    model, loss = build_model(params), build_loss(params)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in list(model.parameters()) + list(loss.parameters()):
            p.add_(0.02 * torch.randn_like(p))
    return model, save_checkpoint(model, loss, params, tmp_path_factory.mktemp("integrity") / "ckpt")


@pytest.fixture
def folder(saved, tmp_path):
    """A fresh copy of the saved checkpoint, to damage."""
    return shutil.copytree(saved[1], tmp_path / "copy")


@pytest.fixture
def old_style(folder):
    """A copy as a checkpoint written before checksums.json existed."""
    (folder / CHECKSUMS).unlink()
    return folder


def _st(folder, **kwargs):
    return load_sentence_transformer(folder, device="cpu", local_files_only=True, **kwargs)


def _raises(load, folder, name: str) -> str:
    """load(folder) raises one CheckpointError naming the folder and the file; its message."""
    with pytest.raises(CheckpointError) as e:
        load(folder)
    message = str(e.value)
    assert str(folder) in message and name in message, message
    return message


def _flip_exponents(path, tensor: str, count: int) -> None:
    """XOR the top exponent bit of `count` fp32 weights of one tensor in place (the file keeps its size)."""
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    info = json.loads(data[8:8 + n])[tensor]
    assert info["dtype"] == "F32"
    start, end = (8 + n + o for o in info["data_offsets"])
    assert (end - start) // 4 >= count
    for i in range(count):
        data[start + 4 * i + 3] ^= 0x40  # little-endian fp32: byte 3 holds the sign and the exponent's top 7 bits
    size = path.stat().st_size
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def test_the_manifest_lists_every_file_the_loaders_read(saved):
    _, folder = saved
    files = json.loads((folder / CHECKSUMS).read_text())["files"]
    for name in (WEIGHTS, "encoder/config.json", "encoder/tokenizer.json", "heads.pt", "params.json", "modules.json",
                 "1_Pooling/config.json", "2_Dense/config.json", "2_Dense/model.safetensors",
                 "config_sentence_transformers.json", f"{TASK}/modules.json", f"{TASK}/{WEIGHTS}",
                 f"{TASK}/2_Dense/model.safetensors"):
        assert name in files, name
    assert all(len(digest) == 64 for digest in files.values())
    assert "README.md" not in files and CHECKSUMS not in files  # the card is rewritten by 03_evaluate: not listed
    assert not [p for p in folder.rglob(".*")]  # no temp file left behind


def _round_trips(model, folder) -> None:
    """smlib's loader and sentence-transformers both give the saved model's embeddings back."""
    loaded, _, _ = load_checkpoint(folder)
    assert torch.allclose(loaded.encode(TEXTS, "dating"), model.encode(TEXTS, "dating"), atol=1e-6)
    got = torch.from_numpy(_st(folder).encode(TEXTS, normalize_embeddings=True))
    assert torch.allclose(got, model.encode_prefix(TEXTS, "dating"), atol=1e-5)


def test_an_intact_checkpoint_round_trips(saved, folder):
    model, _ = saved
    _round_trips(model, folder)
    task = torch.from_numpy(_st(folder / TASK).encode(TEXTS, normalize_embeddings=True))
    assert torch.allclose(task, model.encode(TEXTS, "hiring"), atol=1e-5)


def test_rewriting_the_card_keeps_the_checkpoint_loadable(saved, folder):
    write_card(folder, {"metrics": {"prefix_d2h_top1": 0.5}})
    assert "0.500" in (folder / "README.md").read_text()
    load_checkpoint(folder)
    _st(folder / TASK)


def test_exporting_again_keeps_the_manifest_up_to_date(saved, folder):
    model, _ = saved
    before = json.loads((folder / CHECKSUMS).read_text())["files"]
    (folder / "2_Dense" / "config.json").write_text("{}")  # write_sentence_transformers rewrites what it owns
    write_sentence_transformers(model, folder)
    assert json.loads((folder / CHECKSUMS).read_text())["files"] == before
    load_checkpoint(folder)


def test_an_old_checkpoint_without_a_manifest_still_loads(saved, old_style):
    model, _ = saved
    _round_trips(model, old_style)


def test_flipped_exponents_in_the_encoder_weights_are_caught(folder):
    _flip_exponents(folder / WEIGHTS, ATTENTION, 10_000)
    message = _raises(load_checkpoint, folder, WEIGHTS)
    assert "checksum" in message
    _raises(_st, folder, WEIGHTS)
    _st(folder / TASK)  # copytree made task/'s encoder a copy of its own, still intact: it checks out
    _flip_exponents(folder / TASK / WEIGHTS, ATTENTION, 10_000)  # (in a saved folder it is a hard link to the same bytes)
    _raises(_st, folder / TASK, WEIGHTS)


def test_a_changed_dense_head_is_caught_by_the_task_folder_too(folder):
    path = folder / TASK / "2_Dense" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    _raises(_st, folder / TASK, "2_Dense/model.safetensors")
    _raises(load_checkpoint, folder, f"{TASK}/2_Dense/model.safetensors")


@pytest.mark.parametrize("manifest", [True, False])
def test_a_truncated_weights_file_is_one_checkpoint_error(folder, manifest):
    if not manifest:
        (folder / CHECKSUMS).unlink()
    path = folder / WEIGHTS
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _raises(load_checkpoint, folder, WEIGHTS)
    _raises(_st, folder, WEIGHTS)


@pytest.mark.parametrize("manifest", [True, False])
def test_a_missing_pooling_config_is_named(folder, manifest):
    if not manifest:
        (folder / CHECKSUMS).unlink()
    (folder / "1_Pooling" / "config.json").unlink()
    _raises(_st, folder, "1_Pooling/config.json")


@pytest.mark.parametrize("manifest", [True, False])
def test_a_broken_modules_json_is_named(folder, manifest):
    if not manifest:
        (folder / CHECKSUMS).unlink()
    (folder / "modules.json").write_text('[{"idx": 0, "name": "0", "path": "encoder"')
    _raises(_st, folder, "modules.json")


def test_modules_json_naming_a_missing_module_folder_is_named(old_style):
    modules = json.loads((old_style / "modules.json").read_text())
    modules[1]["path"] = "7_Nowhere"
    (old_style / "modules.json").write_text(json.dumps(modules))
    _raises(_st, old_style, "7_Nowhere")


def test_a_changed_heads_file_is_caught(folder):
    state = torch.load(folder / "heads.pt", weights_only=True)
    key = next(iter(state["model"]))
    state["model"][key] = state["model"][key] * 2
    torch.save(state, folder / "heads.pt")
    _raises(load_checkpoint, folder, "heads.pt")


def test_an_unreadable_heads_file_without_a_manifest_is_named(old_style):
    (old_style / "heads.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    _raises(load_checkpoint, old_style, "heads.pt")


def test_a_missing_listed_file_is_named(folder):
    (folder / "encoder" / "tokenizer.json").unlink()
    message = _raises(load_checkpoint, folder, "encoder/tokenizer.json")
    assert "missing" in message


def test_an_added_file_in_a_module_folder_is_named(folder):
    (folder / "encoder" / "added_tokens.json").write_text('{"zebra": 30522}')
    _raises(load_checkpoint, folder, "encoder/added_tokens.json")
    _raises(_st, folder, "encoder/added_tokens.json")


def test_a_corrupt_manifest_is_named(folder):
    (folder / CHECKSUMS).write_text("{not json")
    _raises(load_checkpoint, folder, CHECKSUMS)
    (folder / CHECKSUMS).write_text(json.dumps({"algorithm": "sha256", "complete": True, "files": {"../x": "0" * 64}}))
    _raises(_st, folder, CHECKSUMS)


def test_an_unfinished_save_is_named(saved, folder, monkeypatch):
    """A save that dies after its first file leaves a folder that refuses to load (not an old-style checkpoint)."""
    model, _ = saved
    params = fast_params("projection_heads", train__device="cpu")

    def die(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(model, build_loss(params), params, folder)
    message = _raises(load_checkpoint, folder, CHECKSUMS)
    assert "did not finish" in message
