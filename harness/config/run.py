"""RunConfig: one run, fully resolved (from_dict, to_dict, identity, run_id, record), and
:func:`config_problems`. See :mod:`harness.config`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from harness.config.identity import (
    CARRIED_KEYS,
    IDENTITY_VERSION,
    INPUT_FILES,
    NOT_IDENTITY,
    file_fingerprint,
    fingerprint_scope,
    run_id_of,
    videos_fingerprint,
)
from harness.config.read import _build_section, _closest, _coerce, _resolve_model, apply_overrides
from harness.config.sections import (
    RUN_KEYS,
    SECTION_TYPES,
    SECTIONS,
    SECTIONS_BY_TASK,
    TASKS,
    DataConfig,
    EvalConfig,
    ProfileConfig,
    TrainConfig,
    _classes_json,
    _plain,
    count_classes,
    model_dict,
)
from harness.errors import ConfigError


@dataclass(frozen=True)
class RunConfig:
    """One run, fully resolved. Build with :meth:`from_dict`; see the docstring of harness.config."""

    task: str
    seed: int
    model: Any  # harness.models.ModelConfig
    data: DataConfig | None = None
    train: TrainConfig | None = None
    eval: EvalConfig | None = None
    profile: ProfileConfig | None = None

    # construction ------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, config: Any) -> RunConfig:
        """Validate and resolve a nested config dict (see the docstring of harness.config). Raises ConfigError
        naming the dotted key (and the closest valid one for an unknown key)."""
        if not isinstance(config, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(config).__name__}")
        unknown = [k for k in config if k not in RUN_KEYS and k not in CARRIED_KEYS]
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r}" + _closest(str(unknown[0]), list(RUN_KEYS)))
        task = config.get("task", "train")
        if task not in TASKS:
            raise ConfigError(f"task={task!r} is invalid: allowed: {', '.join(TASKS)}")
        seed = _coerce("seed", "int", config.get("seed", 0))
        used = SECTIONS_BY_TASK[task]
        for section in SECTIONS:
            if section not in used and config.get(section):
                raise ConfigError(f"{section}: not used by task {task} (sections: {', '.join(used)})")
        sections = {s: _build_section(SECTION_TYPES[s], s, config.get(s)) for s in used if s != "model"}
        model_values = dict(config.get("model") or {})
        model = _resolve_model(model_values)
        if task == "train" and "num_classes" not in model_values:
            model = model.replace(num_classes=count_classes(sections["data"]))
        if task == "train":
            sections["eval"].test_crop(sections["data"])  # resize >= crop size of the test views
            k, batch = sections["data"].clips_per_decode, sections["train"].batch_size
            if batch % k:
                raise ConfigError(
                    f"train.batch_size={batch} is not a multiple of data.clips_per_decode={k}: a batch holds "
                    f"batch_size / k videos of k samples each; use e.g. train.batch_size={max(k, batch - batch % k)}"
                )
        return cls(task=task, seed=seed, model=model, **sections)

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with ``{"section.key": value}`` applied (the ``--set`` rule)."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), overrides))

    # forms -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fully resolved canonical form (config.json): every field of the task's sections."""
        out: dict[str, Any] = {"task": self.task, "seed": self.seed, "model": model_dict(self.model)}
        for section in SECTIONS_BY_TASK[self.task]:
            if section != "model":
                out[section] = _plain(asdict(getattr(self, section)))
        return out

    def inputs(self) -> dict[str, str]:
        """Fingerprints of the input files (``{"data.train": "sha256:...", ...}``), absent ones left out."""
        flat = {"model.pretrained": self.model.pretrained}
        if self.data is not None:
            flat.update({f"data.{k}": getattr(self.data, k) for k in ("train", "val", "test", "classes")})
            cj = _classes_json(self.data)
            if cj and os.path.isfile(cj):
                flat["data.classes_json"] = cj
        out = {k: fp for k, p in flat.items() if (fp := file_fingerprint(p)) is not None}
        if self.data is not None:  # the videos the lists name (videos_fingerprint), not only the lists' text
            for split in ("train", "val", "test"):
                if out.get(f"data.{split}", "path:").startswith("sha256:"):
                    out[f"data.{split}.videos"] = videos_fingerprint(self.data, split)
        return out

    def identity(self) -> dict:
        """What the run id hashes: :meth:`to_dict` without paths and :data:`NOT_IDENTITY`, plus
        :meth:`inputs` and :data:`IDENTITY_VERSION`. The test crop (``eval.size``, ``eval.resize``)
        enters by its effective value (:meth:`EvalConfig.test_crop`) and only when it differs from the
        training crop: a run that tests at its training size keeps the id it had before those fields
        existed, however it spells them. ``train.stop_on_nonfinite`` enters only when false (the default,
        true, changes no result of a run whose loss stays finite: such runs keep their ids);
        ``data.clips_per_decode`` only when not 1 (the default, the samples of before)."""
        d = self.to_dict()
        for dotted in (*INPUT_FILES, *NOT_IDENTITY):
            section, key = dotted.split(".")
            if section in d:
                d[section].pop(key, None)
        if self.eval is not None:  # the test crop by its effective value; left out when it is the training one
            size, resize = self.eval.test_crop(self.data)
            d["eval"].pop("size", None)
            d["eval"].pop("resize", None)
            if (size, resize) != (self.data.size, self.data.resize):
                d["eval"].update(size=size, resize=resize)
        if self.train is not None and self.train.stop_on_nonfinite:  # the default: runs keep their earlier ids
            d["train"].pop("stop_on_nonfinite", None)
        if self.data is not None and self.data.clips_per_decode == 1:  # the default: runs keep their earlier ids
            d["data"].pop("clips_per_decode", None)
        d["inputs"] = self.inputs()
        d["identity_version"] = IDENTITY_VERSION
        return d

    @property
    def run_id(self) -> str:
        return run_id_of(self.identity())

    @property
    def provisional(self) -> bool:
        """True when an input file could not be read: the id then hashes its path, not its contents."""
        return any(v.startswith("path:") for v in self.inputs().values())

    @fingerprint_scope()
    def record(self, **carried: Any) -> dict:
        """The dict written to config.json: :meth:`to_dict` + ``run_id``, ``identity_version``,
        ``inputs`` and the carried keys given (grid, resources)."""
        return {
            **self.to_dict(),
            "run_id": self.run_id,
            "identity_version": IDENTITY_VERSION,
            "inputs": self.inputs(),
            **carried,
        }


