"""The submission contract of docs/SUBMITTING.md, stated once: which file is the model, the weights, the answers.

Every reader of a student's files applies these rules: the Blackboard import (recognise.py), grading
(submission.py), the answers locator (grader/answers/locate.py) and the self-check (grader/check/file_checks.py).

- A file can play a role by its extension (EXTENSIONS), unless its name rules it out (EXCLUDED).
- Its contract name is the role plus its own extension, lower-cased: `Net (1).PT` -> `weights.pt`.
- Among a role's candidates the best rank wins (rank()): the contract name, then a strong word in the
  name, then a weak one; then more strong words; then the shallower file; then the earlier extension.
- Copies of one file count once, as the shortest name. A tie between different files is ambiguous: none is chosen.
- A folder is searched to SEARCH_DEPTH per role; an upload's files (the Blackboard import) all count.
- TorchScript weights need no model file: beside them only a file named like model.py is used.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.answers.parse import DOCUMENT_SUFFIXES, TEXT_SUFFIXES, UNSUPPORTED_SUFFIXES

ROLES = ("model", "weights", "answers")
# The documented extension first; on an otherwise equal rank the earlier extension wins.
EXTENSIONS = {
    "model": (".py",),
    "weights": (".pth", ".pt", ".safetensors", ".pth.tar", ".ckpt", ".bin"),
    "answers": (*TEXT_SUFFIXES, *DOCUMENT_SUFFIXES, *UNSUPPORTED_SUFFIXES),
}
SEARCH_DEPTH = {"model": 0, "weights": 0, "answers": 3}  # model and weights must sit beside each other
SKIPPED = {"__macosx", "__pycache__", "thumbs.db", "node_modules", "venv", "data"}  # and names starting . or ~$
MAX_FILES = 5000


# Words that make a name likely to be the role's file, and words that rule it out unless a strong one is there.
STRONG = {
    "model": ("model", "net", "lab"),
    "weights": ("weight", "model", "net", "best", "final", "lab"),
    "answers": ("answer", "question", r"exercise ?2", r"ex ?2", "ques", r"q ?a\b", "written", r"lab ?8"),
}
WEAK = {"answers": ("report", r"write ?up", "solution", "readme", "lab", "homework", "hw", "assignment")}
EXCLUDED = {
    "answers": ("requirement", "licen[cs]e", "log", "output", "result", "history", "metric", "label", "class"),
}


def extension_of(path: str, role: str) -> str | None:
    lower = PurePosixPath(path).name.lower()
    found = [ext for ext in EXTENSIONS[role] if lower.endswith(ext) and len(lower) > len(ext)]
    return max(found, key=len, default=None)


def plain_name(path: str, ext: str) -> str:
    """'Lab8_Answers (1).docx' -> 'lab8 answers': browser and Blackboard copy marks do not count."""
    stem = re.sub(r"\(\d+\)|copy", " ", PurePosixPath(path).name[: -len(ext)].lower())
    return " ".join(re.sub(r"[^a-z0-9]+", " ", stem).split())


def _hits(words: tuple[str, ...], name: str) -> int:
    return sum(bool(re.search(word, name)) for word in words)


def role_of(path: str) -> tuple[str, str] | None:
    """(role, extension) for a file that could play a role, or None."""
    for role in ROLES:
        ext = extension_of(path, role)
        if ext:
            name = plain_name(path, ext)
            if _hits(EXCLUDED.get(role, ()), name) and not _hits(STRONG[role], name):
                return None
            return role, ext
    return None


def contract_name(role: str, path: str) -> str:
    return role + extension_of(path, role)


def rank(role: str, path: str) -> tuple[int, int, int, int]:
    """Higher is better: (name tier, strong words, -depth, -extension order)."""
    ext = extension_of(path, role)
    name = plain_name(path, ext)
    strong = _hits(STRONG[role], name)
    if name == role:
        tier = 3
    elif strong:
        tier = 2
    else:
        # A lone Word or PDF file in a code submission is most likely the written part.
        tier = 1 if _hits(WEAK.get(role, ()), name) or ext in DOCUMENT_SUFFIXES else 0
    if ext in UNSUPPORTED_SUFFIXES:
        tier -= 1  # found, so the student is told the format is wrong, but any readable file wins
    depth = len(PurePosixPath(path).parts) - 1
    return tier, strong, -depth, -EXTENSIONS[role].index(ext)


@dataclass
class Choice:
    """One role's outcome; paths are relative to the submission folder."""

    role: str
    chosen: str | None = None
    tied: list[str] = field(default_factory=list)  # different files of equal rank: none is chosen
    passed_over: list[str] = field(default_factory=list)  # lower-ranked, different files
    required: bool = True

    @property
    def contract_name(self) -> str | None:
        return contract_name(self.role, self.chosen) if self.chosen else None

    def problem(self) -> str | None:
        if self.tied:
            return (
                f"ambiguous {self.role} file: {', '.join(self.tied)} rank equally, so none was chosen "
                f"(the contract name is {self.role}{EXTENSIONS[self.role][0]})"
            )
        if self.chosen is None and self.required:
            return f"no {self.role} file ({', '.join(EXTENSIONS[self.role])})"
        return None

    def notes(self) -> list[str]:
        """How the file was recognised, e.g. '2 possible weights files: using weights.pth, ignoring best.pt'."""
        if self.chosen is None:
            return [self.problem()] if self.tied else []
        found = []
        if PurePosixPath(self.chosen).name != self.contract_name:
            found.append(f"{self.role} file named {self.chosen}; the contract name is {self.contract_name}")
        if self.passed_over:
            more = f" and {len(self.passed_over) - 5} more" if len(self.passed_over) > 5 else ""
            ignoring = ", ".join(self.passed_over[:5]) + more
            found.append(
                f"{len(self.passed_over) + 1} possible {self.role} files: using {self.chosen}, ignoring {ignoring}"
            )
        return found


