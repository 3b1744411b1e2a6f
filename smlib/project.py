"""Where the project folder is: params/, notebooks/ and README.md beside the smlib that runs."""
from __future__ import annotations

import os
from pathlib import Path

from .params_yaml import ParamsError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds this smlib


def project_root() -> Path:
    """The project folder (params/, notebooks/, README.md): the checkout this smlib was imported from (an editable
    install or the source tree), else the nearest folder at or above the working directory holding params/ and
    notebooks/ (a `pip install .` of the project, run from its clone), else the package's parent folder (where
    params_root then names the problem)."""
    here = PACKAGE_ROOT
    if (here / "params").is_dir():
        return here
    cwd = Path.cwd().resolve()
    return next((f for f in (cwd, *cwd.parents) if (f / "params").is_dir() and (f / "notebooks").is_dir()), here)


REPO_ROOT = project_root()
PARAMS_DIR = REPO_ROOT / "params"
PARAMS_ENV = "SMLIB_PARAMS_DIR"  # another params folder for every load (and the notebooks a study runs)


def params_root(params_dir: str | Path | None = None) -> Path:
    """The params folder: params_dir if given, else $SMLIB_PARAMS_DIR, else the repository's params/."""
    root = Path(params_dir or os.environ.get(PARAMS_ENV) or PARAMS_DIR)
    if not root.is_dir():
        where = ("" if params_dir or os.environ.get(PARAMS_ENV) else
                 " (smlib is installed outside its project folder: run it from a clone of the repository, or set "
                 f"{PARAMS_ENV})")
        raise ParamsError(f"no params folder at {root}{where}")
    return root
