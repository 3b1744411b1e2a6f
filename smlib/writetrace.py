"""The crash test's instrument: trace every file a study writes, and kill or fail the study at one of them.

Off unless the environment asks (the runner and every kernel it starts install it from there, smlib.kernel):
- SMLIB_WRITE_TRACE=<log>: each process appends one line per write to the log, '<pid>\t<op>\t<path>', op being
  'open' (a file opened for writing) or 'rename' (a file renamed into place: the path is where it lands).
- SMLIB_CRASH_AT=<path>: the study's process group (SMLIB_CRASH_PGID) gets SIGKILL right after the first write of
  that path (CRASH_DELAY seconds later, from a thread: the write has landed, no clean-up runs).
- SMLIB_FAIL_AT=<path>: the first write of that path fails with ENOSPC, as on a full disk.
Python's audit hooks see the writes (the 'open' and 'os.rename' events; os.replace raises the latter).
"""
from __future__ import annotations

import errno
import os
import signal
import sys
import threading

TRACE_ENV, CRASH_ENV, FAIL_ENV, PGID_ENV = "SMLIB_WRITE_TRACE", "SMLIB_CRASH_AT", "SMLIB_FAIL_AT", "SMLIB_CRASH_PGID"
CRASH_DELAY = 0.02  # seconds between the write and the kill
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_state = {"installed": False, "busy": False, "fired": False}


def wanted() -> bool:
    """True if the environment asks for tracing, a crash or a failure."""
    return any(os.environ.get(k) for k in (TRACE_ENV, CRASH_ENV, FAIL_ENV))


def install() -> None:
    """Add the audit hook to this process (once; a hook cannot be removed, so only where wanted() asks)."""
    if _state["installed"] or not wanted():
        return
    _state["installed"] = True
    sys.addaudithook(_hook)


def _written(event: str, args: tuple) -> tuple[str, str] | None:
    """('open' | 'rename', absolute path) if the event writes a file, else None."""
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        if not isinstance(path, (str, bytes, os.PathLike)) or isinstance(path, int):
            return None
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else bool((flags or 0) & WRITE_FLAGS)
        return ("open", os.path.abspath(os.fsdecode(path))) if writes else None
    if event == "os.rename" and len(args) >= 2 and isinstance(args[1], (str, bytes, os.PathLike)):
        return "rename", os.path.abspath(os.fsdecode(args[1]))
    return None


def _hook(event: str, args: tuple) -> None:
    if _state["busy"] or event not in ("open", "os.rename"):
        return
    written = _written(event, args)
    if written is None:
        return
    op, path = written
    _state["busy"] = True  # the log's own open must not be traced
    try:
        log = os.environ.get(TRACE_ENV)
        if log and os.path.abspath(log) != path:
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{os.getpid()}\t{op}\t{path}\n".encode())
            finally:
                os.close(fd)
    finally:
        _state["busy"] = False
    if _state["fired"]:
        return
    if path == os.environ.get(FAIL_ENV):
        _state["fired"] = True
        raise OSError(errno.ENOSPC, "No space left on device (injected by SMLIB_FAIL_AT)", path)
    if path == os.environ.get(CRASH_ENV):
        _state["fired"] = True
        threading.Timer(CRASH_DELAY, _kill).start()


def _kill() -> None:
    pgid = int(os.environ.get(PGID_ENV) or os.getpgid(0))
    os.killpg(pgid, signal.SIGKILL)
