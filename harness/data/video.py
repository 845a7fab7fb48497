"""Reading videos (decord) and raw-frame folders (Pillow) into snippet tensors.

:class:`VideoDataset` turns an annotation file into samples ``(uint8 (V*U, C, T, H, W), label)``:

1. the sampler gives indices ``(G*U, T)`` for the video's frame count (``G`` test groups);
2. the unique indices are decoded in **one** ``decord.VideoReader.get_batch`` call, in
   increasing order (or read as JPEGs with Pillow for raw-frame folders), then gathered back
   into ``(G*U, T, H, W, C)``;
3. the tensor is viewed as ``(G*U, C, T, H, W)`` and the transform (crop, flip, ...) is applied;
   multi-crop transforms multiply the rows, crop-major, so that
   ``V = G * crops`` views of ``U`` consecutive snippets come out.

Randomness (training offsets, crops, flips) is drawn from
``numpy.random.default_rng([seed, epoch, index])``: a sample depends only on
``(seed, epoch, index)``, not on the worker that reads it nor on the number of workers. The
epoch lives in shared memory so that :meth:`VideoDataset.set_epoch` reaches persistent workers.

**Video backends** (``video_backend``, :data:`VIDEO_BACKENDS`, :mod:`harness.data.backends`): ``decord``
(seeks, fast), ``pyav`` (PyAV, also seeks: to the keyframe at or before each wanted frame, :class:`PyAVReader`),
``torchcodec`` (:mod:`harness.data.torchcodec_video`) and ``auto`` (the default: torchcodec where it loads, else
decord (:func:`~harness.data.backends.auto_decoder`), and PyAV for a file that one cannot open or decode, e.g.
H.264 at the widths decord 0.6 mis-copies: 16, 24, 48, 72 px). All give the same uint8 RGB frames (FFmpeg's
decoder and rgb24 conversion; tested) and the same frame count (video packets), so a sample is the same tensor
whichever backend decoded it. In ``auto`` a file the first decoder failed on is remembered per process (read
with PyAV directly afterwards) and logged once; :func:`open_video` tells why (``reader.fallback``), which
``data check`` reports.

Bad files (missing, zero-byte, truncated, undecodable, no frames, missing JPEG) raise
:class:`CorruptVideoError` naming the file and the annotation line (from a dataset with
``on_error="raise"``, with the fix: ``dsa-harness data check``, ``--skip-corrupt``). With ``on_error="skip"``
the skipped index is recorded in shared memory and :meth:`VideoDataset.pop_skipped` lists the skipped files
(call it at the end of the epoch / evaluation, in the main process); then for training (``replace_skipped``,
the default) the sample is replaced by another one drawn deterministically from ``(seed, epoch, index)``
(returned with *its own* label: labels are never shifted), while for evaluation (``replace_skipped=False``)
it is left out: ``dataset[i]`` is ``(None, label)`` and the loader's collate drops it, so no video is
scored twice and none under another's label.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from harness.data import backends
from harness.data.annotations import VideoRecord, read_annotations
from harness.data.backends import check_video_backend
from harness.data.pyav_video import PyAVReader
from harness.data.sampling import SnippetSampler
from harness.data.transforms import accepts_rng
from harness.errors import ConfigError, HarnessError

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


def _decoder_errors() -> tuple[type[BaseException], ...]:
    try:
        from decord._ffi.base import DECORDError
    except ImportError:  # pragma: no cover - layout of another decord version
        return (RuntimeError,)
    return (RuntimeError, DECORDError)


def _pyav_errors() -> tuple[type[BaseException], ...]:
    try:
        from av import FFmpegError
    except ImportError:  # pragma: no cover - PyAV < 9
        from av import AVError as FFmpegError
    # OSError: unreadable file; ValueError / IndexError: no video stream, odd containers
    return (FFmpegError, OSError, ValueError, IndexError)


# What decord raises for unreadable input (FFmpeg's message inside).
DECODER_ERRORS = _decoder_errors()
# Reason codes stored in the shared skip table (0 = not skipped).
REASONS = {1: "missing", 2: "empty", 3: "undecodable", 4: "no frames"}
_REASON_CODE = {v: k for k, v in REASONS.items()}
# decord 0.6's internal size check when it mis-copies frames of some widths (16, 24, 48, 72 px for H.264)
_DECORD_SIZE_CHECK = ("from_size == to_size", "DECORDArrayCopyFromTo")
# auto backend, per process: path -> why its first decoder (torchcodec or decord) could not read it (PyAV from then on)
_DECORD_FAILED: dict[str, str] = {}


class CorruptVideoError(HarnessError, RuntimeError):
    """A video (or frame folder) that cannot be read. ``reason`` is one of
    'missing', 'empty', 'undecodable', 'no frames'.

    A loader worker's error reaches the main process through torch's ``ExceptionWrapper``, which
    rebuilds it as ``CorruptVideoError(text)`` (text: "Caught CorruptVideoError in DataLoader worker
    process N. Original Traceback ..."): with one argument, the message is the worker's own (the
    text's last line), so the command line still prints one line naming the video."""

    def __init__(self, path: str, reason: str | None = None, detail: str = "", where: str = "", hint: str = ""):
        if reason is None:  # rebuilt from a worker's traceback text
            lines = [line for line in str(path).strip().splitlines() if line.strip()]
            last = lines[-1].strip() if lines else ""
            original = last.split(f"{CorruptVideoError.__name__}: ", 1)[-1]
            self.path, self.reason, self.detail, self.where, self.hint = "", "undecodable", original, "", ""
            super().__init__(f"{original} (in a loader worker)")
            return
        self.path, self.reason, self.detail, self.where, self.hint = str(path), reason, detail, where, hint
        msg = f"{reason} video {self.path}"
        if where:
            msg += f" (annotation {where})"
        if detail:
            msg += f": {detail}"
        if hint:
            msg += f"; {hint}"
        super().__init__(msg)

    def with_hint(self, hint: str) -> CorruptVideoError:
        """The same error with ``hint`` (the fix, on the same line) appended to its message."""
        return CorruptVideoError(self.path, self.reason, self.detail, self.where, hint)

    def __reduce__(self):  # picklable across DataLoader workers
        return (CorruptVideoError, (self.path, self.reason, self.detail, self.where, self.hint))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[-1] if text else type(exc).__name__)[:300]


