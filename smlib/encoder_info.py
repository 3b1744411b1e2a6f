"""What a base encoder is (width, positions, layers), read from its config without loading its weights."""
from __future__ import annotations

import json
from pathlib import Path


def encoder_limits(base_model: str) -> tuple[int, int, int] | None:
    """(embedding width, max positions, layers) of a base model, read from its config without loading weights.

    'tiny' and 'bundled' are always known; a local folder with a config.json is read; anything else (a hub id
    that is not on disk) is unknown here (None) and is checked when the model loads.
    """
    if base_model == "tiny":
        from .models.encoder import TINY_CONFIG

        return TINY_CONFIG["hidden_size"], TINY_CONFIG["max_position_embeddings"], TINY_CONFIG["num_hidden_layers"]
    if base_model == "bundled":
        try:
            from .models.encoder import bundled_model_path

            path = bundled_model_path() / "config.json"
        except RuntimeError:
            return None  # not installed: loading says so, with the install command
    else:
        path = Path(base_model) / "config.json"
        if not path.is_file():
            try:  # a hub id already in the local cache (nothing is downloaded)
                from huggingface_hub import try_to_load_from_cache

                cached = try_to_load_from_cache(base_model, "config.json")
                path = Path(cached) if isinstance(cached, str) else path
            except Exception:  # noqa: BLE001 - not an id the cache knows: unknown here
                pass
    try:
        config = json.loads(path.read_text())
        return (int(config["hidden_size"]), int(config["max_position_embeddings"]),
                int(config.get("num_hidden_layers", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
