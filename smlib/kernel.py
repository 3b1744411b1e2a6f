"""What a study's notebook kernels run before their first cell: the runner's smlib, its thread count, and death
with the runner.

A Jupyter kernel runs in a process session of its own, so a `kill -9` of the study's process group misses it,
and ipykernel's own parent poller is a Python thread that cannot act while the kernel holds the GIL (a
600 MB `torch.save`). `install` arms Linux's parent-death signal: the kernel gets SIGKILL the moment the
process that started it dies, whatever it is doing. Elsewhere a watchdog thread polls the parent instead.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from .project import PACKAGE_ROOT

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_PR_SET_PDEATHSIG = 1


def startup_lines(threads: int | None = None, root: Path = PACKAGE_ROOT) -> list[str]:
    """The kernel's startup code (IPKernelApp.exec_lines): import smlib from root, then install() with this
    process's record layout (record.SEED_FOLDER), so a kernel walks the record the way its runner writes it.

    The folders this process imports from follow the kernel's own (runner_path), so a module a study's params
    name under `imports` (smlib.registrations) is found in the kernel wherever the runner found it."""
    from . import record

    return [f"import sys as _s; _s.path.insert(0, {str(root)!r}); "
            f"_s.path.extend(p for p in {runner_path()!r} if p not in _s.path); import smlib.kernel as _k; "
            f"_k.install({threads!r}, seed_folder={record.SEED_FOLDER!r}); del _s, _k"]


def runner_path() -> list[str]:
    """This process's import folders (sys.path; '' is the working folder), absolute, existing ones only."""
    folders = (os.getcwd() if not p else p for p in sys.path)
    return list(dict.fromkeys(str(Path(p).resolve()) for p in folders if Path(p).is_dir()))


def kernel_arguments(threads: int | None = None, root: Path = PACKAGE_ROOT) -> list[str]:
    """Extra command-line arguments of a study kernel (papermill/nbclient's extra_arguments)."""
    return [f"--IPKernelApp.exec_lines={line}" for line in startup_lines(threads, root)]


def install(threads: int | None = None, seed_folder: str | None = None) -> None:
    """In a kernel: die with the process that started it (JPY_PARENT_PID), use `threads` threads (None: as is)
    and the runner's seed-folder format (None: record.SEED_FOLDER as it is); trace its writes where the crash test
    asks (smlib.writetrace)."""
    from . import writetrace

    writetrace.install()
    if threads is not None:
        set_threads(threads)
    if seed_folder is not None:
        from . import record

        record.SEED_FOLDER = seed_folder
    parent = int(os.environ.get("JPY_PARENT_PID") or 0)
    if parent <= 1:
        return
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    else:
        threading.Thread(target=_watch, args=(parent,), name="smlib-parent-watchdog", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGKILL)


def set_threads(threads: int) -> None:
    """Intra-op threads of torch and of the BLAS libraries numpy and scikit-learn use."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
