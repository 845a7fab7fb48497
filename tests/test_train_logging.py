"""Training logs: progress lines (ETA, data vs compute time, clips/s, peak memory, lr) on the standard
``harness.train`` logger and in log.txt, the per-epoch timing keys of metrics.jsonl, and the optional
metric sinks of ``train.log_to`` (TensorBoard under tb/, W&B offline under wandb/)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import re
import time

import pytest
from test_engine import _config, colour_set  # noqa: F401  (the engine tests' 24 real mp4 files, a module fixture)

from harness.config import NOT_IDENTITY, RunConfig
from harness.engine.train import LOGGER, train_and_evaluate
from harness.errors import ConfigError
from harness.results.rundir import RunDir

OLD_KEYS = {"epoch", "train_loss", "lr", "val_top1", "val_top5", "val_loss", "epoch_time_s", "clips_per_s"}
NEW_KEYS = {"data_time_s", "compute_time_s", "peak_mem_mb"}
STEP_LINE = re.compile(
    r"^\d\d:\d\d:\d\d epoch (\d+) step (\d+)/3 loss [\d.]+ lr [\d.e-]+ \| ([\d.]+) clips/s, data ([\d.]+) s/step, "
    r"compute ([\d.]+) s/step \| peak mem (\d+) MB \| ETA epoch \d+:\d\d:\d\d, run \d+:\d\d:\d\d$"
)


def _ours() -> list[logging.Handler]:
    return [h for h in LOGGER.handlers if type(h).__name__ == "_RunLogHandler"]


def test_progress_lines_and_metrics_time_data_and_compute(colour_set, tmp_path, monkeypatch, caplog, capsys):  # noqa: F811
    """A loader made slow on purpose (20 ms per video, in the training process: no workers) shows up as data
    time, not compute time; every step logs (log_every_steps=1) with ETA, clips/s, peak memory and lr."""
    from harness.data.video import VideoDataset

    original = VideoDataset.__getitem__

    def slow(self, i):
        time.sleep(0.02)
        return original(self, i)

    monkeypatch.setattr(VideoDataset, "__getitem__", slow)
    cfg = _config(colour_set, epochs=2, log_every_steps=1)  # 18 videos, batch 6: 3 steps an epoch
    with caplog.at_level(logging.INFO, logger="harness.train"):
        final = train_and_evaluate(cfg, tmp_path / "run", echo=True)
    assert final["status"] == "done"

    log = (tmp_path / "run" / "log.txt").read_text().splitlines()
    steps = [m for m in map(STEP_LINE.match, log) if m]
    assert [(int(m[1]), int(m[2])) for m in steps] == [(e, s) for e in (1, 2) for s in (1, 2, 3)], log
    for m in steps:
        clips_s, data_s, compute_s, mem = float(m[3]), float(m[4]), float(m[5]), int(m[6])
        assert clips_s > 0 and compute_s > 0 and mem > 0
        assert data_s >= 6 * 0.02 * 0.9  # six videos a step, each 20 ms late
    assert any(re.search(r"ETA run 0:00:00$", line) for line in log)  # the last epoch's line
    epoch_lines = [line for line in log if re.search(r" epoch \d/2: loss .* clips/s, data .* s \+ compute", line)]
    assert len(epoch_lines) == 2 and all("peak mem " in line and "ETA run" in line for line in epoch_lines)
    # the standard logger carries the same lines (its records), and echo printed them to stdout
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.train"]
    assert sum(bool(STEP_LINE.match(f"00:00:00 {msg}")) for msg in messages) == 6
    assert "ETA epoch" in capsys.readouterr().out

    metrics = RunDir(tmp_path / "run").read_metrics()
    assert len(metrics) == 2
    for m in metrics:
        assert OLD_KEYS | NEW_KEYS <= set(m), set(m)
        assert m["data_time_s"] >= 18 * 0.02 * 0.9  # the sleep is data time ...
        assert 0 < m["compute_time_s"] <= m["epoch_time_s"] - m["data_time_s"] + 0.05  # ... not compute time
        assert m["peak_mem_mb"] > 10  # this process's peak RSS on CPU
    assert not _ours(), "the run's log handlers outlive it"


def test_quiet_run_echoes_nothing_and_a_failed_run_closes_its_log(colour_set, tmp_path, capsys):  # noqa: F811
    cfg = _config(colour_set, epochs=1, max_steps_per_epoch=1)
    cfg["data"].update(val=None, test=None)
    train_and_evaluate(cfg, tmp_path / "quiet", echo=False)
    assert capsys.readouterr().out == ""
    assert "epoch 1 step 1/1 loss " in (tmp_path / "quiet" / "log.txt").read_text()  # log.txt has every line
    bad = _config(colour_set, epochs=1)
    bad["model"]["num_classes"] = 2  # the data has 3: refused after the log is open
    with pytest.raises(ConfigError, match="model.num_classes=2"):
        train_and_evaluate(bad, tmp_path / "bad", echo=False)
    assert not _ours()  # closed although the run raised: a later run's lines go to its own log.txt only
    assert "model.num_classes" not in (tmp_path / "quiet" / "log.txt").read_text()


def test_log_settings_are_not_part_of_the_run_id(colour_set):  # noqa: F811
    base = RunConfig.from_dict(_config(colour_set))
    spellings = ["tensorboard,wandb", ["wandb", "tensorboard"], ("tensorboard", "wandb", "wandb")]
    for v in spellings:
        rc = RunConfig.from_dict(_config(colour_set, log_to=v, log_every_steps=7))
        assert rc.train.log_to == ("tensorboard", "wandb") and rc.run_id == base.run_id
        assert rc.to_dict()["train"]["log_to"] == ["tensorboard", "wandb"]
    assert RunConfig.from_dict(_config(colour_set, log_to="none")).train.log_to == ()
    assert {"train.log_to", "train.log_every_steps"} <= set(NOT_IDENTITY)
    with pytest.raises(ConfigError, match=r"train.log_to='mlflow' is invalid: none, or a list of tensorboard, wandb"):
        RunConfig.from_dict(_config(colour_set, log_to="mlflow"))
    with pytest.raises(ConfigError, match="train.log_every_steps=-1 is invalid"):
        RunConfig.from_dict(_config(colour_set, log_every_steps=-1))


def test_a_sink_whose_package_is_missing_is_refused_naming_the_extra(colour_set, tmp_path, monkeypatch):  # noqa: F811
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match=r"train.log_to=wandb: the wandb package is not installed: pip install "):
        train_and_evaluate(_config(colour_set, epochs=1, log_to="wandb"), tmp_path / "run", echo=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists() and not _ours()


def test_tensorboard_sink_writes_scalars_and_hparams_under_tb(colour_set, tmp_path):  # noqa: F811
    pytest.importorskip("tensorboard", reason="optional extra: pip install 'dsa-harness[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _config(colour_set, epochs=2, log_to=["tensorboard"])
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    events = sorted((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert events, "no event file under tb/"
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "train/clips_per_s", "train/data_time_s_per_step", "train/peak_mem_mb"} <= tags
    assert {"epoch/train_loss", "epoch/val_top1", "epoch/data_time_s", "epoch/compute_time_s", "test/top1"} <= tags
    metrics = RunDir(tmp_path / "run").read_metrics()
    losses = [e.value for e in acc.Scalars("epoch/train_loss")]
    assert [e.step for e in acc.Scalars("epoch/train_loss")] == [3, 6]  # optimiser steps: 3 an epoch
    assert losses == pytest.approx([m["train_loss"] for m in metrics], rel=1e-6)
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]  # a progress line every step
    assert acc.Scalars("hparam/test_top1")[0].value == pytest.approx(final["test"]["top1"], rel=1e-6)
    # the HPARAMS plugin's session: the run's settings
    plugin = acc.PluginTagToContent("hparams")
    assert plugin and any(b"model.variant" in v for v in plugin.values())


def test_wandb_sink_writes_an_offline_run_under_wandb(colour_set, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("wandb", reason="optional extra: pip install 'dsa-harness[wandb]'")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = _config(colour_set, epochs=1, log_to="wandb")
    cfg["data"].update(test=None)
    train_and_evaluate(cfg, tmp_path / "run", echo=False)
    runs = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tmp_path / "run").rglob("*"))
    assert list(runs[0].glob("run-*.wandb")), list(runs[0].iterdir())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["train"]["log_to"] == ["wandb"]


# ---------------------------------------------------------------------------------------------
# progress of long commands: a bar on a terminal, plain lines elsewhere
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere():
    from harness.data.progress import progress

    out = io.StringIO()
    bar = progress(25, "checking videos", "video", stream=out)
    for _ in range(25):
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 13  # every 2 videos (a tenth of 25, rounded down) and the end, each once
    assert all(re.fullmatch(r"checking videos: \d+/25 videos \(\d+%, \d+ s\)", line) for line in lines), lines
    assert lines[0].startswith("checking videos: 2/25 videos (8%") and lines[-1].startswith("checking videos: 25/25")

    tty = _Terminal()
    bar = progress(25, "checking videos", "video", stream=tty)
    bar.update(25)
    bar.close()
    assert "\r" in tty.getvalue() and "25/25" in tty.getvalue()  # tqdm's redraws

    quiet = io.StringIO()
    bar = progress(25, "checking videos", "video", stream=quiet, enabled=False)
    bar.update(25)
    bar.close()
    assert quiet.getvalue() == ""


def test_data_check_off_a_terminal_prints_plain_lines(colour_set, capsys):  # noqa: F811
    from harness.data.check import check_dataset

    check_dataset(colour_set / "train.txt", colour_set, workers=1, min_frames=8)
    err = capsys.readouterr().err
    assert "\r" not in err and "checking videos: 18/18 videos (100%" in err


def test_evaluation_shows_a_bar_on_a_terminal_only(monkeypatch):
    import sys

    import torch

    from harness.engine.evaluate import predict

    class Mean(torch.nn.Module):  # (N, U, C, T, H, W) -> (N, C): three "classes"
        def forward(self, x):
            return x.mean(dim=(1, 3, 4, 5))

    batches = [(torch.rand(2, 1, 3, 1, 4, 4), torch.tensor([0, 1]), torch.tensor([2 * i, 2 * i + 1])) for i in range(5)]
    for terminal in (True, False):
        err = _Terminal() if terminal else io.StringIO()
        monkeypatch.setattr(sys, "stderr", err)
        scores, labels, index = predict(Mean(), batches, views=1, device=torch.device("cpu"), normalize=lambda x: x)
        assert scores.shape == (10, 3) and list(index) == list(range(10))
        assert ("evaluating:" in err.getvalue() and "/5 [" in err.getvalue()) == terminal, err.getvalue()
