"""Launch: grid files -> validated runs -> submitit (SLURM job arrays, local workers, debug).

    from harness.launch import run_grid
    run_dirs = run_grid("experiments/profile.yaml", cluster="local")   # submit, wait, return run dirs

See ``grid`` (file format, run ids), ``tasks`` (what one run does; the checkpointable callables),
``submit`` (executors, job markers, ``run_grid``), ``status`` (``sweep status``), ``scheduler`` (squeue,
sacct, local workers), ``snapshot`` (frozen code for jobs), ``control`` (cancel, logs) and ``cost``
(``sweep show`` and its estimate).
"""

from harness.launch.control import cancel
from harness.launch.grid import (
    Grid,
    GridError,
    GridValidationError,
    Resources,
    RunSpec,
    expand,
    load_grid,
    validate_runs,
)
from harness.launch.status import collect_status
from harness.launch.submit import LaunchOptions, run_grid, submit
from harness.launch.tasks import describe_environment, run_task

__all__ = [
    "Grid",
    "GridError",
    "GridValidationError",
    "LaunchOptions",
    "Resources",
    "RunSpec",
    "cancel",
    "collect_status",
    "describe_environment",
    "expand",
    "load_grid",
    "run_grid",
    "run_task",
    "submit",
    "validate_runs",
]
