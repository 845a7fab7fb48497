"""DSA harness: the reference harness for DSANet-style video models.

Floors (each imports only the floors below it; areas sharing a floor do not import each other;
CONTRACTS.md, checked by tests/test_layout.py):
    cli                      the `dsa-harness` commands (cli, __main__, reproduce)
    launch                   grids, tasks, submitit sweeps
    engine                   training, multi-view evaluation, checkpoints, DDP
    measure / report         FLOPs, params, latency / tables and plots
    config                   the one run-config type (grid, recipe, CLI, config.json, run id)
    models / data            backbones + aggregators / video loading and sampling
    results                  the run-directory contract, the state of a run, the results store
    errors / version / this  the project's error types / the running code's commit / __version__
"""

__version__ = "0.1.0"
