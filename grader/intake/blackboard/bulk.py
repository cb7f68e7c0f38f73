"""The bulk download in, submissions/<username>/ out: one attempt per student, rebuilt beside the old folder.

The zip is flat: per attempt a receipt `<Assignment>_<username>_attempt_<stamp>.txt` and the files as
`<Assignment>_<username>_attempt_<stamp>_<original name>`. One attempt per student is kept by the rubric's
AttemptPolicy, and the student's folder is rebuilt from scratch beside the old one and swapped in, so a
failed import leaves the previous one intact:

    submissions/<username>/manifest.json      what was imported, from where, and what is wrong
    submissions/<username>/original/...       every uploaded file under its original name
    submissions/<username>/original/attempt-<stamp>/...   an earlier attempt's files, when it fills a role
    submissions/<username>/model.py           the chosen files under their contract names
    submissions/<username>/weights.<ext>
    submissions/<username>/answers.<ext>

A role the graded attempt has no file for (students split model and answers over attempts) is filled from
the newest earlier attempt that has one; answers typed into the Submission Field become
answers_from_text_field.md when no answers file was uploaded. The manifest notes both.

The zip (or the folder it was unzipped into, folder.py) is untrusted: every refused member becomes a
problem of the student it belongs to. Only a member named like a receipt with one `_attempt_<stamp>` is a
receipt (receipt_members.py), so an upload cannot pose as another student's attempt; a student whose receipt
cannot be read (too large, damaged) gets an error and a folder holding only a manifest that says why.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
import uuid
import zipfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from grader.errors import GraderError
from grader.intake.blackboard.dates import NO_DUE_DATE, choose_attempt
from grader.intake.blackboard.folder import FolderDownload, FolderTooLarge
from grader.intake.blackboard.manifest import ImportReport, Manifest, ManifestFile, StudentImport, write_manifest
from grader.intake.blackboard.receipt_members import UnreadableReceipt, read_receipts
from grader.intake.blackboard.receipts import Receipt, ReceiptFile
from grader.intake.blackboard.text_field import TEXT_FIELD_ANSWERS, write_text_field_answers
from grader.intake.contract import ROLES, ignored
from grader.intake.recognise import Recognition, classify, install_contract_files
from grader.intake.safe_zip import (
    ExtractionLimits,
    UnsafeMember,
    check_member,
    check_path,
    copy_member,
    is_link,
    member_name,
    safe_filename,
    split_extension,
    unique_path,
    unpack_zip,
)
from grader.policy.late import AttemptPolicy

UNSUPPORTED_ARCHIVES = (".rar", ".7z", ".tar", ".tar.gz", ".tgz", ".gz")


class BulkDownloadError(GraderError, ValueError):
    """The bulk download as a whole cannot be read (not a zip, too many members)."""


def import_bulk_download(
    zip_path: Path,
    submissions_dir: Path,
    attempt_policy: AttemptPolicy,
    due: datetime | None,
    *,
    limits: ExtractionLimits | None = None,
) -> ImportReport:
    """Unpacks a Grade Center bulk download (the zip, or the folder it was unzipped into) into
    submissions/<username>/, one attempt per student.

    `due` is the deadline for `newest-before-deadline` (pass LatePolicy.deadline to honour the grace period);
    a time without a zone is compared in the zone of `due`. One student's failure never stops the import.
    """
    zip_path, submissions_dir = Path(zip_path), Path(submissions_dir)
    limits = limits or ExtractionLimits()
    report = ImportReport(source=str(zip_path))
    if attempt_policy.keep == "newest-before-deadline" and due is None:
        report.notes.append(NO_DUE_DATE)
    archive = _open_download(zip_path, limits, report)
    with archive:
        members = _index_members(archive, limits, report)
        found = read_receipts(archive, members, limits)
        report.notes += found.notes
        by_student: dict[str, list[Receipt]] = defaultdict(list)
        for receipt in found.receipts:
            by_student[receipt.username].append(receipt)
        unreadable: dict[str, list[UnreadableReceipt]] = defaultdict(list)
        for refused in found.unreadable:
            unreadable[refused.username].append(refused)
        claimed = {receipt.receipt_name for receipt in found.receipts + found.unreadable}
        for stem in {receipt.stem for receipt in found.receipts + found.unreadable}:
            claimed.update(member for member in members if member.startswith(stem + "_"))
        submissions_dir.mkdir(parents=True, exist_ok=True)
        for username in sorted(by_student.keys() | unreadable.keys()):
            attempts = by_student[username]
            if unreadable[username]:
                student = _record_failure(username, attempts, unreadable[username], submissions_dir, attempt_policy)
            else:
                student = _import_student_safely(
                    archive, members, attempts, submissions_dir, attempt_policy, due, limits
                )
            report.students.append(student)
    unclaimed = sorted(set(members) - claimed)
    if unclaimed:
        shown = ", ".join(repr(name) for name in unclaimed[:10])
        more = f" and {len(unclaimed) - 10} more" if len(unclaimed) > 10 else ""
        report.notes.append(f"{len(unclaimed)} member(s) belong to no receipt and were ignored: {shown}{more}")
    return report


def _open_download(path: Path, limits: ExtractionLimits, report: ImportReport) -> zipfile.ZipFile | FolderDownload:
    """The zip, or the folder it was unzipped into, read through the same few calls."""
    if path.is_dir():
        try:
            folder = FolderDownload(path, limits.max_members)
        except FolderTooLarge as error:
            raise BulkDownloadError(f"{path}: {error}, limit {limits.max_members}") from error
        except OSError as error:
            raise BulkDownloadError(f"{path}: cannot read the folder ({error})") from error
        report.notes += folder.notes
        return folder
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise BulkDownloadError(
            f"{path}: not a readable zip ({error}); give the bulk download's .zip or the folder it was unzipped into"
        ) from error


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
    receipt, attempt_notes = choose_attempt(attempts, policy, due)
    problems = receipt.problems + attempt_notes
    work = Path(tempfile.mkdtemp(prefix=f".{receipt.username}.", suffix=".importing", dir=submissions_dir))
    try:
        work.chmod(0o755)  # mkdtemp makes it private; the sandbox's unprivileged user must read it
        source = _AttemptSource(archive, members, work, limits, problems)
        files, recognition, notes = _gather_files(source, receipt, attempts)
        if files:
            install_contract_files(work, recognition)
            problems += recognition.problems
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
            notes=attempt_notes + notes + recognition.notes,  # the result's notes: the student's page says them
            problems=problems,
        )
        write_manifest(work, manifest)
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
        notes=notes,
        problems=problems,
    )


NOTHING_IMPORTED = (
    "nothing was imported for this student: without that receipt neither the attempt to grade nor the files "
    "that are theirs can be told; check the download (or ask the student), then import again"
)


def _record_failure(
    username: str,
    attempts: list[Receipt],
    unreadable: list[UnreadableReceipt],
    submissions_dir: Path,
    policy: AttemptPolicy,
) -> StudentImport:
    """The student's folder becomes a manifest saying why, so that no earlier import is graded in its place."""
    problems = [receipt.problem for receipt in unreadable] + [NOTHING_IMPORTED]
    display_name = next((receipt.display_name for receipt in attempts), unreadable[0].display_name)
    manifest = Manifest(
        username=username,
        display_name=display_name,
        attempts_seen=sorted(receipt.attempt for receipt in [*attempts, *unreadable]),
        attempt_policy=policy.keep,
        problems=problems,
        error=f"{NOTHING_IMPORTED} ({'; '.join(receipt.problem for receipt in unreadable)})",
    )
    work = Path(tempfile.mkdtemp(prefix=f".{username}.", suffix=".importing", dir=submissions_dir))
    try:
        work.chmod(0o755)
        write_manifest(work, manifest)
        _swap_into_place(work, submissions_dir / username)
    except OSError as error:
        shutil.rmtree(work, ignore_errors=True)
        problems.append(f"the manifest saying so could not be written, previous files kept: {error}")
    return StudentImport(username=username, display_name=display_name, status="error", problems=problems)


