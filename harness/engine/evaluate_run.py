"""Re-evaluate a run directory's weights with other test views (`dsa-harness eval`), on CPU or GPU.

The evaluation is the training's own (``harness.engine.train.evaluate_dataset``: this rank's shard of
the test set through the one loader, all shards gathered, each video scored once), so ``eval`` of a
finished run with its own settings reproduces the test of its final.json. Under ``torchrun`` every
process evaluates its shard (gloo on CPU, nccl on CUDA with one GPU per process, ``cuda:LOCAL_RANK``)
and rank 0 writes the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch

from harness.config import NOT_IDENTITY, RunConfig, canonical_json, file_fingerprint, identity_diff
from harness.data import auto_num_workers
from harness.data.annotations import AnnotationError
from harness.engine.checkpoint import CheckpointError, load_checkpoint
from harness.engine.distributed import init_distributed
from harness.engine.train import build_data, evaluate_dataset, split_manifest
from harness.errors import ConfigError, MissingFileError, RunDirError, UsageError
from harness.models import create_model
from harness.models.weights import WeightLoadError, Weights, apply_weights, load_checkpoint_into
from harness.results.predictions import eval_predictions_path, write_predictions
from harness.results.rundir import RunDir, atomic_write_json

DEVICES = "cpu | cuda | cuda:N | auto"
AMP_CHOICES = ("auto", "none", "bf16", "fp16")
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def eval_device(device: str) -> torch.device:
    """The device ``eval`` runs on: ``cpu``, ``cuda`` (the current CUDA device), ``cuda:N`` or ``auto``
    (CUDA when visible, else the CPU). Raises UsageError for another value, or CUDA that is not there."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"--device {device!r}: must be one of {DEVICES}")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA device is visible; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def eval_amp(amp: str, device: torch.device, train_amp: str = "none") -> torch.dtype | None:
    """The autocast dtype of the evaluation (None: full precision). ``auto``: the run's ``train.amp`` on
    CUDA (what its own test used, so results stay comparable with final.json), none on the CPU;
    ``bf16`` / ``fp16`` / ``none`` as said, on either device (the CPU autocasts too, slowly)."""
    if amp not in AMP_CHOICES:
        raise UsageError(f"--amp {amp!r}: must be one of {', '.join(AMP_CHOICES)}")
    if amp == "auto":
        amp = train_amp if device.type == "cuda" and train_amp in AMP_DTYPES else "none"
    if amp == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UsageError(f"--amp bf16: {torch.cuda.get_device_name(device)} does not support bfloat16; use fp16")
    return AMP_DTYPES[amp]


NAMED_SETTINGS = ("eval.test_groups", "eval.crops", "eval.size", "eval.resize", "data.test")
"""Settings an eval result's file name spells out (``<groups>x<crops>``, ``-<size>px``, the list part)."""
UNCHANGING = ("eval.batch_size", *NOT_IDENTITY)
"""Settings that change how an evaluation runs but not its result: never in the name."""


def eval_settings(run: RunConfig, evaluated: RunConfig) -> tuple[dict, dict]:
    """(every dotted setting of ``evaluated`` that differs from the ``run``'s own -> its value, the part of
    those the result's file name does not spell out (:data:`NAMED_SETTINGS`) and that can change the
    result (not :data:`UNCHANGING`)). The eval json records the first; the second, hashed, names it."""
    a, b = run.to_dict(), evaluated.to_dict()

    def value(d: dict, dotted: str):
        for part in dotted.split("."):
            d = d.get(part) if isinstance(d, dict) else None
        return d

    changed = {k: value(b, k) for k in identity_diff(a, b)}
    return changed, {k: v for k, v in changed.items() if k not in NAMED_SETTINGS and k not in UNCHANGING}


def check_test_labels(data, num_classes: int, run: Path) -> None:
    """Refuse a test list whose labels the model cannot score (a label >= its ``num_classes``), or whose
    ``classes.json`` lists another number of classes, in one line naming the list, the line and the counts."""
    for r in data.test.records:
        if r.label >= num_classes:
            raise AnnotationError(
                r.source,
                r.line,
                f"label {r.label}, but the model of {run} has {num_classes} classes (0..{num_classes - 1}): "
                "give a test list of this run's classes (--test)",
            )
    listed = data.classes_listed
    if listed is not None and listed != num_classes:
        ref = Path(data.test.annotation_file or "").parent / "classes.json"
        raise AnnotationError(
            ref,
            None,
            f"lists {listed} classes, but the model of {run} has {num_classes}: the test list names another "
            "dataset's classes; give a test list of this run's classes (--test)",
        )


