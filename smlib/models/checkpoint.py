"""Checkpoints: the encoder via save_pretrained (plain transformers can load it), heads and params beside it.

The same folder is a sentence-transformers folder (smlib.models.export) with a model card (smlib.models.card).
checksums.json, written last, holds the SHA-256 of every file but the cards (README.md: 03_evaluate rewrites them
and no loader reads them); load_checkpoint and load_sentence_transformer verify it before reading anything. A
folder without one (saved before it existed) loads unverified; one whose save did not finish refuses to load.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from ..params_schema import params_from_dict
from .card import TRAINING, write_card
from .checksums import (  # noqa: F401 - the checksum names are part of this module's API
    CHECKSUMS,
    RETRAIN,
    CheckpointError,
    check_safetensors,
    read_json,
    record_checksums,
    verify_checksums,
    write_checksums,
)
from .export import remove_sentence_transformers, unsupported_reason, write_sentence_transformers


def save_checkpoint(model, loss, params, folder: str | Path, training: dict | None = None) -> Path:
    """Write encoder/ (save_pretrained), heads.pt (everything else that trains), params.json, training.json (if
    given: steps, seconds, precision), the sentence-transformers files (where the model has that form), the
    model card and, last, checksums.json (until then it marks the save as unfinished)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_checksums(folder, complete=False)  # a save that dies midway leaves a folder that refuses to load
    (folder / TRAINING).unlink(missing_ok=True)  # a re-save never keeps an older run's training summary
    model.transformer.save_pretrained(folder / "encoder")
    model.tokenizer.save_pretrained(folder / "encoder")
    heads = {k: v for k, v in model.state_dict().items() if not k.startswith("transformer.")}
    torch.save({"model": heads, "loss": loss.state_dict()}, folder / "heads.pt")
    (folder / "params.json").write_text(json.dumps(params.to_dict(), indent=2, sort_keys=True))
    if training is not None:
        (folder / TRAINING).write_text(json.dumps(training, indent=2))
    if unsupported_reason(model.trainable_layers) is None:
        write_sentence_transformers(model, folder)
    else:
        remove_sentence_transformers(folder)
    write_card(folder)
    write_checksums(folder)
    return folder


def load_checkpoint(folder: str | Path, params=None, device: str | None = None):
    """(model, loss, params) from a checkpoint; if params are given they must match the saved ones.

    Every file checksums.json lists is verified first; any failure to read the folder is one CheckpointError
    naming the folder and the file."""
    from ..losses import build_loss
    from .shared import build_model

    folder = Path(folder)
    verify_checksums(folder)
    for name in ("params.json", "heads.pt", "encoder/config.json"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder}: not a checkpoint ({name} is missing)")
    for path in sorted((folder / "encoder").glob("*.json")):
        read_json(folder, f"encoder/{path.name}")
    check_safetensors(folder, "encoder")
    try:
        saved = params_from_dict(json.loads((folder / "params.json").read_text()))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{folder}/params.json is unreadable: {e}") from None
    if params is not None and params.hash() != saved.hash():
        diff = _diff(params.to_dict(), saved.to_dict())
        raise CheckpointError(f"{folder} was trained with other params (hash {saved.hash()} != {params.hash()}): {diff}")
    overrides = {"model": {**saved.to_dict()["model"], "base_model": str(folder / "encoder")}}
    if device is not None:
        overrides["train"] = {**saved.to_dict()["train"], "device": device}
    run_params = saved.model_copy(update={k: type(getattr(saved, k))(**v) for k, v in overrides.items()})
    try:
        model = build_model(run_params)
    except Exception as e:  # noqa: BLE001 - whatever transformers or safetensors raise, the folder is named
        raise CheckpointError(f"{folder}: encoder/ does not load ({type(e).__name__}: {e}); {RETRAIN}") from e
    loss = build_loss(run_params).to(model.device)
    try:
        state = torch.load(folder / "heads.pt", map_location=model.device, weights_only=True)
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
        fits = not unexpected and all(k.startswith("transformer.") for k in missing)
        if fits:
            loss.load_state_dict(state["loss"])
    except Exception as e:  # noqa: BLE001 - an unpickling, key or shape error: the file is named either way
        detail = "not a weights-only torch.save file" if isinstance(e, pickle.UnpicklingError) else str(e).split("\n")[0]
        raise CheckpointError(f"{folder}: heads.pt does not load ({type(e).__name__}: {detail}); {RETRAIN}") from e
    if not fits:
        raise CheckpointError(f"{folder}/heads.pt does not fit the model: missing={missing}, unexpected={unexpected}")
    return model, loss, saved


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: requested {va!r}, saved {vb!r}")
    return out
