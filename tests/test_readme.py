"""Every `dsa-harness ...` command the README and the `--help` examples show parses against the real argument
parser (cheap: nothing runs), so a renamed flag breaks CI instead of a reader's first try."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def shell_commands(text: str) -> list[str]:
    """`dsa-harness ...` command lines of shell text: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line.startswith("dsa-harness "):
            continue
        out.append(shlex.join(shlex.split(line, comments=True)))
    return out


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [c for block in blocks for c in shell_commands(block)]


def help_commands() -> list[str]:
    """The example lines of every (sub-)command's help epilog."""
    parser = build_parser()
    found = []

    def walk(p: argparse.ArgumentParser) -> None:
        found.extend(shell_commands(p.epilog or ""))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    walk(parser)
    return found


class _Refused(Exception):
    pass


def _parse(command: str) -> argparse.Namespace:
    parser = build_parser()

    def error(message):  # argparse would print and exit; raise with the message instead
        raise _Refused(message)

    def patch(p: argparse.ArgumentParser) -> None:
        p.error = error
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    patch(sub)

    patch(parser)
    return parser.parse_args(shlex.split(command)[1:])


def test_the_readme_quick_tour_has_commands():
    commands = readme_commands()
    assert len(commands) >= 10
    assert any(c.startswith("dsa-harness train ") for c in commands)
    assert any(c.startswith("dsa-harness sweep submit ") for c in commands)


@pytest.mark.parametrize("command", readme_commands() + help_commands())
def test_documented_command_parses(command):
    args = _parse(command)
    assert getattr(args, "func", None) is not None, f"{command!r} names no command"


def test_a_broken_example_is_caught():
    with pytest.raises(_Refused, match="unrecognized arguments"):
        _parse("dsa-harness sweep submit experiments/profile.yaml -p partition=gpu")
