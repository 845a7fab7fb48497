"""Which video decoders exist, which are installed here, and how to install the missing ones.

Imports nothing heavy (no torch, no decoder) until :func:`installed_backends` probes the machine, so the
command line and the config can name and check backends cheaply. The readers live in
:mod:`harness.data.video` (decord, PyAV) and :mod:`harness.data.torchcodec_video` (torchcodec).

Backends (``data.video_backend``):

- ``auto``: the fastest exact decoder installed (:func:`auto_decoder`): torchcodec where it can decode here
  (measured 1.18x [1.14, 1.29] decord's videos/s, raw, and 1.24x through the harness's loader: Kinetics-like
  340x256 clips, ``benchmarks/decoder_speed.py``, 2026-12-04), else decord; and PyAV for a file that one cannot
  read (see :mod:`harness.data.video`);
- ``decord``: decord 0.6.0. Its maintained fork decord2 (3.4.0, which installs a module named ``decord`` and
  so replaces it) is *not* the dependency: measured here, decord2 3.4.0 fails FFmpeg 8's size check on H.264
  at 32 and 96 px wide (the embedded sets' 32x32 frames among them) where decord 0.6.0 reads them; it reads
  340x256, 456x256, 224 and 112 px bit-identically. ``auto`` would still read such files (through PyAV);
- ``pyav``: PyAV (FFmpeg, seeks to the keyframe before each wanted frame);
- ``torchcodec``: torchcodec's ``VideoDecoder`` on the CPU, exact seek mode; needs a torchcodec release built
  for the installed torch (torch 2.13 CPU: torchcodec 0.13.0 (``make`` installs it); others: the
  compatibility table in torchcodec's README) and FFmpeg 4-8 shared libraries on the machine;
- ``torchcodec-cuda``: the same on NVDEC (``device="cuda"``), frames copied back to the CPU pipeline; needs a
  CUDA build of torch, a GPU and a CUDA build of torchcodec.

All of them give the same uint8 RGB frames for the same indices (bit-identical on the tested H.264 files:
``tests/test_data_backend.py``, ``dsa-harness data check --decoders`` on a user's own files).
"""

from __future__ import annotations

import functools

VIDEO_BACKENDS = ("auto", "decord", "pyav", "torchcodec", "torchcodec-cuda")
"""Every name ``data.video_backend`` accepts (``auto``: :func:`auto_decoder`, PyAV where it cannot read a file)."""

DECODERS = ("decord", "pyav", "torchcodec", "torchcodec-cuda")
"""The concrete decoders (``auto`` resolves to :func:`auto_decoder`, or PyAV per file)."""

INSTALL_HINT = {
    "decord": "pip install decord==0.6.0",
    "pyav": "pip install av",
    "torchcodec": (
        "pip install torchcodec==0.13.0 for the CPU torch 2.13 (another torch: the release its "
        "compatibility table names) and FFmpeg 4-8 shared libraries (apt-get install libavdevice59, or "
        "conda install ffmpeg)"
    ),
    "torchcodec-cuda": "a CUDA build of torch, a GPU and the CUDA build of torchcodec for that torch",
}


@functools.cache
def unavailable_reason(backend: str) -> str | None:
    """Why ``backend`` (one of :data:`DECODERS`, or ``auto``) cannot decode on this machine; None when it can.
    Probed once per process (imports the decoder)."""
    try:
        if backend in ("decord", "auto"):
            import decord  # noqa: F401
        elif backend == "pyav":
            import av  # noqa: F401
        else:
            from torchcodec.decoders import VideoDecoder  # noqa: F401
    except ImportError as e:
        return f"not installed ({e.name or e})"
    except (RuntimeError, OSError) as e:  # torchcodec: no loadable FFmpeg libraries
        first = str(e).strip().splitlines()[0][:160]
        return f"cannot load ({first}; most often: no FFmpeg 4-8 shared libraries on the machine)"
    if backend == "torchcodec-cuda":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def auto_decoder() -> str:
    """The decoder ``auto`` opens a file with first: ``torchcodec`` where it can decode here (faster than decord,
    the same frames: see the module docstring), else ``decord``."""
    return "torchcodec" if unavailable_reason("torchcodec") is None else "decord"


def installed_backends() -> list[str]:
    """The concrete decoders (:data:`DECODERS`) this machine can use now."""
    return [b for b in DECODERS if unavailable_reason(b) is None]


def check_video_backend(backend: str, *, installed: bool = False, option: str = "video_backend") -> None:
    """Refuse, in one line, an unknown backend name (``ConfigError``); with ``installed``, also one that cannot
    decode here, naming the installed ones and how to install it."""
    from harness.errors import ConfigError

    if backend not in VIDEO_BACKENDS:
        raise ConfigError(f"{option}={backend!r} is invalid: allowed: {', '.join(VIDEO_BACKENDS)}")
    if installed:
        why = unavailable_reason(backend)
        if why is not None:
            have = ", ".join(installed_backends()) or "none"
            hint = INSTALL_HINT.get(backend, INSTALL_HINT["decord"])
            raise ConfigError(f"{option}={backend!r}: {why}; installed: {have}; to install it: {hint}")
