"""The run config on the command line: ``--set KEY=VALUE`` (read by :func:`parse_set`, added by
:func:`add_set_argument`) and the ``--set`` field reference printed by ``--help`` (:func:`fields_help`).
See :mod:`harness.config`.
"""

from __future__ import annotations

import json
from typing import Any

from harness.config.sections import SECTIONS, _plain, section_fields


def parse_set(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set`` / ``-o``: the value is read as JSON when it parses (numbers, lists,
    true/false/null), else kept as a string (``position=res_3``). argparse type: raises ArgumentTypeError."""
    import argparse

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def add_set_argument(parser: Any, help: str) -> None:
    """The ``--set KEY=VALUE`` option (repeatable, into ``args.sets`` as (key, value) pairs) of every command
    that takes run-config overrides: train, eval, sweep show|submit|status|cancel, reproduce."""
    parser.add_argument(
        "--set", dest="sets", type=parse_set, action="append", default=[], metavar="KEY=VALUE", help=help
    )


def fields_help(sections: tuple[str, ...] = SECTIONS) -> str:
    """One line per settable field with its default: the ``--set`` reference printed by ``--help``."""
    lines = []
    for s in sections:
        for k, (default, _type, text) in section_fields(s).items():
            shown = "(variant's)" if s == "model" else json.dumps(_plain(default))
            lines.append(f"  {s}.{k} = {shown}".ljust(44) + f" {text}")
    return "\n".join(lines)
