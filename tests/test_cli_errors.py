"""The command line's error contract (harness/cli.py, CONTRACTS.md "Errors and exit codes"): bad input or a
fixable state is one of the project's own errors (harness.errors.HarnessError) and prints one stderr line
``dsa-harness COMMAND: error: ...`` naming the file / field, exit 2; anything else is a bug and propagates with
its traceback (exit 1 from Python); ``--debug`` shows the traceback of an input error too; Ctrl-C exits 130.

Every command is run through ``harness.cli.main`` on real inputs (files written here, real parsers, real
models); a bug is simulated by replacing one function with one that raises."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from harness.cli import main
from harness.config import RunConfig
from harness.results.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]
TINY = ["-o", "width=8", "-o", "num_snippets=2", "-o", "num_frames=2"]


@pytest.fixture(autouse=True)
def keep_signal_handlers():
    """`train` installs SIGTERM / SIGUSR1 handlers (checkpoint and stop): put this process's back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A working folder with the inputs the cases below break: a two-video list whose videos do not exist
    (lists are read without opening a video), a malformed list, a binary file, a grid and a run folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ann.txt").write_text("v/000.mp4 0\nv/001.mp4 1\n")
    (tmp_path / "bad.txt").write_text("v/000.mp4 0\nv/001.mp4 one\n")
    (tmp_path / "blob.txt").write_bytes(bytes(range(128, 256)) * 4)
    grid = {
        "name": "tiny",
        "task": "profile",
        "base": {
            "model": {"variant": "tsn_r18", "width": 8, "num_snippets": 2, "num_frames": 2},
            "profile": {"size": 32, "latency": False},
        },
        "axes": {"product": {"model.split_ratio": [0.25]}},
        "seeds": [0],
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    (tmp_path / "badkey.yaml").write_text(yaml.safe_dump({**grid, "bogus": 1}))
    run = RunDir(tmp_path / "run").create()
    run.write_config(
        RunConfig.from_dict(
            {
                "task": "train",
                "model": {"variant": "tsn_r18", "width": 8, "num_classes": 2},
                "data": {"test": str(tmp_path / "ann.txt")},
            }
        ).record()
    )
    run.checkpoint_path.write_bytes(b"\x80\x02 not a checkpoint")
    for rid in ("abc111", "abc222"):
        RunDir(tmp_path / "results" / "runs" / "g" / rid).create().write_config(
            {"task": "train", "grid": "g", "seed": 0, "model": {"variant": "tsn_r18"}}
        )
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "g.yaml").write_text("name: g\nreport: [unclosed\n")
    return tmp_path