class _AttemptSource:
    """Extracts attempts of one student into its folder, all of them within the student's one byte budget."""

    def __init__(self, archive, members, work: Path, limits: ExtractionLimits, problems: list[str]) -> None:
        self.archive, self.members, self.work, self.limits, self.problems = archive, members, work, limits, problems
        self.used = 0

    def extract(self, receipt: Receipt, folder: Path) -> list[ManifestFile]:
        folder.mkdir(parents=True)
        files, used = _extract_attempt(
            self.archive, self.members, receipt, folder, self.work, self.limits,
            self.limits.max_student_bytes - self.used, self.problems,
        )  # fmt: skip
        self.used += used
        return files


def _gather_files(
    source: _AttemptSource, chosen: Receipt, attempts: list[Receipt]
) -> tuple[list[ManifestFile], Recognition, list[str]]:
    """The graded attempt's files, each role it lacks filled from the newest earlier attempt that has one.

    Students often split one submission over attempts (the model first, the answers later): the graded
    attempt decides every role it has a file for, and the notes say where each adopted file came from.
    """
    files, recognition, notes = _recognise_attempt(source, chosen, source.work / "original", earlier=False)
    considered = [item.stored for item in files]
    earlier = sorted(
        (attempt for attempt in attempts if attempt.attempt_time < chosen.attempt_time),
        key=lambda attempt: (attempt.attempt_time, attempt.receipt_name),
        reverse=True,
    )
    for older in earlier:
        gaps = [role for role in ROLES if role not in recognition.chosen and role not in recognition.ambiguous]
        if not gaps:
            break
        folder = unique_path(source.work / "original", f"attempt-{older.attempt}")  # an upload may hold the name
        older_files, older_recognition, older_notes = _recognise_attempt(source, older, folder, earlier=True)
        files += older_files
        adopted = {role: older_recognition.chosen[role] for role in gaps if role in older_recognition.chosen}
        if not adopted:
            continue
        notes += older_notes
        for role, path in sorted(adopted.items()):
            notes.append(
                f"{role} file {path} comes from the earlier attempt {older.attempt}: "
                f"the graded attempt {chosen.attempt} has none"
            )
        considered += adopted.values()
        recognition = classify(source.work, considered)
    return files, recognition, notes


