"""How `--help` is laid out: prose paragraphs of a description or epilog wrapped to the terminal (at most 100
columns), lines that start with spaces (examples, tables, formulas) kept as written.

    parser = argparse.ArgumentParser(..., formatter_class=HelpFormatter)

This module imports nothing of the harness (the bottom floor): every command module shares it.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap

MAX_WIDTH = 100
"""Help is wrapped to the terminal's width, at most this many columns."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``RawDescriptionHelpFormatter`` (layout kept) whose unindented prose paragraphs are filled to the width;
    option help and defaults as argparse lays them out, within ``MAX_WIDTH`` columns."""

    def __init__(self, prog, indent_increment=2, max_help_position=28, width=None):
        if width is None:
            width = min(MAX_WIDTH, shutil.get_terminal_size((MAX_WIDTH, 24)).columns) - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def _fill_text(self, text, width, indent):
        out = []
        for kind, lead, hang, body in _blocks(text):
            if kind == "blank":
                out.append("")
            elif kind == "prose":
                out.extend(textwrap.wrap(body, width, initial_indent=indent, subsequent_indent=indent) or [indent])
            elif len(indent) + lead + len(body) <= width:
                out.append(indent + " " * lead + body)
            else:
                out.extend(wrap_laid_out(indent + " " * lead + body, width, hang + len(indent)))
        return "\n".join(out)


def _blocks(text: str) -> list[tuple[str, int, int, str]]:
    """``text`` as (kind, indentation, hanging indentation, text) blocks: ``prose`` (consecutive unindented lines,
    one paragraph), ``row`` (an indented line, with the lines under it that continue it at its hanging column),
    ``blank``."""
    blocks: list[list] = []
    for line in text.splitlines():
        body = line.lstrip()
        lead = len(line) - len(body)
        last = blocks[-1] if blocks else None
        if not body:
            blocks.append(["blank", 0, 0, ""])
        elif lead == 0:
            if last is not None and last[0] == "prose":
                last[3] += " " + body
            else:
                blocks.append(["prose", 0, 0, body])
        elif (
            last is not None
            and last[0] == "row"
            and lead == last[2]
            and lead > last[1]
            and not body.startswith(COMMANDS)
        ):
            last[3] += " " + body  # a continuation line of the row above
        else:
            gap = line.find("  ", lead)
            hang = lead + 4
            if gap > lead:
                start = gap
                while start < len(line) and line[start] == " ":
                    start += 1
                if start < len(line):
                    hang = start
            blocks.append(["row", lead, hang, body])
    return [tuple(b) for b in blocks]


COMMANDS = ("dsa-harness ", "python ", "torchrun ", "make ")


def wrap_laid_out(line: str, width: int, hang: int | None = None) -> list[str]:
    """An indented line too long for ``width``: a command is continued with `` \\`` (it still pastes into a
    shell); other text continues under column ``hang`` (a table row: under its text), else four columns in."""
    body = line.lstrip()
    lead = len(line) - len(body)
    if body.startswith(COMMANDS):
        rows, current = [], " " * lead
        for w in body.split(" "):
            if len(current) + len(w) + 3 > width and current.strip():
                rows.append(current.rstrip() + " \\")
                current = " " * (lead + 4)
            current += w + " "
        return [*rows, current.rstrip()]
    hang = lead + 4 if hang is None or hang >= width // 2 + 10 else hang
    return textwrap.wrap(line, width, subsequent_indent=" " * hang) or [line]


__all__ = ["COMMANDS", "MAX_WIDTH", "HelpFormatter", "wrap_laid_out"]