def config_problems(config: dict) -> list[str]:
    """Every problem of a config that :meth:`RunConfig.from_dict` refuses, not just the first: each field
    is tried alone on the task's defaults (with the model variant), so two bad fields give two messages;
    a problem only their combination has is the one message from_dict gives. Empty when it resolves."""
    try:
        RunConfig.from_dict(config)
        return []
    except ConfigError as e:
        first = str(e)
    if not isinstance(config, dict):
        return [first]
    base = {"task": config.get("task", "train"), "model": {"variant": (config.get("model") or {}).get("variant")}}
    if base["task"] == "train":  # fields are tried where the data question (num_classes) does not arise
        base["model"]["num_classes"] = 1
    fields = [
        (section, key, value)
        for section in SECTIONS
        if isinstance(config.get(section), dict)
        for key, value in config[section].items()
        if not (section == "model" and key == "variant")
    ]

    def attempt(items) -> str | None:
        doc = {**base, "model": dict(base["model"])}
        for section, key, value in items:
            doc.setdefault(section, {})[key] = value
        try:
            RunConfig.from_dict(doc)
        except ConfigError as e:
            return str(e)
        except (TypeError, ValueError):
            pass
        return None

    alone = [(f, attempt([f])) for f in fields]
    good = [f for f, message in alone if message is None]
    # a field refused alone is tried again beside the fields that are fine alone (data.resize=32 is valid
    # beside the config's data.size=32, not beside the default 224): only what stays refused is its problem
    found = [message for f, message in alone if message is not None and attempt([*good, f]) is not None]
    return list(dict.fromkeys(found)) or [first]
