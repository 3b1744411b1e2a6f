"""Table 2 of the bench (--time-to-accuracy): wall seconds of v3_contrastive training on disjoint text until
validation prefix top-1 (mean of both directions) first reaches the target, per smlib setting at its best lr.

The check stops on validation people, so this is an oracle-stopped speed measure, not a result. Each try
(setting, lr) can be stored as its own JSON file (--tta-dir) and is then reused by a later invocation with the
same conditions: full fine-tuning's hour-long tries run one lr per invocation, across sessions. The original's
way (docs/design.md#defaults) and sentence-transformers get derived rows (their s/step x the steps full
fine-tuning needed); a setting that never reaches the target within the cap gives a lower bound.
"""
from __future__ import annotations

import json
from pathlib import Path

from .config import load_params
from .data import load_or_build
from .provenance import cpu_flags, cpu_model
from .training import train
from .trunk_cache import cached_embedder

ROOT = Path(__file__).resolve().parent.parent
# learning-rate sweeps (at most 3 values each, around the rates measured when the quick profile was sized)
LR_SWEEP = {"smlib all": (2e-4,), "smlib top2": (3e-4, 6e-4), "smlib top1": (1e-3,), "smlib top0": (1e-3,)}
SMLIB_SETTINGS = {"smlib all": "all", "smlib top2": 2, "smlib top1": 1, "smlib top0": 0}  # name -> trainable_layers


def bench_params(trainable_layers, precision: str, lr: float | None = None, **overrides):
    """v3_contrastive on the bench's data (quick profile unless overridden), one setting's layers and precision."""
    base = {"data.variant": "disjoint", "train.trainable_layers": trainable_layers, "train.precision": precision,
            "train.max_steps": None}
    if lr is not None:
        base["train.lr"] = lr
        if trainable_layers == 0:
            base["train.head_lr"] = lr  # only the adapter trains: its rate is the one swept
    profile = overrides.pop("profile", "quick")
    return load_params("v3_contrastive", profile, overrides={**base, **overrides})


def _try(name: str, layers, lr: float, target: float, cap_seconds: float, eval_every: int, warmup_fraction: float,
         cache_root: Path, data_root: Path, overrides: dict) -> dict:
    """One (setting, lr) try: train until validation top-1 reaches target or cap_seconds of steps pass."""
    p = bench_params(layers, "auto", lr, **{**overrides, "train.eval_every": eval_every,
                                            "train.warmup_fraction": warmup_fraction})
    dataset, _ = load_or_build(p, data_root)
    r = train(p, dataset, progress=True, embedder=cached_embedder(cache_root), target_top1=target,
              max_seconds=cap_seconds)
    h = r.history
    checked = h[h["val_top1"].notna()]
    hit = checked[checked["val_top1"] >= target]
    return {"setting": name, "lr": lr, "precision": r.model.precision, "cpu": cpu_model(), "cpu_flags": cpu_flags(),
            "reached": not hit.empty, "seconds": float(hit["train_seconds"].iloc[0]) if not hit.empty else None,
            "steps": int(hit["step"].iloc[0]) + 1 if not hit.empty else None,
            "best_top1": float(checked["val_top1"].max()), "steps_run": len(h),
            "train_seconds_run": float(h["train_seconds"].iloc[-1]), "cache_s": r.cache_seconds,
            "curve": checked[["step", "train_seconds", "val_top1"]].round(4).values.tolist()}


def try_path(store: Path, name: str, lr: float) -> Path:
    """Where a stored try lives: one JSON file per (setting, lr)."""
    return Path(store) / f"{name.replace(' ', '_')}_lr{lr:g}.json"


def _stored(store: Path, name: str, conditions: dict) -> dict[float, dict]:
    """The stored tries of one setting made under these conditions, by lr."""
    found = {}
    for path in sorted(Path(store).glob(f"{name.replace(' ', '_')}_lr*.json")):
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: a stored time-to-accuracy try that does not read back ({e}); move it away") from None
        if _applies(saved.get("conditions") or {}, conditions, saved.get("row") or {}) and \
                saved.get("row", {}).get("setting") == name:
            found[float(saved["row"]["lr"])] = saved["row"]
    return found


def _applies(saved: dict, wanted: dict, row: dict) -> bool:
    """Whether a stored try answers a try under `wanted`: the same target, checks, warm-up and params, and a cap
    that would not have changed it: it reached the target within the wanted cap, or it never reached it and ran
    at least as long as the wanted cap allows (its own cap, or its schedule ended first)."""
    if {k: v for k, v in saved.items() if k != "cap_seconds"} != {k: v for k, v in wanted.items() if k != "cap_seconds"}:
        return False
    cap, own_cap = wanted.get("cap_seconds"), saved.get("cap_seconds")
    if row.get("reached"):
        return row.get("seconds") is not None and row["seconds"] <= cap
    ran = row.get("train_seconds_run", 0.0)
    return own_cap is not None and (own_cap >= cap or ran < own_cap <= cap)


