"""Engine: metrics on known scores, training lowers the loss, exact resume after kills, DDP gradients,
checkpoints (weights_only, corrupt files), evaluation shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from harness.config import TrainConfig
from harness.data import EpochSampler
from harness.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from harness.engine.evaluate import classification_metrics
from harness.engine.train import (
    PAUSE_ENV,
    PAUSED_MARKER,
    PREV_CHECKPOINT,
    lr_factor,
    train_and_evaluate,
)
from harness.errors import RunDirError
from harness.results.predictions import confusion_matrix, per_class_accuracy
from harness.results.rundir import RunDir


# ---------------------------------------------------------------------------------------------
def test_metrics_on_hand_built_scores():
    scores = np.array(
        [
            [0.7, 0.2, 0.1, 0.0, 0.0, 0.0],  # label 0: top-1 hit
            [0.5, 0.3, 0.2, 0.0, 0.0, 0.0],  # label 1: rank 2
            [0.1, 0.2, 0.3, 0.4, 0.0, 0.0],  # label 2: rank 2
            [0.0, 0.0, 0.0, 0.0, 0.9, 0.1],  # label 5: rank 2
            [0.6, 0.1, 0.1, 0.1, 0.05, 0.05],  # label 1: rank 2 (tie broken by index)
            [0.1, 0.1, 0.1, 0.1, 0.1, 0.5],  # label 0: rank 2 (ties among 0..4 -> index 0 first)
        ]
    )
    labels = np.array([0, 1, 2, 5, 1, 0])
    m = classification_metrics(scores, labels, factors={"parity": ["even", "odd"] * 3})
    assert m["top1"] == pytest.approx(100 / 6)
    assert m["top5"] == pytest.approx(100.0)
    # per class: 0 -> 1/2, 1 -> 0/2, 2 -> 0/1, 5 -> 0/1; classes 3, 4 absent
    assert "per_class_acc" not in m and "confusion" not in m  # derived from the predictions file on demand
    pred = scores.argmax(axis=1)
    per_class = per_class_accuracy(labels, pred, 6)
    assert np.array_equal(per_class, [50.0, 0.0, 0.0, np.nan, np.nan, 0.0], equal_nan=True)
    assert m["mean_class_acc"] == pytest.approx(12.5) == pytest.approx(np.nanmean(per_class))
    cm = confusion_matrix(labels, pred, 6)
    assert cm.sum() == 6 and cm[5][4] == 1
    # a skipped row (pred -1) is left out of both
    assert confusion_matrix(np.append(labels, 3), np.append(pred, -1), 6).sum() == 6
    assert np.isnan(per_class_accuracy(np.append(labels, 3), np.append(pred, -1), 6)[3])
    # predicted classes 0, 0, 3, 4, 0, 5 -> parity even, even, odd, even, even, odd vs true e, o, e, o, o, e
    assert m["groups"]["parity"]["top1"] == pytest.approx(100 / 6)


def test_top5_with_fewer_classes_is_all_hits():
    m = classification_metrics(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([0, 0]))
    assert m["top1"] == 50.0 and m["top5"] == 100.0


@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_shards_cover_every_video_once(world):
    seen = []
    for rank in range(world):
        s = EpochSampler(10, shuffle=False, seed=0, rank=rank, world_size=world, pad=False)
        seen += [i for _, i in s]
    assert sorted(seen) == list(range(10))


def test_train_sampler_is_a_function_of_seed_and_epoch_and_resumes_mid_epoch():
    s = EpochSampler(20, shuffle=True, seed=3)
    s.set_epoch(2)
    full = [i for _, i in s]
    s.set_epoch(2, start=7)
    assert [i for _, i in s] == full[7:]
    s.set_epoch(3)
    assert [i for _, i in s] != full


def test_lr_schedule_warmup_and_steps():
    cfg = TrainConfig(epochs=100, warmup_epochs=10, milestones=(50, 75, 90), warmup_start_factor=0.01)
    assert lr_factor(0, 10, cfg) == pytest.approx(0.01)
    assert lr_factor(50, 10, cfg) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(100, 10, cfg) == pytest.approx(1.0)
    assert lr_factor(500, 10, cfg) == pytest.approx(0.1)
    assert lr_factor(950, 10, cfg) == pytest.approx(0.001)
    assert TrainConfig(batch_size=8).lr_for(24) == pytest.approx(0.015 * 2)


# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colour_set(tmp_path_factory):
    """24 real mp4 files (64x64, 24 frames), class = dominant colour channel (3 classes)."""
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):
        label = i % 3
        rel = f"v/{i:03d}.mp4"
        (root / "v").mkdir(exist_ok=True)
        with av.open(str(root / rel), "w") as c:
            s = c.add_stream("libx264", rate=25)
            s.width = s.height = 64
            s.pix_fmt = "yuv420p"
            for _ in range(24):
                a = np.full((64, 64, 3), 40, np.uint8)
                a[..., label] = 200
                a += rng.integers(0, 30, (64, 64, 3), dtype=np.uint8)
                for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        lines.append(f"{rel} {label}")
    (root / "train.txt").write_text("\n".join(lines[:18]) + "\n")
    (root / "val.txt").write_text("\n".join(lines[18:]) + "\n")
    return root


def _config(root: Path, epochs=3, **train):
    return {
        "task": "train",
        "seed": 0,
        "model": {"variant": "tsm_r18_dsa", "width": 8, "num_frames": 2, "dropout": 0.3},
        "data": {
            "train": str(root / "train.txt"),
            "val": str(root / "val.txt"),
            "test": str(root / "val.txt"),
            "frame_interval": 2,
            "size": 32,
            "resize": 36,
            "num_workers": 0,
        },
        "train": {
            "epochs": epochs,
            "batch_size": 6,
            "base_lr": 0.05,
            "base_batch": 6,
            "warmup_epochs": 0,
            "milestones": [100],
            "threads": 1,
            **train,
        },
        "eval": {"test_groups": 2, "crops": 3, "batch_size": 3},
    }


def test_short_training_lowers_loss_and_beats_chance(colour_set, tmp_path):
    final = train_and_evaluate(_config(colour_set, epochs=4), tmp_path / "run", echo=False)
    metrics = RunDir(tmp_path / "run").read_metrics()
    assert [m["epoch"] for m in metrics] == [0, 1, 2, 3]
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]
    assert final["test"]["top1"] > 100 / 3 + 20  # chance is 33%
    assert final["test"]["views"] == 6 and final["test"]["num_videos"] == 6
    assert final["profile"]["unsupported_ops"] == {}
    # the same cost record as the profile task's (harness.measure.profile_record), for the trained architecture
    from harness.measure import profile_record
    from harness.models import resolve_config

    cost = profile_record(
        resolve_config("tsm_r18_dsa", width=8, num_frames=2, dropout=0.3, num_classes=3),
        size=32,
        views=6,
        test_size=32,
    )
    assert final["profile"] == cost
    assert all(m["clips_per_s"] > 0 for m in metrics)
    # idempotent: a second call returns the same final record without training
    assert train_and_evaluate(_config(colour_set, epochs=4), tmp_path / "run", echo=False) == final
    # a finished folder refuses another config, naming the differing keys; nothing is rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    other = _config(colour_set, epochs=5)
    other["model"] = {**other["model"], "variant": "tsm_r18"}
    with pytest.raises(RunDirError, match=r"model\.variant: 'tsm_r18_dsa' -> 'tsm_r18'.*train\.epochs: 4 -> 5"):
        train_and_evaluate(other, tmp_path / "run", echo=False)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()} == before
    # checkpoints load with weights_only=True
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 4 and state["step"] == 0


def test_test_views_use_the_test_crop_and_final_json_counts_the_test_at_its_size(colour_set, tmp_path):
    from harness.config import RunConfig
    from harness.engine.train import build_data
    from harness.measure import profile_record

    cfg = _config(colour_set, epochs=1)
    cfg["eval"].update(size=48, resize=48)  # training crop 32 (resize 36), test: 3 crops of 48
    rc = RunConfig.from_dict(cfg)
    data = build_data(rc.data, rc.eval, rc.model.num_snippets, rc.model.num_frames, 0)
    clips, _ = data.test[0]
    assert tuple(clips.shape) == (6 * 4, 3, 2, 48, 48)  # V*U views x snippets, each 48 x 48
    assert tuple(data.val[0][0].shape[-2:]) == (32, 32) and tuple(data.train[0][0].shape[-2:]) == (32, 32)
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    p = final["profile"]
    assert (p["size"], p["test_size"], p["views"], final["test"]["views"]) == (32, 48, 6, 6)
    at48 = profile_record(rc.model, size=48)["gflops_per_view"]
    assert p["test_gflops_per_view"] == pytest.approx(at48) and at48 > 2 * p["gflops_per_view"]
    assert p["test_gflops_per_video"] == pytest.approx(6 * at48)


def test_other_config_in_same_folder_is_refused(colour_set, tmp_path):
    RunDir(tmp_path / "r").create().write_config({**_config(colour_set), "seed": 5})
    with pytest.raises(RunDirError, match=r"holds another run \(seed: 5 -> 0\)"):
        train_and_evaluate(_config(colour_set), tmp_path / "r", echo=False)


def test_another_runs_checkpoint_is_refused_by_name_and_an_old_one_resumed_with_a_warning(colour_set, tmp_path, capsys):
    """Issue 25.1: a checkpoint carries its run (run id, identity hash); a run folder holding another run's
    checkpoint.pt (copied in) is refused naming the file, whose run it is and the fix, nothing changed. A
    checkpoint written before checkpoints carried their run is resumed as the folder's, with a warning."""
    from harness.cli import main
    from harness.config import RunConfig

    cfg_a = _config(colour_set, epochs=1)
    final_a = train_and_evaluate(cfg_a, tmp_path / "a", echo=False)
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    run_a = RunConfig.from_dict(cfg_a).run_id
    assert state["run_id"] == run_a and state["identity_sha256"].startswith("sha256:" + run_a)

    cfg_b = {**cfg_a, "seed": 1}
    b = RunDir(tmp_path / "b").create()
    b.write_config(RunConfig.from_dict(cfg_b).record())
    (tmp_path / "b" / "checkpoint.pt").write_bytes((tmp_path / "a" / "checkpoint.pt").read_bytes())

    def checkpoints() -> dict:
        return {p.name: p.read_bytes() for p in (tmp_path / "b").glob("*.pt")}

    before = checkpoints()
    with pytest.raises(CheckpointError, match=rf"b/checkpoint.pt is a checkpoint of run {run_a}, not of this run"):
        train_and_evaluate(cfg_b, tmp_path / "b", echo=False)
    assert main([*_cli(cfg_b, tmp_path / "b")[3:], "--set", "seed=1", "--set", "eval.batch_size=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint of run {run_a}" in err and "move it back" in err, err
    assert checkpoints() == before and not (tmp_path / "b" / "final.json").exists()  # nothing moved or trained

    # a checkpoint of an earlier harness (no run id): resumed as the folder's own, with a warning
    a = RunDir(tmp_path / "a")
    for p in (a.final_path, a.predictions_path):
        p.unlink()
    old = {k: v for k, v in state.items() if k not in ("run_id", "identity_sha256")}
    save_checkpoint(a.checkpoint_path, old)
    again = train_and_evaluate(cfg_a, tmp_path / "a", echo=False)
    assert "records no run id" in (tmp_path / "a" / "log.txt").read_text()
    assert again["test"]["top1"] == final_a["test"]["top1"] and again["test"]["loss"] == final_a["test"]["loss"]


def test_a_loss_that_turns_nan_ends_the_run_as_diverged_naming_the_step(colour_set, tmp_path, capsys):
    """Issue 25.3: an lr that blows the weights up makes the loss NaN from step 2. The run ends as diverged
    (final.json status diverged, the epoch and step named), is not tested, keeps no checkpoint of NaN
    weights, and the same command says so again (exit 1); train.stop_on_nonfinite=false trains and tests on,
    the record still saying diverged."""
    from harness.cli import main
    from harness.results.status import run_state

    cfg = _config(colour_set, epochs=2, base_lr=1e30, checkpoint_every_steps=1, log_every_steps=100)
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)  # found at the checkpoint after step 2
    assert final["status"] == "diverged" and "test" not in final and "test" not in final["manifest"]
    assert final["diverged"] == {"epoch": 0, "step": 2, "global_step": 2, "loss": "nan", "stopped": True}
    rd = RunDir(tmp_path / "run")
    assert run_state(rd).state == "diverged" and not rd.predictions_path.exists() and not rd.read_metrics()
    state = torch.load(rd.checkpoint_path, weights_only=True)  # the last checkpoint: before the NaN step
    assert (state["epoch"], state["step"]) == (0, 1) and all(torch.isfinite(v).all() for v in state["model"].values())
    assert "DIVERGED: training loss nan at epoch 1, step 2 (optimiser step 2)" in (rd.path / "log.txt").read_text()
    assert train_and_evaluate(cfg, tmp_path / "run", echo=False) == final  # over: not redone

    argv = [*_cli(cfg, tmp_path / "cli")[3:], "--lr", "1e30"]
    assert main(argv) == 1  # found at the first progress line (step 2)
    out = capsys.readouterr().out
    assert "diverged" in out and "training loss nan at epoch 1, step 2" in out and "lower train.base_lr" in out
    assert main(argv) == 1 and "already diverged" in capsys.readouterr().out

    on = train_and_evaluate({**cfg, "train": {**cfg["train"], "stop_on_nonfinite": False}}, tmp_path / "on", echo=False)
    assert on["status"] == "diverged" and on["diverged"]["stopped"] is False and on["diverged"]["step"] == 2
    assert on["test"]["num_videos"] == 6 and len(RunDir(tmp_path / "on").read_metrics()) == 2


def test_a_finite_run_records_no_divergence(colour_set, tmp_path):
    final = train_and_evaluate(_config(colour_set, epochs=1), tmp_path / "run", echo=False)
    assert final["status"] == "done" and "diverged" not in final
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["diverged"] is None


def _weights(run: Path) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def _cli(config: dict, out: Path) -> list[str]:
    d, t = config["data"], config["train"]
    return [
        sys.executable,
        "-m",
        "harness",
        "train",
        config["model"]["variant"],
        "--data",
        d["train"],
        "--val",
        d["val"],
        "--test",
        d["test"],
        "-o",
        "width=8",
        "-o",
        "num_frames=2",
        "-o",
        "dropout=0.3",
        "--frame-interval",
        "2",
        "--size",
        "32",
        "--resize",
        "36",
        "--workers",
        "0",
        "--epochs",
        str(t["epochs"]),
        "--batch-size",
        "6",
        "--lr",
        "0.05",
        "--lr-batch",
        "6",
        "--warmup-epochs",
        "0",
        "--milestones",
        "100",
        "--threads",
        "1",
        "--checkpoint-every",
        "1",
        "--crops",
        "3",
        "--quiet",
        "--out",
        str(out),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_killed_and_resumed_run_ends_with_identical_weights(colour_set, tmp_path, sig):
    ref_cfg = _config(colour_set, epochs=2, checkpoint_every_steps=1)
    subprocess.run(_cli(ref_cfg, tmp_path / "ref"), check=True, capture_output=True)
    ref = RunDir(tmp_path / "ref").read_final()

    out = tmp_path / "killed"
    # the run pauses right after its checkpoint of epoch 1, step 1 (mid-way through the last epoch), so
    # the signal lands at a known point however fast this machine trains
    env = {**os.environ, PAUSE_ENV: "1:1"}
    proc = subprocess.Popen(_cli(ref_cfg, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 120
    while not (out / PAUSED_MARKER).exists():
        if proc.poll() is not None:
            pytest.fail("the training process ended before it could be interrupted:\n" + proc.stdout.read().decode())
        assert time.time() < deadline, "the run never reached epoch 1, step 1"
        time.sleep(0.02)
    st = torch.load(out / "checkpoint.pt", weights_only=True)
    assert (st["epoch"], st["step"]) == (1, 1)
    proc.send_signal(sig)
    rc = proc.wait(60)
    assert not (out / "final.json").exists(), "the run finished although it was interrupted"
    assert rc == (143 if sig == signal.SIGTERM else -signal.SIGKILL)

    resumed = subprocess.run(_cli(ref_cfg, out), capture_output=True, text=True)  # the same command resumes
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = RunDir(out).read_final()
    a, b = _weights(tmp_path / "ref"), _weights(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    assert final["test"]["top1"] == ref["test"]["top1"]
    resumed_metrics, ref_metrics = RunDir(out).read_metrics(), RunDir(tmp_path / "ref").read_metrics()
    assert [m["epoch"] for m in resumed_metrics] == [0, 1]
    for key in ("train_loss", "val_top1", "val_loss", "videos_seen"):  # the interrupted epoch's sums survive too
        assert [m[key] for m in resumed_metrics] == pytest.approx([m[key] for m in ref_metrics], abs=1e-9)
    assert "resumed from checkpoint" in (out / "log.txt").read_text()
    _assert_pairs_with_delta_zero(tmp_path / "ref", out, evaluate=sig == signal.SIGKILL)


def _assert_pairs_with_delta_zero(ref: Path, other: Path, *, evaluate: bool) -> None:
    """Two runs of the same variant and seed (trained apart, one of them interrupted) pair with Δ = 0 exactly:
    interval [0, 0], McNemar p = 1, not resolved; with ``evaluate``, an `eval` of ``other`` pairs with ``ref``'s
    own test at Δ = 0 too (each run tested twice)."""
    from harness.engine.evaluate_run import evaluate_run
    from harness.report.stats import paired_delta
    from harness.results.predictions import read_predictions

    def correct(path: Path) -> np.ndarray:
        cols, _ = read_predictions(path, ["pred", "label"], as_numpy=True)
        return cols["pred"] == cols["label"]

    tested = [correct(RunDir(ref).predictions_path), correct(RunDir(other).predictions_path)]
    if evaluate:
        tested.append(correct(other / evaluate_run(other, device="cpu", workers=0)["predictions"]))
    for again in tested[1:]:
        same = paired_delta(tested[0], again)
        assert (same["delta"], same["low"], same["high"], same["p_mcnemar"], same["resolved"]) == (0, 0, 0, 1, False)


def test_stopped_mid_epoch_with_loader_workers_resumes_to_the_weights_of_a_run_without(
    colour_set, tmp_path, monkeypatch
):
    """The engine's one loader (harness.data.build_loader) with 2 persistent workers, stopped after step 2
    of epoch 0 and resumed in the middle of that epoch, ends where an uninterrupted 0-worker run ends."""
    import harness.engine.train as train

    ref_cfg = _config(colour_set, epochs=2, checkpoint_every_steps=1)
    train_and_evaluate(ref_cfg, tmp_path / "ref", echo=False)
    cfg = _config(colour_set, epochs=2, checkpoint_every_steps=1)
    cfg["data"]["num_workers"] = 2

    def stop_after(rd, epoch, step, log):  # a stop request right after the checkpoint of (0, 1)
        if (epoch, step) == (0, 1):
            train.STOP.set()

    monkeypatch.setattr(train, "_pause_after_checkpoint", stop_after)
    try:
        with pytest.raises(train.TrainingInterrupted, match="epoch 0 step 2"):
            train_and_evaluate(cfg, tmp_path / "w2", echo=False)
    finally:
        train.STOP.clear()
    st = torch.load(tmp_path / "w2" / "checkpoint.pt", weights_only=True)
    assert (st["epoch"], st["step"]) == (0, 2)  # 12 of the 18 videos seen: the resume starts mid-epoch
    assert st["elapsed"]["attempts"] == 1 and st["elapsed"]["wall_time_s"] > 0
    final = train_and_evaluate(cfg, tmp_path / "w2", echo=False)
    # wall time: wall_time_s is this attempt's; wall_time_total_s adds the first attempt's (up to its checkpoint)
    assert final["attempts"] == 2
    assert final["wall_time_total_s"] == pytest.approx(st["elapsed"]["wall_time_s"] + final["wall_time_s"])
    ref_final = RunDir(tmp_path / "ref").read_final()
    assert ref_final["attempts"] == 1 and ref_final["wall_time_total_s"] == ref_final["wall_time_s"]
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "w2")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"
    assert final["test"]["top1"] == RunDir(tmp_path / "ref").read_final()["test"]["top1"]
    for key in ("train_loss", "val_top1", "videos_seen"):
        assert [m[key] for m in RunDir(tmp_path / "w2").read_metrics()] == pytest.approx(
            [m[key] for m in RunDir(tmp_path / "ref").read_metrics()], abs=1e-9
        )


def test_corrupt_checkpoint_clear_error_and_previous_kept(tmp_path):
    good = {"model": {"w": torch.ones(2)}, "epoch": 1, "step": 0}
    save_checkpoint(tmp_path / "checkpoint.pt", good)
    (tmp_path / "checkpoint.pt").replace(tmp_path / PREV_CHECKPOINT)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x80\x02 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    from harness.engine.resume import load_resume_state

    messages = []
    state = load_resume_state(RunDir(tmp_path), messages.append)
    assert torch.equal(state["model"]["w"], torch.ones(2))
    assert (tmp_path / PREV_CHECKPOINT).exists()
    assert (tmp_path / "checkpoint.corrupt.pt").read_bytes().startswith(b"\x80\x02 this")
    assert "previous checkpoint" in messages[0]


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "c.pt", {"v": torch.zeros(1)})
    import harness.results.rundir as rundir

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(rundir.os, "replace", boom)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "c.pt", {"v": torch.ones(1)})
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["v"], torch.zeros(1))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------
def _ddp_model():
    from harness.models import create_model

    torch.manual_seed(0)
    model = create_model("i3d_r18_dsa", width=8, num_classes=5, num_snippets=4, num_frames=2)
    for m in model.modules():  # undo the zero-init of the last BN of each block: gradients everywhere
        if isinstance(m, torch.nn.BatchNorm3d):
            torch.nn.init.ones_(m.weight)
    return model.eval()  # BatchNorm from running statistics: a batch's loss is the mean of per-video losses


def _ddp_worker(rank: int, world: int, port: int, x: torch.Tensor, y: torch.Tensor, out: str):
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    from harness.engine.distributed import init_distributed

    ctx = init_distributed("cpu")
    model = _ddp_model()
    from harness.engine.train import ddp_options

    ddp = torch.nn.parallel.DistributedDataParallel(model, **ddp_options(TrainConfig()))  # the engine's options
    shard = slice(rank * len(x) // world, (rank + 1) * len(x) // world)
    for _ in range(2):  # static_graph: the first iteration records the graph, the second relies on it
        model.zero_grad()
        torch.nn.functional.cross_entropy(ddp(x[shard]), y[shard]).backward()
    if ctx.is_main:
        torch.save({n: p.grad for n, p in model.named_parameters()}, out)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process_on_the_combined_batch(tmp_path):
    import torch.multiprocessing as mp

    torch.manual_seed(1)
    x, y = torch.randn(4, 4, 3, 2, 32, 32), torch.tensor([0, 3, 1, 4])
    model = _ddp_model()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    single = {n: p.grad for n, p in model.named_parameters()}

    port = 29500 + os.getpid() % 1000
    mp.spawn(_ddp_worker, args=(2, port, x, y, str(tmp_path / "g.pt")), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "g.pt", weights_only=True)
    assert single.keys() == ddp.keys()
    nonzero = 0
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], atol=1e-5, rtol=1e-4)
        nonzero += bool(single[k].abs().sum() > 0)
    assert nonzero == len(single)


