"""Keeps the grader's machine out of what a student is handed: folder paths in messages become file names."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

HIDDEN = "…"
# An absolute POSIX path of two or more parts, or a Windows drive path: only its last part says anything
# to a student ("model.py line 12"); the folders above it are the TA's machine.
_ABSOLUTE = re.compile(r"(?<![\w.~/:])(?:/[\w.@+-]+){2,}/?|\b[A-Za-z]:\\(?:[^\\\s:\"'<>|]+\\)*[^\\\s:\"'<>|]*")


class HostPaths:
    """The folders of this run (results, submissions, rubric, home, working folder) and any absolute path,
    removed from a message; the message is otherwise kept as written."""

    def __init__(self, folders: Iterable[Path]) -> None:
        names = set()
        for folder in folders:
            for form in (Path(folder), Path(folder).expanduser().resolve()):
                if form.is_absolute() and str(form) not in ("/", form.anchor):
                    names.add(str(form))
        self._folders = sorted(names, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"HostPaths({self._folders!r})"

    def scrub(self, text: str | None) -> str:
        if not text:
            return ""
        for folder in self._folders:
            text = text.replace(folder + "/", "").replace(folder, HIDDEN)
        return _ABSOLUTE.sub(_last_part, text)

    @classmethod
    def of_run(cls, *folders: Path | None) -> HostPaths:
        return cls([Path.home(), Path.cwd(), *(folder for folder in folders if folder is not None)])


def _last_part(match: re.Match) -> str:
    parts = [part for part in re.split(r"[\\/]", match.group()) if part]
    return parts[-1] if parts else HIDDEN
