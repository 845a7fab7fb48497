"""Published dataset layouts -> our annotation files and class index (``dsa-harness data prepare``).

Three datasets, each read where its usual download puts it; ``out`` defaults to ``data/<dataset>`` and the
video (frame) folder to ``<out>/videos`` (sthv1: ``<out>/frames``; minikinetics200: the Kinetics-400 folder next
to it, ``<out>/../kinetics400/videos``), the paths the paper grids read (``experiments/backbones_*.yaml``,
``experiments/recipes/minikinetics200_r50.yaml``).

``kinetics400``
    The official CSVs (columns ``label,youtube_id,time_start,time_end,split``): ``train.csv`` and
    ``validate.csv`` (also named ``val.csv``, ``kinetics_train.csv`` / ``kinetics_val.csv``,
    ``kinetics-400_train.csv`` / ``kinetics-400_val.csv``) and the clips as the common download scripts lay them
    out, ``<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`` or flat ``<split>/<youtube_id>_<start:06d>_
    <end:06d>.mp4``, with ``<split>`` = ``train`` (or ``videos_train``, ``train_256``) and ``val`` (or
    ``validate``, ``validation``, ``videos_val``, ``val_256``). Clips are found by file name wherever they lie
    one or two levels down, so label folders with spaces, underscores or renamed classes all work; any video
    extension (``.mp4 .mkv .webm ...``) is accepted and a bare ``<youtube_id>.<ext>`` too. Classes: the sorted
    label names of both CSVs (the usual Kinetics class index).

``minikinetics200``
    The published split lists over a Kinetics-400 folder (as above): ``train_ytid_list.txt`` /
    ``val_ytid_list.txt`` (Xie et al.'s Mini-Kinetics-200 lists; also named ``mini_kinetics_200_train.txt`` /
    ``..._val.txt`` or ``minikinetics200_train.txt`` / ``..._val.txt``). Accepted line format (blank lines and
    ``#`` comments ignored): ``YOUTUBE_ID`` (the published lists), or ``LABEL/YOUTUBE_ID`` with optionally the
    clip's ``_<start:06d>_<end:06d>`` suffix and a video extension (``abseiling/-3B32lodo2M_000059_000069.mp4``).
    Labels come from the Kinetics-400 CSVs (looked for as above); a line's ``LABEL/`` is used only for ids no
    CSV lists. Classes: the sorted label names of the two lists (200 for the published ones).

``sthv1``
    Something-Something V1: frame folders ``<id>/00001.jpg ...`` (``frame_template``, default ``{:05d}.jpg``
    from 1), ``something-something-v1-labels.csv`` (one class name per line, index = line order) and
    ``something-something-v1-train.csv`` / ``-validation.csv`` (lines ``id;label name``). The lists are raw-frame
    lists ``ID NUM_FRAMES LABEL`` (``NUM_FRAMES``: the run of consecutive frame files from the first).

``lists``
    Our own video lists (``PATH LABEL`` lines, e.g. those ``data synth`` or an earlier ``data prepare`` wrote),
    given with ``--train`` and ``--val``; paths relative to ``source`` (default: the train list's folder); the
    class names from ``classes.json`` beside the train list, else the label numbers. Mostly for
    ``--extract-frames`` (:mod:`harness.data.extract`).

Annotation files are looked for in the video (frame) folder, its ``annotations/`` sub-folder, its parent (and
the parent's ``annotations/``), ``out`` and ``out/annotations``, unless given explicitly.

Outputs in ``out``: ``train.txt``, ``val.txt`` (paths relative to the video folder: set ``data.root`` to it),
``classes.json`` (a JSON list of class names, index = position) and ``prepare.json``, the summary::

    {"dataset", "source" (= data.root), "out", "format", "frame_template", "num_classes", "classes_file",
     "keep_missing", "checked", "backend", "seconds",
     "splits": {"train"|"val": {"annotation", "list", "listed", "written", "missing", "unreadable"}},
     "missing": {"train"|"val": [{"line", "annotation", "id", "label", "expected"}]},
     "unreadable": {"train"|"val": [{"line", "annotation", "id", "path", "reason", "error"}]},
     "warnings": [str], "data": {"name", "train", "val", "test", "root", "format", "frame_template"}}

Missing videos (no file) and unreadable ones (zero-byte files, frame folders without frames; with ``check``
every found video is opened and its first, middle and last frame decoded, as ``data check`` does) are listed
in the summary and left out of the lists; ``keep_missing`` writes them too (training then needs
``data.on_error: skip``). A split none of whose videos is found is refused (wrong folder, most likely).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from harness.data.annotations import (
    VIDEO_EXTENSIONS,
    AnnotationError,
    VideoRecord,
    _text_lines,
    kinetics_rows,
)
from harness.errors import MissingFileError
from harness.results.rundir import atomic_write_bytes, atomic_write_json

DATASETS = ("kinetics400", "minikinetics200", "sthv1", "lists")
SPLITS = ("train", "val")
SPLIT_FOLDERS = {
    "train": ("train", "videos_train", "train_256"),
    "val": ("val", "validate", "validation", "videos_val", "val_256"),
}
KINETICS_CSVS = {
    "train": ("train.csv", "kinetics_train.csv", "kinetics-400_train.csv", "kinetics_400_train.csv"),
    "val": ("validate.csv", "val.csv", "kinetics_val.csv", "kinetics-400_val.csv", "kinetics_400_val.csv"),
}
MINI_LISTS = {
    "train": ("train_ytid_list.txt", "mini_kinetics_200_train.txt", "minikinetics200_train.txt"),
    "val": ("val_ytid_list.txt", "mini_kinetics_200_val.txt", "minikinetics200_val.txt"),
}
STHV1_FILES = {
    "labels": ("something-something-v1-labels.csv",),
    "train": ("something-something-v1-train.csv",),
    "val": ("something-something-v1-validation.csv",),
}
_CLIP = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")


@dataclass
class _Item:
    """One annotated video of a split, found or not."""

    id: str
    label: int
    line: int
    annotation: str
    rel: str | None = None  # relative to the source folder; None: not found
    expected: str = ""  # where it was looked for (missing items)
    num_frames: int | None = None
    reason: str | None = None  # None: fine; "missing", "empty", "undecodable", "no frames"
    error: str = ""


def default_out(dataset: str) -> Path:
    return Path("data") / dataset


def default_source(dataset: str, out: str | os.PathLike) -> Path:
    """``<out>/videos`` (kinetics400), ``<out>/frames`` (sthv1); Mini-Kinetics-200 is a subset of Kinetics-400:
    the Kinetics-400 folder next to ``out``, ``<out>/../kinetics400/videos``."""
    if dataset == "minikinetics200":
        return Path(out).parent / "kinetics400" / "videos"
    return Path(out) / ("frames" if dataset == "sthv1" else "videos")


# --- locating files ---------------------------------------------------------------------------
def _search_dirs(source: Path, out: Path, annotations: str | os.PathLike | None) -> list[Path]:
    if annotations is not None:
        return [Path(annotations)]
    dirs = [source, source / "annotations", source.parent, source.parent / "annotations", out, out / "annotations"]
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in {u.resolve() for u in unique}:
            unique.append(d)
    return unique


def _find(names: tuple[str, ...], dirs: list[Path], what: str, given: str | os.PathLike | None = None) -> Path:
    if given is not None:
        if not Path(given).is_file():
            raise MissingFileError(f"{what} not found: {given}")
        return Path(given)
    for d in dirs:
        for name in names:
            if (d / name).is_file():
                return d / name
    raise MissingFileError(
        f"{what} not found: looked for {' or '.join(names)} in {', '.join(str(d) for d in dirs)} "
        "(give the folder with --annotations, or the file itself)"
    )


class _VideoIndex:
    """Video files one or two levels under some folders of ``source``, by clip name and by youtube id."""

    def __init__(self, source: Path, folders: list[str]):
        self.by_clip: dict[tuple[str, int, int], str] = {}
        self.by_id: dict[str, list[str]] = {}
        self.empty: set[str] = set()
        self.files = 0
        self.duplicates = 0
        for folder in folders:
            base = source / folder
            for entry in sorted(os.scandir(base), key=lambda e: e.name) if base.is_dir() else []:
                if entry.is_dir():
                    for sub in sorted(os.scandir(entry.path), key=lambda e: e.name):
                        if sub.is_file():
                            self._add(f"{folder}/{entry.name}/{sub.name}", sub)
                elif entry.is_file():
                    self._add(f"{folder}/{entry.name}", entry)

    def _add(self, rel: str, entry: os.DirEntry) -> None:
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() not in VIDEO_EXTENSIONS:
            return
        self.files += 1
        if entry.stat().st_size == 0:
            self.empty.add(rel)
        m = _CLIP.match(stem)
        youtube_id = m["id"] if m else stem
        if m:
            key = (m["id"], int(m["start"]), int(m["end"]))
            if key in self.by_clip:
                self.duplicates += 1
                return
            self.by_clip[key] = rel
        self.by_id.setdefault(youtube_id, []).append(rel)

    def lookup(self, youtube_id: str, start: int | None, end: int | None) -> str | None:
        if start is not None and end is not None and (youtube_id, start, end) in self.by_clip:
            return self.by_clip[(youtube_id, start, end)]
        found = self.by_id.get(youtube_id, [])
        return found[0] if len(found) == 1 else None


def _split_folders(source: Path, split: str) -> list[str]:
    return [f for f in SPLIT_FOLDERS[split] if (source / f).is_dir()]


# --- reading the published files ----------------------------------------------------------------
def _mini_line(path: Path, number: int, text: str, raw: str) -> tuple[str | None, str, int | None, int | None]:
    """``(label or None, youtube_id, start, end)`` of a Mini-Kinetics list line."""
    label, _, name = text.rpartition("/")
    label = label.rstrip("/").rpartition("/")[2].strip() or None
    name = name.strip()
    if os.path.splitext(name)[1].lower() in VIDEO_EXTENSIONS:
        name = os.path.splitext(name)[0]
    if not name or any(c.isspace() for c in name):
        raise AnnotationError(path, number, "expected 'YOUTUBE_ID' or 'LABEL/YOUTUBE_ID' per line", raw)
    m = _CLIP.match(name)
    if m:
        return label, m["id"], int(m["start"]), int(m["end"])
    return label, name, None, None


def _semicolon_lines(path: Path) -> list[tuple[int, str, str, str]]:
    """``(line, id, label name, raw)`` of a Something-Something V1 split file (``id;label name``)."""
    out = []
    for number, text, raw in _text_lines(path):
        vid, sep, name = text.partition(";")
        if not sep or not vid.strip() or not name.strip():
            raise AnnotationError(path, number, "expected 'ID;LABEL NAME'", raw)
        out.append((number, vid.strip(), name.strip(), raw))
    return out


# --- the three datasets -----------------------------------------------------------------------
def _kinetics_items(source: Path, dirs: list[Path], given: dict, warnings: list[str]):
    csvs = {s: _find(KINETICS_CSVS[s], dirs, f"Kinetics-400 {s} CSV", given.get(s)) for s in SPLITS}
    rows = {s: kinetics_rows(p) for s, p in csvs.items()}
    classes = sorted({r[1] for split_rows in rows.values() for r in split_rows})
    index = {name: i for i, name in enumerate(classes)}
    items = {}
    for split in SPLITS:
        folders = _split_folders(source, split)
        videos = _VideoIndex(source, folders)
        _note_index(videos, source, split, warnings)
        where = folders[0] if folders else SPLIT_FOLDERS[split][0]
        items[split] = []
        for number, label, youtube_id, start, end in rows[split]:
            clip = f"{youtube_id}_{start:06d}_{end:06d}"
            item = _Item(clip, index[label], number, str(csvs[split]), videos.lookup(youtube_id, start, end))
            item.expected = f"{where}/{label}/{clip}.mp4 or {where}/{clip}.mp4"
            _classify(item, videos)
            items[split].append(item)
    return classes, items, {s: str(p) for s, p in csvs.items()}


def _minikinetics_items(source: Path, dirs: list[Path], given: dict, warnings: list[str]):
    lists = {s: _find(MINI_LISTS[s], dirs, f"Mini-Kinetics-200 {s} list", given.get(s)) for s in SPLITS}
    parsed = {s: [(n, *_mini_line(p, n, t, raw)) for n, t, raw in _text_lines(p)] for s, p in lists.items()}
    for split, lines in parsed.items():
        if not lines:
            raise AnnotationError(lists[split], None, "no video ids in the file")
    csv_rows: dict[str, dict[str, tuple[str, int, int]]] = {}
    for split in SPLITS:
        try:
            path = _find(KINETICS_CSVS[split], dirs, f"Kinetics-400 {split} CSV", given.get(f"kinetics_{split}"))
        except MissingFileError:
            if any(label is None for _, label, *_rest in parsed[split]):
                raise MissingFileError(
                    f"{lists[split]} lists bare youtube ids: their labels come from the Kinetics-400 CSVs "
                    f"({' or '.join(KINETICS_CSVS[split])}), found in none of {', '.join(str(d) for d in dirs)} "
                    "(give the folder with --annotations)"
                ) from None
            continue
        csv_rows[split] = {yid: (label, s, e) for _, label, yid, s, e in kinetics_rows(path)}
    split_folders = {s: _split_folders(source, s) for s in SPLITS}
    folders = [f for s in SPLITS for f in split_folders[s]]
    videos = _VideoIndex(source, folders)
    _note_index(videos, source, "Kinetics-400", warnings)
    resolved = {}
    for split in SPLITS:
        other = "val" if split == "train" else "train"
        resolved[split] = []
        for number, line_label, youtube_id, start, end in parsed[split]:
            row = csv_rows.get(split, {}).get(youtube_id) or csv_rows.get(other, {}).get(youtube_id)
            label = row[0] if row else line_label
            if row and start is None:
                start, end = row[1], row[2]
            resolved[split].append((number, label, youtube_id, start, end))
    classes = sorted({r[1] for split in SPLITS for r in resolved[split] if r[1] is not None})
    index = {name: i for i, name in enumerate(classes)}
    items = {}
    for split in SPLITS:
        items[split], unlabelled = [], []
        where = split_folders[split][0] if split_folders[split] else SPLIT_FOLDERS[split][0]
        for number, label, youtube_id, start, end in resolved[split]:
            if label is None:  # a bare id that no CSV lists cannot be labelled, so it cannot be listed
                unlabelled.append(f"{youtube_id} (line {number})")
                continue
            clip = f"{youtube_id}_{start:06d}_{end:06d}" if start is not None else youtube_id
            item = _Item(clip, index[label], number, str(lists[split]), videos.lookup(youtube_id, start, end))
            item.expected = f"{where}/{label}/{clip}.mp4 or {where}/{clip}.mp4"
            _classify(item, videos)
            items[split].append(item)
        if unlabelled:
            warnings.append(
                f"{lists[split]}: {len(unlabelled)} youtube id(s) in no Kinetics-400 CSV, not listed: "
                + ", ".join(unlabelled[:5])
                + (" ..." if len(unlabelled) > 5 else "")
            )
    return classes, items, {s: str(p) for s, p in lists.items()}


def _note_index(videos: _VideoIndex, source: Path, what: str, warnings: list[str]) -> None:
    if videos.duplicates:
        warnings.append(f"{what}: {videos.duplicates} clip(s) found twice under {source}; the first is listed")


def _classify(item: _Item, videos: _VideoIndex) -> None:
    if item.rel is None:
        item.reason, item.error = "missing", f"no file {item.expected}"
    elif item.rel in videos.empty:
        item.reason, item.error = "empty", "zero-byte file"


def _lists_items(source: Path, given: dict):
    """Our own video lists (layout ``lists``): items per split, classes from ``classes.json`` beside the train
    list (else the label numbers)."""
    from harness.data.annotations import read_annotations, read_classes_json

    items = {}
    for split in SPLITS:
        items[split] = []
        for r in read_annotations(given[split], "video", source):
            rel = os.path.relpath(r.path, source)
            item = _Item(rel, r.label, r.line, str(given[split]), rel, expected=rel)
            if not os.path.exists(r.path):
                item.rel, item.reason, item.error = None, "missing", f"no file {r.path}"
            elif os.path.getsize(r.path) == 0:
                item.reason, item.error = "empty", "zero-byte file"
            items[split].append(item)
    beside = Path(given["train"]).resolve().parent / "classes.json"
    top = max((i.label for split in SPLITS for i in items[split]), default=-1)
    classes = read_classes_json(beside)[0] if beside.is_file() else [str(i) for i in range(top + 1)]
    return classes, items, {s: str(given[s]) for s in SPLITS}


def _sthv1_items(source: Path, dirs: list[Path], given: dict, frame_template: str, frame_start: int, warnings):
    labels_file = _find(STHV1_FILES["labels"], dirs, "Something-Something V1 labels", given.get("labels"))
    classes = []
    for _number, text, _raw in _text_lines(labels_file):
        classes.append(text.strip())
    if len(set(classes)) != len(classes):
        raise AnnotationError(labels_file, None, "a class name appears twice")
    index = {name: i for i, name in enumerate(classes)}
    files = {s: _find(STHV1_FILES[s], dirs, f"Something-Something V1 {s} file", given.get(s)) for s in SPLITS}
    suffix = os.path.splitext(frame_template.format(frame_start))[1] or frame_template.format(frame_start)
    items = {}
    for split in SPLITS:
        items[split] = []
        for number, vid, name, raw in _semicolon_lines(files[split]):
            if name not in index:
                raise AnnotationError(files[split], number, f"label {name!r} is not in {labels_file.name}", raw)
            item = _Item(vid, index[name], number, str(files[split]), vid, expected=f"{vid}/")
            folder = source / vid
            if not folder.is_dir():
                item.rel, item.reason, item.error = None, "missing", f"no frame folder {vid}/"
            else:
                names = set(os.listdir(folder))
                n = 0
                while frame_template.format(n + frame_start) in names:
                    n += 1
                item.num_frames = n
                if n == 0:
                    item.reason = "no frames"
                    item.error = (
                        f"no {frame_template.format(frame_start)} in {vid}/ (frame_template {frame_template!r})"
                    )
                elif sum(name.endswith(suffix) for name in names) > n:
                    warnings.append(
                        f"{vid}/: frame {frame_template.format(n + frame_start)} missing, the frames after it "
                        f"ignored: {n} listed"
                    )
            items[split].append(item)
    return classes, items, {s: str(p) for s, p in files.items()}


# --- the command ------------------------------------------------------------------------------
def prepare_dataset(
    dataset: str,
    *,
    source: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    annotations: str | os.PathLike | None = None,
    files: dict[str, str | os.PathLike] | None = None,
    frame_template: str = "{:05d}.jpg",
    frame_start: int = 1,
    keep_missing: bool = False,
    check: bool = False,
    backend: str = "auto",
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write ``out``/train.txt, val.txt, classes.json and prepare.json for ``dataset`` (see the module
    docstring); returns the summary.

    source:      the video folder (``sthv1``: the frame folder), the lists' root; default
                 :func:`default_source`.
    annotations: the folder holding the published annotation files (default: searched, see above).
    files:       explicit annotation files: ``train``, ``val`` (the split files: Kinetics CSVs, Mini-Kinetics
                 lists, Something-Something split files), ``labels`` (sthv1), ``kinetics_train`` /
                 ``kinetics_val`` (the Kinetics CSVs behind Mini-Kinetics lists).
    keep_missing: also list missing and unreadable videos (default: left out, listed in the summary).
    check:       open every found video and decode its first, middle and last frame (``data check``'s probe,
                 with ``backend``, in ``workers`` processes).
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    t0 = time.perf_counter()
    files = dict(files or {})
    if dataset == "lists":
        missing = [f"--{s}" for s in SPLITS if not files.get(s)]
        if missing:
            raise MissingFileError(f"layout lists needs the video lists: give {' and '.join(missing)} (PATH LABEL)")
        source = source if source is not None else Path(files["train"]).resolve().parent
    out, source = _out_and_source(dataset, source, out)
    dirs = _search_dirs(source, out, annotations)
    warnings: list[str] = []
    classes, items, annotation_files = _dataset_items(
        dataset, source, dirs, files, frame_template, frame_start, warnings
    )
    fmt = "frames" if dataset == "sthv1" else "video"
    if check:
        _check_items(items, source, fmt, frame_template, frame_start, backend, workers, progress)
    _refuse_none_found(items, annotation_files, source, keep_missing)
    out.mkdir(parents=True, exist_ok=True)
    summary = _summary_head(dataset, source, out, fmt, frame_template, len(classes), keep_missing, check, backend)
    summary["warnings"] = warnings
    for split in SPLITS:
        _write_split(summary, split, items[split], classes, source, out, fmt, keep_missing, annotation_files[split])
    beside = Path(files["train"]).resolve().parent / "classes.json" if dataset == "lists" else None
    if beside is not None and beside.is_file() and beside.resolve() != (out / "classes.json").resolve():
        atomic_write_bytes(out / "classes.json", beside.read_bytes())  # as it is (e.g. the synthetic set's factors)
    elif beside is None or not beside.is_file():
        atomic_write_json(out / "classes.json", classes)
    summary["data"] = _data_section(dataset, source, out, fmt, frame_template)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    atomic_write_json(out / "prepare.json", summary)
    summary["summary_file"] = str(out / "prepare.json")
    return summary


def _out_and_source(dataset: str, source: str | os.PathLike | None, out: str | os.PathLike | None) -> tuple[Path, Path]:
    """``out`` and the video (frame) folder, defaults filled in; a folder that is not there is refused."""
    out = Path(out) if out is not None else default_out(dataset)
    source = Path(source) if source is not None else default_source(dataset, out)
    if not source.is_dir():
        what = "frame folder" if dataset == "sthv1" else "video folder"
        raise MissingFileError(f"{what} not found: {source} (give it with --source, or put the download there)")
    return out, source


def _dataset_items(dataset: str, source: Path, dirs: list[Path], files: dict, frame_template, frame_start, warnings):
    """``(classes, items per split, annotation file per split)`` of ``dataset``, read by its reader."""
    if dataset == "kinetics400":
        return _kinetics_items(source, dirs, files, warnings)
    if dataset == "minikinetics200":
        return _minikinetics_items(source, dirs, files, warnings)
    if dataset == "lists":
        return _lists_items(source, files)
    return _sthv1_items(source, dirs, files, frame_template, frame_start, warnings)


def _summary_head(
    dataset: str,
    source: Path,
    out: Path,
    fmt: str,
    frame_template: str,
    num_classes: int,
    keep_missing: bool,
    check: bool,
    backend: str,
) -> dict:
    """The summary's settings, with empty ``splits``, ``missing`` and ``unreadable`` (filled per split)."""
    return {
        "dataset": dataset,
        "source": str(source),
        "out": str(out),
        "format": fmt,
        "frame_template": frame_template if fmt == "frames" else None,
        "num_classes": num_classes,
        "classes_file": str(out / "classes.json"),
        "keep_missing": bool(keep_missing),
        "checked": bool(check),
        "backend": backend if check and fmt == "video" else None,
        "splits": {},
        "missing": {},
        "unreadable": {},
    }


