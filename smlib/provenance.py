"""What made a run: the smlib source, the git commit, the machine and the precision (train.json's "provenance").

The record's tables read it back (record_provenance): one precision across a table, or the table is refused, and
the smlib source(s) and machine(s) the runs came from are printed beside the numbers.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path

import pandas as pd

from .atomic import RunFolderError
from .project import PACKAGE_ROOT
from .registrations import source_hashes

PACKAGE = PACKAGE_ROOT / "smlib"
NOT_RECORDED = "not recorded"  # runs made before provenance was written


def source_hash() -> str:
    """SHA-256 (first 12 hex) of every .py file of the smlib package, paths and contents: two runs with the same
    value ran the same smlib code, whether or not it was committed."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> dict:
    """The checkout's HEAD commit, the last commit that changed smlib/ (the same for every run of one smlib, however
    many commits of runs and text came after it) and whether smlib/ differs from it (None outside a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "smlib_commit": None, "smlib_uncommitted_changes": None}
    status = _git("status", "--porcelain", "--", "smlib")
    return {"git_commit": commit, "smlib_commit": _git("log", "-1", "--format=%H", "--", "smlib") or None,
            "smlib_uncommitted_changes": None if status is None else bool(status)}


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The SIMD flags that decide the speed of fp32 and bf16 here (AVX2, AVX-512, AVX512-BF16, AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"


def run_provenance(device, imports=()) -> dict:
    """train.json's (and references.json's) "provenance": smlib source hash, git commits, torch, python, device,
    threads, CPU and flags; with imports (the params' `imports`), each module's source hash under "imports"."""
    import torch

    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    return {"smlib_source": source_hash(), **git_state(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(device), "device_name": name,
            "threads": torch.get_num_threads(), "cpu": cpu_model(), "cpu_flags": cpu_flags()} | \
        ({"imports": source_hashes(imports)} if imports else {})


def record_provenance(runs) -> pd.DataFrame:
    """One row per run of (variant, seed, name, train.json path): its precision and provenance fields."""
    rows = []
    for variant, seed, name, path in runs:
        try:
            saved = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RunFolderError(f"{path} is unreadable or corrupted ({e})") from None
        prov = saved.get("provenance") or {}
        rows.append({"variant": variant, "seed": seed, "run": name, "precision": saved.get("precision") or NOT_RECORDED,
                     "smlib_source": prov.get("smlib_source", NOT_RECORDED),
                     "smlib_commit": prov.get("smlib_commit") or prov.get("git_commit"),
                     "machine": f"{prov['cpu']} ({prov['cpu_flags']})" if "cpu" in prov else NOT_RECORDED,
                     "accelerator": prov.get("device_name") if str(prov.get("device", "cpu")) != "cpu" else None,
                     "imports": ", ".join(f"{m} `{h}`" for m, h in prov["imports"].items()) if prov.get("imports")
                     else None})
    return pd.DataFrame(rows, columns=["variant", "seed", "run", "precision", "smlib_source", "smlib_commit",
                                       "machine", "accelerator", "imports"])


def check_one_precision(frame: pd.DataFrame, where) -> None:
    """Refuse a record whose runs trained in more than one precision (one table cannot mix them)."""
    counts = frame["precision"].value_counts()
    if len(counts) > 1:
        detail = "; ".join(f"{p}: {n} runs, e.g. {_example(frame, p)}" for p, n in counts.items())
        raise RunFolderError(f"{where}: the runs trained in more than one precision ({detail}); one table cannot "
                             "mix them: rerun the odd ones with one --set train.precision, or into another --out")


def _example(frame: pd.DataFrame, precision: str) -> str:
    row = frame[frame["precision"] == precision].iloc[0]
    return f"{row['variant']}/seed{row['seed']}/{row['run']}"


def provenance_markdown(frame: pd.DataFrame) -> str:
    """One paragraph: the precision, and which smlib source (and commit) and machine made how many runs."""
    if frame.empty:
        return ""

    def counted(column: str) -> str:
        return "; ".join(f"{value} ({n} run{'s' if n > 1 else ''})" for value, n in frame[column].value_counts().items())

    parts = []
    for src, runs in frame.groupby("smlib_source", sort=False):
        commits = runs["smlib_commit"].dropna().unique()
        made = f" (commit {', '.join(str(c)[:10] for c in commits)})" if len(commits) else ""
        parts.append(f"`{src}`{made}: {len(runs)} run{'s' if len(runs) > 1 else ''}")
    source_text, one = "; ".join(parts), len(parts) == 1
    # a CUDA run names its GPU; a CPU run's machine is its device (counted skips the runs without one)
    accelerators = f"; accelerator {counted('accelerator')}" if frame["accelerator"].notna().any() else ""
    # a study's own modules (the params' imports) with their source hashes: an edited module shows a second hash
    imported = f"; imported modules {counted('imports')}" if frame["imports"].notna().any() else ""
    return (f"\nProvenance ({len(frame)} trained runs, from each run's train.json): precision {counted('precision')}; "
            f"smlib source {'(one for every run) ' if one else '(**more than one**) '}{source_text}; "
            f"machine {counted('machine')}{accelerators}{imported}.\n")


def runtime_info() -> dict:
    """Where this process's smlib comes from and how many threads torch uses (recorded with every run)."""
    import torch

    # the commit only of a checkout (not of an installed copy inside some other repository)
    commit = _git("rev-parse", "HEAD") if (PACKAGE_ROOT / ".git").exists() else None
    return {"threads": torch.get_num_threads(), "smlib_root": str(PACKAGE_ROOT), "smlib_commit": commit or None}


if __name__ == "__main__":  # print this checkout's provenance
    print(json.dumps(run_provenance("cpu"), indent=2))
