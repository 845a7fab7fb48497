"""Where a number was measured: hardware, library versions, code commit."""

from __future__ import annotations

import os
import platform
import socket
import sys
from functools import lru_cache
from pathlib import Path

import torch

from harness.version import code_commit


@lru_cache(maxsize=1)
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device = "cpu") -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def describe_environment(device: str | torch.device = "cpu") -> dict:
    """``{"hardware": ..., "versions": ..., "git_commit": ...}`` as recorded in final.json."""
    from harness import __version__

    device = torch.device(device)
    return {
        "hardware": {
            "device": device.type,
            "device_name": device_name(device),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "hostname": socket.gethostname(),
        },
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "harness": __version__,
        },
        "git_commit": code_commit(),
    }
