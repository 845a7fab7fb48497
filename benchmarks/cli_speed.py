"""How fast the everyday commands answer: `dsa-harness --help` and `dsa-harness sweep status` of a 200-run grid,
as commands (interpreter start, imports and all), against `python -c pass` in the same interleaved rounds.

Targets (issue "one resolved run config"): `--help` <= 0.3 s, `sweep status` of 200 runs <= 0.5 s on the 2-core CI
machine. Both must not import torch: the import check runs first and fails the benchmark if they do.

The 200 runs are real: the cheapest legal profiling runs (ResNet-18 at width 8, 1 snippet x 1 frame of 16 x 16,
no latency) run once through the debug executor, so status reads real config.json / final.json / job.json files.

    .venv/bin/python benchmarks/cli_speed.py [--runs 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sweep_overhead import write_bench_grid  # noqa: E402  (benchmarks/ is the script's folder)

from harness.launch.submit import submit  # noqa: E402


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def imports_torch(code: str, cwd: Path) -> bool:
    probe = f"import sys\n{code}\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    cli = str(Path(sys.executable).with_name("dsa-harness"))
    with tempfile.TemporaryDirectory(prefix="cli_bench_") as tmp:
        tmp = Path(tmp)
        grid_file = write_bench_grid(tmp, args.runs)
        t = time.perf_counter()
        result = submit(grid_file, cluster="debug", results_root=tmp / "results")
        print(f"{len(result.runs)} profiling runs made in {time.perf_counter() - t:.1f} s (debug executor)")
        env_cwd = tmp
        help_torch = imports_torch(
            "from harness.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass", env_cwd
        )
        status_torch = imports_torch(
            f"from harness.cli import main\nmain(['sweep', 'status', {str(grid_file)!r}, "
            f"'--results', {str(tmp / 'results')!r}])",
            env_cwd,
        )
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "dsa-harness --help": [cli, "--help"],
            f"dsa-harness sweep status ({args.runs} runs)": [
                cli,
                "sweep",
                "status",
                str(grid_file),
                "--results",
                str(tmp / "results"),
            ],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for cmd in commands.values():  # warm the file cache once
            timed(cmd, env_cwd)
        for _ in range(args.rounds):  # interleaved rounds: machine noise hits every command alike
            for k, cmd in commands.items():
                times[k].append(timed(cmd, env_cwd))
    base = statistics.median(times["python -c pass"])
    print(f"\n{args.rounds} interleaved rounds, medians (IQR) on this machine ({os.cpu_count()} cores):")
    record = {"rounds": args.rounds, "runs": args.runs, "torch_imported": {"help": help_torch, "status": status_torch}}
    targets = {"dsa-harness --help": 0.3, f"dsa-harness sweep status ({args.runs} runs)": 0.5}
    for k, ts in times.items():
        q = statistics.quantiles(ts, n=4)
        med = statistics.median(ts)
        line = f"  {k:40s} {med * 1000:7.0f} ms (IQR {(q[2] - q[0]) * 1000:.0f} ms)  {med / base:5.1f}x python -c pass"
        if k in targets:
            line += f"   target <= {targets[k]} s: {'met' if med <= targets[k] else 'NOT met'}"
        print(line)
        record[k] = {"median_s": med, "ratio_to_python": med / base, "all_s": ts}
    print(f"  torch imported by --help: {help_torch}, by sweep status: {status_torch}")
    out = REPO / "results" / "benchmarks" / "cli_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"recorded in {out}")
    if help_torch or status_torch:
        raise SystemExit("FAIL: a fast path imports torch")


if __name__ == "__main__":
    main()
