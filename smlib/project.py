"""Where the project folder is: params/, notebooks/ and README.md beside the smlib that runs."""
from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The project folder (params/, notebooks/, README.md): the checkout this smlib was imported from (an editable
    install or the source tree), else the nearest folder at or above the working directory holding params/ and
    notebooks/ (a `pip install .` of the project, run from its clone), else the package's parent folder (where
    params_root then names the problem)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "params").is_dir():
        return here
    cwd = Path.cwd().resolve()
    return next((f for f in (cwd, *cwd.parents) if (f / "params").is_dir() and (f / "notebooks").is_dir()), here)


REPO_ROOT = project_root()