def test_unreadable_video_is_skipped_counted_and_listed(colour_set, tmp_path):
    (colour_set / "v" / "empty.mp4").write_bytes(b"")
    lines = (colour_set / "train.txt").read_text().splitlines()
    bad = colour_set / "train_with_bad.txt"
    bad.write_text("\n".join(lines[:5] + ["v/empty.mp4 1"] + lines[5:]) + "\n")  # line 6
    cfg = _config(colour_set, epochs=1)
    cfg["data"].update(train=str(bad), on_error="skip")
    cfg["train"]["batch_size"] = 19  # the 19 videos (18 good + the empty one) in one step
    train_and_evaluate(cfg, tmp_path / "run", echo=False)
    metrics = RunDir(tmp_path / "run").read_metrics()
    assert metrics[0]["skipped_videos"] == 1
    manifest = RunDir(tmp_path / "run").read_final()["manifest"]
    assert {k: manifest["train"][k] for k in ("rows", "readable", "skipped")} == {
        "rows": 19,
        "readable": 18,
        "skipped": 1,
    }
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "empty.mp4" in log and "train_with_bad.txt:6" in log


def test_the_manifest_counts_distinct_unreadable_training_videos_across_a_resume(colour_set, tmp_path, monkeypatch):
    """The training list's unreadable video, found in both epochs, counts once in final.json's manifest; the
    distinct positions found so far travel in the checkpoint, so a resumed run keeps them."""
    import harness.engine.train as train

    (colour_set / "v" / "empty.mp4").write_bytes(b"")
    lines = (colour_set / "train.txt").read_text().splitlines()
    bad = tmp_path / "train_with_bad.txt"
    bad.write_text("\n".join(f"{colour_set / line}" for line in lines[:5] + ["v/empty.mp4 1"] + lines[5:]) + "\n")
    cfg = _config(colour_set, epochs=2)
    cfg["data"].update(train=str(bad), on_error="skip")
    cfg["train"].update(batch_size=19, eval_every=0)

    def stop_after(rd, epoch, step, log):
        if (epoch, step) == (1, 0):
            train.STOP.set()

    monkeypatch.setattr(train, "_pause_after_checkpoint", stop_after)
    try:  # the stop request is seen at the next step: epoch 1's first
        with pytest.raises(train.TrainingInterrupted):
            train_and_evaluate(cfg, tmp_path / "run", echo=False)
    finally:
        train.STOP.clear()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["unreadable"] == {"train": [5], "val": []}
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    assert final["attempts"] == 2
    assert {k: final["manifest"]["train"][k] for k in ("rows", "readable", "skipped")} == {
        "rows": 19,
        "readable": 18,
        "skipped": 1,
    }
    assert final["manifest"]["val"]["skipped"] == 0


