"""One attempt's receipt, `<Assignment>_<username>_attempt_<stamp>.txt`: who, when, and which files.

Files are mapped through the receipt's `Original filename:` / `Filename:` pairs, never by splitting names.
Blackboard stores every upload as `<Assignment>_<uploader>_attempt_<stamp>_<the name they chose>`, so a name
chosen to look like a receipt carries a second `_attempt_<stamp>`: a receipt's name holds exactly one.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, Field

from grader.intake.blackboard.dates import parse_submission_date
from grader.policy.late import as_aware

ATTEMPT_MARK = "_attempt_"
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}")
STAMP_LENGTH = len("2022-11-01-23-59-59")
STAMP_FORMAT = "%Y-%m-%d-%H-%M-%S"
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
MAX_SUBMISSION_TEXT = 200_000  # characters kept from the Submission Field
NO_SUBMISSION_TEXT = "there is no student submission text data for this assignment."


class ReceiptError(ValueError):
    """A receipt that cannot be understood; the message names it."""


class ReceiptName(NamedTuple):
    stem: str
    owner: str  # the part before `_attempt_` after the last `_`: the username, as usernames hold no `_`
    stamp: str


def receipt_name(name: str) -> ReceiptName | None:
    """The parts of `<Assignment>_<username>_attempt_<stamp>.txt`; None for a name of any other shape, and for
    an upload's stored name, which holds its uploader's `_attempt_<stamp>` before the name they chose."""
    if not name.endswith(".txt"):
        return None
    stem = name.removesuffix(".txt")
    marks = _attempt_marks(stem)
    if marks != [len(stem) - len(ATTEMPT_MARK) - STAMP_LENGTH]:
        return None
    assignment, _, owner = stem[: marks[0]].rpartition("_")
    if not assignment or not owner:
        return None
    return ReceiptName(stem=stem, owner=owner, stamp=stem[-STAMP_LENGTH:])


def _attempt_marks(text: str) -> list[int]:
    """Where each `_attempt_<stamp>` starts, found in one pass."""
    marks: list[int] = []
    start = text.find(ATTEMPT_MARK)
    while start >= 0:
        stamp_at = start + len(ATTEMPT_MARK)
        if STAMP.fullmatch(text, stamp_at, stamp_at + STAMP_LENGTH):
            marks.append(start)
        start = text.find(ATTEMPT_MARK, start + 1)
    return marks


class ReceiptFile(BaseModel):
    original: str
    stored: str


class Receipt(BaseModel):
    """One attempt, as its receipt describes it."""

    receipt_name: str
    stem: str = Field(description="the receipt name without .txt; the attempt's files start with stem + '_'")
    username: str
    display_name: str
    assignment: str | None = None
    attempt: str = Field(description="the attempt stamp from the file name, server-local YYYY-MM-DD-HH-MM-SS")
    submitted_raw: str | None = None
    submitted_at: datetime | None = Field(default=None, description="aware when the receipt's zone is known")
    current_grade: str | None = None
    override_grade: str | None = None
    files: list[ReceiptFile] = Field(default_factory=list)
    submission_text: str | None = Field(
        default=None, description="what the student typed into the Submission Field (may be HTML), size-capped"
    )
    problems: list[str] = Field(default_factory=list)

    @property
    def attempt_time(self) -> datetime:
        return datetime.strptime(self.attempt, STAMP_FORMAT)

    def moment(self, reference: datetime) -> datetime:
        """When this attempt was submitted, comparable with `reference` (aware or not)."""
        if reference.tzinfo is None:
            return (self.submitted_at or self.attempt_time).replace(tzinfo=None)
        return as_aware(self.submitted_at or self.attempt_time, reference)


def parse_receipt(text: str, name: str) -> Receipt:
    """Reads one receipt; header lines count at their first occurrence, since student text comes after them."""
    parts = receipt_name(name)
    if parts is None:
        raise ReceiptError(f"{name}: not a receipt name")
    stem, stamp = parts.stem, parts.stamp
    headers: dict[str, str] = {}
    files: list[ReceiptFile] = []
    pending_original: str | None = None
    in_files = False
    lines = unicodedata.normalize("NFC", text.lstrip("\ufeff")).splitlines()
    # NFC, as the zip's member names are indexed, so that a receipt's Filename finds its member.
    for line in lines:
        stripped = line.strip()
        key, colon, value = stripped.partition(":")
        key, value = key.strip().lower(), value.strip()
        if not in_files and stripped.lower() == "files:":
            in_files = True
        elif in_files and key == "original filename":
            pending_original = value
        elif in_files and key == "filename":
            files.append(ReceiptFile(original=pending_original or _after_stem(value, stem), stored=value))
            pending_original = None
        elif not in_files and colon:
            headers.setdefault(key, value)
    username, display_name = _identity(headers, stem, stamp, name)
    receipt = Receipt(
        receipt_name=name,
        stem=stem,
        username=username,
        display_name=display_name,
        assignment=headers.get("assignment"),
        attempt=stamp,
        current_grade=headers.get("current grade", headers.get("current mark")) or None,
        override_grade=headers.get("override grade", headers.get("override mark")) or None,
        # A Filename outside this attempt's prefix would let a receipt claim another student's upload.
        files=[item for item in files if item.stored.startswith(stem + "_")],
        submission_text=_submission_field(lines),
    )
    if len(receipt.files) < len(files):
        receipt.problems.append("the receipt lists files of another attempt; they were ignored")
    raw_date = headers.get("date submitted")
    if raw_date:
        receipt.submitted_raw = raw_date
        receipt.submitted_at, problem = parse_submission_date(raw_date)
        if problem:
            receipt.problems.append(problem)
    if receipt.submitted_at is None:
        receipt.problems.append("no readable submission date: the attempt stamp (server-local time) is used")
    return receipt


def _submission_field(lines: list[str]) -> str | None:
    """The text between `Submission Field:` and the last `Comments:` before `Files:`; None when empty.

    The student's own text may hold a line `Comments:`, so the section ends at the last one, not the first.
    """
    labels = [line.strip().lower() for line in lines]
    if "submission field:" not in labels:
        return None
    start = labels.index("submission field:") + 1
    end = labels.index("files:", start) if "files:" in labels[start:] else len(labels)
    comments = [index for index in range(start, end) if labels[index] == "comments:"]
    body = "\n".join(lines[start : comments[-1] if comments else end]).strip()
    if not body or body.lower() == NO_SUBMISSION_TEXT:
        return None
    return body[:MAX_SUBMISSION_TEXT]


def _after_stem(stored: str, stem: str) -> str:
    return stored[len(stem) + 1 :] if stored.startswith(stem + "_") else stored


def _identity(headers: dict[str, str], stem: str, stamp: str, receipt_name: str) -> tuple[str, str]:
    """(username, display name) from `Name: Display Name (username)`, checked against the receipt's file name."""
    name_line = headers.get("name", "")
    match = re.match(r"^(?P<display>.*?)\s*\((?P<user>[^()]+)\)\s*$", name_line)
    if match:
        username, display = match["user"].strip(), match["display"].strip()
    else:
        assignment = headers.get("assignment", "")
        prefix, suffix = assignment + "_", f"_attempt_{stamp}"
        if not assignment or not stem.startswith(prefix):
            raise ReceiptError(f"{receipt_name}: no username in the Name line {name_line!r}")
        username, display = stem[len(prefix) : -len(suffix)], name_line
    if not stem.endswith(f"_{username}_attempt_{stamp}"):
        raise ReceiptError(f"{receipt_name}: the Name line's username {username!r} does not match the file name")
    if not USERNAME.match(username):
        raise ReceiptError(f"{receipt_name}: refused username {username!r} (unexpected characters)")
    return username, display or username