def _load_model(rd: RunDir, mcfg, checkpoint, checkpoint_format: str, changes: dict):
    """The run's model (its config with the eval's model options) loaded exactly from ``checkpoint`` (a file
    of any weights format) or the run's checkpoint.pt; a file whose tensors differ (another architecture,
    width or class count) is refused in one line naming the first mismatched tensor."""
    model = create_model(mcfg.replace(pretrained=None))
    fix = ""
    if any(k.startswith("model.") for k in changes):
        fix = "; evaluate with the run's model options (drop the -o / --set model.* that change its tensors)"
    try:
        if checkpoint:
            load_checkpoint_into(model, checkpoint, checkpoint_format, what="--checkpoint")
        else:
            state = load_checkpoint(rd.checkpoint_path)
            if not isinstance(state.get("model"), dict) or "fc.weight" not in state["model"]:
                raise CheckpointError(
                    f"{rd.checkpoint_path} holds no model state dict with a classifier (fc.weight): "
                    "not a training checkpoint of this harness"
                )
            own = {str(k): v for k, v in state.pop("model").items()}
            weights = Weights(str(rd.checkpoint_path), "harness", own, {k: k for k in own})
            apply_weights(model, weights, what=f"eval {rd.path}")
    except WeightLoadError as e:
        raise WeightLoadError(f"{e}{fix}") from None
    return model


def evaluate_run(
    run_dir: str | Path,
    *,
    test: str | None = None,
    test_groups: int | None = None,
    crops: int | None = None,
    device: str = "cpu",
    amp: str = "auto",
    workers: int | None = None,
    overrides: dict | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_format: str = "auto",
) -> dict:
    """Evaluate the latest checkpoint of ``run_dir`` with its config, changed by ``overrides``
    (``{"eval.crops": 1, "data.test": PATH, "eval.size": 256, ...}``, the ``--set`` rule) and the explicit
    arguments, on ``device`` (:func:`eval_device`) with autocast ``amp`` (:func:`eval_amp`) and
    ``workers`` loader processes (None: the run's ``data.num_workers``). ``checkpoint``: evaluate the weights
    of that file instead (a harness, official DSANet, mmaction2 or torchvision file, ``checkpoint_format`` or
    detected; loaded exactly into the run's model).

    Writes ``eval-<groups>x<crops>[-<size>px][-<checkpoint stem>][-<test list stem>-<hash>][-set<hash>].json``
    in the run folder (the crop part when the test crop is not the training one, the list part when the test
    list is not the run's own, the set part for any other setting that changes the result: :func:`eval_settings`;
    the result records them all as ``settings``), after its per-video rows ``eval-<...>.predictions.parquet``
    (same stem; ``harness.results.predictions``), and returns the result, which records the list it scored
    (``test_list``, ``test_list_sha256``, ``manifest``) and names its predictions file (``predictions``).
    Refused before anything is scored: test labels beyond the model's classes (:func:`check_test_labels`) and
    weights whose tensors differ from the run's model (one line naming the first);
    under torchrun, rank 0 writes and returns it, the other ranks return ``{}``."""
    rd = RunDir(run_dir)
    cfg = _read_run_config(rd, checkpoint)
    changes = _eval_changes(overrides, test, test_groups, crops)
    original_test = (cfg.get("data") or {}).get("test")
    rc = RunConfig.from_dict(cfg).with_overrides(changes) if changes else RunConfig.from_dict(cfg)
    data_cfg = replace(rc.data, train=None, val=None)
    if not data_cfg.test:
        raise ConfigError("no test set: pass --test ANNOTATION (or --set data.test=ANNOTATION)")
    workers = _loader_workers(workers, rc)
    dev = eval_device(device)
    amp_dtype = eval_amp(amp, dev, rc.train.amp)
    ev, mcfg = rc.eval, rc.model
    data = build_data(data_cfg, ev, mcfg.num_snippets, mcfg.num_frames, rc.seed)
    check_test_labels(data, mcfg.num_classes, rd.path)  # before any weights are read or any video scored
    model = _load_model(rd, mcfg, checkpoint, checkpoint_format, changes)
    result, columns, dev, ctx = _score(model, data, rc, dev, device, workers, amp_dtype)
    size, resize = ev.test_crop(rc.data)
    result.update(
        {
            "views": ev.views,
            "test_size": size,
            "test_resize": resize,
            "device": str(dev),
            "amp": {None: "none", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],
            "workers": workers,
            "world_size": ctx.world_size,
        }
    )
    if not ctx.is_main:
        return {}
    num_classes = int(model.fc.out_features)
    return _write_result(rd, cfg, rc, data, result, columns, num_classes, checkpoint, original_test, (size, resize))


