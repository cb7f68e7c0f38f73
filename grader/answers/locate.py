"""Finding the Exercise 2 answers file in a student's submission folder."""

from __future__ import annotations

import re
from pathlib import Path

from .parse import DOCUMENT_SUFFIXES, TEXT_SUFFIXES, UNSUPPORTED_SUFFIXES

_MAX_DEPTH = 3
_MAX_FILES = 5000
_STRONG_NAMES = re.compile(r"answer|question|exercise ?2|ex ?2|ques|q ?a\b|written|lab ?8")
_WEAK_NAMES = re.compile(r"report|write ?up|solution|readme|lab|homework|hw|assignment")
_NOT_ANSWERS = re.compile(r"requirement|license|licence|log|output|result|history|metric|label|class|changelog")
_SKIP_DIRS = {"__macosx", ".git", "__pycache__", "node_modules", ".ipynb_checkpoints", "venv", ".venv", "data"}
_SUFFIX_ORDER = (*TEXT_SUFFIXES, *DOCUMENT_SUFFIXES, *UNSUPPORTED_SUFFIXES)


def _plain_name(path: Path) -> str:
    """'Lab8_Answers (1).docx' -> 'lab8 answers'."""
    stem = re.sub(r"\(\d+\)|copy", " ", path.stem.lower())
    return " ".join(re.sub(r"[^a-z0-9]+", " ", stem).split())


def _rank(path: Path, depth: int) -> tuple[int, int, int, str] | None:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIX_ORDER or path.name.startswith((".", "~$")):
        return None
    name = _plain_name(path)
    if _STRONG_NAMES.search(name):
        score = 3
    elif _NOT_ANSWERS.search(name):
        return None
    elif _WEAK_NAMES.search(name):
        score = 2
    elif suffix in DOCUMENT_SUFFIXES or suffix in UNSUPPORTED_SUFFIXES:
        score = 1  # a lone Word or PDF file in a code submission is most likely the written part
    else:
        return None
    if suffix in UNSUPPORTED_SUFFIXES:
        score -= 1  # found, so the student is told the format is wrong, but any readable file wins
    return (-score, depth, _SUFFIX_ORDER.index(suffix), str(path))


def find_answers_file(folder: Path) -> Path | None:
    """The most likely answers file under `folder` (searched a few levels deep), or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    best: tuple | None = None
    seen = 0
    stack = [(folder, 0)]
    while stack:
        current, depth = stack.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > _MAX_FILES:
                break
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if depth < _MAX_DEPTH and entry.name.lower() not in _SKIP_DIRS and not entry.name.startswith("."):
                    stack.append((entry, depth + 1))
            elif entry.is_file():
                rank = _rank(entry, depth)
                if rank is not None and (best is None or rank < best):
                    best = rank
    return Path(best[3]) if best else None
