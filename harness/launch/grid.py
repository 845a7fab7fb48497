"""Grid files: YAML -> validated run configurations with stable run ids.

A grid file (``experiments/<name>.yaml``) describes one paper table::

    name: ablation_split_ratio
    description: DSA on a fraction of the channels
    paper_table: "Table 5 (split ratio), Mini-Kinetics-200, I3D R50"
    paper_reference: experiments/paper/ablation_split_ratio.csv   # optional
    task: train                       # or: profile
    include: recipes/minikinetics200_i3d.yaml   # optional recipe file(s), relative to this file
    base:                             # the run configuration every run starts from (overrides the recipes)
      model: {variant: i3d_r50_dsa, num_classes: 200}
      data: {train: data/minikinetics200/train.csv, ...}
      train: {epochs: 100, ...}
      eval: {test_groups: 2, crops: 3}
    axes:
      product: {model.split_ratio: [0.125, 0.25, 0.5, 1.0]}   # cartesian product
      zip: {model.variant: [a, b], model.num_snippets: [4, 8]} # walked together (equal lengths)
    seeds: [0, 1, 2]
    resources: {gpus: 8, cpus_per_task: 10, mem_gb: 64, time_min: 2880, gpu_mem_gb: 80}
    cost:                             # optional, for the estimate of `sweep show`
      train_clips: 78000              # training videos per epoch (each a sample of U snippets)
      test_clips: 5000                # test videos (x eval.test_groups x eval.crops views)
      throughput: {tflops: 25}        # or {videos_per_s: 60} per device; see ``harness.launch.cost.estimate_cost``
      loader_videos_per_s: 6          # optional: the data path, videos/s per loader process (`data bench`)
      from: results/runs/profile_gpu  # optional: measured training throughput of profile runs (profile.train)
      gpu: H200                       # optional: the GPU those measurements must come from (or "cpu")
    report: {rows: [model.split_ratio], metrics: [test.top1, profile.gflops_per_view]}

A recipe file (``experiments/recipes/*.yaml``) holds sections only (model, data, train, eval,
profile, resources, plus an optional description); the grid's ``base`` is merged over the recipes in
order, so grids that share a recipe differ only in what they say.

Axis keys are dotted paths into the run configuration (``model.split_ratio``); a key may also
name a whole section (``model``) with mapping values, which are merged into the base section.
Runs are the product axes (first key slowest) x the zip rows x the seeds (fastest).

Every run is resolved through ``harness.config.RunConfig`` (one config type from grid to CLI to run
id): its id is the hash of the *resolved* configuration (see harness/config/), so the same run
spelled another way, in another grid or with its dataset moved, gets the same id. Neither torch nor
decord is imported: expanding a grid is cheap.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import (
    RunConfig,
    apply_overrides,
    config_problems,
    deep_merge,
    fingerprint_scope,
    load_recipe,
    read_yaml,
    set_dotted,
)
from harness.errors import ConfigError, HarnessError

TASKS = ("profile", "train")
SECTIONS = ("model", "data", "train", "eval", "profile", "resources")
"""Top-level sections of a grid's ``base`` (the run config's sections plus the launcher's resources)."""
GRID_KEYS = (
    "name",
    "description",
    "paper_table",
    "paper_reference",
    "task",
    "include",
    "base",
    "axes",
    "seeds",
    "resources",
    "cost",
    "report",
)
DATA_PATH_KEYS = ("train", "val", "test", "root", "classes")
COST_KEYS = ("train_clips", "test_clips", "throughput", "from", "gpu", "loader_videos_per_s")
"""Keys of a grid's ``cost`` section (``sweep show``'s estimate; see ``harness.launch.cost.estimate_cost``)."""
THROUGHPUT_KEYS = ("videos_per_s", "clips_per_s", "tflops")
"""Keys of ``cost.throughput``: ``clips_per_s`` is the older name of ``videos_per_s`` (same meaning)."""


class GridError(HarnessError, ValueError):
    """A grid file that cannot be read or expanded; the message names the file and the key."""


@dataclass(frozen=True)
class Problem:
    """One validation problem: which grid file, which run (None: the whole grid), which field."""

    grid_file: str
    run_index: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = "grid" if self.run_index is None else f"run {self.run_index}"
        return f"{self.grid_file}: {where}: {self.field}: {self.message}"