def time_to_accuracy(step_table: dict, target: float = 0.8, cap_seconds: float = 600.0, eval_every: int = 10,
                     cache_root: Path = ROOT / "cache" / "trunk", data_root: Path = ROOT / "data", include=None,
                     lr_sweep: dict | None = None, warmup_fraction: float = 0.02, store: Path | None = None,
                     run_missing: bool = True, **overrides) -> dict:
    """Table 2: training seconds until validation prefix top-1 first reaches target, per setting at its best lr.

    Every try plans the same schedule (the profile's epochs; short warm-up, then cosine), so a setting's
    seconds to the target do not depend on how many steps the cap would have allowed it. With store, each try
    is written there and a stored try made under the same conditions (target, checks, warm-up, params overrides,
    and a cap that would not have changed it: _applies) is read instead of rerun; run_missing False only reads (a
    setting with no stored try is left out).
    """
    lr_sweep = lr_sweep or LR_SWEEP
    conditions = {"target": target, "cap_seconds": cap_seconds, "eval_every": eval_every,
                  "warmup_fraction": warmup_fraction, "overrides": {k: v for k, v in sorted(overrides.items())}}
    rows, tries = [], []
    for name, layers in SMLIB_SETTINGS.items():
        if include and name not in include:
            continue
        done = []
        stored = _stored(store, name, conditions) if store is not None else {}
        for lr in sorted(set(lr_sweep[name]) | set(stored)):
            path = try_path(store, name, lr) if store is not None else None
            if lr in stored:
                row = stored[lr]
                print(f"  {name} lr {lr:g}: read from {path}", flush=True)
            elif run_missing:
                row = _try(name, layers, lr, target, cap_seconds, eval_every, warmup_fraction, cache_root, data_root,
                           overrides)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps({"conditions": conditions, "row": row}, indent=2))
            else:
                continue
            tries.append(row)
            done.append(lr)
            print(f"  {name} lr {lr:g}: " + (f"top-1 {target} after {row['steps']} steps, {row['seconds']:.0f} s"
                                             if row["reached"] else
                                             f"best top-1 {row['best_top1']:.2f} in {row['train_seconds_run']:.0f} s (cap)"),
                  flush=True)
        mine = [t for t in tries if t["setting"] == name]
        if mine:
            best = mine[0]
            for row in mine[1:]:
                best = row if _better(row, best) else best
            rows.append({**best, "derived": False, "lrs_tried": done})
    full = next((r for r in rows if r["setting"] == "smlib all"), None)
    per_step = {r["setting"]: r["median_s"] for r in step_table["rows"]}
    for name in ("original", "sentence-transformers"):
        if name in per_step and full is not None and full["reached"]:
            rows.insert(0, {"setting": name, "lr": full["lr"], "precision": "fp32", "reached": True,
                            "seconds": per_step[name] * full["steps"], "steps": full["steps"], "derived": True,
                            "lrs_tried": [], "best_top1": None, "cache_s": 0.0})
    for row in rows:
        row["ratio"] = speedup_over_full(row, full, cap_seconds)
    return {**conditions, "rows": rows, "tries": tries}


def speedup_over_full(row: dict, full: dict | None, cap_seconds: float) -> str | None:
    """How many times sooner than full fine-tuning a row reached the target, cache read included: 'x12.3', or a
    lower bound '>x8.1' when full fine-tuning never reached it within the cap; None without both."""
    if full is None or not row["reached"] or row["setting"] == "smlib all" or row.get("derived"):
        return None
    t = row["seconds"] + row.get("cache_s", 0.0)
    if full["reached"]:
        return f"x{(full['seconds'] + full.get('cache_s', 0.0)) / t:.1f}"
    return f">x{full['train_seconds_run'] / t:.1f}"


def _better(a: dict, b: dict) -> bool:
    if a["reached"] != b["reached"]:
        return a["reached"]
    if a["reached"]:
        return a["seconds"] < b["seconds"]
    return a["best_top1"] > b["best_top1"]


def format_tta_table(result: dict) -> str:
    lines = [f"time to validation prefix top-1 >= {result['target']} (mean of both directions), v3_contrastive, "
             f"checked every {result['eval_every']} steps, warm-up {result['warmup_fraction']:g} of the planned steps, "
             f"cap {result['cap_seconds']:.0f} s of training (validation checks not counted)",
             "ORACLE-STOPPED SPEED MEASURE, NOT A RESULT: training stops at the first check on validation people "
             "that reaches the target",
             f"{'setting':<26} {'lr':>8} {'precision':>9} {'steps':>6} {'seconds':>9} {'+ cache':>8} {'best top-1':>10} "
             f"{'vs all':>7}  note"]
    for r in result["rows"]:
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else f">{r.get('train_seconds_run', 0):.0f}"
        total = f"{r['seconds'] + r.get('cache_s', 0.0):.0f}" if r["seconds"] is not None else "-"
        steps = str(r["steps"]) if r["steps"] is not None else "-"
        best = f"{r['best_top1']:.2f}" if r.get("best_top1") is not None else "-"
        note = ("derived: its s/step x the steps smlib all needed" if r["derived"]
                else f"best of lr {', '.join(f'{x:g}' for x in r['lrs_tried'])}; + {r['cache_s']:.0f} s cache")
        lines.append(f"{r['setting']:<26} {r['lr']:>8.0e} {r['precision']:>9} {steps:>6} {secs:>9} {total:>8} {best:>10} "
                     f"{r.get('ratio') or '-':>7}  {note}")
    lines.append("vs all: smlib all's seconds to the target / the row's (cache read included); '>' where smlib all "
                 "never reached it within its cap (a lower bound)")
    return "\n".join(lines)