def _list_with_bad_videos(root: Path) -> tuple[Path, Path, dict]:
    """A 15-line test list: 11 readable videos and 4 unreadable ones (zero-byte, garbage bytes, missing, a
    real mp4 cut after its first 300 bytes) between them; and the list of the 11 readable ones alone.
    Returns (list, good-only list, {line: (file name, reason)} of the bad)."""
    (root / "v" / "zero.mp4").write_bytes(b"")
    (root / "v" / "garbage.mp4").write_bytes(bytes(range(256)) * 40)
    (root / "v" / "cut.mp4").write_bytes((root / "v" / "000.mp4").read_bytes()[:300])
    good = [f"v/{i:03d}.mp4 {i % 3}" for i in range(3, 14)]
    bad = {2: "v/zero.mp4 1", 6: "v/garbage.mp4 0", 9: "v/nowhere.mp4 2", 15: "v/cut.mp4 0"}  # 1-based lines
    lines, g = [], iter(good)
    for n in range(1, 16):
        lines.append(bad[n] if n in bad else next(g))
    (root / "test_bad.txt").write_text("\n".join(lines) + "\n")
    (root / "test_good.txt").write_text("\n".join(good) + "\n")
    reasons = {2: ("zero.mp4", "empty"), 6: ("garbage.mp4", "undecodable"), 9: ("nowhere.mp4", "missing")}
    reasons[15] = ("cut.mp4", "undecodable")
    return root / "test_bad.txt", root / "test_good.txt", reasons


