"""A video opened with torchcodec (``data.video_backend: torchcodec`` / ``torchcodec-cuda``), the reader interface
of :mod:`harness.data.video`: ``len(reader)`` frames, ``reader.fps``, ``reader.frames(sorted unique indices)``
-> uint8 ``(k, H, W, 3)`` RGB.

``seek_mode="exact"``: torchcodec scans the file once on opening (as decord and our PyAV reader do), so frame
``i`` is the ``i``-th frame in presentation order and the frame count is that of the scan (the same as decord
and PyAV on the tested files; ``len`` comes from ``metadata.num_frames``). One FFmpeg thread per reader, as the
other backends use in loader workers (``num_threads``). torchcodec gives ``(k, 3, H, W)`` tensors; the reader
returns them channels-last, as the others do. On ``torchcodec-cuda`` the frames are decoded by NVDEC and copied
back to the CPU (the loader's transforms run on the CPU); frames may differ from the CPU decoder's in the
last bits of the colour conversion (``make gpu-check`` measures by how much).
"""

from __future__ import annotations

import numpy as np


def torchcodec_errors() -> tuple[type[BaseException], ...]:
    """What torchcodec raises for unreadable input or frames it cannot give."""
    return (RuntimeError, ValueError, IndexError, OSError)


class TorchCodecReader:
    """A video opened with torchcodec's ``VideoDecoder`` (see the module docstring)."""

    fallback = None
    auto = False

    def __init__(self, path: str, num_threads: int = 1, device: str = "cpu"):
        from torchcodec.decoders import VideoDecoder

        self.path, self.num_threads, self.device = path, int(num_threads), device
        self.backend = "torchcodec" if device == "cpu" else "torchcodec-cuda"
        threads = max(1, self.num_threads)
        self._decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=threads, device=device)
        meta = self._decoder.metadata
        self._len = int(meta.num_frames or 0)
        self.fps = float(meta.average_fps or 0.0)

    def __len__(self) -> int:
        return self._len

    def frames(self, indices: list[int]) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)`` RGB; raises torchcodec's errors (:func:`torchcodec_errors`)."""
        batch = self._decoder.get_frames_at([int(i) for i in indices]).data  # (k, 3, H, W) uint8
        return batch.permute(0, 2, 3, 1).contiguous().cpu().numpy()
