"""Models: one shared encoder with a Matryoshka prefix or separate projection heads."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .encoder import bundled_model_path, load_encoder, load_tokenizer
from .shared import (
                     ProjectionHeadsModel,
                     SharedEmbeddingModel,
                     autocast,
                     build_model,
                     cpu_has_native_bf16,
                     pick_device,
                     resolve_precision,
)

__all__ = ["CheckpointError", "ProjectionHeadsModel", "SharedEmbeddingModel", "autocast", "build_model",
           "bundled_model_path", "cpu_has_native_bf16", "load_checkpoint", "load_encoder", "load_tokenizer", "pick_device",
           "resolve_precision", "save_checkpoint"]
