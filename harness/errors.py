"""The project's own error types: what a user can fix, as opposed to a bug.

``dsa-harness`` prints a :class:`HarnessError` as one line (``dsa-harness COMMAND: error: ...``) and
exits with code 2 (``dsa-harness --debug``: after its traceback); any other exception is a bug and keeps
its traceback (exit 1). Each type also derives from the built-in it refines (``ValueError``,
``FileNotFoundError``), so library callers that catch those keep working; the areas define the
narrower ones next to their code (``AnnotationError``, ``UnknownVariantError``, ``WeightLoadError``,
``CheckpointError``, ``CorruptVideoError``, ``GridError``). This module imports nothing: every floor
of the package may raise these.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input or a state the user can fix; the message names the file / field and the fix."""


class UsageError(HarnessError, ValueError):
    """A command line that cannot be carried out as given (conflicting or malformed options)."""


class ConfigError(HarnessError, ValueError):
    """A run configuration (grid, recipe, ``--set``, config.json) with an unknown key or a bad value."""


class RunDirError(HarnessError, ValueError):
    """A run folder that cannot take this command (it holds another run, or a finished one)."""


class PredictionsError(RunDirError):
    """A per-video predictions file that cannot be read as one (missing, truncated, corrupt, another row
    count than its manifest's); raised only when the file is read."""


class MissingFileError(HarnessError, FileNotFoundError):
    """An input file (annotation list, grid, recipe, checkpoint) that does not exist."""


class HarnessWarning(UserWarning):
    """Input that is accepted but probably not what was meant (a video listed twice, splits of other classes);
    ``dsa-harness`` prints it as one line ``dsa-harness COMMAND: warning: MESSAGE`` on stderr."""


__all__ = [
    "ConfigError",
    "HarnessError",
    "HarnessWarning",
    "MissingFileError",
    "PredictionsError",
    "RunDirError",
    "UsageError",
]