def _independent_test_scores(run: Path, good_list: Path, cfg: dict) -> tuple[float, float, int]:
    """(top-1 %, mean NLL, videos) of the run's checkpoint on ``good_list``, computed video by video with
    the model and the dataset alone (no loader, no evaluate_dataset)."""
    from harness.config import RunConfig
    from harness.data.sampling import SnippetSampler
    from harness.data.transforms import eval_transform, normalize
    from harness.data.video import VideoDataset
    from harness.models import create_model

    rc = RunConfig.from_dict(cfg)
    state = load_checkpoint(run / "checkpoint.pt")
    model = create_model(rc.model.replace(num_classes=state["model"]["fc.weight"].shape[0]))
    model.load_state_dict(state["model"])
    model.eval()
    m, d, e = rc.model, rc.data, rc.eval
    sampler = SnippetSampler(m.num_snippets, m.num_frames, d.frame_interval, "test", test_groups=e.test_groups)
    ds = VideoDataset(good_list, good_list.parent, sampler, eval_transform(d.size, resize=d.resize, crops=e.crops))
    hits, nll = 0, 0.0
    with torch.no_grad():
        for i in range(len(ds)):
            clips, label = ds[i]
            x = normalize(clips[None]).reshape(e.views, m.num_snippets, *clips.shape[1:])
            probs = torch.softmax(model(x).double(), dim=-1).mean(dim=0)
            hits += int(probs.argmax()) == label
            nll -= float(torch.log(probs[label]))
    return 100.0 * hits / len(ds), nll / len(ds), len(ds)


