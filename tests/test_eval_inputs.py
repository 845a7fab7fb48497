"""`dsa-harness eval` checks what it is given before it scores (issue 25, points 5, 8 and 9): test labels against
the model's classes, the checkpoint's tensors against the run's model (one line naming the first), results named
by every setting that changes them (nothing overwritten), its own "run in use" message. A tiny hand-made run
folder (config + checkpoint, three real videos): no training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from harness.cli import main
from harness.config import RunConfig
from harness.models import create_model
from harness.results.rundir import RunDir

TINY = {"variant": "tsn_r18", "width": 8, "num_snippets": 2, "num_frames": 2, "num_classes": 3}


def tiny(**over):
    opts = {**{k: v for k, v in TINY.items() if k != "variant"}, **over}
    return create_model(TINY["variant"], **opts)


def _video(path: Path, rng) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture
def run(tmp_path):
    """A run folder of a tiny 3-class tsn_r18 (width 8) with a checkpoint.pt, and three test videos."""
    rng = np.random.default_rng(0)
    (tmp_path / "v").mkdir()
    for i in range(3):
        _video(tmp_path / "v" / f"{i}.mp4", rng)
    (tmp_path / "test.txt").write_text("".join(f"v/{i}.mp4 {i}\n" for i in range(3)))
    config = {
        "task": "train",
        "model": dict(TINY),
        "data": {"test": str(tmp_path / "test.txt"), "root": str(tmp_path), "frame_interval": 1, "size": 32},
        "eval": {"test_groups": 1, "crops": 1, "batch_size": 3},
    }
    rd = RunDir(tmp_path / "run").create()
    rd.write_config(RunConfig.from_dict(config).record())
    torch.manual_seed(0)
    torch.save({"model": tiny().state_dict()}, rd.checkpoint_path)
    return rd.path


def _error(capsys, argv) -> str:
    assert main(["eval", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_labels_beyond_the_models_classes_are_refused_before_scoring(run, capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("v/0.mp4 0\n# a comment\nv/1.mp4 7\n")
    err = _error(capsys, [str(run), "--test", str(bad)])
    assert f"{bad}:3: label 7, but the model of {run} has 3 classes (0..2)" in err
    assert not list(run.glob("eval-*")), "nothing is written"


def test_a_classes_json_of_another_count_is_refused(run, capsys, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "test.txt").write_text("".join(f"{tmp_path}/v/{i}.mp4 {i}\n" for i in range(2)))
    (other / "classes.json").write_text(json.dumps(["a", "b", "c", "d", "e"]))
    err = _error(capsys, [str(run), "--test", str(other / "test.txt"), "--set", f"data.root={tmp_path}"])
    assert f"{other / 'classes.json'}: lists 5 classes, but the model of {run} has 3" in err


def test_a_checkpoint_of_another_class_count_is_refused_naming_the_tensor(run, capsys, tmp_path):
    torch.save({"model": tiny(num_classes=2).state_dict()}, tmp_path / "two.pt")
    err = _error(capsys, [str(run), "--checkpoint", str(tmp_path / "two.pt")])
    assert "--checkpoint: " in err and "does not fit tsn_r18 (3 classes)" in err
    assert "first mismatch: the file's fc.weight is (2, 64), the model's (3, 64)" in err


def test_other_model_options_than_the_checkpoints_give_one_line(run, capsys):
    err = _error(capsys, [str(run), "-o", "width=16"])
    assert err.count("size mismatch") == 0 and "first mismatch: the file's conv1.weight is" in err
    assert "evaluate with the run's model options" in err
    # the run's own checkpoint, with another class count than its config: refused too (was loaded silently)
    torch.save({"model": tiny(num_classes=2).state_dict()}, run / "checkpoint.pt")
    err = _error(capsys, [str(run)])
    assert "first mismatch: the file's fc.weight is (2, 64), the model's (3, 64)" in err


def _eval(capsys, argv) -> dict:
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_results_are_named_by_every_setting_that_changes_them(run, capsys):
    own = _eval(capsys, [str(run)])
    assert own["settings"] == {} and (run / "eval-1x1.json").exists()
    first = json.loads((run / "eval-1x1.json").read_text())
    other = _eval(capsys, [str(run), "--set", "data.frame_interval=2"])
    assert other["settings"] == {"data.frame_interval": 2}
    named = sorted(p.name for p in run.glob("eval-1x1-set*.json"))
    assert len(named) == 1 and json.loads((run / named[0]).read_text())["settings"] == {"data.frame_interval": 2}
    assert (run / named[0].replace(".json", ".predictions.parquet")).exists()
    assert json.loads((run / "eval-1x1.json").read_text()) == first  # the run's own result is not overwritten
    # the same setting again: the same file; a setting that changes no result (batch size): the plain name
    _eval(capsys, [str(run), "--set", "data.frame_interval=2"])
    assert sorted(p.name for p in run.glob("eval-1x1-set*.json")) == named
    again = _eval(capsys, [str(run), "--set", "eval.batch_size=1"])
    assert again["settings"] == {"eval.batch_size": 1} and again["top1"] == first["top1"]


def test_a_run_in_use_tells_eval_users_what_to_do(run):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from harness.results.lock import RunLock; "
            f"lock = RunLock(Path({str(run)!r})).acquire(wait=False); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = subprocess.run(
            [sys.executable, "-m", "harness", "eval", str(run), "--device", "cpu"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
    finally:
        holder.kill()
        holder.wait()
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in err, err
    assert f"{run} is in use by another process (pid {holder.pid}" in err and "run eval again" in err
    assert "--wait" not in err and "--out" not in err


def test_training_data_labels_must_fit_classes_json_and_split_class_counts_are_said(tmp_path):
    """Issue 25.9: a label beyond classes.json was silently added as a class; splits of other class counts
    were accepted without a word."""
    from harness.config import DataConfig, EvalConfig
    from harness.data.annotations import AnnotationError
    from harness.engine.train import build_data
    from harness.errors import HarnessWarning

    (tmp_path / "train.txt").write_text("a.mp4 0\nb.mp4 1\nc.mp4 2\n")
    (tmp_path / "val.txt").write_text("d.mp4 0\ne.mp4 1\n")
    (tmp_path / "classes.json").write_text(json.dumps(["x", "y", "z"]))
    data = DataConfig(train=str(tmp_path / "train.txt"), val=str(tmp_path / "val.txt"))
    with pytest.warns(HarnessWarning, match=r"different numbers of classes \(data.train 3, data.val 2; data.val has"):
        built = build_data(data, EvalConfig(), 2, 2, 0)
    assert built.num_classes == 3 and built.classes_listed == 3
    (tmp_path / "classes.json").write_text(json.dumps(["x", "y"]))
    with pytest.raises(AnnotationError, match=r"train.txt:3: label 2, but .*classes.json lists 2 classes \(0..1\)"):
        build_data(data, EvalConfig(), 2, 2, 0)
