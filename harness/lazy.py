"""Public names of a package loaded on first use (PEP 562): importing one submodule (the CLI imports
``harness.<area>.commands``) then does not import the area's heavy dependencies (torch, pandas, matplotlib).

    # harness/<area>/__init__.py
    from harness.lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, {"create_model": "harness.models.registry"})

``exports`` maps each public name to its module, or to ``(module, name in the module)`` for a renamed one.
The first look-up imports the module and caches the value in the package, so later ones cost nothing.
This module imports nothing from harness.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def lazy_exports(
    package: str, exports: dict[str, str | tuple[str, str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """(``__getattr__``, ``__dir__``, ``__all__``) of ``package`` whose public names live in ``exports``."""
    table = {name: (where, name) if isinstance(where, str) else where for name, where in exports.items()}

    def __getattr__(name: str) -> object:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = table[name]
        value = getattr(importlib.import_module(module), attr)
        vars(sys.modules[package])[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted([*vars(sys.modules[package]), *table])

    return __getattr__, __dir__, sorted(table)
