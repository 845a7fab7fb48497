"""The package's floors (CONTRACTS.md): each area imports only areas on floors below its own; areas
sharing a floor do not import each other; modules of one area import each other freely. And the
results store reads run directories only through harness/results/rundir.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.results import rundir

HARNESS = Path(__file__).resolve().parents[1] / "harness"

FLOORS = (  # top to bottom
    ("cli",),  # harness/cli.py, harness/__main__.py, harness/reproduce.py
    ("launch",),
    ("engine",),
    ("measure", "report"),
    ("config",),
    ("models", "data"),
    ("results",),
    (
        "errors",
        "version",
        "lazy",
        "numfmt",
        "helpfmt",
        "harness",
    ),  # "harness": the package's own __init__ (__version__)
)
FLOOR = {area: len(FLOORS) - i for i, areas in enumerate(FLOORS) for area in areas}
CLI_MODULES = ("harness.cli", "harness.__main__", "harness.reproduce")


def area_of(module: str) -> str | None:
    """The area of a harness module (``harness.engine.train`` -> ``engine``), None if it has none."""
    if module in CLI_MODULES:
        return "cli"
    if module == "harness":
        return "harness"
    top = module.split(".")[1]
    return top if top in FLOOR else None


def module_name(path: Path, root: Path = HARNESS) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_imports(tree: ast.AST, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every ``harness`` import anywhere in the module (functions too);
    ``from harness import x`` names submodule ``harness.x`` when one exists (or x is an area)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "harness"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            if base.split(".")[0] != "harness":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                sub_path = HARNESS.parent.joinpath(*sub.split("."))
                is_sub = (
                    sub_path.with_suffix(".py").exists()
                    or (sub_path / "__init__.py").exists()
                    or (base == "harness" and a.name in FLOOR)
                )
                out.append((node.lineno, sub if is_sub else base))
    return out


def violations(source: str, path: str, module: str, is_package: bool = False) -> list[str]:
    """What the floor rule forbids in one module's source, as ``path:line: module imports X ...``."""
    importer = area_of(module)
    if importer is None:
        return [f"{path}: module {module} belongs to no floor: add its area to FLOORS (and CONTRACTS.md)"]
    out = []
    for line, imported in harness_imports(ast.parse(source, path), module, is_package):
        target = area_of(imported)
        if target is None:
            out.append(f"{path}:{line}: {module} imports {imported}, which belongs to no floor")
        elif target != importer and FLOOR[target] >= FLOOR[importer]:
            where = "beside" if FLOOR[target] == FLOOR[importer] else "above"
            out.append(f"{path}:{line}: {module} ({importer}) imports {imported} ({target}), a floor {where} its own")
    return out


def _modules():
    for path in sorted(HARNESS.rglob("*.py")):
        yield path, module_name(path), path.name == "__init__.py"


def test_every_import_follows_the_floors():
    found = []
    for path, module, is_package in _modules():
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(HARNESS.parent)), module, is_package)
    assert not found, "floor rule (CONTRACTS.md) broken:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "module, source, bad",
    [
        ("harness.engine.train", "from harness.launch.grid import expand", "a floor above"),
        ("harness.engine.train", "def f():\n    import harness.cli", "a floor above"),  # in a function too
        ("harness.measure.flops", "from harness.report import tables", "a floor beside"),  # siblings
        ("harness.config", "from harness import report", "a floor above"),  # a submodule by name
        ("harness.models.shift", "from harness.data.video import VideoDataset", "a floor beside"),
        ("harness.results.rundir", "from harness.models import create_model", "a floor above"),
        ("harness.errors", "from harness.version import code_commit", "a floor beside"),
        ("harness.version", "from harness import __version__", "a floor beside"),
        ("harness.data.video", "from ..engine import train", "a floor above"),  # relative
        ("harness.data.video", "from harness.newarea import x", "belongs to no floor"),
        ("harness.newarea.x", "import os", "belongs to no floor"),
    ],
)
def test_a_forbidden_import_is_named_with_file_and_line(module, source, bad):
    found = violations("import json\n" + source, "some/file.py", module)
    assert len(found) == 1 and bad in found[0]
    if "newarea.x" not in module:
        assert found[0].startswith(f"some/file.py:{source.count(chr(10)) + 2}: {module}")


