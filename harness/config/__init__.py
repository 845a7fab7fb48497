"""The run configuration: one typed, frozen, validated config from grid and CLI to config.json and run id.

A run is described by :class:`RunConfig`, with sections::

    task      "train" | "profile"
    seed      int
    model     ModelConfig (harness.models): the variant's registered defaults + overrides
    data      DataConfig   (train runs)
    train     TrainConfig  (train runs)
    eval      EvalConfig   (train runs)
    profile   ProfileConfig (profile runs)

Everything enters through :meth:`RunConfig.from_dict` (a nested dict: a grid's run, a recipe file
merged with ``--set section.key=value`` overrides, a config.json): unknown keys are refused naming
the dotted key and the closest valid one, values are type-checked and normalised (``1`` and ``1.0``
for a float field, ``stage_masks: paper`` and the explicit masks of the paper placement are one value).
:meth:`RunConfig.to_dict` is the fully resolved canonical form written to config.json: every field
present, defaults filled in, only the sections the task uses.

**Run identity.** ``run_id`` = first 12 hex digits of the SHA-256 of the canonical JSON of
:meth:`RunConfig.identity`: the resolved config without the fields that cannot change a result
(:data:`NOT_IDENTITY`: worker counts, decode threads, the in-memory cache, CPU threads, checkpoint
spacing, the dataset root) and with every input *file* (annotation lists, class index, pretrained
weights: :data:`INPUT_FILES`) replaced by a hash of its contents, and the videos each list names by
a cheap fingerprint of theirs (:func:`videos_fingerprint`: size + the first 4 KiB of every video, paths
relative to the root). So one run spelled four ways has one id; a changed default changes it; moving a
dataset keeps it; editing a split changes it; equal lists over other (damaged, re-encoded) videos differ;
and a declared ``data.name`` tells two datasets with equal lists and videos apart. Resources and launcher
options are never part of it. ``IDENTITY_VERSION`` is hashed too: run folders made under an earlier scheme
(whose config.json has no or an older ``identity_version``: 1 hashed the unresolved config, 2 the lists
without their videos) are recognised as such, never silently reused.

A file that cannot be read is fingerprinted by its path (``path:...``) and the id is *provisional*
(:attr:`RunConfig.provisional`): ``sweep show --no-check-data`` prints such ids, submitting refuses.

This package imports neither torch nor decord: expanding a 200-run grid takes milliseconds.

The package, one reason to change per module (each imports only those above it; this ``__init__`` re-exports
their names, so ``from harness.config import X`` is the one way in)::

    sections.py   the section dataclasses and their validation, FIELD_RANGES, the settable fields
    read.py       value coercion, the model section, YAML / recipe files, dotted --set overrides
    identity.py   run identity: IDENTITY_VERSION, NOT_IDENTITY, input fingerprints (their caches and
                  fingerprint_scope), canonical JSON, run ids, identity diffs
    cli.py        --set on the command line and the field reference of --help
    run.py        RunConfig (from_dict, to_dict, identity, record) and config_problems
"""

from harness.config.cli import add_set_argument, fields_help, parse_set
from harness.config.identity import (
    CARRIED_KEYS,
    IDENTITY_VERSION,
    INPUT_FILES,
    NOT_IDENTITY,
    VIDEO_SAMPLE_BYTES,
    canonical_json,
    describe_diff,
    file_fingerprint,
    fingerprint_scope,
    identity_diff,
    run_id_of,
    videos_fingerprint,
)
from harness.config.read import (
    RECIPE_KEYS,
    YAML_MAX_NODES,
    apply_overrides,
    check_dotted_key,
    deep_merge,
    get_dotted,
    load_recipe,
    read_yaml,
    set_dotted,
)
from harness.config.run import RunConfig, config_problems
from harness.config.sections import (
    AMP_MODES,
    FIELD_RANGES,
    INT_LIMIT,
    LOG_SINKS,
    MODEL_HELP,
    RUN_KEYS,
    SECTION_TYPES,
    SECTIONS,
    SECTIONS_BY_TASK,
    SEED_MAX,
    TASKS,
    DataConfig,
    EvalConfig,
    ProfileConfig,
    TrainConfig,
    all_keys,
    count_classes,
    model_dict,
    range_text,
    section_fields,
    stage_masks_text,
)
from harness.errors import ConfigError, MissingFileError

__all__ = [
    "IDENTITY_VERSION",
    "INPUT_FILES",
    "NOT_IDENTITY",
    "DataConfig",
    "EvalConfig",
    "ProfileConfig",
    "RunConfig",
    "TrainConfig",
    "all_keys",
    "apply_overrides",
    "canonical_json",
    "check_dotted_key",
    "count_classes",
    "deep_merge",
    "describe_diff",
    "fields_help",
    "file_fingerprint",
    "fingerprint_scope",
    "videos_fingerprint",
    "get_dotted",
    "identity_diff",
    "load_recipe",
    "model_dict",
    "parse_set",
    "read_yaml",
    "run_id_of",
    "section_fields",
    "set_dotted",
    "stage_masks_text",
    # imported from harness.config too (the names above are the original __all__)
    "AMP_MODES",
    "CARRIED_KEYS",
    "FIELD_RANGES",
    "INT_LIMIT",
    "LOG_SINKS",
    "MODEL_HELP",
    "RECIPE_KEYS",
    "RUN_KEYS",
    "SECTIONS",
    "SECTIONS_BY_TASK",
    "SECTION_TYPES",
    "SEED_MAX",
    "TASKS",
    "VIDEO_SAMPLE_BYTES",
    "YAML_MAX_NODES",
    "ConfigError",
    "MissingFileError",
    "add_set_argument",
    "config_problems",
    "range_text",
]
