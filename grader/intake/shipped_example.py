"""The example submission shipped with the grader: the project's own code, recognised by its files' hashes.

`grader grade example` may run it in a plain process where no sandbox exists (a laptop without bubblewrap
or Docker), so the README's first command works on any machine. Only a folder whose every file matches
these hashes is trusted so; change a byte, add a file, and it is a student's folder like any other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# sha256 of each file, text files with Windows line ends turned back into \n (a checkout may convert them).
SHIPPED_EXAMPLE_SHA256 = {
    "SAMPLE": "a2839a0bc90e0abcfa57c143cf43f42e10d091884d90462e6a3125a3f5c4f3d0",
    "answers.md": "e2dd9a787d60baa5ef1b9374b76fe27a4858f1274b9d58c92d04ad5279d9fd24",
    "model.py": "d9210ecc463768e87e57211aa0c83e4389b7588a26ef33183789456074cf1c97",
    "train.py": "cc3c0442b812696f4694d0198f8494f9a5c84af8affa1fd1f4f777f78322852b",
    "weights.pth": "2f0a5ddaab5a9e00ff0b2306110426b03f7d7b8adfddb2ab4f4013666feee8fd",
}
BINARY_SUFFIXES = (".pth",)


def file_sha256(path: Path) -> str:
    data = path.read_bytes()
    if not path.name.endswith(BINARY_SUFFIXES):
        data = data.replace(b"\r\n", b"\n")
    return hashlib.sha256(data).hexdigest()


def is_shipped_example(folder: Path) -> bool:
    """Every file of the folder is one of the shipped example's, unchanged, and none is missing."""
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return False
    entries = [entry for entry in folder.iterdir() if entry.name != "__pycache__"]
    if sorted(entry.name for entry in entries) != sorted(SHIPPED_EXAMPLE_SHA256):
        return False
    for entry in entries:
        if entry.is_symlink() or not entry.is_file() or entry.stat().st_size > 64 * 2**20:
            return False
        if file_sha256(entry) != SHIPPED_EXAMPLE_SHA256[entry.name]:
            return False
    return True
