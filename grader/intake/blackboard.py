"""Blackboard's Assignment bulk download (gradebook_....zip) in, submissions/<username>/ out.

The zip is flat: per attempt a receipt `<Assignment>_<username>_attempt_<stamp>.txt` and the
files as `<Assignment>_<username>_attempt_<stamp>_<original name>`. Files are mapped through
the receipt's `Original filename:` / `Filename:` pairs, never by splitting names. One attempt
per student is kept by the rubric's AttemptPolicy, and the student's folder is rebuilt from
scratch beside the old one and swapped in, so a failed import leaves the previous one intact:

    submissions/<username>/manifest.json      what was imported, from where, and what is wrong
    submissions/<username>/original/...       every uploaded file under its original name
    submissions/<username>/model.py           the chosen files under their contract names
    submissions/<username>/weights.<ext>
    submissions/<username>/answers.<ext>

The zip is untrusted: every refused member becomes a problem of the student it belongs to.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
import zipfile
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from grader.atomic_write import write_atomic
from grader.intake.recognise import (
    ExtractionLimits,
    Recognition,
    UnsafeMember,
    check_member,
    classify,
    copy_member,
    install_contract_files,
    is_link,
    member_name,
    safe_filename,
    split_extension,
    unique_path,
    unpack_student_zip,
)
from grader.policy.late import AttemptPolicy, as_aware

RECEIPT_NAME = re.compile(r"^(?P<stem>.+_attempt_(?P<stamp>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}))\.txt$")
STAMP_FORMAT = "%Y-%m-%d-%H-%M-%S"
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
UNSUPPORTED_ARCHIVES = (".rar", ".7z", ".tar", ".tar.gz", ".tgz", ".gz")
MANIFEST = "manifest.json"

# Abbreviations Blackboard servers print. CST is read as US Central, as Blackboard's US-locale receipts mean it;
# an abbreviation not listed here (IST is India or Ireland) leaves the time without an offset.
ZONE_HOURS = {
    "UTC": 0, "GMT": 0, "WET": 0, "BST": 1, "WEST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AKST": -9, "AKDT": -8, "HST": -10, "AST": -4, "ADT": -3, "NST": -3.5, "NDT": -2.5,
    "SGT": 8, "HKT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5, "ACDT": 10.5, "AEST": 10, "AEDT": 11,
    "NZST": 12, "NZDT": 13,
}  # fmt: skip
MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
MONTHS |= {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
US_DATE = re.compile(
    r"(?P<month>[A-Za-z]+)\.? (?P<day>\d{1,2}), (?P<year>\d{4}),? " + _TIME + r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?"
)
GB_DATE = re.compile(r"(?P<day>\d{1,2}) (?P<month>[A-Za-z]+)\.? (?P<year>\d{4}),? " + _TIME)
ZONE_TAIL = re.compile(r"(?:^|\s)(?P<zone>[A-Z]{2,5}|(?:UTC|GMT)?[+-]\d{1,2}(?::?\d{2})?)\s*$")
OFFSET = re.compile(r"^(?:UTC|GMT)?(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?$")


class BulkDownloadError(ValueError):
    """The bulk download as a whole cannot be read (not a zip, too many members)."""


class ReceiptError(ValueError):
    """A receipt that cannot be understood; the message names it."""


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
    problems: list[str] = Field(default_factory=list)

    @property
    def attempt_time(self) -> datetime:
        return datetime.strptime(self.attempt, STAMP_FORMAT)

    def moment(self, reference: datetime) -> datetime:
        """When this attempt was submitted, comparable with `reference` (aware or not)."""
        if reference.tzinfo is None:
            return (self.submitted_at or self.attempt_time).replace(tzinfo=None)
        return as_aware(self.submitted_at or self.attempt_time, reference)


class ManifestFile(BaseModel):
    original: str = Field(description="the name the student gave it; inside an uploaded zip: zip name/inner path")
    stored: str = Field(description="path relative to the student's folder")
    role: str | None = Field(default=None, description="model, weights or answers when chosen for that role")


class Manifest(BaseModel):
    """submissions/<username>/manifest.json."""

    username: str
    display_name: str
    assignment: str | None = None
    submitted_at: datetime | None = Field(default=None, description="ISO 8601, with offset when the zone is known")
    submitted_raw: str | None = None
    attempt: str
    attempts_seen: list[str]
    attempt_policy: str
    receipt: str
    current_grade: str | None = None
    override_grade: str | None = None
    files: list[ManifestFile] = Field(default_factory=list)
    roles: dict[str, str] = Field(default_factory=dict, description="role -> contract name, e.g. weights -> weights.pt")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)


class StudentImport(BaseModel):
    username: str
    display_name: str = ""
    status: Literal["imported", "skipped", "error"]
    attempt: str | None = None
    submitted_at: datetime | None = None
    files: dict[str, str] = Field(default_factory=dict, description="role -> contract name in the student's folder")
    missing: list[str] = Field(default_factory=list)
    ambiguous: dict[str, list[str]] = Field(default_factory=dict)
    problems: list[str] = Field(default_factory=list)


class ImportReport(BaseModel):
    source: str
    students: list[StudentImport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="problems that belong to no student")

    def count(self, status: str) -> int:
        return sum(student.status == status for student in self.students)

    def lines(self) -> list[str]:
        """One line per problem, each naming its student, for the CLI to print."""
        found = [f"{student.username}: {problem}" for student in self.students for problem in student.problems]
        return found + self.notes


def read_manifest(student_dir: Path) -> Manifest:
    return Manifest.model_validate_json((Path(student_dir) / MANIFEST).read_text(encoding="utf-8"))


def parse_submission_date(raw: str) -> tuple[datetime | None, str | None]:
    """(time, problem). The time is aware when the zone is known, naive when not, None when unreadable."""
    text = raw.replace("o'clock", " ").replace("\u202f", " ").replace("\xa0", " ")
    text = re.sub(r"\s+", " ", text).strip()
    match = US_DATE.search(text) or GB_DATE.search(text)
    if not match or match["month"].lower() not in MONTHS:
        return None, f"cannot read the submission date {raw!r}"
    hour = int(match["hour"])
    ampm = (match.groupdict().get("ampm") or "").lower().replace(".", "")
    if ampm:
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    try:
        moment = datetime(
            int(match["year"]), MONTHS[match["month"].lower()], int(match["day"]),
            hour, int(match["minute"]), int(match["second"] or 0),
        )  # fmt: skip
    except ValueError as error:
        return None, f"cannot read the submission date {raw!r}: {error}"
    zone = ZONE_TAIL.search(text[match.end() :])
    if not zone or zone["zone"] in ("AM", "PM"):
        return moment, f"no time zone in {raw!r}: time kept without offset"
    offset = _zone_offset(zone["zone"])
    if offset is None:
        return moment, f"unknown time zone {zone['zone']!r}: time kept without offset"
    return moment.replace(tzinfo=offset), None


def _zone_offset(zone: str) -> timezone | None:
    if zone in ZONE_HOURS:
        return timezone(timedelta(hours=ZONE_HOURS[zone]))
    match = OFFSET.match(zone)
    if not match:
        return None
    delta = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"] or 0))
    return timezone(-delta if match["sign"] == "-" else delta)


def parse_receipt(text: str, receipt_name: str) -> Receipt:
    """Reads one receipt; header lines count at their first occurrence, since student text comes after them."""
    name_match = RECEIPT_NAME.match(receipt_name)
    if not name_match:
        raise ReceiptError(f"{receipt_name}: not a receipt name")
    stem, stamp = name_match["stem"], name_match["stamp"]
    headers: dict[str, str] = {}
    files: list[ReceiptFile] = []
    pending_original: str | None = None
    in_files = False
    # NFC, as the zip's member names are indexed, so that a receipt's Filename finds its member.
    for line in unicodedata.normalize("NFC", text.lstrip("\ufeff")).splitlines():
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
    username, display_name = _identity(headers, stem, stamp, receipt_name)
    receipt = Receipt(
        receipt_name=receipt_name,
        stem=stem,
        username=username,
        display_name=display_name,
        assignment=headers.get("assignment"),
        attempt=stamp,
        current_grade=headers.get("current grade", headers.get("current mark")) or None,
        override_grade=headers.get("override grade", headers.get("override mark")) or None,
        # A Filename outside this attempt's prefix would let a receipt claim another student's upload.
        files=[item for item in files if item.stored.startswith(stem + "_")],
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


def choose_attempt(attempts: list[Receipt], policy: AttemptPolicy, due: datetime | None) -> tuple[Receipt, list[str]]:
    """The attempt to grade, with notes on what was set aside."""
    ordered = sorted(attempts, key=lambda receipt: (receipt.attempt_time, receipt.receipt_name))
    newest = ordered[-1]
    if policy.keep == "newest":
        return newest, []
    if due is None:
        return newest, ["no due date known: kept the newest attempt"]
    on_time = [receipt for receipt in ordered if receipt.moment(due) <= due]
    if not on_time:
        return newest, ["every attempt is after the deadline: kept the newest"]
    chosen = on_time[-1]
    later = len(ordered) - len(on_time)
    return chosen, [f"set aside {later} attempt(s) after the deadline"] if later else []


def import_bulk_download(
    zip_path: Path,
    submissions_dir: Path,
    attempt_policy: AttemptPolicy,
    due: datetime | None,
    *,
    limits: ExtractionLimits | None = None,
) -> ImportReport:
    """Unpacks a Grade Center bulk download into submissions/<username>/, one attempt per student.

    `due` is the deadline for `newest-before-deadline` (pass LatePolicy.deadline to honour the grace period);
    a time without a zone is compared in the zone of `due`. One student's failure never stops the import.
    """
    zip_path, submissions_dir = Path(zip_path), Path(submissions_dir)
    limits = limits or ExtractionLimits()
    report = ImportReport(source=str(zip_path))
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BulkDownloadError(f"{zip_path}: not a readable zip ({error})") from error
    with archive:
        members = _index_members(archive, limits, report)
        receipts = _read_receipts(archive, members, limits, report)
        by_student: dict[str, list[Receipt]] = defaultdict(list)
        for receipt in receipts:
            by_student[receipt.username].append(receipt)
        claimed: set[str] = {receipt.receipt_name for receipt in receipts}
        submissions_dir.mkdir(parents=True, exist_ok=True)
        for username in sorted(by_student):
            attempts = by_student[username]
            for receipt in attempts:
                claimed.update(member for member in members if member.startswith(receipt.stem + "_"))
            report.students.append(
                _import_student_safely(archive, members, attempts, submissions_dir, attempt_policy, due, limits)
            )
    unclaimed = sorted(set(members) - claimed)
    if unclaimed:
        shown = ", ".join(repr(name) for name in unclaimed[:10])
        more = f" and {len(unclaimed) - 10} more" if len(unclaimed) > 10 else ""
        report.notes.append(f"{len(unclaimed)} member(s) belong to no receipt and were ignored: {shown}{more}")
    return report


def _index_members(
    archive: zipfile.ZipFile, limits: ExtractionLimits, report: ImportReport
) -> dict[str, zipfile.ZipInfo]:
    """Members by their NFC-normalised name; a name that occurs twice is refused rather than guessed."""
    infos = archive.infolist()
    if len(infos) > limits.max_members:
        raise BulkDownloadError(f"{report.source}: {len(infos)} members, limit {limits.max_members}")
    members: dict[str, zipfile.ZipInfo] = {}
    duplicates: set[str] = set()
    for info in infos:
        if info.is_dir() and not is_link(info):
            continue
        name = unicodedata.normalize("NFC", member_name(info))
        if name in members:
            duplicates.add(name)
        members[name] = info
    for name in sorted(duplicates):
        members.pop(name)
        report.notes.append(f"refused {name!r}: the zip holds it more than once")
    return members


def _read_receipts(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], limits: ExtractionLimits, report: ImportReport
) -> list[Receipt]:
    candidates: list[Receipt] = []
    for name, info in members.items():
        if not RECEIPT_NAME.match(name):
            continue
        try:
            check_member(info, limits)
            if info.file_size > limits.max_receipt_bytes:
                raise UnsafeMember(f"{info.file_size} bytes is too large for a receipt")
            text = archive.read(info).decode("utf-8", errors="replace")
            candidates.append(parse_receipt(text, name))
        except UnsafeMember as error:
            report.notes.append(f"refused receipt {name!r}: {error}")
        except ReceiptError as error:
            report.notes.append(str(error))
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
            report.notes.append(f"cannot read receipt {name!r}: {error}")
    # A student may upload a file whose stored name looks like a receipt; a name that another
    # receipt lists as one of its files is that student's upload, never a receipt.
    listed = {item.stored for receipt in candidates for item in receipt.files}
    return [receipt for receipt in candidates if receipt.receipt_name not in listed]


def _import_student_safely(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    attempts: list[Receipt],
    submissions_dir: Path,
    policy: AttemptPolicy,
    due: datetime | None,
    limits: ExtractionLimits,
) -> StudentImport:
    username = attempts[0].username
    try:
        return _import_student(archive, members, attempts, submissions_dir, policy, due, limits)
    except Exception as error:  # one bad student never stops the import
        return StudentImport(
            username=username,
            display_name=attempts[0].display_name,
            status="error",
            problems=[f"import failed, previous files kept: {type(error).__name__}: {error}"],
        )


def _import_student(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    attempts: list[Receipt],
    submissions_dir: Path,
    policy: AttemptPolicy,
    due: datetime | None,
    limits: ExtractionLimits,
) -> StudentImport:
    receipt, problems = choose_attempt(attempts, policy, due)
    problems = receipt.problems + problems
    work = Path(tempfile.mkdtemp(prefix=f".{receipt.username}.", suffix=".importing", dir=submissions_dir))
    try:
        work.chmod(0o755)  # mkdtemp makes it private; the sandbox's unprivileged user must read it
        files = _extract_attempt(archive, members, receipt, work, limits, problems)
        recognition = classify(work, [item.stored for item in files]) if files else Recognition()
        if files:
            install_contract_files(work, recognition)
            problems += recognition.problems()
        else:
            problems.append("no files in the graded attempt")
        for item in files:
            item.role = next((role for role, path in recognition.chosen.items() if path == item.stored), None)
        manifest = Manifest(
            username=receipt.username,
            display_name=receipt.display_name,
            assignment=receipt.assignment,
            submitted_at=receipt.submitted_at or receipt.attempt_time,
            submitted_raw=receipt.submitted_raw,
            attempt=receipt.attempt,
            attempts_seen=sorted(attempt.attempt for attempt in attempts),
            attempt_policy=policy.keep,
            receipt=receipt.receipt_name,
            current_grade=receipt.current_grade,
            override_grade=receipt.override_grade,
            files=files,
            roles=recognition.contract,
            missing=recognition.missing if files else [],
            ambiguous=recognition.ambiguous,
            problems=problems,
        )
        write_json_atomic(work / MANIFEST, manifest.model_dump(mode="json"))
        _swap_into_place(work, submissions_dir / receipt.username)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return StudentImport(
        username=receipt.username,
        display_name=receipt.display_name,
        status="imported" if files else "skipped",
        attempt=receipt.attempt,
        submitted_at=manifest.submitted_at,
        files=recognition.contract,
        missing=manifest.missing,
        ambiguous=recognition.ambiguous,
        problems=problems,
    )


def _extract_attempt(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    receipt: Receipt,
    work: Path,
    limits: ExtractionLimits,
    problems: list[str],
) -> list[ManifestFile]:
    """Copies the attempt's files into work/original/, unpacking zips the student uploaded."""
    original_dir = work / "original"
    original_dir.mkdir()
    stored: list[ManifestFile] = []
    used = 0
    for item in _attempt_files(receipt, members, problems):
        info = members[item.stored]
        try:
            name = _checked_original_name(item.original)
            check_member(info, limits)
            if info.file_size > limits.max_student_bytes - used:
                raise UnsafeMember(f"the student's files would exceed {limits.max_student_bytes} bytes")
            target = unique_path(original_dir, name)
            used += copy_member(archive, info, target, limits.max_student_bytes - used)
        except UnsafeMember as error:
            problems.append(f"refused {item.original!r} (zip member {item.stored!r}): {error}")
            continue
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
            problems.append(f"cannot extract {item.original!r}: {error}")
            continue
        stored.append(ManifestFile(original=item.original, stored=target.relative_to(work).as_posix()))
        inner, inner_bytes = _unpack_if_archive(target, item.original, work, limits, limits.max_student_bytes - used)
        stored += inner.files
        problems += inner.problems
        used += inner_bytes
    return stored


