"""DSA harness: the reference harness for DSANet-style video models.

Floors (each imports only the floors below it):
    cli                      the `dsa-harness` commands
    launch                   grids, tasks, submitit sweeps
    engine                   training, multi-view evaluation, checkpoints, DDP
    measure / report         FLOPs, params, latency / tables and plots
    models / data            backbones + aggregators / video loading and sampling
    results                  the run-directory contract and the results store
"""

__version__ = "0.1.0"
