"""Executing one notebook: papermill into a hidden name, renamed into place; the kernel set up by smlib.kernel."""
from __future__ import annotations

import functools
import os
from pathlib import Path

from ..atomic import SPACE, RecordWriteError, write_error
from ..config import REPO_ROOT
from ..kernel import kernel_arguments
from ..record import partial_path

ROOT = REPO_ROOT
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "smlib"
DEFAULT_CELL_TIMEOUT = 7200  # seconds one notebook cell may run before its run is failed (--cell-timeout)


def check_kernel(name: str | None = None) -> None:
    """The Jupyter kernel every notebook of a study runs on (KERNEL) must be registered: one clear error before
    anything runs."""
    import sys

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from ..config import ParamsError

    name = name or KERNEL
    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise ParamsError(f"no Jupyter kernel named {name!r}, which the study's notebooks run on: register it with "
                          f"{sys.executable} -m ipykernel install --sys-prefix --name {name} "
                          "(make run and make test do this)") from None


def nb_path(path: Path) -> str:
    """A path as a notebook parameter: relative to notebooks/ (where the notebooks run) when it lies inside the
    repository, so an executed record names no machine's folders; absolute otherwise."""
    path = Path(path).resolve()
    try:
        path.relative_to(ROOT)
    except ValueError:
        return str(path)
    return os.path.relpath(path, NOTEBOOKS)


@functools.cache
def ipc_kernel_manager():
    """The kernel manager class of a study's kernels: ipykernel over IPC sockets in a private temporary folder
    (mode 0700, named by this process's pid and removed with the kernel), so no kernel listens on a TCP port and
    none warns that it runs over TCP without encryption. Built once, on first use (jupyter_client loads then)."""
    import shutil
    import tempfile

    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._ipc_dir = tempfile.mkdtemp(prefix=f"{IPC_PREFIX}{os.getpid()}-")
            self.transport = "ipc"
            self.ip = os.path.join(self._ipc_dir, "k")

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart)
            if not restart:
                shutil.rmtree(self._ipc_dir, ignore_errors=True)

    return IPCKernelManager


IPC_PREFIX = "smlib-kernel-"  # <tmp>/smlib-kernel-<pid of the study>-<random>/: one kernel's sockets


def remove_stale_ipc_folders() -> int:
    """Remove the socket folders of kernels whose study is gone (a killed study leaves them); how many."""
    import shutil
    import tempfile

    from ..atomic import alive

    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{IPC_PREFIX}*"):
        pid = folder.name[len(IPC_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def execute(notebook: str, out_path: Path, parameters: dict, log_output: bool = False,
            cell_timeout: int = DEFAULT_CELL_TIMEOUT, threads: int | None = None) -> None:
    """Run a source notebook with papermill into out_path (never over the source).

    A cell that runs past cell_timeout seconds fails the notebook (papermill raises), so a hung kernel
    becomes a failed run with a message instead of a stuck study. The kernel imports this process's smlib,
    uses `threads` threads (None: the libraries' default, all cores) and dies with this process
    (smlib.kernel).
    """
    import papermill as pm

    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(out_path)  # executed under a hidden name, renamed into place when it ends
    try:
        pm.execute_notebook(str(NOTEBOOKS / notebook), str(partial), parameters=parameters, kernel_name=KERNEL,
                            cwd=str(NOTEBOOKS), log_output=log_output, progress_bar=False,
                            execution_timeout=int(cell_timeout), extra_arguments=kernel_arguments(threads),
                            kernel_manager_class=ipc_kernel_manager())
    except BaseException as e:
        # a failed notebook is kept, it shows the failing cell; one cut short (a full disk) is dropped, and the
        # previous version stays; a killed one is never renamed
        if partial.exists() and _readable(partial) and not isinstance(e, KeyboardInterrupt):
            partial.replace(out_path)
            _echo_notes(out_path, log_output)
        else:
            partial.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in SPACE and not isinstance(e, RecordWriteError):
            raise write_error(out_path, e) from None
        raise
    partial.replace(out_path)
    _echo_notes(out_path, log_output)


def _readable(path: Path) -> bool:
    """True if path holds a whole notebook (JSON with its cells), not one cut short."""
    import json

    try:
        return isinstance(json.loads(path.read_text()).get("cells"), list)
    except (OSError, ValueError, AttributeError):
        return False


CONSOLE_NOTES = ("trunk cache ", "dataset ")  # what a kernel says on stderr that the console must show too (a rebuild)


def _echo_notes(path: Path, log_output: bool) -> None:
    """Print the executed notebook's stderr lines that start with a CONSOLE_NOTES prefix (log_output echoes them all)."""
    import json

    if log_output:
        return
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    for cell in cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                for line in "".join(out.get("text", "")).splitlines():
                    if line.startswith(CONSOLE_NOTES):
                        print(f"  {path.name}: {line}", flush=True)