def _attempt_files(receipt: Receipt, members: dict[str, zipfile.ZipInfo], problems: list[str]) -> list[ReceiptFile]:
    """The receipt's files resolved to zip members, plus members of this attempt the receipt does not list."""
    resolved: list[ReceiptFile] = []
    prefix = receipt.stem + "_"
    loose = {_loose(name): name for name in members if name.startswith(prefix)}
    for item in receipt.files:
        stored = unicodedata.normalize("NFC", item.stored)
        found = stored if stored in members else loose.get(_loose(stored)) or loose.get(_loose(prefix + item.original))
        if found is None:
            problems.append(f"{item.original!r} is listed in the receipt but missing from the zip")
            continue
        resolved.append(ReceiptFile(original=item.original, stored=found))
    taken = {item.stored for item in resolved}
    for name in sorted(members):
        if name.startswith(prefix) and name not in taken:
            resolved.append(ReceiptFile(original=name[len(prefix) :], stored=name))
            problems.append(f"{name[len(prefix) :]!r} is in the zip but not in the receipt; imported anyway")
    return resolved


def _loose(name: str) -> str:
    """A name as Blackboard might have mangled it: case, spaces and underscores do not count."""
    return re.sub(r"[\s_]+", "_", unicodedata.normalize("NFC", name).casefold())