@pytest.mark.parametrize(
    "module, source",
    [
        ("harness.launch.grid", "from harness.engine.train import x\nfrom harness.config import RunConfig"),
        ("harness.engine.train", "from harness.engine import checkpoint\nfrom harness.measure import profile_model"),
        ("harness.measure.profile", "from harness import __version__\nfrom harness.models import create_model"),
        ("harness.reproduce", "from harness.launch.submit import run_grid\nfrom harness.report import write_report"),
        ("harness.config", "from harness.errors import ConfigError\nfrom harness.data import annotations"),
        ("harness.results.store", "from harness.results.rundir import RunDir\nfrom . import status"),
    ],
)
def test_allowed_imports(module, source):
    assert violations(source, "f.py", module) == []


# ------------------------------------------------------------------------------------------------
# the store reads run directories only through rundir.py

RUN_FILES = {rundir.CONFIG, rundir.METRICS, rundir.FINAL, rundir.CHECKPOINT, rundir.LOG, rundir.JOB, rundir.ERROR}
FILE_CONSTANTS = {"CONFIG", "METRICS", "FINAL", "CHECKPOINT", "LOG", "JOB", "ERROR"}
PATH_ATTRIBUTES = {n for n in dir(rundir.RunDir) if n.endswith("_path")}


def direct_reads(source: str, allowed_modules: set[str]) -> list[str]:
    """Ways a module could read a run directory other than through RunDir's readers: importing other
    harness modules or rundir's file names, naming a run file, using a RunDir file path."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names]
            mods = [mod] if mod else names
            for m in mods:
                if m and m.split(".")[0] == "harness" and m not in allowed_modules:
                    out.append(f"line {node.lineno}: imports {m}")
            if mod == "harness.results.rundir" and FILE_CONSTANTS & set(names):
                out.append(f"line {node.lineno}: imports run-file names {sorted(FILE_CONSTANTS & set(names))}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split("/")[-1] in RUN_FILES:
            out.append(f"line {node.lineno}: names the run file {node.value!r}")
        elif isinstance(node, ast.Attribute) and node.attr in PATH_ATTRIBUTES:
            out.append(f"line {node.lineno}: opens .{node.attr} itself")
    return out


def test_store_reads_run_directories_only_through_rundir():
    store = (HARNESS / "results" / "store.py").read_text(encoding="utf-8")
    found = direct_reads(store, {"harness.results.rundir", "harness.results.status", "harness.results.cache"})
    assert not found, "harness/results/store.py must read run directories through RunDir:\n" + "\n".join(found)
    cache = (HARNESS / "results" / "cache.py").read_text(encoding="utf-8")
    # predictions.parquet is read by its one reader (harness.results.predictions), given the RunDir's path
    found = [
        f
        for f in direct_reads(cache, {"harness.results.rundir", "harness.results.predictions"})
        if not f.endswith("opens .predictions_path itself")
    ]
    assert not found, "harness/results/cache.py must read run directories through RunDir:\n" + "\n".join(found)
    status = (HARNESS / "results" / "status.py").read_text(encoding="utf-8")
    assert [f for f in direct_reads(status, {"harness.results.rundir"}) if "imports" in f] == []


@pytest.mark.parametrize(
    "source",
    [
        "from harness.results.rundir import FINAL",
        "import json\nx = json.load(open(rd.path / 'final.json'))",
        "with open(rd.metrics_path) as f: pass",
        "from harness.launch.status import collect_status",
    ],
)
def test_a_direct_read_is_caught(source):
    assert direct_reads(source, {"harness.results.rundir"})


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (module -> modules it imports): strongly connected groups of 2 or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle():
    """No two modules import each other, directly or round a ring (imports inside functions count too: a
    circle there is one reason to change spread over two files, e.g. registry <-> weights)."""
    graph = {
        module: {m for _, m in harness_imports(ast.parse(path.read_text(encoding="utf-8")), module, pkg) if m != module}
        for path, module, pkg in _modules()
    }
    assert import_cycles(graph) == []
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # it finds them
