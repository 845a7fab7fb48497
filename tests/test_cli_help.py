"""Every command's --help is written for a person: no metavar argparse made up from a destination name
(`--epochs CFG__TRAIN__EPOCHS`), and it renders within 100 columns."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, name: str = "dsa-harness"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


PARSERS = list(_parsers(build_parser()))


def test_every_command_is_walked():
    names = {n for n, _ in PARSERS}
    assert {"dsa-harness train", "dsa-harness eval", "dsa-harness sweep show", "dsa-harness report"} <= names


@pytest.mark.parametrize("name,parser", PARSERS, ids=[n for n, _ in PARSERS])
def test_no_generated_metavar(name, parser):
    generated = [
        "/".join(a.option_strings)
        for a in parser._actions
        if a.option_strings
        and a.nargs != 0
        and a.metavar is None
        and a.choices is None
        and not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))
        and (a.dest.upper() != a.option_strings[-1].lstrip("-").replace("-", "_").upper() or "__" in a.dest)
    ]
    assert not generated, f"{name}: give these options a metavar that says what the value is: {generated}"


@pytest.mark.parametrize("name,parser", PARSERS, ids=[n for n, _ in PARSERS])
def test_help_fits_100_columns(name, parser, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = parser.format_help()
    long = [line for line in text.splitlines() if len(line) > 100 and "://" not in line]
    assert not long, f"{name}: help lines over 100 columns: {long[:3]}"
