"""What is in one student's upload: which file is the model, the weights, the answers.

Students name files as they like (`Lab8_model (1).py`, `net.pt`, `answers.docx`) and
sometimes upload a zip. This module unpacks such a zip with the same limits as the
bulk download (the checks for untrusted zip members live here, shared by both), then
picks one file per role and gives it the contract name the sandbox expects
(model.py, weights.<ext>, answers.<ext>).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

ROLES = ("model", "weights", "answers")
EXTENSIONS = {
    # Longest first, so that .pth.tar is not read as .tar.
    "weights": (".pth.tar", ".safetensors", ".ckpt", ".pth", ".pt", ".bin"),
    "answers": (".docx", ".pdf", ".md", ".txt"),
    "model": (".py",),
}
PREFERRED_WORDS = {
    "model": ("model", "net", "lab"),
    "weights": ("weight", "model", "net", "best", "final", "lab"),
    "answers": ("answer", "lab", "report", "exercise", "question"),
}
NOT_ANSWERS = {"requirements.txt", "license.txt", "license.md"}
JUNK_PARTS = {"__MACOSX", "__pycache__", "Thumbs.db"}
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


def check_member(info: zipfile.ZipInfo, limits: ExtractionLimits) -> None:
    """Raises UnsafeMember for traversal, absolute paths, links, encryption, oversized or bomb-like members."""
    name = member_name(info)
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeMember("absolute path")
    if ".." in parts:
        raise UnsafeMember("path traversal (..)")
    if "\x00" in name:
        raise UnsafeMember("NUL byte in the name")
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


def copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, max_bytes: int) -> int:
    """Streams one member to a new file, trusting neither its declared size nor `max_bytes` being honoured."""
    limit = min(info.file_size, max_bytes)
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
    stem, ext = os.path.splitext(name)
    return stem, ext


@dataclass
class Unpacked:
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bytes_written: int = 0


def unpack_student_zip(zip_path: Path, dest: Path, limits: ExtractionLimits, budget: int, label: str) -> Unpacked:
    """Unpacks a zip a student uploaded into `dest`; `files` are paths relative to `dest`.

    Refused members become problems naming `label` (the zip's original name) and the member;
    zips inside the zip are kept as files, not unpacked.
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
            if info.is_dir() or _is_junk(PurePosixPath(name.replace("\\", "/")).parts):
                continue
            try:
                check_member(info, limits)
                target = _inner_target(dest, name, limits)
                target.parent.mkdir(parents=True, exist_ok=True)
                target = unique_path(target.parent, target.name)
                if info.file_size > budget - outcome.bytes_written:
                    raise UnsafeMember(f"the student's files would exceed {limits.max_student_bytes} bytes")
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


def _is_junk(parts: tuple[str, ...]) -> bool:
    return any(part in JUNK_PARTS or (part.startswith(".") and part not in (".", "..")) for part in parts)


def role_of(path: str) -> tuple[str, str] | None:
    """(role, extension) for a file name, or None when it plays no role."""
    name = PurePosixPath(path).name
    lower = name.lower()
    for role in ROLES:
        for ext in EXTENSIONS[role]:
            if lower.endswith(ext) and len(lower) > len(ext):
                if role == "answers" and lower in NOT_ANSWERS:
                    return None
                return role, ext
    return None


def contract_name(role: str, ext: str) -> str:
    return f"{role}{ext}"


class Recognition(BaseModel):
    """One file per role (paths relative to the student's folder), with what is missing or ambiguous."""

    chosen: dict[str, str] = Field(default_factory=dict, description="role -> chosen file")
    contract: dict[str, str] = Field(default_factory=dict, description="role -> contract name, e.g. weights.pth")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict, description="role -> the tied candidates")

    def problems(self) -> list[str]:
        found = [f"no {role} file ({', '.join(EXTENSIONS[role])})" for role in self.missing]
        found += [
            f"ambiguous {role} file: {', '.join(names)} (none chosen; a TA must pick one)"
            for role, names in self.ambiguous.items()
        ]
        return found


def classify(folder: Path, files: list[str]) -> Recognition:
    """Picks one file per role among `files` (relative to `folder`)."""
    candidates: dict[str, list[str]] = {role: [] for role in ROLES}
    for path in files:
        if _is_junk(PurePosixPath(path).parts):
            continue
        found = role_of(path)
        if found:
            candidates[found[0]].append(path)
    recognition = Recognition()
    for role in ROLES:
        best = _best(role, candidates[role], folder)
        if not candidates[role]:
            recognition.missing.append(role)
        elif len(best) > 1:
            recognition.ambiguous[role] = best
        else:
            recognition.chosen[role] = best[0]
            recognition.contract[role] = contract_name(role, role_of(best[0])[1])
    return recognition


def _best(role: str, paths: list[str], folder: Path) -> list[str]:
    """The top-ranked candidates; copies of one file (same bytes) count once."""
    if not paths:
        return []
    ranks = {path: _rank(role, path) for path in paths}
    top = max(ranks.values())
    tied = sorted(path for path, rank in ranks.items() if rank == top)
    distinct: dict[str, str] = {}
    for path in tied:
        distinct.setdefault(_sha256(folder / path), path)
    return list(distinct.values())


def _rank(role: str, path: str) -> tuple[bool, int]:
    stem = split_extension(PurePosixPath(path).name)[0].lower()
    exact = stem == role
    hits = sum(word in stem for word in PREFERRED_WORDS[role])
    return exact, hits


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def install_contract_files(folder: Path, recognition: Recognition) -> None:
    """Puts each chosen file at its contract name in `folder` (a hard link, or a copy where links fail)."""
    for role, path in recognition.chosen.items():
        source = folder / path
        target = folder / recognition.contract[role]
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
