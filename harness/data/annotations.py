"""Annotation files -> a list of :class:`VideoRecord`.

Three layouts are read, the ones public video datasets ship with:

``video`` (video list; Kinetics, Mini-Kinetics, ActivityNet trimmed clips, the synthetic set)
    one video per line, ``relative/path.mp4 LABEL``; the label is a 0-based class index and
    the path is everything before the last whitespace (so paths may contain spaces).

``frames`` (raw-frame list; Something-Something V1 ships JPEG frames)
    ``folder NUM_FRAMES LABEL``; frame ``i`` (0-based) of the folder is the file
    ``frame_template.format(i + frame_start)``, e.g. ``img_00001.jpg`` for ``i = 0`` with the
    defaults ``img_{:05d}.jpg`` and ``frame_start = 1``.

``kinetics_csv`` (the official Kinetics CSV)
    header ``label,youtube_id,time_start,time_end,split``; each row maps to the file
    ``<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`` (the layout of the common
    download scripts) and the label name to an index through a class-index file (see
    :func:`read_class_index`). Without a class-index file the sorted label names of the CSV
    itself are used, which is only safe when every split contains every class.

In the two text layouts blank lines and lines starting with ``#`` are ignored. Any
malformed line raises :class:`AnnotationError` naming the file and the 1-based line number; a
missing file raises :class:`harness.errors.MissingFileError` (a FileNotFoundError). One video listed with
two labels is refused naming both lines; listed twice with one label, it is kept with a
:class:`harness.errors.HarnessWarning` (:func:`check_repeats`). A dataset's ``classes.json`` is read by
:func:`read_classes_json`, which validates it the same way (file and entry named).
"""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, HarnessWarning, MissingFileError

FORMATS = ("video", "frames", "kinetics_csv")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".flv")
KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end")


class AnnotationError(HarnessError, ValueError):
    """A malformed annotation file; the message starts with ``file:line:``."""

    def __init__(self, file: str | os.PathLike, line: int | None, problem: str, text: str | None = None):
        self.file = str(file)
        self.line = line
        self.problem = problem
        self.text = text
        where = f"{self.file}:{line}" if line else self.file
        msg = f"{where}: {problem}"
        if text is not None:
            msg += f" (got {text.rstrip()!r})"
        super().__init__(msg)

    def __reduce__(self):  # picklable across worker processes
        return (AnnotationError, (self.file, self.line, self.problem, self.text))


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video.

    path:        the video file (``video``/``kinetics_csv``) or the frame folder (``frames``),
                 already joined with the dataset root.
    label:       0-based class index.
    num_frames:  number of frames when the annotation says so (raw-frame lists), else None
                 (the decoder tells).
    line:        1-based line number in ``source`` (for error messages).
    source:      the annotation file the record came from.
    """

    path: str
    label: int
    num_frames: int | None = None
    line: int = 0
    source: str = ""

    @property
    def where(self) -> str:
        """``annotation:line`` for messages."""
        return f"{self.source}:{self.line}" if self.source else f"line {self.line}"


def _parse_int(text: str, what: str, file, line: int, raw: str, minimum: int = 0) -> int:
    try:
        value = int(text)
    except ValueError:
        raise AnnotationError(file, line, f"{what} must be an integer, not {text!r}", raw) from None
    if value < minimum:
        raise AnnotationError(file, line, f"{what} must be >= {minimum}, not {value}", raw)
    return value


def _join(root: str | os.PathLike | None, rel: str) -> str:
    return os.path.join(os.fspath(root), rel) if root is not None else rel


def _text_lines(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            for number, raw in enumerate(f, start=1):
                text = raw.strip()
                if text and not text.startswith("#"):
                    yield number, text, raw
    except UnicodeDecodeError:  # decoded in chunks: the line is not known
        raise AnnotationError(path, None, "not UTF-8 text (is this an annotation file?)") from None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AnnotationError(path, None, "not UTF-8 text (is this an annotation file?)") from None


def read_class_index(path: str | os.PathLike) -> dict[str, int]:
    """Read a class-index file: label name -> 0-based index.

    Accepted layouts: a JSON list of names (index = position), a JSON object
    ``{name: index}``, a JSON object ``{"classes": [...]}`` (as written by the synthetic set,
    entries being names or ``{"name": ...}``), or a text file with one name per line
    (index = line order among non-blank lines) or ``INDEX NAME`` / ``NAME,INDEX`` per line.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"class-index file not found: {path}")
    text = _read_text(path)
    names: dict[str, int] = {}
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise AnnotationError(path, e.lineno, f"invalid JSON: {e.msg}") from None
        try:
            if isinstance(data, dict) and "classes" in data:
                data = [c["name"] if isinstance(c, dict) else c for c in data["classes"]]
            if isinstance(data, list):
                names = {str(n): i for i, n in enumerate(data)}
            elif isinstance(data, dict):
                names = {str(k): int(v) for k, v in data.items()}
            else:
                raise TypeError(type(data).__name__)
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(
                path,
                None,
                'expected a JSON list of names, an object name -> index, or {"classes": [names or {"name": ...}]}',
            ) from None
    else:
        for _number, line, _raw in _text_lines(path):
            line = line.strip().strip('"')
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0].isdigit():
                names[parts[1].strip().strip('"')] = int(parts[0])
            elif "," in line and line.rsplit(",", 1)[1].strip().isdigit():
                name, idx = line.rsplit(",", 1)
                names[name.strip().strip('"')] = int(idx)
            else:
                names[line] = len(names)
    values = sorted(names.values())
    if values != list(range(len(values))):
        raise AnnotationError(path, None, f"class indices must be 0..{len(values) - 1} without gaps")
    return names


