"""A trained model as a sentence-transformers folder, written without importing sentence-transformers.

The checkpoint folder itself is the sentence-transformers folder: `modules.json` at its root points at the
`encoder/` that `save_pretrained` already wrote (no second copy of the weights), then the model's own pooling
(`smlib.embeddings.mean_pool`, declared by `sentence_transformers_pooling`), then, for projection_heads, the
identity head as a Dense module with no activation. So

    SentenceTransformer(checkpoint, truncate_dim=K).encode(texts, normalize_embeddings=True)

gives `encode_prefix`'s vectors (the identity space) for every condition, and without truncate_dim the full
embedding of a Matryoshka condition. projection_heads' task embedding is a second folder, `task/` (its encoder
files are hard links to the same weights where the file system allows, copies otherwise).

The files follow the classic layout that sentence-transformers 2.x through 6.x reads (`sentence_bert_config.json`
with `max_seq_length`, the `pooling_mode_*` keys, `sentence_transformers.models.*` type names). A pooling adapter
(`trainable_layers: 0`, a residual MLP) has no sentence-transformers module: such a run gets no folder, and its
card says so.

The checkpoint's checksums.json lists these files too (task/ included). load_sentence_transformer verifies it and
the folder's layout (modules.json, each module's config) before sentence-transformers reads anything, so a changed,
truncated or missing file is one CheckpointError naming the folder and the file.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

from ..embeddings import sentence_transformers_pooling
from .checksums import RETRAIN, TASK, CheckpointError, check_safetensors, read_json, record_checksums, verify_checksums

ENCODER = "encoder"  # the save_pretrained folder inside a checkpoint: the Transformer module's path
FORMAT_VERSION = "3.0.0"  # the oldest sentence-transformers that reads every file written here (Dense safetensors)
WRITTEN = ("modules.json", "config_sentence_transformers.json", "1_Pooling", "2_Dense", TASK,
           f"{ENCODER}/sentence_bert_config.json")  # what write_sentence_transformers owns in a checkpoint


class ExportError(ValueError):
    """A model that has no sentence-transformers form."""


def unsupported_reason(trainable_layers) -> str | None:
    """Why a model trained with these train.trainable_layers has no sentence-transformers folder, or None."""
    if trainable_layers == 0:
        return ("trainable_layers 0 trains a residual pooling adapter (x + W2 gelu(W1 x)), which no "
                "sentence-transformers module computes; load it with smlib.models.load_checkpoint")
    return None


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # never write through a hard link into the other folder's file
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _module(idx: int, path: str, kind: str) -> dict:
    return {"idx": idx, "name": str(idx), "path": path, "type": f"sentence_transformers.models.{kind}"}


def _dense(linear: torch.nn.Linear, folder: Path) -> None:
    """A Dense module with no activation (sentence-transformers' default would be Tanh)."""
    folder.mkdir(parents=True, exist_ok=True)
    _json(folder / "config.json", {"in_features": linear.in_features, "out_features": linear.out_features,
                                   "bias": linear.bias is not None,
                                   "activation_function": "torch.nn.modules.linear.Identity"})
    state = {"linear.weight": linear.weight.detach().float().cpu().contiguous()}
    if linear.bias is not None:
        state["linear.bias"] = linear.bias.detach().float().cpu().contiguous()
    save_file(state, str(folder / "model.safetensors"))


def _layout(folder: Path, model, head: torch.nn.Linear | None, dims: list[int], space: str) -> None:
    """modules.json, pooling, the optional head and the config of one sentence-transformers folder whose
    Transformer module is folder/encoder."""
    hidden = model.transformer.config.hidden_size
    modules = [_module(0, ENCODER, "Transformer"), _module(1, "1_Pooling", "Pooling")]
    _json(folder / ENCODER / "sentence_bert_config.json", {"max_seq_length": model.max_length, "do_lower_case": False})
    _json(folder / "1_Pooling" / "config.json", sentence_transformers_pooling(hidden))  # the model's own pooling
    if head is not None:
        _dense(head, folder / "2_Dense")
        modules.append(_module(2, "2_Dense", "Dense"))
    _json(folder / "modules.json", modules)
    _json(folder / "config_sentence_transformers.json", {
        "__version__": {"sentence_transformers": FORMAT_VERSION, "transformers": transformers.__version__,
                        "pytorch": torch.__version__},
        "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine",
        # not read by sentence-transformers; what truncate_dim may be set to, and what the space is
        "matryoshka_dims": list(dims), "space": space})


def _link_tree(src: Path, dst: Path) -> None:
    """Every file of src in dst, hard-linked where possible (same weights, no second copy), else copied."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir():
            _link_tree(item, target)
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(item, target)
        except OSError:
            shutil.copy2(item, target)


def remove_sentence_transformers(folder: str | Path) -> None:
    """Drop what write_sentence_transformers wrote (a re-save starts clean), and its checksums.json entries."""
    folder = Path(folder)
    _remove(folder)
    record_checksums(folder, WRITTEN)


def _remove(folder: Path) -> None:
    for name in WRITTEN:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def write_sentence_transformers(model, folder: str | Path) -> list[Path]:
    """Make a checkpoint folder (whose encoder/ is already saved) loadable by SentenceTransformer.

    Returns the sentence-transformers folders written: [folder] for a Matryoshka model, [folder, folder/task]
    for projection_heads. Raises ExportError for a model with no sentence-transformers form. A complete
    checksums.json in the folder is brought up to date (save_checkpoint writes the whole of it afterwards).
    """
    folder = Path(folder)
    reason = unsupported_reason(model.trainable_layers)
    if reason is not None:
        raise ExportError(f"{folder}: no sentence-transformers folder: {reason}")
    if not (folder / ENCODER / "config.json").is_file():
        raise ExportError(f"{folder}: save the encoder first ({ENCODER}/config.json is missing)")
    _remove(folder)
    identity_head = getattr(model, "identity_head", None)
    if identity_head is None:  # the identity space is the prefix: truncate_dim = K
        _layout(folder, model, None, model.matryoshka_dims, f"Matryoshka: dims 0:{model.identity_dim} are the identity "
                                                            "space, the full width the task embedding")
        written = [folder]
    else:
        _layout(folder, model, identity_head, [model.identity_dim], "identity head (projection_heads)")
        task = folder / TASK
        _link_tree(folder / ENCODER, task / ENCODER)
        _layout(task, model, model.task_head, model.matryoshka_dims, "task head (projection_heads)")
        written = [folder, task]
    record_checksums(folder, WRITTEN)
    return written


def load_sentence_transformer(folder: str | Path, device: str | None = None, **kwargs):
    """SentenceTransformer(folder, device=device, **kwargs) for an exported checkpoint (or its task/ folder),
    once checksums.json (where there is one) and the folder's layout check out.

    A changed, truncated or missing file, a modules.json that does not parse or names a module folder that is
    not there, a module config that is missing or unreadable: one CheckpointError naming the folder and the file,
    before sentence-transformers reads anything. Nothing is fetched from the hub (local_files_only unless given).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder")
    verify_checksums(folder)
    for module in _modules(folder):
        _check_module(folder, module)
    kwargs.setdefault("local_files_only", True)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise CheckpointError(f"{folder}: loading it needs sentence-transformers: pip install -e '.[bench]' (the test "
                              "extra includes it)") from None

    try:
        return SentenceTransformer(str(folder), device=device, **kwargs)
    except Exception as e:  # noqa: BLE001 - whatever sentence-transformers raises, the folder is named
        raise CheckpointError(f"{folder}: sentence-transformers cannot load it ({type(e).__name__}: {e})") from e


def _modules(folder: Path) -> list[dict]:
    """modules.json's entries, each a sentence_transformers module whose path is a folder inside folder."""
    if not (folder / "modules.json").is_file() and (folder / "heads.pt").is_file():
        raise CheckpointError(f"{folder}: modules.json is missing: this checkpoint has no sentence-transformers form "
                              "(a pooling adapter?); load it with smlib.models.load_checkpoint")
    modules = read_json(folder, "modules.json")
    if not isinstance(modules, list) or not modules:
        raise CheckpointError(f"{folder}: modules.json is not a list of modules; {RETRAIN}")
    for module in modules:
        path = module.get("path") if isinstance(module, dict) else None
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(path, str) or not isinstance(kind, str) or not kind.startswith("sentence_transformers."):
            raise CheckpointError(f"{folder}: modules.json has an entry that is not a sentence_transformers module "
                                  f"({repr(module)[:200]}); {RETRAIN}")
        parts = Path(path).parts
        if Path(path).is_absolute() or ".." in parts or not (folder / path).is_dir():
            raise CheckpointError(f"{folder}: modules.json names the module folder {path!r}, which is not there; {RETRAIN}")
    return modules


def _check_module(folder: Path, module: dict) -> None:
    """The files sentence-transformers reads for one module are there and parse."""
    path, kind = module["path"], module["type"].rsplit(".", 1)[-1]
    sub = f"{path}/" if path else ""
    configs = {"Transformer": ["config.json"], "Pooling": ["config.json"], "Dense": ["config.json"]}.get(kind, [])
    configs += [name.name for name in (folder / path).glob("*.json") if name.name not in configs]
    for name in configs:
        if not isinstance(read_json(folder, f"{sub}{name}"), dict):
            raise CheckpointError(f"{folder}: {sub}{name} is not a JSON object; {RETRAIN}")
    if kind == "Dense" and not any((folder / path / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
        raise CheckpointError(f"{folder}: {sub}model.safetensors is missing; {RETRAIN}")
    check_safetensors(folder, path)
