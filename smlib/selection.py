"""Model selection that never looks at the test people: the dev slice, the rules, and the record of each choice.

With data.dev_fraction > 0 a slice of the training people is never trained on (smlib.data.dataset.split_people)
and every check during training scores it too. Which *rule* that is depends on how the dev slice is written:

- ``leave-wording-out``: the variant writes the dev slice with a wording of its own (``heldout``:
  smlib.data.wording.dev), so a setting is chosen on phrasings that neither training nor the test uses;
  it chooses everything for ``heldout`` (its recipe, benchmarks/heldout_search.py, and the kept step);
- ``training-wording``: the dev slice is written like the training people (``verbatim``, ``disjoint``; and the
  ``training_wording`` view of the dev slice under ``heldout``, to show what that rule would have chosen);
  it chooses for ``disjoint`` (its learning rate, benchmarks/disjoint_lr.py, and the kept step; ``verbatim``
  keeps its last step, since its dev top-1 ties at 1.0 from the first check);
- ``oracle``: the test people themselves (``val_top1`` in the history): an upper bound, never a selection;
  it chooses nothing and is printed beside the others for the reader.

train.keep = "best_dev" keeps the weights of the check with the best dev top-1 (early stopping on the rule's
dev slice) instead of the last step's; the run's train.json records the rule, the chosen step and every score.
The trained reference rows choose their grids on the same dev slice when there is one (smlib.baselines).

docs/selection.md gives the rules in full and what the heldout recipe search found with them.
"""
from __future__ import annotations

import torch

from .data.dataset import TRAINING_WORDING

RULES = {
    "leave-wording-out": "dev slice written with a wording of its own (neither the training nor the test wording)",
    "training-wording": "dev slice written with the training wording",
    "oracle": "the test people themselves: an upper bound, labelled as such, never used to choose",
}


def dev_rule(dataset) -> str | None:
    """The rule this dataset's dev slice selects by (None without a dev slice)."""
    if not dataset.split.get("dev"):
        return None
    return "leave-wording-out" if TRAINING_WORDING in dataset.views else "training-wording"


def dev_refs(dataset) -> dict[str, tuple[list, list]]:
    """Score name -> (dating refs, hiring refs) of the dev slice: "dev_top1" in its own wording and, where the dev
    slice has one, "dev_top1_training_wording" in the training wording."""
    ids = dataset.split.get("dev") or []
    if not ids:
        return {}
    out = {"dev_top1": ([("dating", i) for i in ids], [("hiring", i) for i in ids])}
    view = dataset.views.get(TRAINING_WORDING)
    if view:
        out["dev_top1_training_wording"] = ([("dating", view["dating"][i]) for i in ids],
                                            [("hiring", view["hiring"][i]) for i in ids])
    return out


class KeepBest:
    """Track the dev checks of a run; with train.keep = "best_dev", snapshot the trainable weights at the best one
    and put them back at the end."""

    def __init__(self, params, dataset, trainable: list[torch.Tensor]):
        self.rule, self.keep = dev_rule(dataset), params.train.keep
        self.trainable = trainable
        self.checks: list[dict] = []
        self.best_step, self.best_score, self._state = None, float("-inf"), None

    def update(self, step: int, row: dict) -> None:
        """Note one check's scores (rows without a dev check are ignored)."""
        if "dev_top1" not in row:
            return
        scores = {k: round(float(v), 4) for k, v in row.items() if k.startswith(("dev_", "val_top1"))}
        self.checks.append({"step": step, **scores})
        if row["dev_top1"] > self.best_score:
            self.best_step, self.best_score = step, float(row["dev_top1"])
            if self.keep == "best_dev":
                self._state = [p.detach().clone() for p in self.trainable]

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights of the best dev check (keep = "best_dev"); nothing otherwise."""
        if self.keep == "best_dev" and self._state is not None:
            for p, saved in zip(self.trainable, self._state, strict=True):
                p.copy_(saved)
            self._state = None

    def record(self) -> dict | None:
        """train.json's "selection": the rule, what was kept, the chosen step and every dev check's scores."""
        if self.rule is None:
            return None
        return {"rule": self.rule, "rule_means": RULES[self.rule], "keep": self.keep,
                "kept_step": self.best_step if self.keep == "best_dev" else None,
                "best_dev_step": self.best_step, "best_dev_top1": None if self.best_step is None else self.best_score,
                "checks": self.checks}