def _recognise_attempt(
    source: _AttemptSource, receipt: Receipt, folder: Path, *, earlier: bool
) -> tuple[list[ManifestFile], Recognition, list[str]]:
    """One attempt's files and their roles; answers typed into its Submission Field count when no file has them."""
    files = source.extract(receipt, folder)
    attempt = receipt.attempt if earlier else None
    for item in files:
        item.attempt = attempt
    recognition = classify(source.work, [item.stored for item in files]) if files else Recognition()
    notes: list[str] = []
    if receipt.submission_text and "answers" not in recognition.chosen and "answers" not in recognition.ambiguous:
        written = write_text_field_answers(unique_path(folder, TEXT_FIELD_ANSWERS), receipt.submission_text)
        if written is not None:
            stored = written.relative_to(source.work).as_posix()
            files.append(ManifestFile(original="(Submission Field)", stored=stored, attempt=attempt))
            recognition = classify(source.work, [item.stored for item in files])
            where = f"attempt {receipt.attempt}" if earlier else "the graded attempt"
            notes.append(f"no answers file in {where}: the text typed into its Submission Field is used ({stored})")
    return files, recognition, notes


def _extract_attempt(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    receipt: Receipt,
    original_dir: Path,
    work: Path,
    limits: ExtractionLimits,
    budget: int,
    problems: list[str],
) -> tuple[list[ManifestFile], int]:
    """Copies the attempt's files into original_dir, unpacking zips the student uploaded; returns the bytes used."""
    stored: list[ManifestFile] = []
    used = 0
    for item in _attempt_files(receipt, members, problems):
        info = members[item.stored]
        try:
            name = safe_filename(check_path(item.original)[-1])
            check_member(info, limits)
            target = unique_path(original_dir, name)
            used += copy_member(archive, info, target, budget - used)
        except UnsafeMember as error:
            problems.append(f"refused {item.original!r} (zip member {item.stored!r}): {error}")
            continue
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as error:
            problems.append(f"cannot extract {item.original!r}: {error}")
            continue
        stored.append(ManifestFile(original=item.original, stored=target.relative_to(work).as_posix()))
        inner, inner_bytes = _unpack_if_archive(target, item.original, work, limits, budget - used, problems)
        stored += inner
        used += inner_bytes
    return stored, used


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


def _unpack_if_archive(
    path: Path, original: str, work: Path, limits: ExtractionLimits, budget: int, problems: list[str]
) -> tuple[list[ManifestFile], int]:
    """The files inside a zip the student uploaded, and the bytes they took."""
    lower = path.name.lower()
    if lower.endswith(UNSUPPORTED_ARCHIVES):
        problems.append(f"{original!r}: archive format not supported (only .zip is unpacked)")
    if not lower.endswith(".zip"):
        return [], 0
    dest = unique_path(path.parent, split_extension(path.name)[0])
    unpacked = unpack_zip(path, dest, limits, budget, label=original, skip=ignored)
    problems += unpacked.problems
    files = [
        ManifestFile(original=f"{original}/{inner}", stored=(dest / inner).relative_to(work).as_posix())
        for inner in unpacked.files
    ]
    return files, unpacked.bytes_written


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
