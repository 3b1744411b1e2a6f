"""A checkpoint folder's checksums.json: written last, verified before anything is read.

checksums.json holds the SHA-256 of every file of the folder but the model cards (README.md: 03_evaluate
rewrites them and no loader reads them). A folder without one (saved before it existed) loads unverified; one
whose save did not finish refuses to load. smlib.models.checkpoint saves and loads through it, and
smlib.models.export re-records the sentence-transformers files it writes.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path, PurePosixPath

from ..atomic import sha256

TASK = "task"  # projection_heads: the task embedding's folder inside a checkpoint (smlib.models.export)
CHECKSUMS = "checksums.json"  # {"algorithm": "sha256", "complete": bool, "files": {relative path: sha256}}
UNLISTED = ("README.md",)  # the model cards: rewritten after the save (03_evaluate), read by no loader
READ_AT_TOP = ("params.json", "heads.pt", "modules.json", "config_sentence_transformers.json",
               "sentence_bert_config.json")  # top-level files a loader reads: never accepted unlisted
RETRAIN = "retrain this run or restore the file"


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, incomplete, changed since it was saved, or was made with other params."""


def write_checksums(folder: str | Path, complete: bool = True) -> Path:
    """checksums.json listing every file of the folder but the cards and hidden files (complete=False: an empty
    one marking a save in progress), written whole or not at all (a temp file, then os.replace)."""
    folder = Path(folder)
    files = _hashes(folder, _files(folder)) if complete else {}
    return _write_manifest(folder, {"algorithm": "sha256", "complete": complete, "files": files})


def record_checksums(folder: str | Path, names) -> None:
    """Re-record the files at or under the given relative paths (files or folders) in a complete checksums.json,
    the other entries kept as they are; a folder without one, or mid-save, is left alone."""
    folder = Path(folder)
    if not (folder / CHECKSUMS).is_file():
        return
    manifest = _read_manifest(folder, folder)
    if not manifest["complete"]:
        return
    prefixes = tuple(f"{n}/" for n in names)
    kept = {k: v for k, v in manifest["files"].items() if k not in names and not k.startswith(prefixes)}
    fresh = [rel for rel in _files(folder) if rel in names or rel.startswith(prefixes)]
    _write_manifest(folder, {**manifest, "files": {**kept, **_hashes(folder, fresh)}})


def verify_checksums(folder: str | Path) -> bool:
    """Raise one CheckpointError naming the folder and the files if a file checksums.json lists is missing or
    changed, or an unlisted file sits where a loader reads. The manifest is folder's own or, for a task/ folder,
    its checkpoint's (then only the files under task/ are checked). False if there is none (an older checkpoint)."""
    folder = Path(folder)
    root, scope = folder, ""
    if not (folder / CHECKSUMS).exists() and folder.name == TASK and (folder.parent / CHECKSUMS).exists():
        root, scope = folder.parent, f"{TASK}/"
    if not (root / CHECKSUMS).exists():
        return False
    where = CHECKSUMS if root == folder else f"../{CHECKSUMS}"
    manifest = _read_manifest(root, folder)
    if not manifest["complete"]:
        raise CheckpointError(f"{folder}: {CHECKSUMS} says the save into this folder did not finish; retrain this run")
    listed = {k[len(scope):]: v for k, v in manifest["files"].items() if k.startswith(scope)}
    missing = [name for name in listed if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(f"{folder}: {_names(missing)} {'is' if len(missing) == 1 else 'are'} listed in {where} "
                              f"but missing; {RETRAIN}")
    actual = _hashes(folder, listed)
    changed = [name for name, digest in listed.items() if actual[name] != digest]
    if changed:
        raise CheckpointError(f"{folder}: {_names(changed)} {'does' if len(changed) == 1 else 'do'} not match "
                              f"{'its checksum' if len(changed) == 1 else 'their checksums'} in {where} (changed or "
                              f"corrupted since the checkpoint was saved); {RETRAIN}")
    added = [rel for rel in _files(folder) if rel not in listed and ("/" in rel or rel in READ_AT_TOP)]
    if added:
        raise CheckpointError(f"{folder}: {_names(added)} {'is' if len(added) == 1 else 'are'} not listed in {where} "
                              "(added since the checkpoint was saved, and a loader would read it); remove it or retrain")
    return True


def read_json(folder: Path, name: str):
    """folder/name parsed, or one CheckpointError naming the folder and the file (missing or unreadable)."""
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{folder}: {name} is missing; {RETRAIN}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{folder}: {name} is unreadable ({e}); {RETRAIN}") from None


def check_safetensors(folder: Path, sub: str) -> None:
    """Raise one CheckpointError if a .safetensors file in folder/sub is shorter or longer than its header says
    (a truncated copy), without reading the weights."""
    for path in sorted((folder / sub).glob("*.safetensors")):
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else None
            try:
                header = json.loads(f.read(n)) if n is not None and 8 + n <= size else None
                end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                end = None
        if end is None or 8 + n + end != size:
            expected = "" if end is None else f", its header describes {8 + n + end}"
            name = path.relative_to(folder).as_posix()
            raise CheckpointError(f"{folder}: {name} is truncated or corrupted ({size} bytes{expected}); {RETRAIN}")


def _files(folder: Path) -> list[str]:
    """Every file under folder as a relative posix path, but checksums.json, the cards and hidden ones."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.as_posix() != CHECKSUMS and rel.name not in UNLISTED and \
                not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return out


def _hashes(folder: Path, names) -> dict[str, str]:
    """{name: sha256}, each file read once however many hard links name it."""
    seen: dict[tuple, str] = {}
    out = {}
    for name in names:
        st = os.stat(folder / name)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in seen:
            seen[key] = sha256(folder / name)
        out[name] = seen[key]
    return out


def _write_manifest(folder: Path, manifest: dict) -> Path:
    tmp = folder / f".{CHECKSUMS}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / CHECKSUMS)
    return folder / CHECKSUMS


def _read_manifest(root: Path, folder: Path) -> dict:
    """checksums.json of root, checked for shape: safe relative paths and 64-hex digests only."""
    where = CHECKSUMS if root == folder else f"../{CHECKSUMS}"
    try:
        manifest = json.loads((root / CHECKSUMS).read_text())
        files = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(manifest.get("complete"), bool) or \
                not isinstance(files, dict):
            raise ValueError("not a sha256 manifest")
        for name, digest in files.items():
            parts = PurePosixPath(name).parts
            if not parts or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts) or \
                    name == CHECKSUMS or name != "/".join(parts):
                raise ValueError(f"{name!r} is not a path inside the folder")
            if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
                raise ValueError(f"{name!r} has no SHA-256")
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise CheckpointError(f"{folder}: {where} is unreadable or corrupted ({e}); {RETRAIN}") from None
    return manifest


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