def _refuse_none_found(items: dict, annotation_files: dict, source: Path, keep_missing: bool) -> None:
    """A split none of whose videos is found is refused (a wrong folder, most likely), unless ``keep_missing``."""
    for split in SPLITS:
        if items[split] and all(i.reason == "missing" for i in items[split]) and not keep_missing:
            first = items[split][0]
            raise MissingFileError(
                f"none of the {len(items[split])} videos of {annotation_files[split]} found under {source} "
                f"(looked for e.g. {first.expected}); wrong --source?"
            )


def _write_split(
    summary: dict,
    split: str,
    items: list[_Item],
    classes: list[str],
    source: Path,
    out: Path,
    fmt: str,
    keep_missing: bool,
    annotation: str,
) -> None:
    """Write ``out/<split>.txt`` and fill the split's entries of ``summary`` (splits, missing, unreadable)."""
    lines, missing, unreadable = _list_lines(items, classes, source, fmt, keep_missing)
    target = out / f"{split}.txt"
    atomic_write_bytes(target, ("\n".join(lines) + "\n" if lines else "").encode())
    summary["splits"][split] = {
        "annotation": annotation,
        "list": str(target),
        "listed": len(items),
        "written": len(lines),
        "missing": len(missing),
        "unreadable": len(unreadable),
    }
    summary["missing"][split] = missing
    summary["unreadable"][split] = unreadable