def _read_video_list(path: Path, root) -> list[VideoRecord]:
    records = []
    for number, text, raw in _text_lines(path):
        parts = text.rsplit(None, 1)
        if len(parts) != 2:
            raise AnnotationError(path, number, "expected 'PATH LABEL'", raw)
        rel, label = parts
        head = rel.rsplit(None, 1)
        if len(head) == 2 and head[1].isdigit() and not rel.lower().endswith(VIDEO_EXTENSIONS):
            # 3 columns: a number between the path and the label is never part of a video's name
            problem = (
                "3 columns; a video list line is 'PATH LABEL'"
                if head[0].lower().endswith(VIDEO_EXTENSIONS)
                else "looks like a raw-frame line 'FOLDER NUM_FRAMES LABEL'; read it with format='frames'"
            )
            raise AnnotationError(path, number, problem, raw)
        records.append(
            VideoRecord(_join(root, rel), _parse_int(label, "LABEL", path, number, raw), None, number, str(path))
        )
    return records


def _read_frame_list(path: Path, root) -> list[VideoRecord]:
    records = []
    for number, text, raw in _text_lines(path):
        parts = text.rsplit(None, 2)
        if len(parts) != 3:
            raise AnnotationError(path, number, "expected 'FOLDER NUM_FRAMES LABEL'", raw)
        folder, frames, label = parts
        records.append(
            VideoRecord(
                _join(root, folder),
                _parse_int(label, "LABEL", path, number, raw),
                _parse_int(frames, "NUM_FRAMES", path, number, raw, minimum=1),
                number,
                str(path),
            )
        )
    return records


def _time_field(text: str, what: str, path, number, raw) -> int:
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(path, number, f"{what} must be a number of seconds, not {text!r}", raw) from None
    if value < 0 or value != int(value):
        raise AnnotationError(path, number, f"{what} must be a whole number of seconds >= 0, not {text!r}", raw)
    return int(value)


def kinetics_rows(path: str | os.PathLike) -> list[tuple[int, str, str, int, int]]:
    """``(line, label name, youtube_id, time_start, time_end)`` of each row of an official Kinetics CSV;
    AnnotationError naming file:line for a missing column, a short row, an empty id or a bad time."""
    path = Path(path)
    rows = list(csv.reader(io.StringIO(_read_text(path), newline="")))
    if not rows:
        raise AnnotationError(path, 1, "empty file; expected header 'label,youtube_id,time_start,time_end,split'")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in KINETICS_COLUMNS if c not in header]
    if missing:
        raise AnnotationError(
            path,
            1,
            f"header lacks column(s) {', '.join(missing)}; expected 'label,youtube_id,time_start,time_end,split'",
            ",".join(rows[0]),
        )
    col = {name: header.index(name) for name in KINETICS_COLUMNS}
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue
        raw = ",".join(row)
        if len(row) != len(header):
            raise AnnotationError(path, number, f"expected {len(header)} comma-separated fields, got {len(row)}", raw)
        youtube_id = row[col["youtube_id"]].strip()
        if not youtube_id:
            raise AnnotationError(path, number, "empty youtube_id", raw)
        start = _time_field(row[col["time_start"]], "time_start", path, number, raw)
        end = _time_field(row[col["time_end"]], "time_end", path, number, raw)
        out.append((number, row[col["label"]].strip(), youtube_id, start, end))
    return out


def _read_kinetics_csv(path: Path, root, class_index, label_dir_spaces: str | None) -> list[VideoRecord]:
    body = kinetics_rows(path)
    if class_index is None:
        mapping = {name: i for i, name in enumerate(sorted({label for _, label, _, _, _ in body}))}
    elif isinstance(class_index, dict):
        mapping = dict(class_index)
    else:
        mapping = read_class_index(class_index)
    records = []
    for number, label_name, youtube_id, start, end in body:
        if label_name not in mapping:
            raise AnnotationError(path, number, f"label {label_name!r} is not in the class index")
        folder = label_name if label_dir_spaces is None else label_name.replace(" ", label_dir_spaces)
        rel = f"{folder}/{youtube_id}_{start:06d}_{end:06d}.mp4"
        records.append(VideoRecord(_join(root, rel), mapping[label_name], None, number, str(path)))
    return records


