"""Cached trunk states: the frozen lower stack of the encoder runs once per distinct text of a dataset.

With `train.trainable_layers` N, the embeddings and the lower L - N blocks never change, so their
output for a text is the same at every step, in every condition and for every lr. It is computed
once, stored under a git-ignored folder keyed by (encoder weights, cut layer, max_length, dataset),
and each training step only runs the top N blocks over the stored states.

The file is written atomically (a temp file named with its writer's host and pid, then a rename) and
carries one SHA-256 over everything that is read back: the key, the index (each text's first row and
token count) and the states. A file that does not load, holds another key, an index that does not fit
its states, or fails its checksum is rebuilt, never used. Temp files whose writer is gone (a killed
study) are removed the next time a cache is opened; one whose writer still runs is left alone.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from .atomic import alive
from .domains import DOMAINS
from .models.packed import PACK_TEXTS, embed_packed, embed_states, span_rows
from .training import Embedder, plain_embedder

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "cache" / "trunk"
CACHE_ENV = "SMLIB_CACHE_DIR"  # another cache root (its trunk/ folder is used), e.g. a cold one for --reproduce


def default_root() -> Path:
    """Where trunk caches live: $SMLIB_CACHE_DIR/trunk when set (read at each call), else DEFAULT_ROOT."""
    other = os.environ.get(CACHE_ENV)
    return Path(other) / "trunk" if other else DEFAULT_ROOT


FORMAT = 2  # 2: the checksum covers key, index and states (1 covered the states only)


class TrunkCache:
    """Trunk states of every text of a dataset, looked up by (domain, text id): one (T_i, H) tensor each."""

    def __init__(self, key: dict, index: dict[tuple[str, int], tuple[int, int]], states: torch.Tensor):
        self.key = key
        self.index = index  # (domain, text id) -> (first row, token count) in states
        self.states = states  # (total tokens, H) float32

    def get(self, refs) -> list[torch.Tensor]:
        """The states of each (domain, text id), as views into the stored tensor."""
        out = []
        for ref in refs:
            start, length = self.index[(ref[0], int(ref[1]))]
            out.append(self.states[start:start + length])  # (T_i, H)
        return out

    def gather(self, refs) -> tuple[torch.Tensor, torch.Tensor]:
        """The states of each (domain, text id) packed text after text: ((N_tokens, H), lengths (C,)), one gather."""
        spans = torch.tensor([self.index[(ref[0], int(ref[1]))] for ref in refs], dtype=torch.long).view(-1, 2)
        lengths = spans[:, 1]
        return self.states.index_select(0, span_rows(spans[:, 0], lengths)), lengths

    def __len__(self) -> int:
        return len(self.index)


def _checksum(key: dict, index_rows: list, states: torch.Tensor) -> str:
    """SHA-256 of everything a cache file holds that is read back: the key, the index rows and the states."""
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode())
    h.update(json.dumps(index_rows).encode())
    h.update(f"{states.dtype}{tuple(states.shape)}".encode())
    h.update(states.contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _index_rows(index: dict) -> list[list]:
    return [[d, int(i), int(s), int(n)] for (d, i), (s, n) in index.items()]


def encoder_fingerprint(model) -> str:
    """SHA-256 (16 hex) of the frozen part's weights (embeddings + blocks below the cut) and the tokenizer's vocab size."""
    from .models.shared import encoder_layers

    h = hashlib.sha256(f"{type(model.transformer).__name__}/{model.tokenizer.vocab_size}".encode())
    modules = [model.transformer.embeddings, *encoder_layers(model.transformer)[: model.cut_layer]]
    for m in modules:
        for name, t in sorted(m.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().float().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def texts_hash(dataset) -> str:
    """SHA-256 (16 hex) of every text of the dataset with its domain and id."""
    h = hashlib.sha256()
    for domain in DOMAINS:
        for text_id, text in sorted(dataset.texts[domain].items()):
            h.update(f"{domain}\t{text_id}\t{text}\n".encode())
    return h.hexdigest()[:16]


def cache_key(model, dataset) -> dict:
    """What the cached states depend on: encoder weights below the cut, the cut, max_length, the dataset's texts."""
    return {"format": FORMAT, "encoder": encoder_fingerprint(model), "cut_layer": model.cut_layer,
            "max_length": model.max_length, "dataset_id": dataset.manifest.get("dataset_id"),
            "texts": texts_hash(dataset)}


def cache_path(key: dict, root: str | Path | None = None) -> Path:
    """root/<dataset id>_cut<L>_<hash of the key>.pt"""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(root if root is not None else default_root())
    return root / f"{key.get('dataset_id') or 'dataset'}_cut{key['cut_layer']}_{digest}.pt"


