"""Numbers as printed: significant figures, so that a tiny model's cost (0.02131 GFLOPs) keeps as many
digits as a big one's (167.9), and an interval is printed with its centre's decimals.

    format_sig(167.885)              # '167.9'
    format_sig(0.021312)             # '0.02131'
    format_sig(1007.31)              # '1007'  (the integer digits are never dropped: 12346, not 1.235e4)
    format_interval(1.0123, 0.991, 1.034, digits=3)   # '1.01 [0.99, 1.03]'

This module imports nothing (the bottom floor): the report tables and ``dsa-harness profile`` share it.
"""

from __future__ import annotations

import math


def _missing(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def sig_decimals(x: float, digits: int = 4) -> int:
    """Decimals that show ``x`` with ``digits`` significant figures (0 for numbers with that many integer
    digits or more, and for 0)."""
    if _missing(x) or float(x) == 0 or math.isinf(float(x)):
        return 0
    x = abs(float(x))
    decimals = max(0, digits - 1 - math.floor(math.log10(x)))
    rounded = round(x, decimals)  # 9.99996 -> 10.0000: one digit more before the point, one less after
    if rounded and math.floor(math.log10(rounded)) > math.floor(math.log10(x)):
        decimals = max(0, decimals - 1)
    return decimals


def format_sig(x, digits: int = 4) -> str:
    """``x`` with ``digits`` significant figures in fixed-point notation; '' for None or NaN."""
    if _missing(x):
        return ""
    x = float(x)
    if math.isinf(x):
        return str(x)
    return f"{x:.{sig_decimals(x, digits)}f}"


def format_interval(x, low, high, digits: int = 4, *, decimals: int | None = None, signed: bool = False) -> str:
    """``x [low, high]``, all with the decimals that give ``x`` ``digits`` significant figures (or with
    ``decimals``, e.g. for ratios near 1 that a column shows alike); only ``x`` when a bound is missing (an
    interval is never made up); '' when ``x`` is. ``signed``: each number with its sign, for differences
    (``+0.6 [+0.1, +1.1]``; zero prints as ``+0.0``)."""
    if _missing(x):
        return ""
    decimals = sig_decimals(x, digits) if decimals is None else decimals
    spec = f"{'+' if signed else ''}.{decimals}f"
    show = lambda v: format(float(v) + 0.0 if signed else float(v), spec)  # + 0.0: a zero difference is +0.0
    if _missing(low) or _missing(high):
        return show(x)
    return f"{show(x)} [{show(low)}, {show(high)}]"


__all__ = ["format_interval", "format_sig", "sig_decimals"]
