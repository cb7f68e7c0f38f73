"""The bubblewrap command every local sandbox shares, cold (local.py) or warm (warm.py).

One place decides the flags: every namespace unshared, no capabilities, the system and Python read-only,
each in-memory folder sized, and the sandbox's own root and /dev sealed read-only once the mounts are
made, so that no byte lands anywhere but the sized folders. System V IPC is refused by a seccomp
filter (seccomp.py), since its memory is counted by no rlimit.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.sandbox.gpus import device_nodes

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/alternatives")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group")
# The launcher (launch.py) puts `--seccomp FD` after bwrap's name, FD a pipe holding this filter.
SECCOMP_SETTING = "bwrap_seccomp_hex"


def python_dirs() -> list[str]:
    """Where this interpreter, torch and numpy live: mounted read-only so the runner can import them."""
    import importlib.util

    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)}
    for name in ("torch", "torchvision", "numpy"):
        # find_spec locates the package without importing it: the host never needs torch itself.
        spec = importlib.util.find_spec(name)
        if spec and spec.origin:
            candidates.add(str(Path(spec.origin).resolve().parent.parent))
    dirs = {
        str(Path(path).resolve()) if Path(path).is_dir() else str(Path(path).resolve().parent) for path in candidates
    }
    # Mount outer folders only: a nested one would be hidden or duplicated.
    return sorted(d for d in dirs if not any(d != other and d.startswith(other + os.sep) for other in dirs))


@functools.cache
def bwrap_works() -> bool:
    """bubblewrap is installed and this kernel lets it make namespaces (some containers forbid it)."""
    if sys.platform != "linux" or not shutil.which("bwrap"):
        return False
    # --size (bubblewrap 0.5+) is probed too: every tmpfs of the sandbox needs a size.
    probe = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    probe += ["--size", str(2**20), "--tmpfs", "/tmp", "--remount-ro", "/dev", "true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def bwrap_remedy() -> str:
    """How to get bubblewrap working on this machine, in one sentence."""
    if os.environ.get("GRADER_LOCAL_ISOLATION") == "process":
        return "GRADER_LOCAL_ISOLATION=process turns bubblewrap off: unset it."
    if sys.platform != "linux":
        return "bubblewrap exists only on Linux."
    if shutil.which("bwrap"):
        return (
            "bubblewrap is installed but cannot create namespaces here (too old for --size, or user namespaces "
            "are disabled: see `bwrap --unshare-all --ro-bind / / true`)."
        )
    return "Install bubblewrap (apt-get install bubblewrap, dnf install bubblewrap)."


def bwrap_base_command(sizes: dict[str, int], use_gpu: bool) -> list[str]:
    """bubblewrap with every flag a sandbox shares, cold or warm: namespaces, no capabilities, the system read-only.

    The caller adds its own binds and then `sealed()`, before the command to run."""
    command = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--uid", "65534"]
    command += ["--gid", "65534", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    # Mounted first: a later bind lands on top, so a Python living under /tmp (a CI checkout) stays visible.
    # Every tmpfs has a size: an unsized one would let a submission fill the host's memory.
    command += ["--proc", "/proc", "--dev", "/dev", "--size", str(sizes["/dev/shm"] * 2**20), "--tmpfs", "/dev/shm"]
    command += ["--size", str(sizes["/tmp"] * 2**20), "--tmpfs", "/tmp"]
    for path in SYSTEM_DIRS + tuple(python_dirs()):
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        if os.path.exists(path):
            command += ["--ro-bind", path, path]
    for device in device_nodes() if use_gpu else []:
        command += ["--dev-bind", device, device]
    return command


def sealed() -> list[str]:
    """The last options: bubblewrap's own root and /dev are unsized in-memory folders, so they become read-only
    (the folders it made there for mount points included); the sized mounts on top stay writable."""
    return ["--remount-ro", "/dev", "--remount-ro", "/"]


def seccomp_settings() -> dict[str, str]:
    """The launcher's setting that passes the IPC filter to bubblewrap."""
    from grader.sandbox.seccomp import ipc_filter

    return {SECCOMP_SETTING: ipc_filter().hex()}