def read_cache(path: str | Path, key: dict) -> TrunkCache | None:
    """The cache at path if it loads, holds this key and passes its checksum; None otherwise (the reason is printed)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        stored_key, rows, states = blob["key"], blob["index"], blob["states"]
        ok = stored_key == key and _checksum(stored_key, rows, states) == blob["sha256"]
        index = {(d, int(i)): (int(s), int(n)) for d, i, s, n in rows}
        ok = ok and all(0 <= s and 0 < n and s + n <= len(states) for s, n in index.values())
    except Exception as e:  # noqa: BLE001 - any unreadable file is rebuilt
        print(f"trunk cache {path.name} is unreadable ({type(e).__name__}); rebuilding", file=sys.stderr)
        return None
    if not ok:
        print(f"trunk cache {path.name} is stale or corrupted (key or checksum differs); rebuilding", file=sys.stderr)
        return None
    return TrunkCache(key, index, states)


@torch.no_grad()
def build_cache(model, dataset, batch_size: int = 32, progress: bool = True) -> TrunkCache:
    """Run the frozen lower stack once over every text of the dataset (length-sorted batches)."""
    refs = [(domain, text_id) for domain in DOMAINS for text_id in sorted(dataset.texts[domain])]
    tokens = model.tokenize([dataset.text(d, i) for d, i in refs])
    order = sorted(range(len(refs)), key=lambda k: len(tokens[k]))
    pieces: list[torch.Tensor] = []
    index: dict[tuple[str, int], tuple[int, int]] = {}
    offset = 0
    bar = tqdm(range(0, len(order), batch_size), desc=f"trunk cache (layers 0..{model.cut_layer})", file=sys.stdout,
               disable=not progress, mininterval=1.0 if sys.stdout.isatty() else 10.0, ascii=not sys.stdout.isatty())
    for start in bar:
        idx = order[start:start + batch_size]
        batch = model.tokenizer.pad({"input_ids": [tokens[k] for k in idx]}, return_tensors="pt").to(model.device)
        hidden = model.trunk_states(batch["input_ids"], batch["attention_mask"]).cpu()  # (C, T, H)
        for row, k in enumerate(idx):
            n = len(tokens[k])
            pieces.append(hidden[row, :n].clone())  # (T_k, H)
            index[refs[k]] = (offset, n)
            offset += n
    return TrunkCache(cache_key(model, dataset), index, torch.cat(pieces))


def write_cache(cache: TrunkCache, path: str | Path) -> Path:
    """Write atomically: a temp file in the same folder, then an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.tmp")
    rows = _index_rows(cache.index)
    blob = {"key": cache.key, "index": rows, "states": cache.states,
            "sha256": _checksum(cache.key, rows, cache.states)}
    try:
        torch.save(blob, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host"
_TEMP = re.compile(r"^\..+\.pt\.(?:(?P<host>[A-Za-z0-9-]+)\.)?(?P<pid>[0-9]+)\.tmp$")


def remove_orphaned_temp_files(root: str | Path | None = None) -> list[Path]:
    """Delete temp files under root that a writer on this host left when it was killed (its pid is not alive);
    one whose writer still runs, or that another host wrote (a shared cache folder), is kept. Returns the removed."""
    removed = []
    root = Path(root if root is not None else default_root())
    if not root.is_dir():
        return removed
    for tmp in root.glob(".*.tmp"):
        m = _TEMP.match(tmp.name)
        if m is None or (m["host"] is not None and m["host"] != _HOST) or alive(int(m["pid"])):
            continue
        try:
            tmp.unlink()
            removed.append(tmp)
            print(f"trunk cache: removed {tmp.name}, left by a writer that is gone", file=sys.stderr)
        except FileNotFoundError:  # another study removed it first
            pass
    return removed


def load_or_build_cache(model, dataset, root: str | Path | None = None, progress: bool = True) -> TrunkCache:
    """The dataset's trunk states for this model's cut: read if a valid cache exists, else built and written."""
    if not model.cached_trunk:
        raise ValueError("the trunk cache needs train.trainable_layers other than 'all'")
    remove_orphaned_temp_files(root)  # both resolve root None to default_root()
    key = cache_key(model, dataset)
    path = cache_path(key, root)
    cache = read_cache(path, key)
    if cache is None:
        cache = build_cache(model, dataset, progress=progress)
        write_cache(cache, path)
    return cache


class CachedEmbedder(Embedder):
    """The fast path's embedder: a step's texts from their cached trunk states, the trainable top blocks on packed
    tokens (smlib.models.packed). packed False runs transformers' own blocks over padded chunks instead, and
    fast_dropout False draws torch's dropout masks: the bench measures the step without each change that way."""

    packed = True
    fast_dropout = True
    pack_texts = PACK_TEXTS

    def __init__(self, model, dataset, cache: TrunkCache):
        super().__init__(model, dataset)
        self.cache = cache

    def pooled(self, distinct: list[tuple[str, int]]) -> torch.Tensor:
        tokens, lengths = self.cache.gather(distinct)
        if self.packed:
            return embed_packed(self.model, tokens, lengths, self.fast_dropout, self.pack_texts)  # (U, H)
        return embed_states(self.model, list(torch.split(tokens, torch.as_tensor(lengths).tolist())))  # (U, H)


def cached_embedder(root: str | Path | None = None):
    """The fast path's embedder factory for smlib.training.train / setup_training: for a model whose lower layers
    are frozen (train.trainable_layers other than 'all'), its trunk cache under root (default_root(); built on
    first use) read by a CachedEmbedder; for any other model, the plain forward."""
    def make(model, dataset, progress: bool = True) -> Embedder:
        if not model.cached_trunk:
            return plain_embedder(model, dataset, progress)
        return CachedEmbedder(model, dataset, load_or_build_cache(model, dataset, root, progress))

    return make
