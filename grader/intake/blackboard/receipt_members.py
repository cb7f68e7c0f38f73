"""Which members of the download are receipts, and what each says; a receipt that cannot be read still names its
student, whose import then fails rather than guessing the attempt or its files without it.

A member is a receipt only when its name has a receipt's shape with one `_attempt_<stamp>` (receipts.py): every
upload's stored name holds its uploader's own mark before the name they chose, so no upload can pose as a receipt,
whatever it holds and whether or not its uploader's receipt can be read.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field

from grader.intake.blackboard.receipts import (
    USERNAME,
    Receipt,
    ReceiptError,
    ReceiptName,
    parse_receipt,
    receipt_name,
)
from grader.intake.safe_zip import ExtractionLimits, UnsafeMember, check_member

HEAD_BYTES = 64 << 10  # Blackboard writes the Name line first: this much of a receipt names its student
READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError)


@dataclass(frozen=True)
class UnreadableReceipt:
    """A receipt refused or unreadable as a whole, and the student it belongs to."""

    receipt_name: str
    stem: str
    username: str
    display_name: str
    attempt: str
    problem: str


@dataclass
class ReceiptsFound:
    receipts: list[Receipt] = field(default_factory=list)
    unreadable: list[UnreadableReceipt] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # receipts refused without naming a student


def read_receipts(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: ExtractionLimits
) -> ReceiptsFound:
    found = ReceiptsFound()
    for name, info in members.items():
        parts = receipt_name(name)
        if parts is None:
            continue
        try:
            found.receipts.append(parse_receipt(_read_text(archive, info, name, limits), name))
        except ReceiptError as error:
            found.notes.append(str(error))
        except (UnsafeMember, *READ_ERRORS) as error:
            _unreadable(archive, info, parts, _problem(name, error), found)
    return found


def _read_text(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limits: ExtractionLimits) -> str:
    """The whole receipt, read no further than its limit whatever size the member declares."""
    check_member(info, limits)
    limit = limits.max_receipt_bytes
    if info.file_size > limit:
        raise _TooLarge(f"{info.file_size} bytes, over the {limit} a receipt may hold")
    with archive.open(info) as source:
        data = source.read(limit + 1)
    if len(data) > limit:
        raise _TooLarge(f"more than the {limit} bytes a receipt may hold")
    return data.decode("utf-8", errors="replace")


class _TooLarge(UnsafeMember):
    """A receipt over its size limit: students make one so by typing into the Submission Field."""


def _problem(name: str, error: Exception) -> str:
    if isinstance(error, _TooLarge):
        return f"receipt {name!r} is too large: {error} (the Submission Field is written into it)"
    if isinstance(error, UnsafeMember):
        return f"refused receipt {name!r}: {error}"
    return f"cannot read receipt {name!r}: {error}"


def _unreadable(archive, info: zipfile.ZipInfo, parts: ReceiptName, problem: str, found: ReceiptsFound) -> None:
    """Records the receipt against its student, named by its first lines or, when even those cannot be read
    (damage, not anything a student can type), by its file name; a note when neither names one."""
    name = f"{parts.stem}.txt"
    try:
        with archive.open(info) as source:
            head = source.read(HEAD_BYTES).decode("utf-8", errors="replace")
    except READ_ERRORS:
        head = None
    try:
        if head is None:
            if not USERNAME.match(parts.owner):
                raise ReceiptError(f"{name}: refused username {parts.owner!r} (unexpected characters)")
            username, display = parts.owner, parts.owner
        else:
            identity = parse_receipt(head, name)
            username, display = identity.username, identity.display_name
    except ReceiptError as error:
        found.notes.append(f"{problem}; no student is named by it ({error})")
        return
    found.unreadable.append(UnreadableReceipt(name, parts.stem, username, display, parts.stamp, problem))