def _pyav_width(path: str) -> int | None:
    try:
        import av

        with av.open(path) as container:
            return int(container.streams.video[0].codec_context.width)
    except _pyav_errors():
        return None


def decord_cause(path: str, error: str) -> str:
    """Why decord could not read ``path``, in words: its size check at the widths it mis-copies is named
    ("decord cannot decode this width (48 px); read with PyAV"), other errors are quoted."""
    if any(marker in error for marker in _DECORD_SIZE_CHECK):
        width = _pyav_width(path)
        return f"decord cannot decode this width{f' ({width} px)' if width else ''}; read with PyAV"
    return f"decord failed ({error}); read with PyAV"


class DecordReader:
    """A video opened with decord: ``len(reader)`` frames, ``reader.fps``, ``reader.frames(sorted unique indices)``."""

    backend = "decord"
    fallback = None

    def __init__(self, path: str, num_threads: int = 1, auto: bool = False):
        import decord

        self.path, self.num_threads, self.auto = path, int(num_threads), auto  # auto: PyAV when decoding fails
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
        self.fps = float(self._reader.get_avg_fps())

    def __len__(self) -> int:
        return len(self._reader)

    def frames(self, indices: list[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)`` RGB; raises decord's errors."""
        return self._reader.get_batch(list(indices)).asnumpy()


def _open_pyav(path: str, num_threads: int, where: str, fallback: str | None = None, decord_error: str = ""):
    try:
        reader = PyAVReader(path, num_threads, fallback)
    except _pyav_errors() as e:
        detail = _first_line(e) if not decord_error else f"{decord_error}; PyAV: {_first_line(e)}"
        raise CorruptVideoError(path, "undecodable", detail, where) from None
    if len(reader) < 1:
        raise CorruptVideoError(path, "no frames", "decoder reports 0 frames", where)
    return reader


def _open_torchcodec(path: str, num_threads: int, where: str, device: str):
    from harness.data.torchcodec_video import TorchCodecReader, torchcodec_errors

    try:
        reader = TorchCodecReader(path, num_threads, device)
    except torchcodec_errors() as e:
        raise CorruptVideoError(path, "undecodable", f"torchcodec: {_first_line(e)}", where) from None
    if len(reader) < 1:
        raise CorruptVideoError(path, "no frames", "decoder reports 0 frames", where)
    return reader


def _open_auto_torchcodec(path: str, num_threads: int, where: str):
    """``auto`` where torchcodec decodes here: torchcodec, PyAV for a file it cannot open (remembered)."""
    try:
        reader = _open_torchcodec(path, num_threads, where, "cpu")
    except CorruptVideoError as e:
        if e.reason != "undecodable":
            raise
        cause = f"torchcodec failed ({e.detail.removeprefix('torchcodec: ')}); read with PyAV"
        reader = _open_pyav(path, num_threads, where, cause, e.detail)
        _remember_fallback(path, reader.fallback)
        return reader
    reader.auto = True  # decoding failures fall back to PyAV too (decode_frames)
    return reader


def _auto_cause(reader, error: str) -> str:
    """Why PyAV reads a file ``auto``'s first decoder (``reader``) failed on, in words."""
    if reader.backend == "decord":
        return decord_cause(reader.path, error)
    return f"{reader.backend} failed ({error}); read with PyAV"


def _reader_errors(reader) -> tuple[type[BaseException], ...]:
    if reader.backend == "decord":
        return DECODER_ERRORS
    if reader.backend.startswith("torchcodec"):
        from harness.data.torchcodec_video import torchcodec_errors

        return torchcodec_errors()
    return _pyav_errors()


def open_video(path: str, num_threads: int = 1, where: str = "", backend: str = "auto"):
    """Open ``path`` with ``backend`` (:data:`VIDEO_BACKENDS`); raise :class:`CorruptVideoError` when it cannot
    be used. Returns a :class:`DecordReader`, :class:`PyAVReader` or ``TorchCodecReader``; in ``auto`` mode the
    first decoder's reader (torchcodec or decord) falls back to PyAV when decoding fails (see
    :func:`decode_frames`), and ``reader.fallback`` says why PyAV reads a file (None when the first decoder does)."""
    check_video_backend(backend, installed=True)
    path = str(path)
    if not os.path.exists(path):
        raise CorruptVideoError(path, "missing", "no such file", where)
    if os.path.getsize(path) == 0:
        raise CorruptVideoError(path, "empty", "zero-byte file", where)
    if backend == "pyav":
        return _open_pyav(path, num_threads, where)
    if backend.startswith("torchcodec"):
        return _open_torchcodec(path, num_threads, where, "cuda" if backend == "torchcodec-cuda" else "cpu")
    if backend == "auto" and path in _DECORD_FAILED:
        return _open_pyav(path, num_threads, where, _DECORD_FAILED[path])
    if backend == "auto" and backends.auto_decoder() == "torchcodec":
        return _open_auto_torchcodec(path, num_threads, where)
    try:
        reader = DecordReader(path, num_threads, auto=backend == "auto")
    except DECODER_ERRORS as e:  # RuntimeError / DECORDError with FFmpeg's reason
        if backend == "decord":
            raise CorruptVideoError(path, "undecodable", _first_line(e), where) from None
        reader = _open_pyav(path, num_threads, where, decord_cause(path, _first_line(e)), _first_line(e))
        _remember_fallback(path, reader.fallback)
        return reader
    if len(reader) < 1:
        raise CorruptVideoError(path, "no frames", "decoder reports 0 frames", where)
    return reader


def _decode_failure(reader, error: BaseException) -> str:
    text = _first_line(error)
    if reader.backend == "decord" and any(marker in text for marker in _DECORD_SIZE_CHECK):
        return f"{decord_cause(reader.path, text)} (video_backend auto or pyav)"
    return f"decoding frames failed: {text}"


def _remember_fallback(path: str, cause: str) -> None:
    if path not in _DECORD_FAILED:
        _DECORD_FAILED[path] = cause
        log.warning("%s: %s", path, cause)


def decode_frames(reader, indices: np.ndarray, path: str = "", where: str = "") -> np.ndarray:
    """Decode the sorted unique ``indices`` once, gathered back: uint8 ``(*indices.shape, H, W, 3)``.

    ``reader`` comes from :func:`open_video`. When a decord reader opened in ``auto`` mode fails, PyAV decodes
    the same frames, and the file is read with PyAV from then on in this process (:func:`fallback_cause`
    says why)."""
    flat = np.asarray(indices).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    path = path or getattr(reader, "path", "")
    errors = _reader_errors(reader)
    try:
        frames = reader.frames(unique.tolist())
    except errors as e:
        if not getattr(reader, "auto", False):
            raise CorruptVideoError(path, "undecodable", _decode_failure(reader, e), where) from None
        decord_error = f"decoding frames failed: {_first_line(e)}"
        fallback = _open_pyav(reader.path, reader.num_threads, where, _auto_cause(reader, _first_line(e)), decord_error)
        try:
            frames = fallback.frames(unique.tolist())
        except _pyav_errors() as e2:
            raise CorruptVideoError(path, "undecodable", f"{decord_error}; PyAV: {_first_line(e2)}", where) from None
        _remember_fallback(reader.path, fallback.fallback)
    if frames.shape[0] != len(unique):
        raise CorruptVideoError(path, "undecodable", f"got {frames.shape[0]} of {len(unique)} frames", where)
    if len(unique) != len(flat) or not np.array_equal(unique, flat):
        frames = frames[inverse]
    return frames.reshape(*np.shape(indices), *frames.shape[1:])


def fallback_cause(path: str) -> str | None:
    """Why this process reads ``path`` with PyAV in ``auto`` mode (None: auto's first decoder reads it, or not
    tried yet)."""
    return _DECORD_FAILED.get(str(path))


def check_frame_template(template: str, start: int = 1) -> None:
    """Refuse a raw-frame file-name template that cannot format a frame number (``ConfigError``)."""
    try:
        template.format(start)
    except (IndexError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ConfigError(
            f"frame_template={template!r} cannot format frame number {start} "
            f"({type(e).__name__}: {e}); write e.g. 'img_{{:05d}}.jpg'"
        ) from None


def read_frame_folder(folder: str, indices: np.ndarray, template: str, start: int, where: str = "") -> np.ndarray:
    """Read JPEG frames ``template.format(i + start)`` of ``folder`` with Pillow:
    uint8 ``(*indices.shape, H, W, 3)``."""
    from PIL import Image

    if not os.path.isdir(folder):
        raise CorruptVideoError(folder, "missing", "no such frame folder", where)
    flat = np.asarray(indices).reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    images = []
    for i in unique.tolist():
        name = os.path.join(folder, template.format(i + start))
        try:
            with Image.open(name) as im:
                images.append(np.asarray(im.convert("RGB")))
        except FileNotFoundError:
            raise CorruptVideoError(folder, "missing", f"frame file {name} not found", where) from None
        except (OSError, ValueError, SyntaxError) as e:  # PIL: unidentified / truncated image
            raise CorruptVideoError(folder, "undecodable", f"frame file {name}: {_first_line(e)}", where) from None
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise CorruptVideoError(folder, "undecodable", f"frames of different sizes {sorted(shapes)}", where)
    frames = np.stack(images)[inverse]
    return frames.reshape(*np.shape(indices), *frames.shape[1:])


class VideoDataset(Dataset):
    """Snippet samples from an annotated video dataset.

    annotation_file: video list, raw-frame list or Kinetics CSV (see :mod:`harness.data.annotations`).
    root:            folder the annotation's paths are relative to.
    sampler:         a :class:`SnippetSampler` (its mode decides train/val/test sampling).
    transform:       callable on uint8 ``(G*U, C, T, H, W)``; gets ``rng=`` when it accepts it.
                     None: samples are returned at decoded size.
    format:          "video" | "frames" | "kinetics_csv".
    on_error:        "raise" (CorruptVideoError, with the fix in its message) or "skip" (counted, listed by
                     :meth:`pop_skipped`).
    replace_skipped: with "skip": True (training) replaces an unreadable sample by another one drawn from
                     ``(seed, epoch, index)``; False (evaluation) returns ``(None, label)``, which the
                     loader's collate drops: the video is left out, never scored in another's place.
    decode_threads:  decoder threads per reader (1 per loader worker is usually best).
    video_backend:   "auto" (torchcodec or decord, PyAV for a file it cannot read) | "decord" | "pyav" | "torchcodec" |
                     "torchcodec-cuda" (:mod:`harness.data.backends`); the samples are the same whichever decodes.
    seed:            base of the per-sample random generator ``[seed, epoch, index]``.
    frame_template, frame_start: raw frames, file of frame ``i`` = ``frame_template.format(i + frame_start)``.
    class_index, label_dir_spaces: Kinetics CSV options (see :func:`read_annotations`).
    records:         a ready list of :class:`VideoRecord` instead of reading ``annotation_file``.
    cache_decoded:   keep every frame of each video decoded once, in this process, and sample from
                     memory afterwards (small datasets such as the embedded synthetic set: memory is
                     ``videos x frames x H x W x 3`` bytes per process, each loader worker its own).
                     The samples are the same as without the cache.

    clips_per_decode: k > 1 (training): ``dataset[i]`` is k samples of video ``i`` from one decode, each with
                     its own snippet offsets and augmentation (drawn one after the other from the sample's
                     generator): ``(uint8 (k, V*U, C, T, H, W), label)``; the loader's collate makes them k rows
                     of the batch. k = 1 (the default) gives exactly the samples of before.

    ``dataset[i]`` is ``(uint8 tensor (V*U, C, T, H, W), int label)`` with ``V = G * crops``.
    """

    def __init__(
        self,
        annotation_file: str | os.PathLike | None,
        root: str | os.PathLike | None,
        sampler: SnippetSampler,
        transform: Callable | None = None,
        format: str = "video",
        on_error: str = "raise",
        decode_threads: int = 1,
        seed: int = 0,
        *,
        frame_template: str = "img_{:05d}.jpg",
        frame_start: int = 1,
        class_index: str | os.PathLike | dict | None = None,
        label_dir_spaces: str | None = None,
        records: list[VideoRecord] | None = None,
        cache_decoded: bool = False,
        video_backend: str = "auto",
        replace_skipped: bool = True,
        clips_per_decode: int = 1,
    ):
        check_video_backend(video_backend, installed=True, option="data.video_backend")
        if int(clips_per_decode) < 1:
            raise ValueError(f"VideoDataset clips_per_decode must be >= 1, not {clips_per_decode}")
        if on_error not in ON_ERROR:
            raise ValueError(f"VideoDataset on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
        if decode_threads < 0:
            raise ValueError(f"VideoDataset decode_threads must be >= 0, not {decode_threads}")
        if not callable(sampler):
            raise TypeError("VideoDataset sampler must be a SnippetSampler (callable num_frames, rng -> indices)")
        if records is None:
            if annotation_file is None:
                raise ValueError("VideoDataset needs an annotation_file or records")
            records = read_annotations(
                annotation_file, format, root, class_index=class_index, label_dir_spaces=label_dir_spaces
            )
        if not records:
            raise ValueError("VideoDataset has no videos")
        if format == "frames" and any(r.num_frames is None for r in records):
            raise ValueError("raw-frame records need num_frames")
        if format == "frames":
            check_frame_template(frame_template, frame_start)
        self.records = list(records)
        self.annotation_file = None if annotation_file is None else str(annotation_file)
        self.root = None if root is None else str(root)
        self.sampler = sampler
        self.transform = transform
        self._transform_takes_rng = transform is not None and accepts_rng(transform)
        self.format = format
        self.on_error = on_error
        self.replace_skipped = bool(replace_skipped)
        self.decode_threads = int(decode_threads)
        self.video_backend = video_backend
        self.seed = int(seed)
        self.frame_template = frame_template
        self.frame_start = int(frame_start)
        # Shared with DataLoader workers (also persistent ones): current epoch, skip table.
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._skipped = torch.zeros(len(self.records), dtype=torch.uint8).share_memory_()
        self._known_bad: set[int] = set()  # per process cache
        self.clips_per_decode = int(clips_per_decode)
        self.cache_decoded = bool(cache_decoded) and format != "frames"
        self._decoded: dict[int, np.ndarray] = {}  # index -> uint8 (F, H, W, 3), per process

    # --- public API -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[int]:
        """The label of every record, in dataset order."""
        return [r.label for r in self.records]

    @property
    def num_classes(self) -> int:
        """``max(label) + 1`` over the records (pass the true count to the model when a class may be absent)."""
        return max(self.labels) + 1

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random offsets/crops are drawn (visible to persistent workers).
        Call it before iterating the loader for that epoch."""
        self._epoch[0] = int(epoch)

    def rng(self, index: int, *extra: int) -> np.random.Generator:
        """The generator of sample ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, int(index), *extra])

    def sample_indices(self, index: int, num_frames: int) -> np.ndarray:
        """The frame indices sample ``index`` reads this epoch (what ``__getitem__`` decodes)."""
        return self.sampler(num_frames, self.rng(index))

    def num_skipped(self) -> int:
        """Samples skipped since the last :meth:`pop_skipped` (all workers)."""
        return int((self._skipped > 0).sum())

    def pop_skipped(self) -> list[dict]:
        """The records skipped since the last call (all workers), then clears the table.
        Each entry: ``{"index", "path", "line", "annotation", "reason"}``. Logs a warning."""
        codes = self._skipped.clone()
        self._skipped.zero_()
        out = []
        for i in torch.nonzero(codes).flatten().tolist():
            r = self.records[i]
            out.append(
                {
                    "index": i,
                    "path": r.path,
                    "line": r.line,
                    "annotation": r.source,
                    "reason": REASONS.get(int(codes[i]), "undecodable"),
                }
            )
        if out:
            log.warning(
                "skipped %d unreadable video(s): %s",
                len(out),
                "; ".join(f"{e['path']} ({e['annotation']}:{e['line']}, {e['reason']})" for e in out),
            )
        return out

    def load(self, index: int, rng: np.random.Generator | None = None, clips: int = 1) -> torch.Tensor:
        """Decode sample ``index`` without transform: uint8 ``(G*U, C, T, H, W)``; with ``clips`` k > 1,
        ``(k, G*U, C, T, H, W)``: k draws of the sampler from ``rng`` (one after the other), their frames
        decoded in one call (each frame once). Raises CorruptVideoError."""
        record = self.records[index]
        rng = self.rng(index) if rng is None else rng
        where = record.where

        def draw(num_frames: int) -> np.ndarray:  # (G*U, T), or (k, G*U, T)
            if clips == 1:
                return self.sampler(num_frames, rng)
            return np.stack([self.sampler(num_frames, rng) for _ in range(clips)])

        if self.format == "frames":
            indices = draw(record.num_frames)
            frames = read_frame_folder(record.path, indices, self.frame_template, self.frame_start, where)
        elif self.cache_decoded:
            video = self._decoded.get(index)
            if video is None:
                reader = open_video(record.path, self.decode_threads, where, self.video_backend)
                num_frames = len(reader) if record.num_frames is None else min(record.num_frames, len(reader))
                video = decode_frames(reader, np.arange(num_frames), record.path, where)
                self._decoded[index] = video
                del reader
            frames = video[draw(len(video))]
        else:
            reader = open_video(record.path, self.decode_threads, where, self.video_backend)
            num_frames = len(reader) if record.num_frames is None else min(record.num_frames, len(reader))
            frames = decode_frames(reader, draw(num_frames), record.path, where)
            del reader
        # ([k,] G*U, T, H, W, C) buffer -> ([k,] G*U, C, T, H, W) view
        x = torch.from_numpy(frames)
        return x.permute(0, 4, 1, 2, 3) if clips == 1 else x.permute(0, 1, 5, 2, 3, 4)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = int(index)
        if index < 0:
            index += len(self)
        try:
            return self._get(index, self.rng(index))
        except CorruptVideoError as e:
            if self.on_error == "raise":
                raise e.with_hint(self._fix_hint()) from None
            self._mark_skipped(index, e)
        if not self.replace_skipped:  # evaluation: left out (the loader's collate drops it), never replaced
            return None, self.records[index].label
        # Deterministic replacement: candidates drawn from (seed, epoch, index, 1).
        pick = self.rng(index, 1)
        n = len(self)
        for _ in range(min(4 * n, 1000)):
            j = int(pick.integers(n))
            if j == index or j in self._known_bad:
                continue
            try:
                return self._get(j, self.rng(j))
            except CorruptVideoError as e:
                self._mark_skipped(j, e)
        raise CorruptVideoError(
            self.records[index].path,
            "undecodable",
            "no readable replacement found (is the whole dataset unreadable?)",
            self.records[index].where,
        )

    # --- internals --------------------------------------------------------------------
    def _fix_hint(self) -> str:
        ann = self.annotation_file or "ANNOTATION"
        root = f" --root {self.root}" if self.root else ""
        return (
            f"list every unreadable video with `dsa-harness data check {ann}{root}`, or skip them "
            "with --skip-corrupt (data.on_error=skip)"
        )

    def _get(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, int]:
        k = self.clips_per_decode
        x = self.load(index, rng, k)
        if k == 1:
            return self._transformed(x, rng), self.records[index].label
        return torch.stack([self._transformed(clip, rng) for clip in x]), self.records[index].label

    def _transformed(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if self.transform is not None:
            x = self.transform(x, rng=rng) if self._transform_takes_rng else self.transform(x)
        return x.contiguous()

    def _mark_skipped(self, index: int, error: CorruptVideoError) -> None:
        self._known_bad.add(index)
        self._skipped[index] = _REASON_CODE.get(error.reason, 3)

    def __repr__(self) -> str:
        return (
            f"VideoDataset({len(self)} videos, format={self.format!r}, sampler={self.sampler}, "
            f"transform={self.transform!r}, on_error={self.on_error!r})"
        )


def video_info(path: str | os.PathLike, backend: str = "auto") -> dict:
    """``{"num_frames", "fps", "height", "width", "backend"}`` of a video file (``backend``: the one that read it)."""
    path = str(Path(path))
    reader = open_video(path, backend=backend)
    h, w = decode_frames(reader, np.zeros(1, np.int64), path).shape[1:3]
    backend = "pyav" if reader.backend == "pyav" or fallback_cause(path) else reader.backend
    return {"num_frames": len(reader), "fps": reader.fps, "height": int(h), "width": int(w), "backend": backend}