def _list_lines(
    items: list[_Item], classes: list[str], source: Path, fmt: str, keep_missing: bool
) -> tuple[list[str], list[dict], list[dict]]:
    """(the list's lines, the missing videos, the unreadable ones) of a split's items."""
    lines, missing, unreadable = [], [], []
    for item in items:
        if item.reason == "missing":
            missing.append(
                {
                    "line": item.line,
                    "annotation": item.annotation,
                    "id": item.id,
                    "label": classes[item.label],
                    "expected": item.expected,
                }
            )
        elif item.reason is not None:
            unreadable.append(
                {
                    "line": item.line,
                    "annotation": item.annotation,
                    "id": item.id,
                    "path": str(source / item.rel),
                    "reason": item.reason,
                    "error": item.error,
                }
            )
        if item.reason is not None and not keep_missing:
            continue
        rel = item.rel if item.rel is not None else item.expected.split(" or ")[0]
        if fmt == "frames":
            lines.append(f"{rel} {item.num_frames or 1} {item.label}")
        else:
            lines.append(f"{rel} {item.label}")
    return lines, missing, unreadable


def _data_section(dataset: str, source: Path, out: Path, fmt: str, frame_template: str) -> dict:
    """The ``data`` section of a run config that reads the prepared lists."""
    return {
        "name": dataset,
        "train": str(out / "train.txt"),
        "val": str(out / "val.txt"),
        "test": str(out / "val.txt"),
        "root": str(source),
        "format": fmt,
        **({"frame_template": frame_template} if fmt == "frames" else {}),
    }


def _check_items(items, source: Path, fmt, frame_template, frame_start, backend, workers, progress) -> None:
    from harness.data.check import probe_records

    todo = [i for split in SPLITS for i in items[split] if i.reason is None]
    records = [
        VideoRecord(str(source / i.rel), i.label, i.num_frames, i.line, i.annotation) for i in todo if i.rel is not None
    ]
    results = probe_records(
        records,
        fmt,
        frame_template=frame_template,
        frame_start=frame_start,
        backend=backend,
        workers=workers,
        progress=progress,
    )
    for item, res in zip(todo, results):
        if not res["ok"]:
            item.reason, item.error = res["reason"], res["error"]
