"""Who is exported: the roster (a file, or the downloaded gradebook's users) against the stored results.

Every export reports three groups, so that nobody is dropped or invented without the TA seeing it:
matched (on the roster, with a result), missing (on the roster, no result: exported as the rubric's
missing_submission says) and unknown (a result, but not on the roster: not exported).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field

from grader.export.base import ExportError, find_column, read_gradebook

ROSTER_COLUMNS = ("Username", "SIS Login ID")
POINTS_POSSIBLE = "Points Possible"  # Canvas's second row, not a student
TABLE_SUFFIXES = (".csv", ".xls", ".tsv")


class Reconciliation(BaseModel):
    roster: str = Field(default="the submitters", description="where the list of students came from, in words")
    exported: list[str] = Field(description="who gets a row, in the roster's order")
    matched: list[str] = Field(default_factory=list, description="on the roster, with a result")
    missing: list[str] = Field(default_factory=list, description="on the roster without a result")
    unknown: list[str] = Field(default_factory=list, description="with a result, not on the roster: not exported")
    not_in_gradebook: list[str] = Field(
        default_factory=list, description="on --roster but not in the downloaded gradebook: not exported"
    )


def read_roster(path: Path) -> list[str]:
    """Usernames from a CSV or tab file with a Username (or Canvas's SIS Login ID) column, such as a downloaded
    gradebook, or from a text file of one username a line (# starts a comment)."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as error:
            raise ExportError(f"{path}: a roster must be UTF-8 text or a gradebook CSV ({error})") from error
        return list(dict.fromkeys(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")))
    table = read_gradebook(path)
    folded = [cell.strip().casefold() for cell in table.header]
    name = next((name for name in ROSTER_COLUMNS if name.casefold() in folded), ROSTER_COLUMNS[0])
    column = find_column(table.header, name, path)
    names = [row[column].strip() for row in table.rows if POINTS_POSSIBLE not in row[0]]
    return list(dict.fromkeys(name for name in names if name))


def reconcile(
    graded: Iterable[str],
    roster: list[str] | None,
    gradebook_users: list[str] | None,
    submitters: list[str],
) -> Reconciliation:
    """With a roster or a gradebook (or both: those in both), only they are exported; with neither, every
    submitter and every student with a result."""
    graded = list(dict.fromkeys(graded))
    if roster is not None and gradebook_users is not None:
        in_gradebook = set(gradebook_users)
        eligible = [student for student in roster if student in in_gradebook]
        not_in_gradebook = [student for student in roster if student not in in_gradebook]
        source = "both the roster and the gradebook"
    elif roster is not None:
        eligible, not_in_gradebook, source = list(roster), [], "the roster"
    elif gradebook_users is not None:
        eligible, not_in_gradebook, source = list(gradebook_users), [], "the gradebook"
    else:
        eligible = list(dict.fromkeys([*submitters, *sorted(graded)]))
        not_in_gradebook, source = [], "the submitters"
    has_result, on_roster = set(graded), set(eligible)
    return Reconciliation(
        roster=source,
        exported=eligible,
        matched=[student for student in eligible if student in has_result],
        missing=[student for student in eligible if student not in has_result],
        unknown=sorted(student for student in graded if student not in on_roster),
        not_in_gradebook=not_in_gradebook,
    )