def user_error(capsys, argv: list[str], *expected: str) -> str:
    """Run ``argv``; assert exit 2 with exactly one stderr line ``dsa-harness COMMAND: error: ...`` holding
    every ``expected`` text and no traceback; return that line."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    words = [a for a in argv if not a.startswith("-")][:2]
    command = " ".join(words) if words[0] in ("data", "sweep", "weights") else words[0]
    assert lines[0].startswith(f"dsa-harness {command}: error: "), lines[0]
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------------------
# every command: bad input -> one line, exit 2

CASES = {
    "list/no match": (["list", "tsm_r5"], ["no variant matches 'tsm_r5'", "tsm_r50"]),
    "profile/unknown variant": (
        ["profile", "i3d_r05_dsa", "--no-latency"],
        ["unknown variant 'i3d_r05_dsa'", "i3d_r50_dsa"],
    ),
    "profile/bad flag": (["profile", "tsn_r18", "--views", "0"], ["--views 0: must be >= 1"]),
    "profile/bad device": (["profile", "tsn_r18", "--device", "tpu"], ["--device 'tpu'"]),
    # values of the wrong type: refused naming the field (they used to fail inside a comparison: TypeError)
    "profile/dropout type": (["profile", "tsn_r18", "-o", "dropout=high"], ["dropout='high' is invalid"]),
    "profile/depth type": (["profile", "tsn_r18", "-o", "depth=[50]"], ["depth=[50] is invalid"]),
    "profile/stage mask": (
        ["profile", "tsn_r18_dsa", "-o", "stage_masks=res3:01x1"],
        ["stage_masks: cannot read 'res3:01x1'"],
    ),
    "profile/unknown option": (["profile", "tsn_r18", "-o", "widht=8"], ["unknown model option(s) ['widht']"]),
    "data check/missing file": (["data", "check", "nope.txt", "--quiet"], ["annotation file not found: nope.txt"]),
    "data check/malformed line": (["data", "check", "bad.txt", "--quiet"], ["bad.txt:2: LABEL must be an integer"]),
    "data check/not text": (["data", "check", "blob.txt", "--quiet"], ["blob.txt: not UTF-8 text"]),
    "data check/bad flag": (["data", "check", "ann.txt", "--min-frames", "0"], ["--min-frames must be >= 1"]),
    "data bench/unknown backend": (
        ["data", "bench", "ann.txt", "--backend", "ffmpeg"],
        ["--backend ffmpeg: unknown video backend; installed: "],
    ),
    "data bench/bad flag": (["data", "bench", "ann.txt", "--videos", "0"], ["--videos 0: must be >= 1"]),
    "data check/frame template": (
        ["data", "check", "ann.txt", "--format", "frames", "--frame-template", "{x}.jpg"],
        ["--frame-template: frame_template='{x}.jpg' cannot format"],
    ),
    "data prepare/missing folder": (
        ["data", "prepare", "kinetics400", "--source", "nope", "--quiet"],
        ["video folder not found: nope (give it with --source"],
    ),
    "data prepare/bad flag": (["data", "prepare", "kinetics400", "--labels", "l.csv"], ["--labels is for sthv1"]),
    "data synth/bad value": (
        ["data", "synth", "--out", "s", "--num-classes", "3", "--videos", "9", "--quiet"],
        ["num_classes must be 2, 4, 6 or 8"],
    ),
    "data synth/bad flag": (["data", "synth", "--out", "s", "--workers", "0"], ["--workers must be >= 1"]),
    "data synth/second family out of range": (
        ["data", "synth", "--out", "s", "--task", "cued_order", "--distance", "6", "--quiet"],
        ["distance = 6 is out of range: must be an integer 1..5 for rule 'cued_order'"],
    ),
    "data synth/option of the other family": (
        ["data", "synth", "--out", "s", "--task", "same", "--num-classes", "4"],
        ["--num-classes: options of --task order only"],
    ),
    "train/missing list": (
        ["train", "tsn_r18", "--data", "nope.txt", "-o", "num_classes=2", "--out", "r"],
        ["data.train: annotation file not found: nope.txt"],
    ),
    "train/missing recipe": (["train", "tsn_r18", "--recipe", "nope.yaml"], ["nope.yaml: recipe file", "not found"]),
    "train/bad model value": (
        ["train", "tsn_r18", "--data", "ann.txt", "-o", "split_ratio=2", "--print-config"],
        ["model.split_ratio=2.0 is invalid"],
    ),
    "train/malformed list": (
        ["train", "tsn_r18", "--data", "bad.txt", *TINY, "-o", "num_classes=2", "--out", "r", "--quiet"],
        ["bad.txt:2: LABEL must be an integer"],
    ),
    "weights imagenet/missing --from": (
        ["weights", "imagenet", "--out", "w.pth", "--from", "nope.pth"],
        ["--from: weights file not found: nope.pth"],
    ),
    "eval/not a run": (["eval", "nowhere"], ["nowhere is not a run folder (no config.json)"]),
    "eval/missing --checkpoint": (
        ["eval", "run", "--checkpoint", "nope.pth"],
        ["--checkpoint: weights file not found: nope.pth"],
    ),
    "eval/corrupt checkpoint": (
        ["eval", "run"],
        ["cannot read checkpoint run/checkpoint.pt", "move it away to restart the run from scratch"],
    ),
    "sweep show/missing grid": (["sweep", "show", "nope.yaml"], ["nope.yaml: grid file not found"]),
    "sweep show/unknown key": (
        ["sweep", "show", "badkey.yaml", "--no-cost"],
        ["badkey.yaml: grid: bogus: unknown key"],
    ),
    "sweep show/bad flag": (["sweep", "show", "grid.yaml", "--resolved", "99"], ["--resolved 99: no run"]),
    "sweep submit/bad flag": (["sweep", "submit", "grid.yaml", "--time-min", "0"], ["--time-min 0: must be >= 1"]),
    "sweep status/bad --set": (
        ["sweep", "status", "grid.yaml", "--set", "profile.sise=64"],
        ["--set profile.sise: unknown field", "did you mean 'profile.size'"],
    ),
    "sweep cancel/missing grid": (["sweep", "cancel", "nope.yaml"], ["nope.yaml: grid file not found"]),
    "sweep logs/unknown run": (["sweep", "logs", "zzz"], ["no run 'zzz' under results/runs"]),
    "sweep logs/ambiguous run": (["sweep", "logs", "abc"], ["run id prefix 'abc' is ambiguous"]),
    "report/bad formats": (["report", "--formats", "md,pdf"], ["--formats 'md,pdf'", "pdf"]),
    "report/unknown grid": (["report", "--grid", "nope", "--out", "rep"], ["--grid: no runs for grid(s) ['nope']"]),
    "report/unknown grid printed": (["report", "--grid", "nope", "--print"], ["no runs for grid(s) ['nope']"]),
    "report/malformed grid file": (["report", "--grid", "g", "--print"], ["g.yaml: line 3, column 1: not valid YAML"]),
    "reproduce/bad steps": (["reproduce", "--steps", "data,tabels"], ["--steps 'data,tabels'", "tabels"]),
    "reproduce/bad --set": (["reproduce", "--steps", "report", "--set", "trian.epochs=2"], ["--set trian.epochs"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(ws, capsys, case):
    argv, expected = CASES[case]
    user_error(capsys, argv, *expected)


def test_every_command_has_a_bad_input_case():
    from harness.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set()
    for name, parser in sub.choices.items():
        nested = [a for a in parser._actions if a.dest == f"{name}_command"]
        commands |= {f"{name} {s}" for s in nested[0].choices} if nested else {name}
    assert commands == {case.split("/")[0] for case in CASES}


def test_the_error_types_are_harness_errors_and_keep_their_builtin_bases():
    from harness.data import AnnotationError
    from harness.data.video import CorruptVideoError
    from harness.engine.checkpoint import CheckpointError
    from harness.errors import ConfigError, HarnessError, MissingFileError
    from harness.launch.grid import GridError
    from harness.models.registry import UnknownVariantError, resolve_config
    from harness.models.weights import WeightLoadError

    with pytest.raises(UnknownVariantError) as e:
        resolve_config("tsm_r05")
    assert isinstance(e.value, ConfigError) and isinstance(e.value, ValueError)
    for cls, base in (
        (AnnotationError, ValueError),
        (WeightLoadError, ValueError),
        (GridError, ValueError),
        (CheckpointError, RuntimeError),
        (CorruptVideoError, RuntimeError),
        (MissingFileError, FileNotFoundError),
    ):
        assert issubclass(cls, HarnessError) and issubclass(cls, base), cls


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_video_in_training_is_one_line_also_from_a_loader_worker(ws, capsys, workers):
    """A video that cannot be read (here: missing) stops training with the video, its annotation line and the
    fix (data check, --skip-corrupt); from a loader worker too (torch rebuilds the worker's exception from its
    traceback text)."""
    line = user_error(
        capsys,
        [
            "train",
            "tsn_r18",
            "--data",
            "ann.txt",
            *TINY,
            "--frame-interval",
            "1",
            "--size",
            "32",
            "--resize",
            "36",
            "--workers",
            str(workers),
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--threads",
            "1",
            "--device",
            "cpu",
            "--out",
            "r",
            "--quiet",
        ],
        "missing video",
        "ann.txt:",
        "no such file",
        "dsa-harness data check ann.txt",  # the fix, on the same line
        "--skip-corrupt",
    )
    assert line.endswith("(in a loader worker)") == (workers > 0)


def test_weights_that_do_not_load_name_model_pretrained(ws, capsys):
    torch.save(torch.zeros(3), ws / "w.pt")
    user_error(
        capsys,
        ["profile", "tsn_r18", "--no-latency", *TINY, "-o", f"pretrained={ws / 'w.pt'}"],
        "model.pretrained:",
        "w.pt is not a state dict",
    )
    user_error(
        capsys,
        ["profile", "tsn_r18", "--no-latency", *TINY, "-o", "pretrained=nope.pth"],
        "model.pretrained: weights file not found: nope.pth",
    )


def test_eval_refuses_a_checkpoint_without_a_classifier_and_an_unreadable_config(ws, capsys):
    torch.save({"model": {}}, ws / "run" / "checkpoint.pt")
    user_error(capsys, ["eval", "run"], "run/checkpoint.pt holds no model state dict with a classifier")
    (ws / "run" / "config.json").write_text("{not json")
    user_error(capsys, ["eval", "run"], "run/config.json: not a run config this harness can read")


def test_submit_to_slurm_without_slurm_is_refused_before_anything_is_written(ws, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(ws / "no-bin"))
    user_error(
        capsys,
        ["sweep", "submit", "grid.yaml", "--cluster", "slurm", "--no-snapshot"],
        "--cluster slurm: sbatch/srun not found",
    )
    assert not (ws / "results" / "runs" / "tiny").exists()


# ------------------------------------------------------------------------------------------------
# bugs propagate; --debug; Ctrl-C


def _boom(exc: BaseException):
    def raiser(*args, **kwargs):
        raise exc

    return raiser


def test_a_bug_propagates_with_its_traceback(ws, monkeypatch):
    import harness.models.registry as registry
    import harness.results.store as store

    monkeypatch.setattr(registry, "resolve_config", _boom(ValueError("boom")))
    with pytest.raises(ValueError, match="boom"):
        main(["list", "tsm_r50"])
    monkeypatch.setattr(store, "load_runs", _boom(FileNotFoundError("boom: a plain FileNotFoundError is a bug")))
    with pytest.raises(FileNotFoundError, match="boom"):
        main(["report", "--print"])


def test_debug_shows_the_traceback_of_a_user_error(ws, capsys):
    assert main(["--debug", "sweep", "logs", "zzz"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "MissingFileError: no run 'zzz'" in err
    assert err.splitlines()[-1].startswith("dsa-harness sweep logs: error: no run 'zzz'")


def test_ctrl_c_exits_130(ws, capsys, monkeypatch):
    import harness.models.registry as registry

    monkeypatch.setattr(registry, "resolve_config", _boom(KeyboardInterrupt()))
    assert main(["list", "tsm_r50"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


# ------------------------------------------------------------------------------------------------
# a real process: exact stderr and exit codes


def _python(ws: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, *args], cwd=ws, env=env, capture_output=True, text=True, timeout=120)


def test_process_user_error_bug_and_debug(ws):
    runs = Path("results") / "runs"
    user = _python(ws, "-m", "harness.cli", "sweep", "logs", "zzz")
    assert (user.returncode, user.stdout) == (2, "")
    assert user.stderr == (
        f"dsa-harness sweep logs: error: no run 'zzz' under {runs} (give a run id, a prefix of one, or a run dir)\n"
    )

    debug = _python(ws, "-m", "harness.cli", "--debug", "sweep", "logs", "zzz")
    assert debug.returncode == 2 and debug.stderr.startswith("Traceback (most recent call last):")
    assert debug.stderr.endswith(user.stderr) and "harness/launch/control.py" in debug.stderr

    bug = _python(
        ws,
        "-c",
        (
            "import runpy, sys\n"
            "import harness.launch.control as control\n"
            "def find_run(*a, **k):\n"
            "    raise ValueError('boom')\n"
            "control.find_run = find_run\n"
            "sys.argv = ['dsa-harness', 'sweep', 'logs', 'zzz']\n"
            "runpy.run_module('harness.cli', run_name='__main__')\n"
        ),
    )
    assert bug.returncode == 1, bug.stderr
    assert bug.stderr.startswith("Traceback (most recent call last):")
    assert bug.stderr.splitlines()[-1] == "ValueError: boom" and "error:" not in bug.stderr


def test_cli_help_mentions_debug(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--debug" in capsys.readouterr().out