class GridValidationError(GridError):
    """Every problem of a grid, reported at once (nothing is submitted)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(format_problems(self.problems))


def format_problems(problems: list[Problem]) -> str:
    """One line per distinct (file, field, message), naming every run it concerns; a single problem is
    one line."""
    groups: dict[tuple, list] = {}
    for p in problems:
        groups.setdefault((p.grid_file, p.field, p.message), []).append(p.run_index)
    lines = []
    for (gfile, fld, msg), idx in groups.items():
        runs = [i for i in idx if i is not None]
        where = "grid" if not runs else ("run " if len(runs) == 1 else "runs ") + _ranges(runs)
        lines.append(f"{gfile}: {where}: {fld}: {msg}")
    if len(lines) == 1:
        return f"{lines[0]} (nothing submitted)"
    nfiles = len({p.grid_file for p in problems})
    head = f"{len(lines)} problem(s) in {nfiles} grid file(s); nothing submitted:"
    return "\n".join([head, *(f"  {line}" for line in lines)])


def _ranges(indices: list[int]) -> str:
    out, idx = [], sorted(set(indices))
    start = prev = idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(out)


@dataclass(frozen=True)
class Resources:
    """What one run asks of the scheduler. Not part of the run identity.

    ``gpus`` is the total per run; with ``nodes`` > 1 it is split evenly over the nodes. ``tasks`` is
    the number of processes per run (DDP world size), split evenly over the nodes too: one per GPU
    (the default, and the only value allowed with GPUs), or for CPU runs 1 by default and N for N
    gloo processes (on SLURM, or locally: how multi-process training is tested without a GPU).
    """

    gpus: int = 0
    tasks: int | None = None  # None: gpus, or 1 for a CPU run
    nodes: int = 1
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    time_min: int = 60
    partition: str | None = None
    gpu_mem_gb: float | None = None  # memory of one GPU of the partition: `sweep show` warns above 90% of it
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    array_parallelism: int | None = None
    sbatch: dict = field(default_factory=dict)  # extra sbatch options, e.g. {exclude: node12}
    setup: tuple = ()  # shell lines run before the job (module loads, conda activate)
    collective_timeout_min: float | None = None  # DDP: how long a rank waits in a collective (None: torch's)

    def __post_init__(self) -> None:
        for name in ("gpus", "nodes", "cpus_per_task", "time_min"):
            v = getattr(self, name)
            low = 0 if name == "gpus" else 1
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ConfigError(f"resources.{name}={v!r}: must be an integer >= {low}")
        if not isinstance(self.mem_gb, (int, float)) or self.mem_gb <= 0:
            raise ConfigError(f"resources.mem_gb={self.mem_gb!r}: must be a number > 0")
        if self.gpu_mem_gb is not None and (
            not isinstance(self.gpu_mem_gb, (int, float)) or isinstance(self.gpu_mem_gb, bool) or self.gpu_mem_gb <= 0
        ):
            raise ConfigError(f"resources.gpu_mem_gb={self.gpu_mem_gb!r}: must be a number > 0 (GB of one GPU)")
        if self.collective_timeout_min is not None and (
            not isinstance(self.collective_timeout_min, (int, float))
            or isinstance(self.collective_timeout_min, bool)
            or self.collective_timeout_min <= 0
        ):
            raise ConfigError(
                f"resources.collective_timeout_min={self.collective_timeout_min!r}: must be a number of minutes > 0 "
                "(leave it out for torch's default: 10 min NCCL, 30 min gloo)"
            )
        if self.gpus % self.nodes:
            raise ConfigError(f"resources.gpus={self.gpus} must be a multiple of resources.nodes={self.nodes}")
        if self.tasks is None:
            object.__setattr__(self, "tasks", max(1, self.gpus))
        if not isinstance(self.tasks, int) or isinstance(self.tasks, bool) or self.tasks < 1:
            raise ConfigError(f"resources.tasks={self.tasks!r}: must be an integer >= 1")
        if self.gpus and self.tasks != self.gpus:
            raise ConfigError(
                f"resources.tasks={self.tasks} with resources.gpus={self.gpus}: one process per GPU; "
                "leave tasks out (or set it to gpus)"
            )
        if self.tasks % self.nodes:
            raise ConfigError(f"resources.tasks={self.tasks} must be a multiple of resources.nodes={self.nodes}")
        if self.array_parallelism is not None and (
            not isinstance(self.array_parallelism, int) or self.array_parallelism < 1
        ):
            raise ConfigError(f"resources.array_parallelism={self.array_parallelism!r}: must be an integer >= 1")
        if not isinstance(self.sbatch, dict):
            raise ConfigError("resources.sbatch must be a mapping of sbatch option -> value")
        if isinstance(self.setup, str) or not all(isinstance(s, str) for s in self.setup):
            raise ConfigError("resources.setup must be a list of shell lines")
        object.__setattr__(self, "setup", tuple(self.setup))

    @classmethod
    def from_dict(cls, d: dict | None) -> Resources:
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown resources key(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**d)

    @property
    def gpus_per_node(self) -> int:
        return self.gpus // self.nodes

    @property
    def tasks_per_node(self) -> int:
        """Processes per node: one per GPU (DDP), or ``tasks / nodes`` for CPU runs (1 by default)."""
        return self.tasks // self.nodes


@dataclass(frozen=True)
class Grid:
    """A parsed grid file (see the module docstring for the format)."""

    path: Path
    name: str
    task: str
    base: dict
    product: dict
    zip: dict
    seeds: tuple
    resources: dict
    description: str = ""
    paper_table: str = ""
    paper_reference: str | None = None
    cost: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def num_runs(self) -> int:
        n = len(self.seeds)
        for values in self.product.values():
            n *= len(values)
        if self.zip:
            n *= len(next(iter(self.zip.values())))
        return n

    @property
    def axis_keys(self) -> list[str]:
        return list(self.product) + list(self.zip)


@dataclass(frozen=True)
class RunSpec:
    """One run of a grid: its index in the grid, id, full configuration and where it lives."""

    index: int
    run_id: str
    config: dict  # RunConfig.record(): resolved config + run_id, identity_version, inputs, grid, resources
    axes: dict  # dotted axis key -> value of this run (plus "seed")
    run_dir: Path
    run_config: RunConfig | None = None

    @property
    def resources(self) -> Resources:
        return Resources.from_dict(self.config.get("resources"))


# ---------------------------------------------------------------------------------------------
# loading


def load_grid(path: str | os.PathLike) -> Grid:
    """Read and check a grid file; raises ``GridError`` naming the file, line or key."""
    path = Path(path)
    try:
        doc = read_yaml(path, "grid file")
    except ConfigError as e:
        raise GridError(str(e)) from None
    if isinstance(doc, dict) and doc.get("include"):
        includes = doc["include"] if isinstance(doc["include"], list) else [doc["include"]]
        merged: dict = {}
        for inc in includes:
            if not isinstance(inc, str):
                raise GridError(f"{path}: include: must be a recipe file path or a list of them, got {inc!r}")
            try:
                merged = deep_merge(merged, load_recipe(path.parent / inc, where=f"{path}: include"))
            except ConfigError as e:
                raise GridError(str(e)) from None
        merged.pop("description", None)
        doc = {**doc, "base": deep_merge(merged, doc.get("base") or {})}
    return grid_from_dict(doc, path)


def grid_from_dict(doc: Any, path: str | os.PathLike = "<grid>") -> Grid:
    """Check a grid document and build the Grid; every structural problem is reported at once
    (``GridValidationError``, a ``GridError``), each naming the file and the key."""
    path = Path(path)
    problems: list[Problem] = []

    def bad(key: str, msg: str) -> None:
        problems.append(Problem(str(path), None, key, msg))

    if not isinstance(doc, dict):
        raise GridError(f"{path}: a grid file must be a YAML mapping (name, task, base, axes, ...)")
    for key in sorted(set(doc) - set(GRID_KEYS), key=str):
        bad(str(key), f"unknown key; grid keys are {', '.join(GRID_KEYS)}")
    name = doc.get("name")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 100
        or not all(c.isalnum() or c in "-_." for c in name)
        or name.startswith(".")
    ):
        bad("name", f"must be 1-100 letters, digits, '-', '_' or '.', not starting with '.', got {name!r}")
    base, task = _checked_base(doc, bad)
    product, zipped = _checked_axes(doc, bad)
    seeds = _checked_seeds(doc, base, bad)
    resources = doc.get("resources") or {}
    try:
        Resources.from_dict({**(base.get("resources") or {}), **resources})
    except (TypeError, ValueError) as e:
        bad("resources", str(e))
    cost = doc.get("cost") or {}
    if not isinstance(cost, dict):
        bad("cost", f"must be a mapping ({', '.join(COST_KEYS)})")
        cost = {}
    for key, message in cost_problems(cost):
        bad(key, message)
    report = _checked_report(doc, bad)
    ref = doc.get("paper_reference")
    if ref is not None and not isinstance(ref, str):
        bad("paper_reference", f"{ref!r}: must be the path of a paper CSV, e.g. experiments/paper/<name>.csv")
    if problems:
        raise GridValidationError(problems)
    return Grid(
        path=path,
        name=name,
        task=task,
        base=copy.deepcopy(base),
        product=dict(product),
        zip=dict(zipped),
        seeds=tuple(seeds),
        resources=dict(resources),
        description=str(doc.get("description") or ""),
        paper_table=str(doc.get("paper_table") or ""),
        paper_reference=str(ref) if ref else None,
        cost=dict(cost),
        report=dict(report),
    )


def _checked_base(doc: dict, bad: Callable[[str, str], None]) -> tuple[dict, Any]:
    """(the grid's ``base``, its task), each problem told to ``bad(key, message)``."""
    base = doc.get("base") or {}
    if not isinstance(base, dict):
        bad("base", "must be a mapping of sections (model, data, train, eval, profile)")
        base = {}
    task = doc.get("task", base.get("task"))
    if task not in TASKS:
        bad("task", f"must be one of {', '.join(TASKS)}, got {task!r}")
    for key, value in base.items():
        if key in ("task", "seed"):
            continue
        if key not in SECTIONS:
            bad(f"base.{key}", f"unknown section; sections are {', '.join(SECTIONS)}")
        elif not isinstance(value, dict):
            bad(f"base.{key}", "must be a mapping")
    return base, task


def _checked_axes(doc: dict, bad: Callable[[str, str], None]) -> tuple[dict, dict]:
    """(the product axes, the zipped axes) of the grid, each problem told to ``bad(key, message)``."""
    axes = doc.get("axes") or {}
    if not isinstance(axes, dict) or set(axes) - {"product", "zip"}:
        bad("axes", "must be a mapping with 'product' and/or 'zip'")
        axes = {}
    product = axes.get("product") or {}
    zipped = axes.get("zip") or {}
    for kind in ("product", "zip"):
        group = product if kind == "product" else zipped
        if not isinstance(group, dict):
            bad(f"axes.{kind}", "must map dotted keys to lists of values")
            group = {}
        for key, values in group.items():
            message = _axis_key_problem(key)
            if message:
                bad(f"axes.{kind}.{key}", message)
            if not isinstance(values, list) or not values:
                bad(f"axes.{kind}.{key}", "must be a non-empty list of values")
        if kind == "product":
            product = group
        else:
            zipped = group
    for key in sorted(set(product) & set(zipped), key=str):
        bad(f"axes.zip.{key}", "key is also a product axis")
    lengths = {k: len(v) for k, v in zipped.items() if isinstance(v, list)}
    if len(set(lengths.values())) > 1:
        bad("axes.zip", f"zipped lists must have equal lengths, got {lengths}")
    return product, zipped


def _checked_seeds(doc: dict, base: dict, bad: Callable[[str, str], None]) -> list:
    """The grid's seeds (default: the base's seed, else 0), each problem told to ``bad(key, message)``."""
    seeds = doc.get("seeds", [base.get("seed", 0)])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        bad("seeds", f"must be a non-empty list of integers, got {seeds!r}")
        seeds = [0]
    elif len(set(seeds)) != len(seeds):
        bad("seeds", f"repeated seed in {seeds}")
    return seeds


def _checked_report(doc: dict, bad: Callable[[str, str], None]) -> Any:
    """The grid's ``report`` section, each problem told to ``bad(key, message)``."""
    report = doc.get("report") or {}
    if not isinstance(report, dict):
        bad("report", "must be a mapping (rows, metrics)")
    elif report.get("zoo") is not None and not (isinstance(report["zoo"], str) and report["zoo"].endswith(".csv")):
        bad("report.zoo", f"{report['zoo']!r}: must be the path of a zoo CSV, e.g. experiments/zoo/kinetics400.csv")
    if isinstance(report, dict) and report.get("baseline") is not None:
        stated = report["baseline"]
        if not (isinstance(stated, dict) and stated and all(isinstance(k, str) and "." in k for k in stated)):
            bad(
                "report.baseline",
                f"{stated!r}: must map config keys to the baseline's values, e.g. {{model.split_ratio: 0.125}}",
            )
    return report


def cost_problems(cost: dict) -> list[tuple[str, str]]:
    """(field, message) for each bad key or value of a grid's ``cost`` section. Whether ``cost.from``
    exists is checked when the estimate reads it (``sweep show``), not here: submitting does not need it."""
    out = []

    def number(v: Any, low: float, integer: bool = False) -> bool:
        ok = (int,) if integer else (int, float)
        return isinstance(v, ok) and not isinstance(v, bool) and v >= low

    for key in sorted(set(cost) - set(COST_KEYS), key=str):
        out.append((f"cost.{key}", f"unknown key; cost keys are {', '.join(COST_KEYS)}"))
    for key in ("train_clips", "test_clips"):
        if cost.get(key) is not None and not number(cost[key], 0, integer=True):
            out.append((f"cost.{key}", f"must be a number of videos (an integer >= 0), got {cost[key]!r}"))
    rate = cost.get("loader_videos_per_s")
    if rate is not None and not (number(rate, 0) and rate > 0):
        out.append(("cost.loader_videos_per_s", f"must be videos/s of one loader process (a number > 0), got {rate!r}"))
    tp = cost.get("throughput")
    if tp is not None and not isinstance(tp, dict):
        out.append(("cost.throughput", "must be a mapping: {videos_per_s: N} (per device) or {tflops: N}"))
    for key, value in (tp if isinstance(tp, dict) else {}).items():
        if key not in THROUGHPUT_KEYS:
            out.append((f"cost.throughput.{key}", f"unknown key; throughput keys are {', '.join(THROUGHPUT_KEYS)}"))
        elif value is not None and not (number(value, 0) and value > 0):
            out.append((f"cost.throughput.{key}", f"must be a number > 0, got {value!r}"))
    for key, what in (
        ("from", "a folder of profile runs, e.g. results/runs/profile_gpu (see `dsa-harness sweep show --help`)"),
        ("gpu", 'part of the GPU\'s name, e.g. "H200" or "NVIDIA A100", or "cpu"'),
    ):
        if key in cost and (not isinstance(cost[key], str) or not cost[key].strip()):
            out.append((f"cost.{key}", f"must be {what}, got {cost[key]!r}"))
    return out


def _axis_key_problem(key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return "axis keys must be dotted strings such as model.split_ratio"
    if key in ("seed", "task"):
        return f"{key!r} cannot be an axis (use 'seeds:' / one grid per task)"
    if key.split(".", 1)[0] not in SECTIONS:
        return f"must start with a section ({', '.join(SECTIONS)})"
    return None


# ---------------------------------------------------------------------------------------------
# expansion


@fingerprint_scope()  # the runs of a grid share their lists: their videos are fingerprinted once
def expand(
    grid: Grid, results_root: str | os.PathLike = "results", overrides: list[tuple[str, Any]] | None = None
) -> list[RunSpec]:
    """All runs of ``grid``: product axes x zip rows x seeds, each resolved through ``RunConfig``
    (raising ``GridValidationError`` with every problem at once). ``overrides`` (``--set``) apply
    to the base, before the axes; a key that is an axis of the grid is refused."""
    runs_root = Path(results_root) / "runs" / grid.name
    base = copy.deepcopy(grid.base)
    if overrides:
        axis_hit = [
            k
            for k, _ in overrides
            if any(k == a or k.startswith(a + ".") or a.startswith(k + ".") for a in grid.axis_keys)
        ]
        if axis_hit:
            raise GridError(f"{grid.path}: --set {axis_hit[0]}: is an axis of this grid; edit the grid's axes")
        run_part = {k: v for k, v in base.items() if k != "resources"}
        base = {
            **apply_overrides(run_part, overrides),
            **({"resources": base["resources"]} if "resources" in base else {}),
        }
    product_keys = list(grid.product)
    zip_keys = list(grid.zip)
    zip_rows: list[tuple] = list(zip(*grid.zip.values())) if zip_keys else [()]
    base_resources = {**(base.get("resources") or {}), **grid.resources}
    runs: list[RunSpec] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    index = 0
    for combo in itertools.product(*grid.product.values()):
        for row in zip_rows:
            for seed in grid.seeds:
                raw: dict = {"task": grid.task, "seed": seed}
                for section in ("model", "data", "train", "eval", "profile"):
                    if section in base:
                        raw[section] = copy.deepcopy(base[section])
                axes: dict = {}
                for key, value in itertools.chain(zip(product_keys, combo), zip(zip_keys, row)):
                    set_dotted(raw, key, value)
                    axes[key] = value
                axes["seed"] = seed
                try:
                    rc = RunConfig.from_dict(raw)
                except ConfigError:
                    for message in config_problems(raw):  # every bad field, not just the first
                        problems.append(Problem(str(grid.path), index, _field_of(message), message))
                    index += 1
                    continue
                config = rc.record(grid=grid.name, resources=copy.deepcopy(base_resources))
                run_id = config["run_id"]
                if run_id in seen:
                    problems.append(
                        Problem(
                            str(grid.path),
                            index,
                            "axes",
                            f"same resolved configuration as run {seen[run_id]} (run id {run_id}); "
                            "remove the duplicate axis value",
                        )
                    )
                seen[run_id] = index
                runs.append(
                    RunSpec(
                        index=index, run_id=run_id, config=config, axes=axes, run_dir=runs_root / run_id, run_config=rc
                    )
                )
                index += 1
    if problems:
        raise GridValidationError(problems)
    return runs


def _field_of(message: str) -> str:
    """The dotted key a ConfigError message starts with (``train.epochs=0 is invalid`` -> ``train.epochs``)."""
    head = message.removeprefix("unknown option ").split("=", 1)[0].split(" ", 1)[0].split(":", 1)[0].rstrip(";,")
    return head if "." in head or head in ("seed", "task", "model") else "config"


# ---------------------------------------------------------------------------------------------
# validation


def validate_runs(grid: Grid, runs: Iterable[RunSpec], check_data: bool = True) -> list[Problem]:
    """What expansion cannot see: resources, and (``check_data``) that every input file exists.
    Returns *all* problems; an empty list means the grid can be submitted."""
    problems: list[Problem] = []
    gfile = str(grid.path)
    exists: dict[str, bool] = {}
    runs = list(runs)
    problems += _baseline_problems(grid, runs)
    for run in runs:
        c, i = run.config, run.index
        try:
            Resources.from_dict(c.get("resources"))
        except (TypeError, ValueError) as e:
            problems.append(Problem(gfile, i, "resources", str(e)))
        if not check_data:
            continue
        files = [("model.pretrained", (c.get("model") or {}).get("pretrained"))]
        files += [(f"data.{k}", (c.get("data") or {}).get(k)) for k in DATA_PATH_KEYS]
        for key, p in files:
            if p and not exists.setdefault(p, Path(p).exists()):
                problems.append(Problem(gfile, i, key, f"{p} does not exist (use --no-check-data to skip this check)"))
    return problems


def _baseline_problems(grid: Grid, runs: list[RunSpec]) -> list[Problem]:
    """A stated ``report.baseline`` that no run of the grid holds, once resolved (``paper`` masks are stored as
    their blocks, e.g. ``res3:01,res4:01`` for a ResNet-18): the report would pair nothing, silently."""
    stated = (grid.report or {}).get("baseline") if isinstance(grid.report, dict) else None
    if not isinstance(stated, dict) or not stated or not runs:
        return []
    from harness.config import get_dotted
    from harness.report.compare import row_key

    if any(all(row_key(get_dotted(r.config, k)) == row_key(v) for k, v in stated.items()) for r in runs):
        return []
    held = "; ".join(
        f"{k} in {', '.join(repr(x) for x in sorted({row_key(get_dotted(r.config, k)) for r in runs}))}" for k in stated
    )
    return [
        Problem(str(grid.path), None, "report.baseline", f"{stated!r}: no run of the grid has it (runs have {held})")
    ]


def load_and_expand(
    path: str | os.PathLike,
    results_root: str | os.PathLike = "results",
    check_data: bool | None = None,
    overrides: list[tuple[str, Any]] | None = None,
) -> tuple[Grid, list[RunSpec]]:
    """Load and expand a grid; with ``check_data`` not None also validate and raise
    ``GridValidationError`` listing every problem."""
    grid = load_grid(path)
    runs = expand(grid, results_root, overrides)
    if check_data is not None:
        problems = validate_runs(grid, runs, check_data=check_data)
        if problems:
            raise GridValidationError(problems)
    return grid, runs


__all__ = [
    "Grid",
    "GridError",
    "GridValidationError",
    "Problem",
    "Resources",
    "RunSpec",
    "expand",
    "format_problems",
    "load_and_expand",
    "load_grid",
    "validate_runs",
]
