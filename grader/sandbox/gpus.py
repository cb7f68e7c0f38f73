"""The host's NVIDIA GPUs, found without importing torch: one probe for both backends and the class run."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path


def device_nodes() -> list[str]:
    """Every /dev/nvidia* node (the GPUs and nvidiactl, nvidia-uvm): what a bubblewrap sandbox binds to use CUDA."""
    return sorted(str(p) for p in Path("/dev").glob("nvidia*")) if sys.platform == "linux" else []


def visible_gpus() -> list[str]:
    """The GPUs runs can be pinned to: CUDA_VISIBLE_DEVICES when set, else the numbered device nodes."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [part.strip() for part in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if part.strip()]
    numbers = (node.removeprefix("/dev/nvidia") for node in device_nodes())
    return sorted((number for number in numbers if number.isdigit()), key=int)


@functools.cache
def host_has_nvidia_gpu() -> bool:
    """A GPU's device node, else nvidia-smi listing a GPU (the nodes may appear only once the driver loads)."""
    if any(node.removeprefix("/dev/nvidia").isdigit() for node in device_nodes()):
        return True
    if not shutil.which("nvidia-smi"):
        return False
    try:
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0 and b"GPU" in probe.stdout