def test_unreadable_test_videos_are_left_out_counted_and_listed_never_replaced(colour_set, tmp_path, capsys):
    """on_error=skip at val/test time: the 4 unreadable videos of a 15-video list are left out (not replaced by
    another video under their label), listed in final.json and the log; the score is the 11 readable videos'
    (equal to an independent computation); `eval` does the same."""
    bad_list, good_list, reasons = _list_with_bad_videos(colour_set)
    cfg = _config(colour_set, epochs=1)
    cfg["data"].update(val=str(bad_list), test=str(bad_list), on_error="skip")
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    test = final["test"]
    expected = [{"path": str(colour_set / "v" / reasons[n][0]), "line": n, "reason": reasons[n][1]} for n in reasons]
    assert test["num_videos"] == 11 and test["num_skipped"] == 4
    assert test["skipped_videos"] == expected
    top1, nll, n = _independent_test_scores(tmp_path / "run", good_list, cfg)
    assert n == 11
    assert test["top1"] == pytest.approx(top1, abs=1e-9)
    assert test["loss"] == pytest.approx(nll, rel=1e-5)  # a video scored twice (or one missing) changes the mean
    metrics = RunDir(tmp_path / "run").read_metrics()
    assert metrics[0]["val_skipped_videos"] == 4 and "skipped_videos" not in metrics[0]  # training list: all good
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "test left out 4 unreadable video(s), scored 11" in log
    assert all(name in log for name, _ in reasons.values())
    # `eval` of the same run: the same videos left out, the same score
    from harness.cli import main

    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--test", str(bad_list), "--skip-corrupt", "--workers", "1"]) == 0
    assert "11 videos, 4 unreadable left out" in capsys.readouterr().out
    again = json.loads((tmp_path / "run" / "eval-2x3.json").read_text())
    assert again["num_videos"] == 11 and again["skipped_videos"] == expected
    assert again["top1"] == pytest.approx(top1, abs=1e-9) and again["loss"] == pytest.approx(nll, rel=1e-5)
    # per-video rows: every listed video, the unreadable ones as skipped rows with their reason
    from harness.results.predictions import read_predictions

    rows, meta = read_predictions(tmp_path / "run" / "predictions.parquet", as_numpy=True)
    assert meta["rows"] == 15 and rows["line"].tolist() == list(range(1, 16))
    assert np.flatnonzero(rows["skipped"]).tolist() == [n - 1 for n in reasons]
    assert [rows["reason"][n - 1] for n in reasons] == [r for _, r in reasons.values()]
    assert (rows["pred"][rows["skipped"]] == -1).all() and (rows["pred"][~rows["skipped"]] >= 0).all()
    assert np.isnan(rows["true_score"][rows["skipped"]]).all() and (rows["top5"][rows["skipped"]] == -1).all()
    assert float((rows["pred"] == rows["label"])[~rows["skipped"]].mean() * 100) == test["top1"]
    table, _ = read_predictions(tmp_path / "run" / "predictions.parquet", ["top5", "true_score", "reason"])
    assert table.column("top5").null_count == table.column("true_score").null_count == 4
    assert table.column("reason").null_count == 11
    evaluated, _ = read_predictions(tmp_path / "run" / again["predictions"], as_numpy=True)
    assert np.array_equal(evaluated["pred"], rows["pred"]) and np.array_equal(evaluated["skipped"], rows["skipped"])
    manifest = final["manifest"]
    assert {k: manifest["test"][k] for k in ("rows", "readable", "skipped")} == {
        "rows": 15,
        "readable": 11,
        "skipped": 4,
    }
    assert manifest["val"]["skipped"] == 4 and again["manifest"]["test"] == manifest["test"]


