"""Annotation readers: video lists, raw-frame lists, Kinetics CSV; errors name file and line."""

import json
import os

import pytest

from harness.data import AnnotationError, read_annotations, read_class_index
from harness.data.annotations import read_classes_json
from harness.errors import HarnessWarning


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_video_list_with_comments_blank_lines_and_spaces(tmp_path):
    p = write(tmp_path, "train.txt", "# header\n\na/x.mp4 3\n  b/with space.mp4   0  \n")
    recs = read_annotations(p, "video", root="/data")
    assert [(r.path, r.label, r.line, r.num_frames) for r in recs] == [
        ("/data/a/x.mp4", 3, 3, None),
        ("/data/b/with space.mp4", 0, 4, None),
    ]
    assert recs[0].source == str(p) and recs[0].where == f"{p}:3"
    assert read_annotations(p)[0].path == "a/x.mp4"  # no root: as written


@pytest.mark.parametrize(
    "text,line,problem",
    [
        ("a.mp4 1\nb.mp4\n", 2, "expected 'PATH LABEL'"),
        ("a.mp4 1\n\nb.mp4 cat\n", 3, "LABEL must be an integer"),
        ("a.mp4 -1\n", 1, "LABEL must be >= 0"),
        ("a.mp4 1\nframes/x 40 2\n", 2, "format='frames'"),
    ],
)
def test_video_list_errors_name_file_and_line(tmp_path, text, line, problem):
    p = write(tmp_path, "bad.txt", text)
    with pytest.raises(AnnotationError) as e:
        read_annotations(p, "video")
    assert str(e.value).startswith(f"{p}:{line}: ") and problem in str(e.value)
    assert e.value.line == line and isinstance(e.value, ValueError)


def test_label_above_num_classes(tmp_path):
    p = write(tmp_path, "l.txt", "a.mp4 1\nb.mp4 7\n")
    with pytest.raises(AnnotationError, match=r"l.txt:2: label 7 >= num_classes 5"):
        read_annotations(p, num_classes=5)


def test_empty_and_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="no annotated videos"):
        read_annotations(write(tmp_path, "e.txt", "# nothing\n"))
    with pytest.raises(FileNotFoundError, match="annotation file not found"):
        read_annotations(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="unknown annotation format"):
        read_annotations(write(tmp_path, "x.txt", "a.mp4 0\n"), "csv")


def test_frame_list(tmp_path):
    p = write(tmp_path, "sth.txt", "100218 45 12\n# c\nfolder two 30 0\n")
    recs = read_annotations(p, "frames", root=str(tmp_path))
    assert [(os.path.relpath(r.path, tmp_path), r.num_frames, r.label, r.line) for r in recs] == [
        ("100218", 45, 12, 1),
        ("folder two", 30, 0, 3),
    ]


@pytest.mark.parametrize(
    "text,problem",
    [
        ("100218 12\n", "expected 'FOLDER NUM_FRAMES LABEL'"),
        ("100218 x 12\n", "NUM_FRAMES must be an integer"),
        ("100218 0 12\n", "NUM_FRAMES must be >= 1"),
    ],
)
def test_frame_list_errors(tmp_path, text, problem):
    p = write(tmp_path, "f.txt", "ok 3 1\n" + text)
    with pytest.raises(AnnotationError, match=f"f.txt:2: {problem}"):
        read_annotations(p, "frames")


KINETICS = (
    "label,youtube_id,time_start,time_end,split\n"
    "abseiling,--07WQ2iBlw,1,11,train\n"
    '"passing American football (in game)",-0HOCZ-PXpc,14,24,train\n'
    "zumba,zzz,0,10,train\n"
)


def test_kinetics_csv_maps_paths_and_sorted_labels(tmp_path):
    p = write(tmp_path, "k.csv", KINETICS)
    recs = read_annotations(p, "kinetics_csv", root="/k400/train")
    assert [(r.path, r.label, r.line) for r in recs] == [
        ("/k400/train/abseiling/--07WQ2iBlw_000001_000011.mp4", 0, 2),
        ("/k400/train/passing American football (in game)/-0HOCZ-PXpc_000014_000024.mp4", 1, 3),
        ("/k400/train/zumba/zzz_000000_000010.mp4", 2, 4),
    ]
    under = read_annotations(p, "kinetics_csv", root="/r", label_dir_spaces="_")
    assert under[1].path == "/r/passing_American_football_(in_game)/-0HOCZ-PXpc_000014_000024.mp4"


