"""A run folder before training: may it take this run? (another run's folder, files the harness did not
make, a finished run, a run whose inputs or harness changed are told apart here.)"""

from __future__ import annotations

from pathlib import Path

from harness.config import IDENTITY_VERSION, RunConfig, describe_diff, fingerprint_scope, identity_diff
from harness.engine.checkpoint import PREV_CHECKPOINT
from harness.engine.interrupt import PAUSED_MARKER
from harness.errors import RunDirError
from harness.results.lock import LOCK_FILE
from harness.results.rundir import PREDICTIONS, RunDir


def stored_identity(record: dict) -> dict:
    """The identity a config.json was written with: its sections resolved again, with the input
    fingerprints it recorded (not today's files). Records of the earlier identity scheme (no
    ``identity_version``) have no fingerprints: their sections alone are compared."""
    ident = RunConfig.from_dict(record).identity()
    if record.get("identity_version") == IDENTITY_VERSION and isinstance(record.get("inputs"), dict):
        ident["inputs"] = record["inputs"]
    else:
        ident.pop("inputs", None)
        ident.pop("identity_version", None)
    return ident


RUN_FILES = (
    "config.json",
    "metrics.jsonl",
    "final.json",
    PREDICTIONS,
    "checkpoint.pt",
    PREV_CHECKPOINT,
    "log.txt",
    "error.json",
    "job.json",
    PAUSED_MARKER,
)
"""Names the engine writes in a run folder: in a folder without config.json they belong to someone else."""


@fingerprint_scope()  # its identity checks look at the videos once
def open_run_dir(
    config: dict | RunConfig, run_dir: str | Path, *, force: bool = False
) -> tuple[RunDir, RunConfig, dict | None]:
    """Check that ``run_dir`` can take ``config`` and return (run dir, resolved config, final record
    or None). A folder holding another run (different resolved config, or the same config over
    changed input files) is refused with ``RunDirError`` naming the keys that differ; a finished run
    of the same config returns its final record (nothing is redone). A non-empty folder without
    config.json holds files the harness did not make: refused, unless ``force`` (then files of other
    names stay where they are; a file the run would write is still refused, never overwritten)."""
    rc = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    given = config if isinstance(config, dict) else {}
    rd = RunDir(run_dir)
    if rd.path.exists() and not rd.path.is_dir():
        raise RunDirError(f"{rd.path} is a file, not a run folder; give another --out")
    if rd.path.is_dir() and not rd.config_path.exists():
        foreign = sorted(p.name for p in rd.path.iterdir() if not p.name.startswith(".") and p.name != LOCK_FILE)
        clash = [n for n in foreign if n in RUN_FILES]
        if clash or (foreign and not force):
            raise RunDirError(
                f"{rd.path} holds files the harness did not make ({', '.join((clash or foreign)[:4])}"
                f"{', ...' if len(clash or foreign) > 4 else ''}) and no config.json; "
                + (
                    "they would be overwritten: give another --out"
                    if clash
                    else "give an empty or new --out, or --force"
                )
            )
    new = rc.identity()
    on_disk = None
    if rd.config_path.exists():
        try:
            on_disk = rd.read_config()
            if not isinstance(on_disk, dict):
                raise ValueError("not a JSON object")
            old = stored_identity(on_disk)
        except (ValueError, OSError) as e:
            raise RunDirError(
                f"{rd.config_path}: not a run config this harness can read ({e}); use another --out folder"
            ) from None
        cmp_new = {k: v for k, v in new.items() if k in old}
        keys = identity_diff(old, cmp_new)
        if keys:
            raise RunDirError(
                f"{rd.path} holds another run ({describe_diff(old, cmp_new, keys)}); use another "
                "--out folder, or the run's own settings to resume or re-read it"
            )
    for record in (given, on_disk or {}):
        stored = record.get("run_id")
        if stored and record.get("identity_version") == IDENTITY_VERSION and stored != rc.run_id:
            keys = identity_diff(stored_identity(record), new)
            raise RunDirError(
                f"{rd.path}: run {stored} now resolves to run id {rc.run_id} "
                f"({describe_diff(stored_identity(record), new, keys) or 'harness defaults changed'}); "
                "its inputs or the harness changed since it was configured: submit it again"
            )
    return rd, rc, rd.read_final()