@pytest.mark.slow
def test_killed_at_random_points_with_any_worker_count_resumes_to_the_same_weights(colour_set, tmp_path):
    """Randomised kill-and-resume: SIGKILL at checkpoints drawn from a seeded RNG (mid-epoch and epoch ends),
    with 0, 1 or 2 loader workers, resumed with another worker count: every run ends with the weights of one
    uninterrupted 0-worker run (data order and crops are functions of (seed, epoch, index), not of workers)."""
    import random

    ref_cfg = _config(colour_set, epochs=2, checkpoint_every_steps=1)
    subprocess.run(_cli(ref_cfg, tmp_path / "ref"), check=True, capture_output=True)
    ref = _weights(tmp_path / "ref")
    rng = random.Random(20261201)
    points = rng.sample([(0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], 3)
    for i, (epoch, step) in enumerate(points):
        workers, resume_workers = rng.choice([0, 1, 2]), rng.choice([0, 1, 2])
        out = tmp_path / f"kill{i}"
        cmd = [*_cli(ref_cfg, out), "--workers", str(workers)]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, PAUSE_ENV: f"{epoch}:{step}"}
        )
        deadline = time.time() + 120
        while not (out / PAUSED_MARKER).exists():
            if proc.poll() is not None:
                pytest.fail(f"run {i} ended before {epoch}:{step}:\n" + proc.stdout.read().decode())
            assert time.time() < deadline, f"run {i} never reached {epoch}:{step}"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        assert not (out / "final.json").exists()
        resumed = subprocess.run(
            [*_cli(ref_cfg, out), "--workers", str(resume_workers)], capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        got = _weights(out)
        for k in ref:
            assert torch.equal(ref[k], got[k]), f"kill at {epoch}:{step}, workers {workers}->{resume_workers}: {k}"


def test_a_second_train_on_the_same_out_is_refused_naming_the_holder(colour_set, tmp_path):
    """One writer per run folder on the CLI path too (the grid path waits on the same lock): a second
    `dsa-harness train` into a folder another process is training in is refused, naming that process, and
    writes nothing there."""
    cfg = _config(colour_set, epochs=1, checkpoint_every_steps=1)
    out = tmp_path / "run"
    first = subprocess.Popen(
        _cli(cfg, out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, PAUSE_ENV: "0:1"}
    )
    try:
        deadline = time.time() + 120
        while not (out / PAUSED_MARKER).exists():
            assert first.poll() is None and time.time() < deadline, "the first run never paused"
            time.sleep(0.05)
        before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
        second = subprocess.run(_cli(cfg, out), capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"is being written by another process (pid {first.pid} on " in second.stderr
        assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    finally:
        first.terminate()
        first.wait(60)


# ---------------------------------------------------------------------------------------------
# run-time choices: AMP, determinism, loader workers, memory format, checkpointing, compile, DDP
def test_amp_auto_picks_bf16_where_native_else_fp16_and_none_on_cpu(monkeypatch):
    from harness.engine.train import resolve_amp

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    native = {"bf16": True}
    # emulated bf16 (pre-Ampere) only counts when including_emulation is asked for: auto must not pick it
    monkeypatch.setattr(
        torch.cuda, "is_bf16_supported", lambda including_emulation=True: native["bf16"] or including_emulation
    )
    assert resolve_amp("auto", cuda) == (torch.bfloat16, "bf16")
    native["bf16"] = False
    assert resolve_amp("auto", cuda) == (torch.float16, "fp16")
    assert resolve_amp("bf16", cuda) == (torch.bfloat16, "bf16")  # explicit settings are honoured
    assert resolve_amp("fp16", cuda) == (torch.float16, "fp16")
    assert resolve_amp("none", cuda) == (None, "none")
    for setting in ("auto", "none", "bf16", "fp16"):
        assert resolve_amp(setting, cpu) == (None, "none")


def test_deterministic_auto_is_exact_on_cpu_and_benchmarks_on_cuda():
    from harness.engine.train import resolve_deterministic, set_determinism

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_deterministic("auto", cpu) is True and resolve_deterministic("auto", cuda) is False
    assert resolve_deterministic(True, cuda) is True and resolve_deterministic(False, cpu) is False
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    try:
        assert set_determinism(False, cuda) is True
        assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
        assert set_determinism(True, cuda) is False
        assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
        assert torch.are_deterministic_algorithms_enabled()
        assert set_determinism(False, cpu) is False  # no cudnn on the CPU
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:]


def test_ddp_options():
    from harness.engine.train import ddp_options

    assert ddp_options(TrainConfig()) == {"gradient_as_bucket_view": True, "static_graph": True}
    assert ddp_options(TrainConfig(grad_accum=2))["static_graph"] is False  # no_sync: not with static_graph
    assert ddp_options(TrainConfig(compile=True))["static_graph"] is False


def test_runtime_choices_are_recorded_and_evaluation_uses_the_training_workers(colour_set, tmp_path, monkeypatch):
    """data.num_workers null resolves where the run runs (auto_num_workers), and validation and test use
    the same count as training (they were capped at one); final.json, the log and the checkpoints
    record what amp / determinism / workers resolved to."""
    import harness.engine.train as train

    requested = []

    def recording_loader(dataset, batch_size, *, shuffle, num_workers=0, **kw):
        requested.append((shuffle, num_workers))
        return build_loader(dataset, batch_size, shuffle=shuffle, num_workers=0, **kw)  # keep the test light

    import harness.engine.datasets as datasets
    import harness.engine.evaluate as evaluate
    from harness.data import build_loader

    monkeypatch.setattr(datasets, "build_loader", recording_loader)  # training
    monkeypatch.setattr(evaluate, "build_loader", recording_loader)  # validation, test
    monkeypatch.setattr(train, "auto_num_workers", lambda: 5)
    cfg = _config(colour_set, epochs=1, max_steps_per_epoch=1)
    cfg["data"]["num_workers"] = None
    cfg["eval"]["crops"] = 1
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    assert requested == [(True, 5), (False, 5), (False, 5)]  # train, validation, test
    assert {k: final["train"][k] for k in ("amp_used", "deterministic_used", "cudnn_benchmark", "num_workers")} == {
        "amp_used": "none",
        "deterministic_used": True,
        "cudnn_benchmark": False,
        "num_workers": 5,
    }
    assert (
        "runtime: amp none (train.amp=auto), deterministic True (train.deterministic=auto)"
        in (tmp_path / "run" / "log.txt").read_text()
    )
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["runtime"] == {
        "amp_used": "none",
        "deterministic_used": True,
        "cudnn_benchmark": False,
        "num_workers": 5,
    }


def test_resume_where_auto_amp_resolves_otherwise_warns_and_continues(colour_set, tmp_path, monkeypatch):
    """A run checkpointed without loss scaling (CPU / bf16) and resumed where ``amp: auto`` gives fp16
    (another GPU type after a requeue) starts a fresh GradScaler instead of failing on the empty state."""
    import harness.engine.train as train

    cfg = _config(colour_set, epochs=1, checkpoint_every_steps=1)
    cfg["data"].update(val=None, test=None)

    def stop_after(rd, epoch, step, log):
        if (epoch, step) == (0, 1):
            train.STOP.set()

    monkeypatch.setattr(train, "_pause_after_checkpoint", stop_after)
    try:
        with pytest.raises(train.TrainingInterrupted):
            train_and_evaluate(cfg, tmp_path / "run", echo=False)
    finally:
        train.STOP.clear()
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["scaler"] == {}
    monkeypatch.setattr(train, "resolve_amp", lambda setting, device: (torch.float16, "fp16"))  # CPU fp16 autocast
    final = train_and_evaluate(cfg, tmp_path / "run", echo=False)
    assert final["train"]["amp_used"] == "fp16"
    assert "amp_used none -> fp16" in (tmp_path / "run" / "log.txt").read_text()
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0 and state["runtime"]["amp_used"] == "fp16"


def test_training_steps_do_not_read_the_loss_back_each_step(colour_set, tmp_path, monkeypatch):
    """The loss is summed on the device; the engine reads a tensor back (on a GPU: a host-device
    synchronisation) only to log (4 times an epoch) and at the epoch's end, not after every step."""
    import sys

    import harness.engine.train as train

    reads = []
    for name in ("item", "__float__", "tolist"):
        original = getattr(torch.Tensor, name)

        def counting(self, *a, _original=original, **k):
            caller = sys._getframe(1)
            if Path(caller.f_code.co_filename).parent == Path(train.__file__).parent:  # the engine's, not the loader's
                reads.append(f"{caller.f_code.co_name}:{caller.f_lineno}")
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counting)
    cfg = _config(colour_set, epochs=1, batch_size=1, base_batch=1)  # 18 steps
    cfg["data"].update(val=None, test=None)
    train_and_evaluate(cfg, tmp_path / "run", echo=False)
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("epoch 1 step ") == 4  # logged at steps 4, 8, 12, 16
    assert len(reads) == 4 + 1, reads  # those and the epoch's end: not 18


