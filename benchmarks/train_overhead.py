"""Step overhead of the engine's training loop over a bare forward/backward/step loop, on the CPU.

Both loops train the same model (same variant, width, U x T, size, batch, seed) with the same optimiser
(the engine's SGD groups, gradient clipping at 40), from uint8 batches already in memory, and normalise
the batch on every step:

  engine  ``harness.engine.train.train_and_evaluate`` itself, one epoch of STEPS steps in a fresh run
          folder, its data builder replaced by an in-memory dataset (no decoding: what is left is the
          engine's loop: the loader with its epoch sampler and collation, autocast and scaler calls,
          the running sums, the lr schedule, logging, stop and checkpoint checks). Timed by the engine
          itself: ``epoch_time_s`` of metrics.jsonl (the loop from ``iter(loader)`` to its last step;
          set-up, the epoch's checkpoint and the final cost record are outside it).
  bare    ``for step: zero_grad; loss = cross_entropy(model(normalize(x)), y); backward; clip; step``
          over one batch.

Clock (``--clock``): ``cpu`` (default) reads the CPU time of the one thread that does all the work (one
intra-op thread, no loader workers), for the engine too (its clock is swapped for the benchmark), so
that other processes on a shared machine change the figures little; ``wall`` reads wall time.

The two alternate in interleaved rounds (so that a drift of a shared machine hits both alike) after one
untimed warm-up round of each; the ratio engine / bare is taken per round and summarised by its
median and interquartile range. Target: median <= 1.05.

    python benchmarks/train_overhead.py                       # R18 width 16, U=4 x T=2, 32x32, batch 16
    python benchmarks/train_overhead.py --rounds 5 --steps 8  # quicker

Prints the figures and writes results/benchmarks/train_overhead.json (with the hardware it ran on).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import harness.engine.train as engine  # noqa: E402
import harness.measure.profile as profile  # noqa: E402
from harness.config import RunConfig  # noqa: E402
from harness.data import normalize  # noqa: E402
from harness.measure import describe_environment  # noqa: E402
from harness.models import create_model  # noqa: E402
from harness.results.rundir import atomic_write_json  # noqa: E402


class InMemoryClips(Dataset):
    """``n`` uint8 samples (U, C, T, H, W) with labels, made once; reading one is an indexing."""

    def __init__(self, n: int, shape: tuple[int, ...], num_classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.clips = torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=g)
        self.labels = [int(v) for v in torch.randint(0, num_classes, (n,), generator=g)]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.clips[i], self.labels[i]


class _ThreadClock:
    """The ``time`` module as the engine sees it, but ``time()`` reads this thread's CPU time."""

    def __getattr__(self, name: str):
        return getattr(time, name)

    @staticmethod
    def time() -> float:
        return time.thread_time()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="tsm_r18_dsa")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--snippets", type=int, default=4)
    p.add_argument("--frames", type=int, default=2)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--steps", type=int, default=12, help="training steps per round and loop")
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds (median and IQR of the ratios)")
    p.add_argument("--threads", type=int, default=1, help="intra-op CPU threads (both loops)")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="CPU time of the thread, or wall time")
    p.add_argument("--out", default="results/benchmarks/train_overhead.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    U, T, S = args.snippets, args.frames, args.size
    dataset = InMemoryClips(args.steps * args.batch, (U, 3, T, S, S), args.classes)
    config = {
        "task": "train",
        "seed": 0,
        "model": {"variant": args.variant, "width": args.width, "num_snippets": U, "num_frames": T},
        "data": {"train": "in-memory.txt", "size": S, "resize": S, "num_workers": 0},
        "train": {
            "epochs": 1,
            "batch_size": args.batch,
            "base_batch": args.batch,
            "warmup_epochs": 0,
            "eval_every": 0,
            "device": "cpu",
            "threads": args.threads,
        },
    }
    config["model"]["num_classes"] = args.classes
    rc = RunConfig.from_dict(config)
    tcfg = rc.train

    def in_memory_data(*_a, **_k):
        return engine.RunData(dataset, None, None, args.classes, None, normalize)

    engine.build_data = in_memory_data  # the engine's loop on data already in memory
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    if args.clock == "cpu":
        engine.time = _ThreadClock()  # epoch_time_s in CPU seconds of this thread
    profile.profile_record = lambda *a, **k: {}  # the final cost record (fvcore) is not the loop

    def engine_round(folder: Path) -> float:
        engine.train_and_evaluate(config, folder, echo=False, progress=False)
        (line,) = (folder / "metrics.jsonl").read_text().splitlines()
        return json.loads(line)["epoch_time_s"]

    batch = torch.stack([dataset[i][0] for i in range(args.batch)])
    labels = torch.tensor([dataset[i][1] for i in range(args.batch)])

    def bare_round() -> float:
        torch.manual_seed(0)
        model = create_model(rc.model).train()
        optimizer = engine.build_optimizer(model, tcfg, tcfg.lr_for(args.batch))
        start = clock()
        for _ in range(args.steps):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(normalize(batch)), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad_norm)
            optimizer.step()
        return clock() - start

    times: dict[str, list[float]] = {"engine": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="train_overhead_") as tmp:
        for r in range(args.rounds + 1):  # round 0: warm-up, not recorded
            e = engine_round(Path(tmp) / f"run{r}")
            engine.set_determinism(
                engine.resolve_deterministic(tcfg.deterministic, torch.device("cpu")), torch.device("cpu")
            )
            b = bare_round()
            if r:
                times["engine"].append(e)
                times["bare"].append(b)
                print(f"round {r}/{args.rounds}: engine {e:.3f} s, bare {b:.3f} s, ratio {e / b:.3f}", file=sys.stderr)

    ratios = [e / b for e, b in zip(times["engine"], times["bare"])]
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    record = {
        "benchmark": "train_overhead",
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "setting": {
            "variant": args.variant,
            "width": args.width,
            "snippets": U,
            "frames": T,
            "size": S,
            "batch": args.batch,
            "steps": args.steps,
            "rounds": args.rounds,
            "threads": torch.get_num_threads(),
            "clock": args.clock,
            "deterministic": engine.resolve_deterministic(tcfg.deterministic, torch.device("cpu")),
        },
        "engine_step_ms": 1e3 * statistics.median(times["engine"]) / args.steps,
        "bare_step_ms": 1e3 * statistics.median(times["bare"]) / args.steps,
        "ratio_median": statistics.median(ratios),
        "ratio_iqr": [q[0], q[2]],
        "ratios": ratios,
        "target": 1.05,
        **describe_environment("cpu"),
    }
    atomic_write_json(args.out, record)
    print(
        f"\n{args.variant} width {args.width}, U={U} x T={T}, {S}x{S}, batch {args.batch}, {args.steps} steps x "
        f"{args.rounds} rounds, {torch.get_num_threads()} thread(s), {record['hardware']['device_name']}\n"
        f"engine step {record['engine_step_ms']:.1f} ms, bare step {record['bare_step_ms']:.1f} ms "
        f"(medians, {'thread CPU' if args.clock == 'cpu' else 'wall'} time)\n"
        f"engine / bare: median {record['ratio_median']:.3f}x, IQR {q[0]:.3f}-{q[2]:.3f}x "
        f"(target <= {record['target']:.2f}x)\n\nrecorded in {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
