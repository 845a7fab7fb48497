"""`dsa-harness data prepare` on small fakes of the published layouts (real tiny mp4 files and JPEG frames):
Kinetics-400 (official CSVs + label-folder and flat video folders), Mini-Kinetics-200 (published id lists over
the Kinetics-400 folder), Something-Something V1 (frame folders + its CSVs)."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from harness.cli import main
from harness.data import SnippetSampler, VideoDataset, read_annotations, write_mp4
from harness.data.prepare import prepare_dataset

REPO = Path(__file__).resolve().parents[1]
HEADER = "label,youtube_id,time_start,time_end,split\n"
# (label, youtube id, start, end, how the file lies: "label" folder, "under" = label folder with underscores,
#  "flat", "missing", "empty" (zero-byte, flat), "junk" (not a video, flat))
K400 = {
    "train": [
        ("abseiling", "aaaaaaaaaaa", 10, 20, "label"),
        ("air drumming", "-bbbbbbbbbb", 0, 10, "label"),
        ("air drumming", "c_cc-cccccc", 5, 15, "under"),
        ("zumba", "ddddddddddd", 1, 11, "missing"),
        ("zumba", "eeeeeeeeeee", 2, 12, "empty"),
        ("abseiling", "fffffffffff", 3, 13, "junk"),
    ],
    "val": [
        ("zumba", "ggggggggggg", 0, 10, "flat"),
        ("abseiling", "hhhhhhhhhhh", 7, 17, "flat"),
        ("air drumming", "iiiiiiiiiii", 4, 14, "missing"),
    ],
}
CLASSES = ["abseiling", "air drumming", "zumba"]


def tiny_video(path: Path, shade: int) -> None:
    frames = np.full((10, 32, 32, 3), shade, np.uint8)
    frames[:, :, :, 0] = np.arange(10)[:, None, None] * 20
    write_mp4(path, frames)


def make_kinetics(videos: Path, annotations: Path) -> None:
    """The clips as the download scripts lay them out, under videos/train (label folders) and videos/val (flat)."""
    folder = {"train": "train", "val": "val"}
    for split, rows in K400.items():
        csv = annotations / ("train.csv" if split == "train" else "validate.csv")
        csv.parent.mkdir(parents=True, exist_ok=True)
        csv.write_text(HEADER + "".join(f"{lab},{yid},{s},{e},{split}\n" for lab, yid, s, e, _ in rows))
        for k, (label, yid, s, e, how) in enumerate(rows):
            name = f"{yid}_{s:06d}_{e:06d}.mp4"
            where = {"label": f"{label}/{name}", "under": f"{label.replace(' ', '_')}/{name}"}.get(how, name)
            path = videos / folder[split] / where
            path.parent.mkdir(parents=True, exist_ok=True)
            if how in ("label", "under", "flat"):
                tiny_video(path, 40 * k)
            elif how == "empty":
                path.write_bytes(b"")
            elif how == "junk":
                path.write_bytes(b"this is not a video" * 20)


@pytest.fixture(scope="module")
def k400(tmp_path_factory):
    root = tmp_path_factory.mktemp("k400")
    make_kinetics(root / "videos", root / "videos" / "annotations")
    return root


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_kinetics400_lists_classes_and_summary(k400, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["data", "prepare", "kinetics400", "--source", str(k400 / "videos"), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert lines(out / "train.txt") == [
        "train/abseiling/aaaaaaaaaaa_000010_000020.mp4 0",
        "train/air drumming/-bbbbbbbbbb_000000_000010.mp4 1",
        "train/air_drumming/c_cc-cccccc_000005_000015.mp4 1",
        "train/fffffffffff_000003_000013.mp4 0",  # flat; not a video, found only by --check (below)
    ]
    assert lines(out / "val.txt") == ["val/ggggggggggg_000000_000010.mp4 2", "val/hhhhhhhhhhh_000007_000017.mp4 0"]
    assert json.loads((out / "classes.json").read_text()) == CLASSES
    s = json.loads((out / "prepare.json").read_text())
    assert s["splits"]["train"] | {"annotation": None, "list": None} == {
        "annotation": None,
        "list": None,
        "listed": 6,
        "written": 4,
        "missing": 1,
        "unreadable": 1,
    }
    assert (s["splits"]["val"]["listed"], s["splits"]["val"]["written"], s["splits"]["val"]["missing"]) == (3, 2, 1)
    assert [m["id"] for m in s["missing"]["train"]] == ["ddddddddddd_000001_000011"]
    assert s["missing"]["train"][0]["line"] == 5 and s["missing"]["train"][0]["label"] == "zumba"
    assert [(u["id"], u["reason"]) for u in s["unreadable"]["train"]] == [("eeeeeeeeeee_000002_000012", "empty")]
    assert s["data"] == {
        "name": "kinetics400",
        "train": str(out / "train.txt"),
        "val": str(out / "val.txt"),
        "test": str(out / "val.txt"),
        "root": str(k400 / "videos"),
        "format": "video",
    }
    assert "train: 6 in" in printed and "4 written to" in printed and "1 missing, 1 unreadable" in printed
    assert (
        "2 missing, not in the lists:" in printed
        and "ddddddddddd_000001_000011 (zumba: not found: train/zumba/ddddddddddd_000001_000011.mp4" in printed
    )
    assert "--set data.root=" in printed  # not the grids' default folders
    # the lists read back and decode (real files)
    records = read_annotations(out / "val.txt", "video", k400 / "videos")
    assert [r.label for r in records] == [2, 0]
    ds = VideoDataset(out / "val.txt", k400 / "videos", SnippetSampler(2, 2, 2, "val"))
    assert ds[0][0].shape == (2, 3, 2, 32, 32) and ds[1][1] == 0

    # --check decodes every video found: the junk file is unreadable too
    assert main([*argv, "--check", "--workers", "1"]) == 0
    s = json.loads((out / "prepare.json").read_text())
    assert {u["id"]: u["reason"] for u in s["unreadable"]["train"]} == {
        "eeeeeeeeeee_000002_000012": "empty",
        "fffffffffff_000003_000013": "undecodable",
    }
    assert s["checked"] and len(lines(out / "train.txt")) == 3
    # --keep-missing writes every row, a missing one where the download scripts would have put it
    assert main([*argv, "--keep-missing"]) == 0
    assert len(lines(out / "train.txt")) == 6 and len(lines(out / "val.txt")) == 3
    assert "train/zumba/ddddddddddd_000001_000011.mp4 2" in lines(out / "train.txt")
    capsys.readouterr()


def test_kinetics400_refuses_a_wrong_folder_and_names_missing_csvs(k400, tmp_path, capsys):
    (tmp_path / "empty" / "train").mkdir(parents=True)
    argv = ["data", "prepare", "kinetics400", "--source", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--annotations", str(k400 / "videos" / "annotations")]) == 2
    err = capsys.readouterr().err
    assert "none of the 6 videos of" in err and "train.csv found under" in err and "wrong --source?" in err
    assert main(argv) == 2
    assert "Kinetics-400 train CSV not found: looked for train.csv or" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "abseiling,xyz,ten,20,train\n")
    assert main([*argv, "--train", str(bad), "--val", str(bad)]) == 2
    assert f"{bad}:2: time_start must be a number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_minikinetics200_id_lists_over_the_kinetics_folder(k400, tmp_path, capsys):
    lists = tmp_path / "mini"
    lists.mkdir()
    # the published format (one youtube id per line) and the label/youtube_id format, mixed with a comment
    (lists / "train_ytid_list.txt").write_text("aaaaaaaaaaa\n-bbbbbbbbbb\n\nddddddddddd\nzzzzzzzzzzz\n")
    (lists / "val_ytid_list.txt").write_text("# val\nabseiling/hhhhhhhhhhh_000007_000017.mp4\nggggggggggg\n")
    out = tmp_path / "out"
    argv = ["data", "prepare", "minikinetics200", "--source", str(k400 / "videos"), "--out", str(out), "--quiet"]
    assert main([*argv, "--annotations", str(lists)]) == 2  # bare ids need the Kinetics CSVs for their labels
    assert "labels come from the Kinetics-400 CSVs" in capsys.readouterr().err
    k = k400 / "videos" / "annotations"
    csvs = ["--kinetics-csv", str(k / "train.csv"), str(k / "validate.csv")]
    assert main([*argv, "--annotations", str(lists), *csvs]) == 0
    printed = capsys.readouterr().out
    assert json.loads((out / "classes.json").read_text()) == CLASSES
    assert lines(out / "train.txt") == [
        "train/abseiling/aaaaaaaaaaa_000010_000020.mp4 0",
        "train/air drumming/-bbbbbbbbbb_000000_000010.mp4 1",
    ]
    assert lines(out / "val.txt") == ["val/hhhhhhhhhhh_000007_000017.mp4 0", "val/ggggggggggg_000000_000010.mp4 2"]
    s = json.loads((out / "prepare.json").read_text())
    assert s["splits"]["train"]["listed"] == 3 and s["splits"]["train"]["missing"] == 1
    assert "1 youtube id(s) in no Kinetics-400 CSV, not listed: zzzzzzzzzzz (line 5)" in s["warnings"][0]
    assert "warning:" in printed and "zzzzzzzzzzz" in printed
    # the CSVs found by the search instead (next to the lists), and a malformed line named
    for name in ("train.csv", "validate.csv"):
        (lists / name).write_text((k / name).read_text())
    assert main([*argv, "--annotations", str(lists)]) == 0
    assert lines(out / "train.txt")[0] == "train/abseiling/aaaaaaaaaaa_000010_000020.mp4 0"
    (lists / "val_ytid_list.txt").write_text("ggggggggggg 3\n")
    assert main([*argv, "--annotations", str(lists)]) == 2
    assert "val_ytid_list.txt:1: expected 'YOUTUBE_ID' or 'LABEL/YOUTUBE_ID' per line" in capsys.readouterr().err


def make_sthv1(root: Path) -> None:
    from PIL import Image

    frames = root / "20bn-something-something-v1"
    counts = {"1": 5, "2": 3, "4": 0, "5": (1, 2, 4), "10": 4, "11": 2}  # 3 is missing; 5 has a gap
    for vid, n in counts.items():
        (frames / vid).mkdir(parents=True)
        for i in range(1, n + 1) if isinstance(n, int) else n:
            Image.fromarray(np.full((24, 32, 3), 10 * i, np.uint8)).save(frames / vid / f"{i:05d}.jpg")
    (root / "something-something-v1-labels.csv").write_text(
        "Holding something\nPutting something, something and something on the table\nPushing [something]\n"
    )
    (root / "something-something-v1-train.csv").write_text(
        "1;Holding something\n2;Pushing [something]\n3;Holding something\n4;Pushing [something]\n"
        "5;Putting something, something and something on the table\n"
    )
    (root / "something-something-v1-validation.csv").write_text(
        "10;Putting something, something and something on the table\n11;Holding something\n"
    )


def test_sthv1_raw_frame_lists(tmp_path, capsys):
    make_sthv1(tmp_path / "sth")
    source, out = tmp_path / "sth" / "20bn-something-something-v1", tmp_path / "out"
    argv = ["data", "prepare", "sthv1", "--source", str(source), "--out", str(out), "--quiet"]
    assert main(argv) == 0  # the CSVs next to the frame folder are found
    printed = capsys.readouterr().out
    assert lines(out / "train.txt") == ["1 5 0", "2 3 2", "5 2 1"]
    assert lines(out / "val.txt") == ["10 4 1", "11 2 0"]
    classes = json.loads((out / "classes.json").read_text())
    assert classes[1] == "Putting something, something and something on the table"
    s = json.loads((out / "prepare.json").read_text())
    assert [m["id"] for m in s["missing"]["train"]] == ["3"]
    assert [(u["id"], u["reason"]) for u in s["unreadable"]["train"]] == [("4", "no frames")]
    assert any("5/: frame 00003.jpg missing" in w for w in s["warnings"])
    assert s["data"]["format"] == "frames" and s["data"]["frame_template"] == "{:05d}.jpg"
    assert "train: 5 in" in printed and "3 written" in printed and "1 missing, 1 unreadable" in printed
    sampler = SnippetSampler(2, 2, 1, "val")
    ds = VideoDataset(out / "train.txt", source, sampler, format="frames", frame_template="{:05d}.jpg")
    assert [ds[i][0].shape for i in range(3)] == [(2, 3, 2, 24, 32)] * 3 and ds.labels == [0, 2, 1]
    assert main([*argv, "--check", "--workers", "1"]) == 0
    train = tmp_path / "sth" / "something-something-v1-train.csv"
    train.write_text("1;Holding something\n2;Pushing something\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{train}:2: label 'Pushing something' is not in something-something-v1-labels.csv" in err


@pytest.mark.parametrize(
    "dataset, grid",
    [
        ("kinetics400", "backbones_kinetics400.yaml"),
        ("minikinetics200", "recipes/minikinetics200_r50.yaml"),
        ("sthv1", "backbones_sthv1.yaml"),
    ],
)
def test_the_paper_grids_read_what_prepare_writes_by_default(k400, tmp_path, monkeypatch, dataset, grid):
    """Run from a checkout with the download in the default place: the lists land where the grids look."""
    import shutil

    monkeypatch.chdir(tmp_path)
    if dataset == "sthv1":
        make_sthv1(tmp_path / "data" / "sthv1")
        (tmp_path / "data" / "sthv1" / "20bn-something-something-v1").rename(tmp_path / "data" / "sthv1" / "frames")
    else:
        shutil.copytree(k400 / "videos", tmp_path / "data" / "kinetics400" / "videos")
        if dataset == "minikinetics200":
            mini = tmp_path / "data" / "minikinetics200"
            mini.mkdir(parents=True)
            (mini / "train_ytid_list.txt").write_text("aaaaaaaaaaa\n")
            (mini / "val_ytid_list.txt").write_text("ggggggggggg\n")
    s = prepare_dataset(dataset, progress=False)
    text = yaml.safe_load((REPO / "experiments" / grid).read_text())
    data = text["data"] if "data" in text else text["base"]["data"]
    assert {k: data.get(k) for k in s["data"]} == s["data"]
    assert "classes" not in data  # classes.json next to the lists gives the class count
