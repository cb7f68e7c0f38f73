"""Reading untrusted zips: the Blackboard bulk download and the zips students upload inside it.

Refused, each as an UnsafeMember naming why: absolute paths, `..` traversal, NUL bytes, symbolic links,
encrypted members, members over a size limit or with a bomb-like compression ratio, members holding more
than they declare, more than a byte budget, too many members, folders nested too deep, names that are
not one safe path component. A zip inside a student's zip is kept as a file, never unpacked.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, Field

MAX_NAME_BYTES = 200
CHUNK = 1 << 20


class ExtractionLimits(BaseModel):
    """Limits for untrusted zips: the Blackboard download and any zip a student uploaded."""

    max_member_bytes: int = Field(default=256 << 20, description="largest single file, uncompressed")
    max_student_bytes: int = Field(default=1 << 30, description="all of one student's files together")
    max_ratio: float = Field(default=100.0, description="largest uncompressed/compressed size ratio")
    ratio_min_bytes: int = Field(default=1 << 20, description="members smaller than this are not judged by ratio")
    max_members: int = Field(default=20_000, description="members in the bulk download")
    max_inner_members: int = Field(default=500, description="members in a zip a student uploaded")
    max_depth: int = Field(default=8, description="folder depth inside a student's zip")
    max_receipt_bytes: int = Field(default=1 << 20, description="largest receipt text file")


class UnsafeMember(Exception):
    """A zip member refused for safety; the message says why."""


def member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as the uploader meant it: zips without the UTF-8 flag were often written as UTF-8 anyway."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_path(name: str) -> list[str]:
    """The name's parts; raises UnsafeMember for an absolute path, traversal or a NUL byte."""
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeMember("absolute path")
    if ".." in parts:
        raise UnsafeMember("path traversal (..)")
    if "\x00" in name:
        raise UnsafeMember("NUL byte in the name")
    return parts


def check_member(info: zipfile.ZipInfo, limits: ExtractionLimits) -> None:
    """Raises UnsafeMember for an unsafe path, links, encryption, oversized or bomb-like members."""
    check_path(member_name(info))
    if is_link(info):
        raise UnsafeMember("symbolic link")
    if info.flag_bits & 0x1:
        raise UnsafeMember("encrypted member")
    if info.file_size > limits.max_member_bytes:
        raise UnsafeMember(f"oversized: {info.file_size} bytes, limit {limits.max_member_bytes}")
    if info.file_size > limits.ratio_min_bytes:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            raise UnsafeMember(f"compression ratio {ratio:.0f}:1 exceeds {limits.max_ratio:.0f}:1")


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: int) -> int:
    """Streams one member to a new file, trusting neither its declared size nor the budget being honoured."""
    if info.file_size > budget:
        raise UnsafeMember(f"the student's files would exceed their size limit ({budget} bytes left)")
    limit = min(info.file_size, budget)
    written = 0
    with archive.open(info) as source, open(dest, "xb") as target:
        while chunk := source.read(CHUNK):
            written += len(chunk)
            if written > limit:
                target.close()
                dest.unlink()
                raise UnsafeMember(f"holds more than {limit} bytes (declared {info.file_size})")
            target.write(chunk)
    return written


def safe_filename(name: str) -> str:
    """One path component, safe to create: refuses separators and dot names, drops control characters."""
    name = unicodedata.normalize("NFC", name).strip()
    if "/" in name or "\\" in name:
        raise UnsafeMember("path separator in the file name")
    name = "".join(ch for ch in name if unicodedata.category(ch) != "Cc")
    if name in ("", ".", ".."):
        raise UnsafeMember("empty or dot file name")
    if len(name.encode()) > MAX_NAME_BYTES:
        stem, ext = split_extension(name)
        name = stem.encode()[: MAX_NAME_BYTES - len(ext.encode())].decode(errors="ignore") + ext
    return name


def unique_path(folder: Path, name: str) -> Path:
    """`name` in `folder`, or `name (2)`, `name (3)` ... when taken (two uploads may share a name)."""
    candidate = folder / name
    stem, ext = split_extension(name)
    number = 2
    while candidate.exists():
        candidate = folder / f"{stem} ({number}){ext}"
        number += 1
    return candidate


def split_extension(name: str) -> tuple[str, str]:
    lower = name.lower()
    for ext in (".pth.tar", ".tar.gz"):
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)], name[-len(ext) :]
    return os.path.splitext(name)


@dataclass
class Unpacked:
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_written: int = 0


def unpack_zip(
    zip_path: Path, dest: Path, limits: ExtractionLimits, budget: int, label: str, skip: Callable[[str], bool]
) -> Unpacked:
    """Unpacks a zip a student uploaded into `dest`; `files` are paths relative to `dest`.

    Members for which `skip(name)` holds are left out; refused members become problems naming `label`
    (the zip's original name) and the member.
    """
    outcome = Unpacked()
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        outcome.problems.append(f"{label}: not a readable zip ({error})")
        return outcome
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_inner_members:
            outcome.problems.append(f"{label}: refused: {len(infos)} members, limit {limits.max_inner_members}")
            return outcome
        for info in infos:
            name = member_name(info)
            if info.is_dir() or skip(name.replace("\\", "/")):
                continue
            try:
                check_member(info, limits)
                target = _inner_target(dest, name, limits)
                target.parent.mkdir(parents=True, exist_ok=True)
                target = unique_path(target.parent, target.name)
                outcome.bytes_written += copy_member(archive, info, target, budget - outcome.bytes_written)
            except UnsafeMember as error:
                outcome.problems.append(f"{label}: refused {name!r}: {error}")
                continue
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
                outcome.problems.append(f"{label}: cannot extract {name!r}: {error}")
                continue
            outcome.files.append(target.relative_to(dest).as_posix())
    return outcome


def _inner_target(dest: Path, name: str, limits: ExtractionLimits) -> Path:
    parts = [part for part in re.split(r"[\\/]", name) if part not in ("", ".")]
    if len(parts) > limits.max_depth:
        raise UnsafeMember(f"nested {len(parts)} folders deep, limit {limits.max_depth}")
    target = dest.joinpath(*(safe_filename(part) for part in parts))
    # Belt and braces: whatever the name said, the file must land inside dest.
    if not target.resolve().is_relative_to(dest.resolve()):
        raise UnsafeMember("would be written outside the submission")
    return target