def test_activation_checkpointing_and_channels_last_train_to_the_same_weights(colour_set, tmp_path):
    """The engine applies train.activation_checkpointing (bit-identical on CPU) and train.channels_last
    (the same up to rounding) to the model it trains."""
    runs = {}
    for name, extra in {
        "plain": {},
        "checkpointed": {"activation_checkpointing": "all"},
        "channels_last": {"channels_last": True},
    }.items():
        cfg = _config(colour_set, epochs=1, max_steps_per_epoch=2, **extra)
        cfg["data"].update(val=None, test=None)
        train_and_evaluate(cfg, tmp_path / name, echo=False)
        runs[name] = _weights(tmp_path / name)
        assert "channels_last True" in (tmp_path / name / "log.txt").read_text() or name != "channels_last"
    for k, v in runs["plain"].items():
        assert torch.equal(runs["checkpointed"][k], v), k
        torch.testing.assert_close(runs["channels_last"][k], v, atol=1e-4, rtol=1e-3)


def test_compile_trains_through_torch_compile(colour_set, tmp_path, monkeypatch):
    """train.compile: the training forward goes through torch.compile (here its aot_eager backend: the
    graph capture and the compiled backward without the C++ code generation, which takes minutes on
    a CPU), with activation checkpointing inside the compiled graph, and trains to the eager weights."""
    compiled = []

    def fast_compile(model, **kw):
        compiled.append(model)
        return _torch_compile(model, backend="aot_eager")

    _torch_compile = torch.compile
    monkeypatch.setattr(torch, "compile", fast_compile)
    runs = {}
    for name, extra in {"eager": {}, "compiled": {"compile": True, "activation_checkpointing": ["res3"]}}.items():
        cfg = _config(colour_set, epochs=1, max_steps_per_epoch=2, **extra)
        cfg["data"].update(val=None, test=None)
        train_and_evaluate(cfg, tmp_path / name, echo=False)
        runs[name] = _weights(tmp_path / name)
    assert len(compiled) == 1
    for k, v in runs["eager"].items():  # BatchNorm statistics included: updated once per step
        torch.testing.assert_close(runs["compiled"][k], v, atol=1e-4, rtol=1e-3)


def test_train_overhead_benchmark_runs(tmp_path):
    """benchmarks/train_overhead.py end to end at its smallest (figures: run it on its own)."""
    out = tmp_path / "train_overhead.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "train_overhead.py"
    args = ["--width", "8", "--batch", "2", "--steps", "2", "--rounds", "2", "--out", str(out)]
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    assert len(record["ratios"]) == 2 and record["ratio_median"] > 0 and record["setting"]["clock"] == "cpu"
    assert "engine / bare: median" in proc.stdout


