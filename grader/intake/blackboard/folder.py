"""An unzipped bulk download (a folder) read as if it were the zip, under the zip's safety rules.

The import reads a download through four calls of zipfile.ZipFile (infolist, read, open, close); this
offers the same over a folder. Each entry is described as a ZipInfo from lstat, never following a link:
a symbolic link stays a link member (which check_member refuses), and every file is opened with
O_NOFOLLOW and checked to still be the regular file it was listed as, so nothing outside the folder is read.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

UTF8_NAME_FLAG = 0x800
IGNORED_BESIDE = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}  # what unzip tools and file browsers add


class FolderTooLarge(ValueError):
    """The folder holds more entries than a download may."""


class FolderDownload:
    def __init__(self, root: Path, max_members: int) -> None:
        self.root = _below_lone_folders(Path(root))
        self.notes: list[str] = []
        if self.root != Path(root):
            self.notes.append(f"read the download from {self.root} (the folder above holds nothing else)")
        self._infos = self._list(max_members)

    def __enter__(self) -> FolderDownload:
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def infolist(self) -> list[zipfile.ZipInfo]:
        return list(self._infos)

    def read(self, info: zipfile.ZipInfo) -> bytes:
        with self.open(info) as source:
            return source.read()

    def open(self, info: zipfile.ZipInfo) -> io.BufferedReader:
        path = self.root / info.filename
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise OSError(f"{info.filename!r} is no longer a regular file")
        except BaseException:
            os.close(descriptor)
            raise
        return os.fdopen(descriptor, "rb")

    def _list(self, max_members: int) -> list[zipfile.ZipInfo]:
        infos: list[zipfile.ZipInfo] = []
        for folder, subfolders, names in os.walk(self.root, followlinks=False):
            relative = Path(folder).relative_to(self.root)
            for name in sorted(subfolders) + sorted(names):
                entry = relative / name
                status = os.lstat(self.root / entry)
                if stat.S_ISDIR(status.st_mode):
                    continue
                if not (stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode)):
                    self.notes.append(f"refused {entry.as_posix()!r}: not a regular file")
                    continue
                infos.append(_describe(entry.as_posix(), status))
                if len(infos) > max_members:
                    raise FolderTooLarge(f"more than {max_members} files")
        return infos


def _below_lone_folders(root: Path, levels: int = 3) -> Path:
    """Some unzip tools (Windows' Extract All) put the files one folder down: go down through lone folders."""
    for _ in range(levels):
        with os.scandir(root) as entries:
            kept = [entry for entry in entries if entry.name not in IGNORED_BESIDE]
        if len(kept) != 1 or not kept[0].is_dir(follow_symlinks=False):
            break
        root = Path(kept[0].path)
    return root


def _describe(name: str, status: os.stat_result) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.flag_bits |= UTF8_NAME_FLAG  # the name is already text: no cp437 guessing
    info.external_attr = (status.st_mode & 0xFFFF) << 16
    info.file_size = 0 if stat.S_ISLNK(status.st_mode) else status.st_size
    info.compress_size = info.file_size  # nothing is compressed: the ratio check never fires
    return info