def choose(role: str, paths: list[str], folder: Path, *, required: bool = True) -> Choice:
    """The best of a role's candidates (relative to `folder`)."""
    ranked = sorted(paths, key=lambda path: (tuple(-key for key in rank(role, path)), len(path), path))
    distinct: list[str] = []
    by_size: dict[int, list[str]] = {}
    for path in ranked:
        size = (folder / path).stat().st_size
        if not any(same_content(folder / path, folder / other) for other in by_size.get(size, [])):
            by_size.setdefault(size, []).append(path)
            distinct.append(path)
    if not distinct:
        return Choice(role, required=required)
    tied = sorted(path for path in distinct if rank(role, path) == rank(role, distinct[0]))
    if len(tied) > 1:
        return Choice(role, tied=tied, passed_over=distinct[len(tied) :], required=required)
    return Choice(role, chosen=distinct[0], passed_over=distinct[1:], required=required)


def candidates(folder: Path, files: list[str] | None = None) -> dict[str, list[str]]:
    """Each role's candidates among `files` (an upload, all of which count) or what the folder holds."""
    found: dict[str, list[str]] = {role: [] for role in ROLES}
    for path in walk(folder) if files is None else files:
        role = (role_of(path) or (None,))[0]
        depth = len(PurePosixPath(path).parts) - 1
        if role and not ignored(path) and (files is not None or depth <= SEARCH_DEPTH[role]):
            found[role].append(path)
    return found


def choose_files(folder: Path, files: list[str] | None = None) -> dict[str, Choice]:
    """One Choice per role, from candidates(folder, files)."""
    folder = Path(folder)
    found = candidates(folder, files)
    weights = choose("weights", found["weights"], folder)
    script = weights.chosen is not None and is_torchscript_archive(folder / weights.chosen)
    models = [path for path in found["model"] if not script or rank("model", path)[0] == 3]
    return {
        "model": choose("model", models, folder, required=not script),
        "weights": weights,
        "answers": choose("answers", found["answers"], folder),
    }


def ignored(path: str) -> bool:
    """Junk never looked at: macOS and Windows leftovers, caches, environments, data, hidden and lock files."""
    parts = [part for part in PurePosixPath(path).parts if part != ".."]  # traversal is refused, not skipped
    return any(part.lower() in SKIPPED or part.startswith((".", "~$")) for part in parts)


def walk(folder: Path, max_depth: int = max(SEARCH_DEPTH.values())) -> list[str]:
    """Regular files under `folder` (relative posix paths), not following links, skipping junk; MAX_FILES at most."""
    found: list[str] = []
    for root, folders, names in os.walk(folder):
        here = Path(root).relative_to(folder)
        folders[:] = [] if len(here.parts) >= max_depth else sorted(name for name in folders if not ignored(name))
        for name in sorted(names):
            if not ignored(name) and not os.path.islink(os.path.join(root, name)):
                found.append((here / name).as_posix())
        if len(found) >= MAX_FILES:
            return found[:MAX_FILES]
    return found


def is_torchscript_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def same_content(first: Path, second: Path) -> bool:
    if first.stat().st_size != second.stat().st_size:
        return False
    return os.path.samefile(first, second) or file_sha256(first) == file_sha256(second)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
