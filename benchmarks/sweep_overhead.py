"""Harness overhead of launching a 200-run grid on the local executor, and of `sweep status` on it.

Measured (wall clock, this machine):
  expand     load the YAML and expand 200 runs (run ids included)
  validate   resolve every run's model and options
  submit     `submit(...)` end to end on the local executor: expand + validate + plan (status of
             every run) + write 200 config.json + start the worker processes + write 200 job.json.
             The runs themselves execute afterwards in the background workers and are excluded.
  status     `collect_status` of the 200 runs: while they run (live workers) and once all are done;
             plus `dsa-harness sweep status` as a command (interpreter start and imports included)
  resubmit   `submit(...)` again once all are done (everything skipped)

The runs are the cheapest legal profiling runs (ResNet-18 at width 8, 1 snippet x 1 frame of 16 x 16,
no latency), so the background work is short. Targets: <= 0.2 s of overhead per run at submission;
status of 200 runs in <= 2 s.

    .venv/bin/python benchmarks/sweep_overhead.py [--runs 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.launch.grid import expand, load_grid, validate_runs  # noqa: E402
from harness.launch.status import collect_status  # noqa: E402
from harness.launch.submit import LaunchOptions, submit  # noqa: E402
from harness.results.status import LIVE_STATES  # noqa: E402


def write_bench_grid(folder: Path, runs: int) -> Path:
    """``folder/bench.yaml``: a profile grid of about ``runs`` of the cheapest legal profiling runs (ResNet-18 at
    width 8, 1 snippet x 1 frame of 16 x 16, no latency): 5 variants x seeds. Shared by cli_speed.py."""
    variants = ["tsn_r18", "tsm_r18", "tsm_r18_dsa", "i3d_r18", "i3d_r18_dsa"]
    grid_file = folder / "bench.yaml"
    doc = {
        "name": "bench",
        "task": "profile",
        "base": {
            "model": {"width": 8, "num_snippets": 1, "num_frames": 1, "num_classes": 10},
            "profile": {"size": 16, "latency": False},
        },
        "axes": {"product": {"model.variant": variants}},
        "seeds": list(range(-(-runs // len(variants)))),
        "resources": {"cpus_per_task": 1, "mem_gb": 1, "time_min": 5},
    }
    grid_file.write_text(yaml.safe_dump(doc))
    return grid_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep_bench_") as tmp:
        tmp = Path(tmp)
        grid_file = write_bench_grid(tmp, args.runs)
        root = tmp / "results"

        t = time.perf_counter()
        grid = load_grid(grid_file)
        runs = expand(grid, root)
        t_expand = time.perf_counter() - t
        n = len(runs)
        t = time.perf_counter()
        assert validate_runs(grid, runs, check_data=True) == []
        t_validate = time.perf_counter() - t

        t = time.perf_counter()
        result = submit(
            grid_file,
            cluster="local",
            results_root=root,
            options=LaunchOptions(cluster="local", max_parallel=args.workers),
        )
        t_submit = time.perf_counter() - t
        assert len(result.submitted) == n

        t = time.perf_counter()
        live = collect_status(result.runs)
        t_status_live = time.perf_counter() - t
        states_live = {s: sum(x.status == s for x in live) for s in {x.status for x in live}}

        t_wait = time.perf_counter()
        while True:
            for job in result.jobs:
                job.done()  # reap finished workers
            statuses = collect_status(result.runs)
            if not any(s.status in LIVE_STATES for s in statuses):
                break
            time.sleep(1.0)
        t_wait = time.perf_counter() - t_wait
        done = sum(s.status == "done" for s in statuses)

        t = time.perf_counter()
        collect_status(result.runs)
        t_status_done = time.perf_counter() - t
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "harness", "sweep", "status", str(grid_file), "--results-root", str(root)]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True)
        t_status_cmd = time.perf_counter() - t
        t = time.perf_counter()
        again = submit(grid_file, cluster="local", results_root=root)
        t_resubmit = time.perf_counter() - t
        assert again.submitted == []

    print(f"grid: {n} profiling runs, local executor, {args.workers} workers")
    print(f"expand                    {t_expand:8.3f} s   {t_expand / n * 1000:7.2f} ms/run")
    print(f"validate                  {t_validate:8.3f} s   {t_validate / n * 1000:7.2f} ms/run")
    print(f"submit (end to end)       {t_submit:8.3f} s   {t_submit / n:7.4f} s/run   (target <= 0.2 s/run)")
    print(f"status, runs live         {t_status_live:8.3f} s   states {states_live}")
    print(f"status, all done          {t_status_done:8.3f} s   (target <= 2 s)  {done}/{n} done")
    print(
        f"`sweep status` command    {t_status_cmd:8.3f} s   "
        "(`python -m harness sweep status`: interpreter, CLI imports, table)"
    )
    print(f"resubmit (all skipped)    {t_resubmit:8.3f} s   {t_resubmit / n:7.4f} s/run")
    print(f"(background: the runs themselves took {t_wait:.1f} s; excluded)")
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
