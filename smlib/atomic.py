"""Writing a file of the record whole or not at all: into a hidden temp file beside it, then one rename.

A write that fails (a full disk, a file-size limit) or is killed leaves the previous version of the file where it
was; the failure is one RecordWriteError naming the file (and, for a full disk, the space left). A killed writer's
temp file ('.<name>.<pid>.tmp') is removed by remove_stale_temps once that pid is gone.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP = re.compile(r"\..+\.(\d+)\.tmp")  # '.<name>.<pid>.tmp'
SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # the disk, a quota or a file-size limit is full


class RecordWriteError(OSError):
    """A file of the record could not be written; its previous version (if any) is unchanged."""


def temp_path(path: Path) -> Path:
    """The hidden temp file a write of path goes through: '.<name>.<pid>.tmp' in the same folder."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_error(path: Path, e: OSError) -> RecordWriteError:
    """One line naming the file that could not be written and why (with the space left on a full disk)."""
    why = e.strerror or type(e).__name__
    if e.errno in SPACE:
        try:
            free = shutil.disk_usage(path.parent).free
            why += f"; {_size(free)} free on its filesystem"
        except OSError:
            pass
    error = RecordWriteError(e.errno, f"could not write {path}: {why} (its previous version, if any, is kept)")
    error.filename = str(path)
    return error


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield the temp path to write instead of path; renamed over path when the block ends, removed if it fails."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, RecordWriteError):
            raise write_error(path, e) from None
        raise


def write_text(path: str | Path, text: str) -> Path:
    """path's content becomes text (UTF-8), whole or not at all."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def alive(pid: int) -> bool:
    """True while a process with this pid exists (a writer of a temp file, a study that owns kernels)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: alive
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Remove every temp file under folder whose writer (the pid in its name) is gone; return what was removed."""
    removed = []
    for path in Path(folder).rglob(".*.tmp") if Path(folder).is_dir() else ():
        m = TEMP.fullmatch(path.name)
        if m and int(m.group(1)) != os.getpid() and not alive(int(m.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class RunFolderError(RuntimeError):
    """A run folder holds something that does not belong to this run (or is unreadable)."""
