"""What the code needs of a run's data, stated once: the params' checks (config.Params, the study's planner) read
these, and the code that needs them raises with the same numbers."""
from __future__ import annotations

BATCH_ITEMS = 2  # a training batch: two items (triplets or pairs) that involve different people (in-batch negatives)
TRIPLET_PEOPLE = 3  # the people one triplet involves (anchor, positive, negative)
HSIC_ROWS = 4  # the unbiased HSIC (debiased CKA, every run's metrics and the zero-shot row)
JACKKNIFE_ROWS = 5  # the leave-one-person-out interval of debiased CKA (smlib.compare, the reproduce check)
MINING_PEOPLE = 3  # mining a triplet: an anchor and at least two candidates

# validation people each measurement of a run needs; a split must give every one of them
VAL_PEOPLE_NEEDS = {"debiased CKA (unbiased HSIC)": HSIC_ROWS, "CKA's jackknife interval": JACKKNIFE_ROWS,
                    "validation triplets": MINING_PEOPLE}
MIN_VAL_PEOPLE = max(VAL_PEOPLE_NEEDS.values())
# training people: two triplets of different people make the smallest triplet batch
MIN_TRAIN_PEOPLE = BATCH_ITEMS * TRIPLET_PEOPLE
MIN_DEV_PEOPLE = MINING_PEOPLE  # the dev slice's validation triplets and its checks
# train.lr and train.head_lr: an AdamW step moves a weight by about lr, and below float32's smallest normal number
# (~1.2e-38) it underflows, no weight moves, and training refuses the run (TrainingDiverged); 1e-30 leaves room
MIN_LR = 1e-30


def data_needs_problem(data, batch_size: int) -> tuple[str | None, int]:
    """(why a data section cannot give a run what it needs, or None; the dev slice's size): the validation people
    every metric needs, the dev slice's, and the training people a triplet batch and train.batch_size need (the
    schema asks BATCH_ITEMS triplets and pairs at least). data: the params' data section (config.DataParams)."""
    n_val = round(data.n_people * data.val_fraction)
    n_dev = round((data.n_people - n_val) * data.dev_fraction)
    n_train = data.n_people - n_val - n_dev
    split = f"data.n_people={data.n_people}, data.val_fraction={data.val_fraction}, data.dev_fraction={data.dev_fraction}"
    if n_val < MIN_VAL_PEOPLE:
        needs = ", ".join(f"{what} {n}" for what, n in VAL_PEOPLE_NEEDS.items())
        return f"{split} give {n_val} validation people; the metrics need at least {MIN_VAL_PEOPLE} ({needs})", n_dev
    if data.dev_fraction and n_dev < MIN_DEV_PEOPLE:
        return (f"{split} give {n_dev} people in the dev slice; it needs at least {MIN_DEV_PEOPLE} (or "
                "data.dev_fraction 0: no dev slice)"), n_dev
    if n_train < max(MIN_TRAIN_PEOPLE, batch_size):
        return (f"{split} leave {n_train} training people; a triplet batch needs at least {MIN_TRAIN_PEOPLE} "
                f"({BATCH_ITEMS} triplets of {TRIPLET_PEOPLE} different people) and train.batch_size={batch_size} "
                f"needs {batch_size}"), n_dev
    return None, n_dev