def _checked_original_name(original: str) -> str:
    parts = re.split(r"[\\/]", original)
    if original.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", original):
        raise UnsafeMember("absolute path in the original file name")
    if ".." in parts:
        raise UnsafeMember("path traversal (..) in the original file name")
    return safe_filename(parts[-1])


class _Inner(BaseModel):
    files: list[ManifestFile] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def _unpack_if_archive(
    path: Path, original: str, work: Path, limits: ExtractionLimits, budget: int
) -> tuple[_Inner, int]:
    """The files inside a zip the student uploaded, and the bytes they took."""
    lower = path.name.lower()
    if lower.endswith(UNSUPPORTED_ARCHIVES):
        return _Inner(problems=[f"{original!r}: archive format not supported (only .zip is unpacked)"]), 0
    if not lower.endswith(".zip"):
        return _Inner(), 0
    dest = unique_path(path.parent, split_extension(path.name)[0])
    unpacked = unpack_student_zip(path, dest, limits, budget, label=original)
    files = [
        ManifestFile(original=f"{original}/{inner}", stored=(dest / inner).relative_to(work).as_posix())
        for inner in unpacked.files
    ]
    return _Inner(files=files, problems=unpacked.problems), unpacked.bytes_written


def write_json_atomic(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _swap_into_place(new: Path, final: Path) -> None:
    """Replaces the student's folder with `new`; the old one is removed only after the new one is in place."""
    old = None
    if final.is_symlink():
        final.unlink()
    elif final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}.old")
        os.rename(final, old)
    os.rename(new, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
