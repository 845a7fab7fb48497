"""Re-evaluate a run directory's weights with other test views (`dsa-harness eval`)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.engine.checkpoint import load_checkpoint
from harness.engine.config import DataConfig, EvalConfig
from harness.engine.distributed import DistributedContext
from harness.engine.train import build_data, evaluate_dataset
from harness.models import create_model, resolve_config
from harness.results.rundir import RunDir, atomic_write_json


def evaluate_run(run_dir: str | Path, *, test: str | None = None, test_groups: int | None = None,
                 crops: int | None = None, device: str = "cpu") -> dict:
    rd = RunDir(run_dir)
    if not rd.config_path.exists():
        raise FileNotFoundError(f"{rd.path} is not a run folder (no config.json)")
    if not rd.checkpoint_path.exists():
        raise FileNotFoundError(f"{rd.path} has no checkpoint.pt to evaluate")
    cfg = rd.read_config()
    data_cfg = DataConfig(**{**cfg["data"], "train": None, "val": None, "test": test or cfg["data"]["test"]})
    if not data_cfg.test:
        raise ValueError("no test set: pass --test ANNOTATION")
    ev = EvalConfig(**{**cfg["eval"], **({"test_groups": test_groups} if test_groups else {}),
                       **({"crops": crops} if crops else {})})
    overrides = {k: v for k, v in cfg["model"].items() if k != "variant"}
    mcfg = resolve_config(cfg["model"]["variant"], **overrides)
    data = build_data(data_cfg, ev, mcfg.num_snippets, mcfg.num_frames, cfg["seed"])
    state = load_checkpoint(rd.checkpoint_path)
    num_classes = state["model"]["fc.weight"].shape[0]
    model = create_model(mcfg.replace(num_classes=num_classes))
    model.load_state_dict(state["model"])
    result = evaluate_dataset(model, data.test, views=ev.views, batch_size=ev.batch_size, data=data,
                       device=torch.device(device), ctx=DistributedContext(), seed=cfg["seed"], workers=0,
                       amp_dtype=None)
    result["views"] = ev.views
    atomic_write_json(rd.path / f"eval-{ev.test_groups}x{ev.crops}.json", result)
    return result