# ---------------------------------------------------------------------------------------------
# dsa-harness eval: device, workers, AMP, torchrun
@pytest.fixture(scope="module")
def trained_run(colour_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "run"
    final = train_and_evaluate(_config(colour_set, epochs=2), out, echo=False)
    return out, final


METRIC_KEYS = ("top1", "top5", "mean_class_acc", "num_videos", "loss")


def final_config_test(run: Path) -> str:
    return json.loads((run / "config.json").read_text())["data"]["test"]


def test_eval_reproduces_the_final_test_and_one_worker_equals_none(trained_run):
    from harness.engine.evaluate_run import evaluate_run

    run, final = trained_run
    zero = evaluate_run(run, device="cpu", workers=0)
    one = evaluate_run(run, device="cpu", workers=1)
    assert (zero["workers"], one["workers"], one["device"], one["amp"], one["world_size"]) == (0, 1, "cpu", "none", 1)
    assert {k: one[k] for k in METRIC_KEYS} == {k: zero[k] for k in METRIC_KEYS}  # the same scores, bit for bit
    assert {k: zero[k] for k in METRIC_KEYS} == {k: final["test"][k] for k in METRIC_KEYS}
    assert (zero["views"], zero["test_size"], zero["test_resize"]) == (6, 32, 36)
    assert (run / "eval-2x3.json").exists()
    # another test crop: its own file; bf16 autocast (the CPU autocasts too) scores every video
    other = evaluate_run(run, device="cpu", workers=0, amp="bf16", overrides={"eval.size": 36})
    assert (other["test_size"], other["amp"], other["num_videos"]) == (36, "bf16", 6)
    assert (run / "eval-2x3-36px.json").exists()
    # another test list: its own file, named by the list and its hash, recording the list it scored
    own = json.loads((run / "eval-2x3.json").read_text())
    assert own["test_list"] == final_config_test(run) and own["test_list_sha256"].startswith("sha256:")
    lines = Path(own["test_list"]).read_text().splitlines()
    half = Path(own["test_list"]).parent / "half.txt"  # beside the run's list: the same relative video paths
    half.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    part = evaluate_run(run, device="cpu", workers=0, test=str(half))
    named = list(run.glob("eval-2x3-half-*.json"))
    assert len(named) == 1 and json.loads(named[0].read_text())["test_list"] == str(half)
    assert part["num_videos"] == len(lines) // 2
    assert json.loads((run / "eval-2x3.json").read_text()) == own  # the run's own result is not overwritten


def test_eval_device_and_amp_choices(monkeypatch):
    from harness.engine.evaluate_run import eval_amp, eval_device
    from harness.errors import UsageError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert eval_device("auto") == torch.device("cpu") and eval_device("cpu") == torch.device("cpu")
    for bad, message in (("cuda", "no CUDA device is visible"), ("cuda:1", "no CUDA"), ("gpu", "must be one of")):
        with pytest.raises(UsageError, match=message):
            eval_device(bad)
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert eval_amp("auto", cpu, "bf16") is None  # the CPU: full precision unless asked
    assert eval_amp("auto", cuda, "fp16") is torch.float16 and eval_amp("auto", cuda, "none") is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert eval_amp("bf16", cuda) is torch.bfloat16 and eval_amp("none", cuda, "bf16") is None
    with pytest.raises(UsageError, match="--amp"):
        eval_amp("fp8", cpu)


def test_eval_cli_flags(trained_run, capsys):
    from harness.cli import main

    run, final = trained_run
    assert main(["eval", str(run), "--device", "cpu", "--workers", "1", "--amp", "none", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["workers"], printed["device"], printed["top1"]) == (1, "cpu", final["test"]["top1"])
    assert main(["eval", str(run), "--device", "tpu"]) == 2
    assert "--device 'tpu': must be one of cpu | cuda | cuda:N | auto" in capsys.readouterr().err


def test_eval_under_torchrun_shards_and_matches_one_process(trained_run, tmp_path):
    """`torchrun --nproc_per_node 2 -m harness eval` (gloo on the CPU): each process scores its shard, rank 0
    writes the gathered result: the same as one process."""
    run, final = trained_run
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "harness", "eval", str(run), "--device", "cpu", "--workers", "0", "--test-groups", "1", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout[proc.stdout.index("{") :])  # printed once, by rank 0
    assert proc.stdout.count('"top1"') == 1
    from harness.engine.evaluate_run import evaluate_run

    single = evaluate_run(run, device="cpu", workers=0, test_groups=1)
    assert (result["world_size"], result["num_videos"]) == (2, 6)
    for k in ("top1", "top5", "mean_class_acc"):
        assert result[k] == single[k], k
    assert result["loss"] == pytest.approx(single["loss"], abs=1e-6)


def test_the_test_writes_per_video_predictions_whose_top1_is_final_jsons(trained_run):
    """predictions.parquet (written before final.json): one row per listed test video in list order, its top-1
    recomputed from the file equal to final.json's exactly; the manifest of every split; `eval` of the run with
    its own settings writes an eval predictions file with the same `pred` column."""
    from harness.engine.evaluate_run import evaluate_run
    from harness.results.predictions import file_sha256, read_predictions

    run, final = trained_run
    rd = RunDir(run)
    assert final["test"]["predictions"] == "predictions.parquet" == rd.predictions_path.name
    assert rd.predictions_path.stat().st_mtime_ns <= rd.final_path.stat().st_mtime_ns
    assert "per_class_acc" not in final["test"] and "confusion" not in final["test"]
    cols, meta = read_predictions(rd.predictions_path, as_numpy=True, expected_rows=final["test"]["num_videos"])
    test_list = final_config_test(run)
    lines = Path(test_list).read_text().splitlines()
    assert meta == {
        "version": 1,
        "run_id": final["run_id"],
        "list": test_list,
        "list_sha256": file_sha256(test_list),
        "rows": len(lines),
        "num_classes": 3,
        "views": 6,
    }
    assert cols["index"].tolist() == list(range(len(lines))) and cols["line"].tolist() == list(range(1, 7))
    assert cols["path"].tolist() == [line.split()[0] for line in lines]  # as listed
    assert cols["label"].tolist() == [int(line.split()[1]) for line in lines]
    assert not cols["skipped"].any() and all(r is None for r in cols["reason"])
    assert cols["top5"].shape == (6, 3) and (cols["top5"][:, 0] == cols["pred"]).all()
    assert float((cols["pred"] == cols["label"]).mean() * 100) == final["test"]["top1"]  # exactly
    per_class = per_class_accuracy(cols["label"], cols["pred"], meta["num_classes"])
    assert float(np.nanmean(per_class)) == pytest.approx(final["test"]["mean_class_acc"], abs=1e-12)
    nll = -np.log(cols["true_score"].astype(np.float64)).mean()
    assert nll == pytest.approx(final["test"]["loss"], rel=1e-5)
    assert "scores" not in cols  # eval.save_scores: off
    manifest = final["manifest"]
    assert set(manifest) == {"train", "val", "test"}
    assert manifest["train"] == {
        "list": str(Path(test_list).parent / "train.txt"),
        "sha256": file_sha256(Path(test_list).parent / "train.txt"),
        "rows": 18,
        "readable": 18,
        "skipped": 0,
        "num_classes": 3,
    }
    assert manifest["test"]["rows"] == 6 and manifest["test"]["readable"] == final["test"]["num_videos"]
    # `eval`, same settings: evaluated twice, identical predictions; the eval json names its file and manifest
    result = evaluate_run(run, device="cpu", workers=0)
    assert result["predictions"] == "eval-2x3.predictions.parquet" and result["manifest"] == {"test": manifest["test"]}
    again, again_meta = read_predictions(run / result["predictions"], ["pred", "true_score"], as_numpy=True)
    assert np.array_equal(again["pred"], cols["pred"]) and np.array_equal(again["true_score"], cols["true_score"])
    assert again_meta == meta
    # paired with itself (same run and seed, tested twice): Δ = 0 exactly, interval [0, 0], p = 1
    from harness.report.stats import paired_delta

    same = paired_delta(cols["pred"] == cols["label"], again["pred"] == cols["label"])
    assert (same["delta"], same["low"], same["high"], same["p_mcnemar"], same["resolved"]) == (
        0.0,
        0.0,
        0.0,
        1.0,
        False,
    )
    # the test's intervals over videos are in final.json and in the eval result, and equal
    low, high = final["test"]["top1_ci_low"], final["test"]["top1_ci_high"]
    assert low <= final["test"]["top1"] <= high and (result["top1_ci_low"], result["top1_ci_high"]) == (low, high)
    assert (
        final["test"]["mean_class_acc_ci_low"]
        <= final["test"]["mean_class_acc"]
        <= final["test"]["mean_class_acc_ci_high"]
    )


def test_save_scores_stores_the_score_vectors_and_keeps_the_run_id(trained_run):
    from harness.config import RunConfig
    from harness.engine.evaluate_run import evaluate_run
    from harness.results.predictions import read_predictions

    run, final = trained_run
    config = json.loads((run / "config.json").read_text())
    with_scores = RunConfig.from_dict(config).with_overrides({"eval.save_scores": True})
    assert with_scores.run_id == final["run_id"]  # it changes what is stored, not the result
    result = evaluate_run(run, device="cpu", workers=0, test_groups=1, overrides={"eval.save_scores": True})
    table, meta = read_predictions(run / result["predictions"])
    assert str(table.schema.field("scores").type.value_type) == "halffloat" and meta["views"] == 3
    cols, _ = read_predictions(run / result["predictions"], as_numpy=True)
    assert cols["scores"].shape == (6, 3) and cols["scores"].dtype == np.float16
    assert (cols["scores"].argmax(axis=1) == cols["pred"]).mean() > 0.8  # float16 may tie near-equal scores
    np.testing.assert_allclose(cols["scores"].sum(axis=1), 1.0, atol=1e-2)