def test_kinetics_csv_with_class_index_files(tmp_path):
    p = write(tmp_path, "k.csv", KINETICS)
    txt = write(tmp_path, "classes.txt", "zumba\nabseiling\n\npassing American football (in game)\n")
    assert [r.label for r in read_annotations(p, "kinetics_csv", class_index=txt)] == [1, 2, 0]
    numbered = write(tmp_path, "idx.txt", "2 abseiling\n0 zumba\n1 passing American football (in game)\n")
    assert [r.label for r in read_annotations(p, "kinetics_csv", class_index=numbered)] == [2, 1, 0]
    js = tmp_path / "classes.json"
    js.write_text(json.dumps({"abseiling": 1, "zumba": 0, "passing American football (in game)": 2}))
    assert [r.label for r in read_annotations(p, "kinetics_csv", class_index=js)] == [1, 2, 0]
    assert read_class_index(txt) == {"zumba": 0, "abseiling": 1, "passing American football (in game)": 2}
    gap = write(tmp_path, "gap.txt", "0 a\n2 b\n")
    with pytest.raises(AnnotationError, match="without gaps"):
        read_class_index(gap)


def test_kinetics_csv_errors(tmp_path):
    few = write(tmp_path, "k.csv", KINETICS.replace("zumba,zzz,0,10,train", "zumba,zzz,0,train"))
    with pytest.raises(AnnotationError, match="k.csv:4: expected 5 comma-separated fields"):
        read_annotations(few, "kinetics_csv")
    t = write(tmp_path, "t.csv", KINETICS.replace("zumba,zzz,0,10", "zumba,zzz,0,1.5"))
    with pytest.raises(AnnotationError, match="t.csv:4: time_end must be a whole number"):
        read_annotations(t, "kinetics_csv")
    h = write(tmp_path, "h.csv", "youtube_id,time_start,time_end,split\nabc,1,2,test\n")
    with pytest.raises(AnnotationError, match="h.csv:1: header lacks column\\(s\\) label"):
        read_annotations(h, "kinetics_csv")
    cls = write(tmp_path, "c.txt", "abseiling\nzumba\n")
    with pytest.raises(AnnotationError, match="k2.csv:3: label 'passing American football \\(in game\\)' is not"):
        read_annotations(write(tmp_path, "k2.csv", KINETICS), "kinetics_csv", class_index=cls)


def test_one_video_with_two_labels_is_refused_naming_both_lines(tmp_path):
    """Issue 25.9: contradictory lines are refused (which label is meant cannot be guessed); exact repeats are
    accepted with one warning line naming the first repeat."""
    p = write(tmp_path, "train.txt", "a.mp4 0\nb.mp4 1\n# note\nb.mp4 2\n")
    with pytest.raises(AnnotationError, match=r"train.txt:4: b.mp4 has label 2 here and label 1 at line 2"):
        read_annotations(p)
    frames = write(tmp_path, "frames.txt", "f/1 10 0\nf/1 12 3\n")
    with pytest.raises(AnnotationError, match="frames.txt:2: f/1 has label 3 here and label 0 at line 1"):
        read_annotations(frames, "frames")
    dup = write(tmp_path, "dup.txt", "a.mp4 0\nb.mp4 1\na.mp4 0\nb.mp4 1\n")
    with pytest.warns(HarnessWarning, match=r"dup.txt: 2 line\(s\) repeat a video .*a.mp4 at lines 1 and 3"):
        assert len(read_annotations(dup)) == 4


def test_the_cli_prints_a_repeat_warning_as_one_line(tmp_path, capsys):
    from harness.cli import main

    dup = write(tmp_path, "dup.txt", "a.mp4 0\na.mp4 0\n")
    assert main(["data", "check", str(dup), "--quiet", "--report", str(tmp_path / "r.json")]) == 1  # missing video
    err = capsys.readouterr().err
    assert f"dsa-harness data check: warning: {dup}: 1 line(s) repeat a video" in err
    assert "warnings.warn" not in err and "HarnessWarning" not in err


@pytest.mark.parametrize(
    "text,problem",
    [
        ("[", "classes.json:1: invalid JSON"),
        ('{"names": ["a"]}', "classes.json: expected a JSON list of class names"),
        ("[]", "(non-empty)"),
        ('["a", 3]', r"classes\[1\]: expected a class name \(text\), got 3"),
        ('["a", "b", "a"]', r"classes\[2\]: 'a' is also classes\[0\]: a name twice"),
        (
            '{"classes": [{"name": "a", "factors": {"x": 1}}, {"name": "b", "factors": {"y": 1}}]}',
            r"classes\[1\].factors: expected the keys \['x'\]",
        ),
    ],
)
def test_classes_json_is_read_by_one_validating_reader(tmp_path, text, problem):
    p = write(tmp_path, "classes.json", text)
    with pytest.raises(AnnotationError, match=problem):
        read_classes_json(p)


def test_classes_json_layouts(tmp_path):
    assert read_classes_json(write(tmp_path, "classes.json", '["a", "b"]')) == (["a", "b"], None)
    synth = {"classes": [{"name": "p", "factors": {"order": "A"}}, {"name": "q", "factors": {"order": "B"}}]}
    assert read_classes_json(write(tmp_path, "classes.json", json.dumps(synth))) == (["p", "q"], {"order": ["A", "B"]})
