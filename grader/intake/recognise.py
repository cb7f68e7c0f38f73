"""What is in one student's upload: which file is the model, the weights, the answers.

Students name files as they like (`Lab8_model (1).py`, `net.pt`, `answers.docx`); this module picks one
file per role and gives it the contract name the sandbox expects (model.py, weights.<ext>, answers.<ext>).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from grader.intake.safe_zip import CHUNK, split_extension

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


def is_junk(path: str) -> bool:
    """macOS and Windows leftovers, caches and hidden files: never extracted, never a candidate."""
    parts = PurePosixPath(path).parts
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
        if is_junk(path):
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
