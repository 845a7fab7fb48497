"""Re-evaluate a run directory's weights with other test views (`dsa-harness eval`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from harness.config import RunConfig
from harness.data import auto_num_workers
from harness.engine.checkpoint import CheckpointError, load_checkpoint
from harness.engine.distributed import DistributedContext
from harness.engine.train import build_data, evaluate_dataset
from harness.errors import ConfigError, MissingFileError, RunDirError
from harness.models import create_model, model_from_checkpoint
from harness.results.rundir import RunDir, atomic_write_json


def evaluate_run(
    run_dir: str | Path,
    *,
    test: str | None = None,
    test_groups: int | None = None,
    crops: int | None = None,
    device: str = "cpu",
    overrides: dict | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_format: str = "auto",
) -> dict:
    """Evaluate the latest checkpoint of ``run_dir`` with its config, changed by ``overrides``
    (``{"eval.crops": 1, "data.test": PATH, ...}``, the ``--set`` rule) and the explicit arguments.
    ``checkpoint``: evaluate the weights of that file instead (a harness, official DSANet, mmaction2 or
    torchvision file, ``checkpoint_format`` or detected; loaded exactly into the run's model); the result goes
    to ``eval-<groups>x<crops>-<file stem>.json``."""
    rd = RunDir(run_dir)
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
    changes = dict(overrides or {})
    if test:
        changes["data.test"] = test
    if test_groups:
        changes["eval.test_groups"] = test_groups
    if crops:
        changes["eval.crops"] = crops
    rc = RunConfig.from_dict(cfg).with_overrides(changes) if changes else RunConfig.from_dict(cfg)
    data_cfg = replace(rc.data, train=None, val=None)
    if not data_cfg.test:
        raise ConfigError("no test set: pass --test ANNOTATION (or --set data.test=ANNOTATION)")
    ev, mcfg = rc.eval, rc.model
    data = build_data(data_cfg, ev, mcfg.num_snippets, mcfg.num_frames, rc.seed)
    if checkpoint:
        model = model_from_checkpoint(mcfg, checkpoint, checkpoint_format, what="--checkpoint")
    else:
        state = load_checkpoint(rd.checkpoint_path)
        if not isinstance(state.get("model"), dict) or "fc.weight" not in state["model"]:
            raise CheckpointError(
                f"{rd.checkpoint_path} holds no model state dict with a classifier (fc.weight): "
                "not a training checkpoint of this harness"
            )
        num_classes = state["model"]["fc.weight"].shape[0]
        model = create_model(mcfg.replace(num_classes=num_classes))
        model.load_state_dict(state["model"])
    result = evaluate_dataset(
        model,
        data.test,
        views=ev.views,
        batch_size=ev.batch_size,
        data=data,
        device=torch.device(device),
        ctx=DistributedContext(),
        seed=rc.seed,
        workers=data_cfg.num_workers if data_cfg.num_workers is not None else auto_num_workers(),
        amp_dtype=None,
    )
    result["views"] = ev.views
    suffix = f"-{Path(checkpoint).stem}" if checkpoint else ""
    atomic_write_json(rd.path / f"eval-{ev.test_groups}x{ev.crops}{suffix}.json", result)
    return result
