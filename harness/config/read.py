"""Reading a run config: values checked against their field's type and normalised, the model section resolved
through its variant, YAML files (grids, recipes) read strictly, and dotted ``--set`` overrides applied.
See :mod:`harness.config`.
"""

from __future__ import annotations

import copy
import difflib
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from harness.config.sections import INT_LIMIT, SECTIONS, _check_number, all_keys, section_fields
from harness.errors import ConfigError, MissingFileError


def _closest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(options)}"


def _coerce(key: str, annotation: str, value: Any) -> Any:
    """Check ``value`` against a field's type (annotations are strings here) and normalise it:
    ints given to float fields become floats, lists become tuples."""
    optional = annotation.endswith("| None")
    base = annotation.removesuffix("| None").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}: null is not allowed (type {base})")
    bad = ConfigError(f"{key}={value!r} is invalid: expected {annotation}")
    if base == "bool":
        if not isinstance(value, bool):
            raise bad
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, float) and value.is_integer()):  # nan, inf and 2.5 too
                if isinstance(value, float) and not math.isfinite(value):
                    _check_number(key, value, value, integer=True)
                raise bad
            _check_number(key, int(value), value, integer=True)
            return int(value)
        _check_number(key, value, value, integer=True)
        return value
    if base == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        _check_number(key, float(value), float(value), integer=False)
        return float(value)
    if base == "str":
        if not isinstance(value, str):
            raise bad
        return value
    if base.startswith("tuple["):
        inner = base[6:-1].split(",")[0].strip()
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(f"{key}[{i}]", inner, v) for i, v in enumerate(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # a number in a union: data.num_workers
        if not math.isfinite(value) or abs(value) >= INT_LIMIT:  # (its range: the section's own check)
            raise ConfigError(f"{key}={value!r} is invalid: must be a finite number below 2**63")
    return value  # free-form (model.stage_masks): the model validates it


def _build_section(cls, section: str, values: Any):
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{section}: must be a mapping of options, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    kwargs = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"unknown option {section}.{k}" + _closest(k, sorted(known)))
        kwargs[k] = _coerce(f"{section}.{k}", str(known[k].type), v)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{section}: {e}") from None


def _resolve_model(values: Any):
    from harness.models.config import ModelConfig
    from harness.models.registry import resolve_config

    if not isinstance(values, dict):
        raise ConfigError(f"model: must be a mapping (variant, overrides), got {type(values).__name__}")
    values = dict(values)
    variant = values.pop("variant", None)
    if not variant or not isinstance(variant, str):
        raise ConfigError("model.variant is required (see `dsa-harness list`)")
    known = {f.name: f for f in fields(ModelConfig) if f.name != "name"}
    overrides = {}
    for k, v in values.items():
        if k not in known:
            raise ConfigError(f"unknown option model.{k}" + _closest(k, sorted(known)))
        overrides[k] = _coerce(f"model.{k}", str(known[k].type), v)
    try:
        return resolve_config(variant, **overrides)
    except (TypeError, ValueError) as e:  # ModelConfig's ConfigErrors too: their field gets the model. prefix
        msg = str(e)
        head = msg.split("=", 1)[0]
        if type(e).__name__ == "UnknownVariantError":
            msg = f"model.variant: {msg}"
        elif head in known:
            msg = f"model.{msg}"
        elif not msg.startswith("model."):
            msg = f"model: {msg}"
        raise ConfigError(msg) from None


RECIPE_KEYS = ("description", *SECTIONS, "resources")


def _strict_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return StrictLoader


YAML_MAX_NODES = 100_000
"""The most nodes a YAML file may expand to, every alias counted as a copy of what it names (a grid of
hundreds of runs is a few thousand): an alias bomb (9 levels of 9 aliases: 9**9 nodes) is refused before
anything is built from it."""


def _check_expansion(root, path: Path) -> None:
    """Refuse (ConfigError naming the file and line) a YAML node graph that expands to more than
    :data:`YAML_MAX_NODES` nodes, or that contains itself (a recursive alias)."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(
                f"{path}: line {node.start_mark.line + 1}: a YAML alias refers to itself; write the value out"
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = ()
        for child in children:
            total += size(child)
            if total > YAML_MAX_NODES:
                raise ConfigError(
                    f"{path}: line {node.start_mark.line + 1}: its YAML aliases expand to more than "
                    f"{YAML_MAX_NODES:,} values (an alias bomb?); write the values out or use fewer nested aliases"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """A YAML document (a byte-order mark accepted, a key given twice refused); ConfigError naming the file
    (and line) when missing or malformed, or when its aliases expand beyond :data:`YAML_MAX_NODES` values."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is accepted
    except FileNotFoundError:
        raise MissingFileError(f"{path}: {what} not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: {what} is not a UTF-8 text file ({type(e).__name__})") from None
    try:
        loader = _strict_loader()(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None


def load_recipe(path: str | os.PathLike, where: str = "recipe") -> dict:
    """A recipe file (``experiments/recipes/*.yaml``): a mapping of run-config sections (model, data,
    train, eval, profile; ``resources`` for grids) and an optional description. Grids ``include`` it,
    ``dsa-harness train --recipe`` starts from it."""
    path = Path(path)
    doc = read_yaml(path, f"recipe file (from {where})")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections ({', '.join(SECTIONS)})")
    for key, value in doc.items():
        if key not in RECIPE_KEYS:
            raise ConfigError(f"{path}: {key}: unknown recipe key" + _closest(str(key), list(RECIPE_KEYS)))
        if key != "description" and not isinstance(value, dict):
            raise ConfigError(f"{path}: {key}: must be a mapping")
    return doc


def set_dotted(config: dict, key: str, value: Any) -> None:
    """``config[a][b] = value`` for ``"a.b"``; mappings are merged into mappings."""
    parts = key.split(".")
    node = config
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {key}: {p} is not a mapping")
        node = nxt
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        node[last] = deep_merge(node[last], value)
    else:
        node[last] = copy.deepcopy(value)


def get_dotted(config: dict, key: str, default: Any = None) -> Any:
    node: Any = config
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return default
        node = node[p]
    return node


def deep_merge(a: dict, b: dict) -> dict:
    """``b`` merged into a copy of ``a`` (nested mappings merged, everything else replaced)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def check_dotted_key(key: str) -> None:
    """Refuse a ``--set`` key that names no field, suggesting the closest one."""
    section, _, name = key.partition(".")
    if key in ("seed", "task"):
        return
    if section not in SECTIONS or not name:
        raise ConfigError(
            f"--set {key}: keys are section.field with a section of {', '.join(SECTIONS)} "
            f"(or seed)" + _closest(key, all_keys())
        )
    if name not in section_fields(section):
        raise ConfigError(f"--set {key}: unknown field" + _closest(key, all_keys()))


def apply_overrides(config: dict, overrides: dict[str, Any] | list[tuple[str, Any]]) -> dict:
    """A copy of ``config`` with dotted overrides applied in order (each key checked first)."""
    out = copy.deepcopy(config)
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for key, value in items:
        check_dotted_key(key)
        set_dotted(out, key, value)
    return out