def check_repeats(records: list[VideoRecord], path: str | os.PathLike) -> None:
    """One video listed twice: with two labels, refused (:class:`AnnotationError` naming both lines: which label
    is meant cannot be guessed); with the same label, accepted with a :class:`HarnessWarning` (each copy is
    trained on and scored as a video of its own: a test list's accuracy counts it twice)."""
    first: dict[str, VideoRecord] = {}
    repeats: list[tuple[VideoRecord, VideoRecord]] = []
    for r in records:
        seen = first.setdefault(r.path, r)
        if seen is r:
            continue
        if seen.label != r.label:
            raise AnnotationError(
                path,
                r.line,
                f"{r.path} has label {r.label} here and label {seen.label} at line {seen.line}: one video, two "
                "labels; keep the right line, remove the other",
            )
        repeats.append((seen, r))
    if repeats:
        a, b = repeats[0]
        warnings.warn(
            f"{path}: {len(repeats)} line(s) repeat a video listed before with the same label (first: {b.path} at "
            f"lines {a.line} and {b.line}); each copy counts as a video of its own: remove the repeats",
            HarnessWarning,
            stacklevel=3,
        )


def read_classes_json(path: str | os.PathLike) -> tuple[list[str], dict[str, list[str]] | None]:
    """Read a dataset's ``classes.json`` (beside its lists): a JSON list of class names (``data prepare``) or
    ``{"classes": [name or {"name": ..., "factors": {...}}, ...]}`` (the synthetic set). Returns (names, index =
    label; factors: {factor: value of each class} when every entry has the same ``factors`` keys, else None).
    Raises :class:`AnnotationError` naming the file and the entry for anything else (not JSON, no list, an
    entry without a name, a name twice, factors of other keys), :class:`MissingFileError` when it is absent."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"classes file not found: {path}")
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise AnnotationError(path, e.lineno, f"invalid JSON: {e.msg}") from None
    entries = doc.get("classes") if isinstance(doc, dict) else doc
    shape = 'a JSON list of class names or {"classes": [names or {"name": ..., "factors": {...}}]}'
    if not isinstance(entries, list) or not entries:
        raise AnnotationError(path, None, f"expected {shape} (non-empty)")
    names, factor_rows = [], []
    for i, entry in enumerate(entries):
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name.strip():
            raise AnnotationError(path, None, f"classes[{i}]: expected a class name (text), got {name!r}; {shape}")
        factor_rows.append(entry.get("factors") if isinstance(entry, dict) else None)
        names.append(name)
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise AnnotationError(path, None, f"classes[{i}]: {name!r} is also classes[{seen[name]}]: a name twice")
        seen[name] = i
    factors = None
    if isinstance(factor_rows[0], dict) and factor_rows[0]:
        keys = list(factor_rows[0])
        for i, row in enumerate(factor_rows):
            if not isinstance(row, dict) or list(row) != keys:
                raise AnnotationError(
                    path, None, f"classes[{i}].factors: expected the keys {keys} of classes[0].factors, got {row!r}"
                )
        factors = {k: [str(row[k]) for row in factor_rows] for k in keys}
    return names, factors


def read_annotations(
    path: str | os.PathLike,
    format: str = "video",
    root: str | os.PathLike | None = None,
    *,
    class_index: str | os.PathLike | dict[str, int] | None = None,
    label_dir_spaces: str | None = None,
    num_classes: int | None = None,
) -> list[VideoRecord]:
    """Read an annotation file (see the module docstring for the three ``format`` layouts).

    root:             folder the paths in the file are relative to (None: as written).
    class_index:      ``kinetics_csv`` only: a class-index file or a dict name -> index.
    label_dir_spaces: ``kinetics_csv`` only: replace spaces in the label folder name by this
                      string (e.g. ``"_"``) when the videos were stored that way.
    num_classes:      when given, labels must be < num_classes.

    Raises :class:`AnnotationError` (a ValueError) naming file and line for a malformed
    line, :class:`MissingFileError` (a FileNotFoundError) when the file is missing.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown annotation format {format!r}; expected one of {', '.join(FORMATS)}")
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"annotation file not found: {path}")
    if format == "video":
        records = _read_video_list(path, root)
    elif format == "frames":
        records = _read_frame_list(path, root)
    else:
        records = _read_kinetics_csv(path, root, class_index, label_dir_spaces)
    if not records:
        raise AnnotationError(path, None, "no annotated videos in the file")
    check_repeats(records, path)
    if num_classes is not None:
        for r in records:
            if r.label >= num_classes:
                raise AnnotationError(path, r.line, f"label {r.label} >= num_classes {num_classes}")
    return records
