"""The study runner: papermill executes 01 per dataset, 02+03 per condition, then 04; resumable.

- plan.py: every flag and params combination checked, a frozen StudyPlan of Job records (nothing written)
- run.py: the plan's task graph, walked once by a LocalExecutor or a DaskExecutor (run_jobs), and run_study
- notebooks.py: executing one notebook (papermill, hidden name, the kernel's set-up)
- cli.py and __main__.py: `python -m smlib.study`

run_study(StudyOptions) is the study; its options carry the notebook runner every task calls (run_notebook,
notebooks.execute by default), so a caller replaces it by passing another.
The names below also keep the imports of the committed executed notebooks working (`from smlib.study import
study_params`).
"""
from .. import compat
from ..config import ParamsError, dataset_params, study_params
from ..record import RunFolderError, checkpoint_dir, dataset_dir, run_dir, within
from .cli import main, parse_overrides, parse_seeds, use_params_dir
from .notebooks import DEFAULT_CELL_TIMEOUT, KERNEL, NOTEBOOKS, ROOT, execute, nb_path
from .plan import (
                   EXECUTORS,
                   FOLDER_KEYS,
                   SWEEPABLE,
                   Job,
                   StudyPlan,
                   check_device,
                   check_encoder,
                   check_executor,
                   check_names,
                   check_overrides,
                   check_seeds,
                   check_threads,
                   check_writable,
                   parse_sweep,
                   plan_study,
                   sweep_points,
)
from .run import (
                   DaskExecutor,
                   LocalExecutor,
                   StudyOptions,
                   Task,
                   references_missing,
                   run_condition,
                   run_dataset,
                   run_jobs,
                   run_study,
                   study_tasks,
)

__getattr__ = compat.resolver(__name__)  # names that moved (smlib.compat.MOVED)

__all__ = [
    "DEFAULT_CELL_TIMEOUT", "EXECUTORS", "FOLDER_KEYS", "KERNEL", "NOTEBOOKS", "ROOT", "SWEEPABLE", "DaskExecutor",
    "Job", "LocalExecutor", "ParamsError", "RunFolderError", "StudyOptions", "StudyPlan", "Task", "check_device", "check_encoder",
    "check_executor", "check_names", "check_overrides", "check_seeds", "check_threads", "check_writable",
    "checkpoint_dir", "dataset_dir", "dataset_params", "execute", "main", "nb_path", "parse_overrides",
    "parse_seeds", "parse_sweep", "plan_study", "references_missing", "run_condition", "run_dataset", "run_dir",
    "run_jobs", "run_study", "study_params", "study_tasks", "sweep_points", "use_params_dir", "within",
]
