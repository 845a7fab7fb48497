"""The size rule (issue "engine as named steps"): no function over 80 lines and no file over 700 anywhere in
harness/ (a piece of the code readable in one screen; a file with one reason to change)."""

from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"
MAX_FUNCTION_LINES = 80
MAX_FILE_LINES = 700


def oversized(path: Path, root: Path = HARNESS.parent) -> list[str]:
    """``path: N lines`` when the file is too long, ``path:line name: N lines`` per function that is (paths
    relative to ``root``)."""
    source = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    out = []
    if len(source.splitlines()) > MAX_FILE_LINES:
        out.append(f"{where}: {len(source.splitlines())} lines (at most {MAX_FILE_LINES})")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                out.append(f"{where}:{node.lineno} {node.name}: {lines} lines (at most {MAX_FUNCTION_LINES})")
    return out


def test_no_function_or_file_over_the_size_rule():
    found = [line for path in sorted(HARNESS.rglob("*.py")) for line in oversized(path)]
    assert not found, "split these into named steps:\n" + "\n".join(found)


def test_the_rule_names_an_oversized_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    path = tmp_path / "m.py"
    path.write_text(f"def long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert oversized(path, tmp_path) == [f"m.py:1 long: {MAX_FUNCTION_LINES + 1} lines (at most {MAX_FUNCTION_LINES})"]