def _read_run_config(rd: RunDir, checkpoint) -> dict:
    """The config.json of a train run folder that has weights to evaluate (its checkpoint.pt, or ``checkpoint``)."""
    if not rd.config_path.exists():
        raise MissingFileError(f"{rd.path} is not a run folder (no config.json)")
    if not checkpoint and not rd.checkpoint_path.exists():
        raise MissingFileError(f"{rd.path} has no checkpoint.pt to evaluate")
    try:
        cfg = rd.read_config()
        if not isinstance(cfg, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise RunDirError(f"{rd.config_path}: not a run config this harness can read ({e})") from None
    if cfg.get("task", "train") != "train":
        raise ConfigError(f"{rd.path} is a {cfg.get('task')} run: nothing to evaluate")
    return cfg


def _eval_changes(overrides: dict | None, test, test_groups, crops) -> dict:
    """The dotted settings the evaluation changes: ``overrides``, then the explicit arguments given."""
    changes = dict(overrides or {})
    if test:
        changes["data.test"] = test
    if test_groups:
        changes["eval.test_groups"] = test_groups
    if crops:
        changes["eval.crops"] = crops
    return changes


def _loader_workers(workers: int | None, rc: RunConfig) -> int:
    """Loader processes: ``workers``, else the run's ``data.num_workers``, else auto (as training resolves it)."""
    if workers is not None and workers < 0:
        raise UsageError(f"--workers {workers}: must be >= 0")
    if workers is None:  # the run's setting; None there: auto (as training resolves it)
        workers = rc.data.num_workers if rc.data.num_workers is not None else auto_num_workers()
    return workers


def _score(model, data, rc: RunConfig, dev: torch.device, device: str, workers: int, amp_dtype):
    """Score the test set with the training's own evaluation (under torchrun: this rank's shard, all
    gathered); returns (result, per-video columns, the device used, the distributed context)."""
    owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    ctx = init_distributed(dev.type)  # torchrun's RANK / WORLD_SIZE; one process otherwise
    dev = _rank_device(dev, device, ctx)
    ev = rc.eval
    try:
        result, columns = evaluate_dataset(
            model,
            data.test,
            views=ev.views,
            batch_size=ev.batch_size,
            data=data,
            device=dev,
            ctx=ctx,
            seed=rc.seed,
            workers=workers,
            amp_dtype=amp_dtype,
            save_scores=ev.save_scores,
        )
    finally:
        if ctx.enabled and owns_group:
            torch.distributed.destroy_process_group()
    return result, columns, dev, ctx


def _rank_device(dev: torch.device, device: str, ctx) -> torch.device:
    """This process's device: under torchrun with CUDA ``cuda:LOCAL_RANK`` (a named GPU is refused), else
    ``dev`` (plain ``cuda``: the current CUDA device); made the current CUDA device."""
    if ctx.enabled and dev.type == "cuda":
        if dev.index is not None:
            raise UsageError(
                f"--device {device} under torchrun: every process would use that one GPU; use --device cuda "
                "(each process takes cuda:LOCAL_RANK)"
            )
        dev = torch.device("cuda", ctx.local_rank)
    elif dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return dev


def _write_result(
    rd: RunDir,
    cfg: dict,
    rc: RunConfig,
    data,
    result: dict,
    columns,
    num_classes: int,
    checkpoint,
    original_test,
    crop: tuple[int, int],
) -> dict:
    """Complete ``result`` (test list, settings, manifest, predictions file) and write it with its per-video
    predictions into the run folder, under the name :func:`evaluate_run` describes; returns it."""
    ev, test_list = rc.eval, rc.data.test
    test_fp = file_fingerprint(test_list)
    result.update({"test_list": str(test_list), "test_list_sha256": test_fp})
    suffix = "" if crop == (rc.data.size, rc.data.resize) else f"-{crop[0]}px"
    suffix += f"-{Path(checkpoint).stem}" if checkpoint else ""
    if original_test is None or Path(test_list).resolve() != Path(original_test).resolve():
        suffix += f"-{Path(test_list).stem}-{test_fp.split(':', 1)[1][:8]}"
    settings, unnamed = eval_settings(RunConfig.from_dict(cfg), rc)
    result["settings"] = settings  # every setting that differs from the run's own (the name shows some)
    if unnamed:  # the others: a short hash of them in the name, so that no other result is overwritten
        suffix += f"-set{hashlib.sha256(canonical_json(unnamed).encode()).hexdigest()[:8]}"
    out = rd.path / f"eval-{ev.test_groups}x{ev.crops}{suffix}.json"
    skipped, classes = result["num_skipped"], data.classes_listed
    manifest = split_manifest(data.test, test_list, skipped=skipped, classes_listed=classes)
    result["manifest"] = {"test": manifest}
    predictions = eval_predictions_path(out)  # written before the json that names it
    meta = {"run_id": cfg.get("run_id") or rd.run_id, "list": str(test_list), "list_sha256": manifest["sha256"]}
    write_predictions(predictions, columns, {**meta, "num_classes": num_classes, "views": ev.views})
    result["predictions"] = predictions.name
    atomic_write_json(out, result)
    return result
