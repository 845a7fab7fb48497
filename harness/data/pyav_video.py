"""A video opened with PyAV (``data.video_backend: pyav``, and ``auto``'s fallback for files its first decoder
cannot read): the reader interface of :mod:`harness.data.video` (``len(reader)``, ``reader.fps``, ``reader.frames(sorted
unique indices)`` -> uint8 ``(k, H, W, 3)`` RGB), seeking to the keyframe before each wanted frame.
"""

from __future__ import annotations

import numpy as np


class _SeekMismatch(Exception):
    """Seeking met something the frame table does not account for: the call decodes from the start instead."""


class PyAVReader:
    """A video opened with PyAV, the same interface as :class:`DecordReader`. The frame count is the number of
    video packets (as decord counts); frame ``i`` is the ``i``-th frame in presentation order, converted to
    rgb24 as decord does (same frames, tested).

    :meth:`frames` seeks. Opening the file reads its packets once (no decoding) into a frame table: each frame's
    pts in presentation order, and which frames are keyframes. A wanted frame is decoded from the nearest
    keyframe at or before it, and a later wanted frame past another keyframe seeks again, so a clip at the end
    of a long video decodes about one GOP, not the whole file before it. The frames are those of decoding from
    the start (tested on multi-GOP H.264 with and without B-frames, mp4 and mkv); wherever the table cannot
    vouch for that (packets without pts or with repeated ones, a first frame that is no keyframe, a seek
    landing past its keyframe, a decoded frame the table does not list, a wanted frame not met) the call
    decodes from the start instead. ``decoded_frames``: how many frames the last call decoded."""

    backend = "pyav"

    def __init__(self, path: str, num_threads: int = 1, fallback: str | None = None):
        import av

        self.path, self.num_threads, self.fallback = path, int(num_threads), fallback
        self.decoded_frames = 0
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 0.0
            packets = [(p.pts, bool(p.is_keyframe)) for p in container.demux(stream) if p.size > 0]
        self._len = len(packets)
        # the frame table: frame index -> pts (presentation order), pts -> index, keyframes' indices (increasing);
        # None where it cannot be trusted (then every call decodes from the start)
        self._pts: list[int] | None = None
        pts = [p for p, _ in packets]
        if pts and None not in pts and len(set(pts)) == len(pts):
            self._pts = sorted(pts)
            self._index = {p: i for i, p in enumerate(self._pts)}
            self._keys = sorted(self._index[p] for p, key in packets if key)
            if not self._keys or self._keys[0] != 0:
                self._pts = None

    def __len__(self) -> int:
        return self._len

    def frames(self, indices: list[int]) -> np.ndarray:
        """uint8 ``(k, H, W, 3)`` RGB for the sorted unique ``indices`` (fewer when the file ends early)."""
        indices = [int(i) for i in indices]
        self.decoded_frames = 0
        out = None
        if self._pts is not None and indices and indices[-1] < len(self._pts):
            try:
                out = self._frames_seeking(indices)
            except _SeekMismatch:
                out = None
        if out is None:
            out = self._frames_from_start(indices)
        if not out:
            return np.zeros((0, 0, 0, 3), np.uint8)
        return np.stack(out)

    def _open(self):
        import av

        container = av.open(self.path)
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self.num_threads
        return container, stream

    def _frames_from_start(self, indices: list[int]) -> list[np.ndarray]:
        """Decode from the first frame up to the last wanted one, taking the wanted ones."""
        wanted = iter(indices)
        target = next(wanted, None)
        out: list[np.ndarray] = []
        if target is None:
            return out
        container, stream = self._open()
        with container:
            for i, frame in enumerate(container.decode(stream)):
                self.decoded_frames += 1
                if i == target:
                    out.append(frame.to_ndarray(format="rgb24"))
                    target = next(wanted, None)
                    if target is None:
                        break
        return out

    def _frames_seeking(self, indices: list[int]) -> list[np.ndarray]:
        """The frames of ``indices`` (sorted, unique, all in the table), each decoded from the keyframe at or
        before it; raises :class:`_SeekMismatch` wherever the result could differ from decoding from the start."""
        import bisect

        pts, index, keys = self._pts, self._index, self._keys
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        container, stream = self._open()
        with container:
            decoder = None
            pos = -1  # the last frame decoded
            start = 0  # the keyframe this run of decoding started from: frames before it are never taken
            fresh = True  # no frame decoded since the last seek
            for target in indices:
                if target in got:
                    continue
                key = keys[bisect.bisect_right(keys, target) - 1]
                if decoder is None or key > pos + 1:  # a keyframe lies between here and the target: seek to it
                    if decoder is not None:
                        decoder.close()
                    if decoder is not None or key > 0:  # (the first run from frame 0 needs no seek)
                        container.seek(pts[key], stream=stream, backward=True, any_frame=False)
                    decoder, start, fresh = container.decode(stream), key, True
                for frame in decoder:
                    self.decoded_frames += 1
                    i = index.get(frame.pts)
                    if i is None or (fresh and i > start):  # a frame the table does not list; a seek past the key
                        raise _SeekMismatch
                    fresh = False
                    pos = i
                    if i >= start and i in wanted and i not in got:
                        got[i] = frame.to_ndarray(format="rgb24")
                    if i >= target:
                        break
                if target not in got:  # the file ended early, or the decoder skipped it
                    raise _SeekMismatch
        return [got[i] for i in indices]
