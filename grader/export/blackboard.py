"""Blackboard Grade Center upload files ("Work Offline > Upload").

Students are matched by `Username`, the grade column by the Column ID after the last `|`
of its header (`Lab 8 [Total Pts: 104 Score] |123456`). A header without an id would make
Blackboard create a new text column worth 0 points, so this exporter never invents one: the
id comes from the rubric, or from the instructor's downloaded gradebook. Filling a download
writes the roster's rows with only Username, the lab's column and its feedback, in the
download's encoding and line ends: an upload of every column would write back other labs'
grades as they were when downloaded. `all_columns` keeps every column of the download.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from grader.export.base import (
    Exporter,
    ExportError,
    ExportJob,
    ExportSettings,
    Table,
    export_stem,
    find_column,
    format_points,
    grade_cell,
    index_results,
    read_gradebook,
    suggest_column,
    write_table_atomic,
)
from grader.export.feedback import feedback_text

USERNAME = "Username"
FEEDBACK = "Feedback to Learner"
FEEDBACK_FORMAT = "Feedback Format"
NOTES_COLUMNS = ("grading notes", "notes format")
# Column names may contain [...] themselves, so only the trailing "|<digits>" is trusted.
COLUMN_ID = re.compile(r"\|\s*(?P<id>\d+)\s*$")
COLUMN_NAME = re.compile(r"^(?P<name>.*?)\s*\[Total Pts:[^\]]*\]\s*\|\s*\d+\s*$")


def column_header(settings: ExportSettings) -> str:
    if settings.column_id is None:
        raise ExportError(
            "no Blackboard column id: set export.column_id in rubric.yaml (the digits after '|' in the column's "
            "header of a downloaded gradebook), or pass the downloaded gradebook file"
        )
    return f"{settings.column_name} [Total Pts: {format_points(settings.points_possible)} Score] |{settings.column_id}"


def find_grade_column(
    header: list[str],
    settings: ExportSettings,
    path: Path,
    assignment_names: Sequence[str] = (),
    notes: list[str] | None = None,
) -> int:
    """The column with the rubric's id, else the only grade column named like the rubric's column, else the only
    one named as the assignment the import recorded (said in `notes`)."""
    ids = {index: match["id"] for index, cell in enumerate(header) if (match := COLUMN_ID.search(cell))}
    if settings.column_id is not None:
        found = [index for index, column_id in ids.items() if column_id == settings.column_id]
        if not found:
            raise ExportError(f"{path}: no column with id {settings.column_id}; grade columns: {_listing(header, ids)}")
        return found[0]
    wanted = settings.column_name.strip().casefold()
    names = {index: match["name"].strip() for index in ids if (match := COLUMN_NAME.match(header[index]))}
    found = [index for index, name in names.items() if name.casefold() == wanted]
    for assignment in dict.fromkeys(assignment_names) if not found else ():
        recorded = [index for index, name in names.items() if name.casefold() == assignment.strip().casefold()]
        if len(recorded) == 1:
            if notes is not None:
                notes.append(
                    f"{path.name}: no grade column named {settings.column_name!r}; filled {header[recorded[0]]!r}, "
                    f"the assignment the Blackboard import recorded (export.column_name or column_id choose another)"
                )
            return recorded[0]
    if len(found) != 1:
        hint = {name: f'column_name: "{name}" (or column_id: "{ids[index]}")' for index, name in names.items()}
        advice = suggest_column(settings.column_name, hint, assignment_names) if not found else ""
        advice = advice or "; set export.column_id (or the column's exact name as export.column_name) in rubric.yaml"
        raise ExportError(
            f"{path}: {'no' if not found else 'several'} grade column named {settings.column_name!r}{advice}. "
            f"Grade columns: {_listing(header, ids)}"
        )
    return found[0]


def _listing(header: list[str], ids: Mapping[int, str]) -> str:
    return ", ".join(repr(header[index]) for index in ids) or "none"


def feedback_html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


class BlackboardExporter(Exporter):
    description = "Blackboard Grade Center upload, comma-separated .csv (UTF-8 or as downloaded; all quoted)"
    delimiter = ","
    suffix = ".csv"

    def write(self, job: ExportJob) -> list[Path]:
        by_student = index_results(job.results)
        path = job.out_dir / f"{export_stem(job.settings)}_blackboard{self.suffix}"
        if job.gradebook is None:
            return [write_table_atomic(path, self._fresh(by_student, job.roster, job.settings), self.delimiter)]
        table = read_gradebook(job.gradebook)
        rows = self._fill(table, job, by_student)
        # Blackboard's upload wants every value quoted, whatever the download did.
        return [write_table_atomic(path, rows, self.delimiter, replace(table.format, quote_all=True))]

    def _fresh(self, by_student: dict, roster: list[str], settings: ExportSettings) -> list[list[str]]:
        header = [USERNAME, column_header(settings)]
        if settings.feedback:
            header += [FEEDBACK, FEEDBACK_FORMAT]
        rows = [header]
        for student in dict.fromkeys(roster):
            rows.append(self._cells(by_student.get(student), settings, student))
        return rows

    @staticmethod
    def _cells(result, settings: ExportSettings, student: str) -> list[str]:
        """Username, grade, and with feedback on its text and format: the minimal upload row."""
        row = [student, grade_cell(result, settings)]
        if settings.feedback:
            row += [feedback_html(feedback_text(result, settings)), "HTML"]
        return row

    def _fill(self, table: Table, job: ExportJob, by_student: dict) -> list[list[str]]:
        """The download's rows of roster students only (a graded student it lacks is not invented)."""
        gradebook, roster, settings = job.gradebook, job.roster, job.settings
        all_columns, assignment_names = job.all_columns, job.assignment_names
        header, body = table.header, table.rows
        user_col = find_column(header, USERNAME, gradebook)
        grade_col = find_grade_column(header, settings, gradebook, assignment_names, self.notes)
        wanted = set(roster)
        body = [row for row in body if row[user_col].strip() in wanted]
        if not all_columns:
            minimal = [USERNAME, header[grade_col]] + ([FEEDBACK, FEEDBACK_FORMAT] if settings.feedback else [])
            cells = [self._cells(by_student.get(row[user_col].strip()), settings, row[user_col]) for row in body]
            return [minimal, *cells]
        feedback_cols = self._feedback_columns(header, body, grade_col) if settings.feedback else None
        for row in body:
            self._set(row, grade_col, feedback_cols, by_student.get(row[user_col].strip()), settings)
        return [header, *body]

    @staticmethod
    def _feedback_columns(header: list[str], body: list[list[str]], grade_col: int) -> tuple[int, int]:
        """(Feedback to Learner, Feedback Format) indexes, inserting both after the grade (and its notes) if absent."""
        folded = [cell.strip().casefold() for cell in header]
        if FEEDBACK.casefold() in folded and FEEDBACK_FORMAT.casefold() in folded:
            return folded.index(FEEDBACK.casefold()), folded.index(FEEDBACK_FORMAT.casefold())
        at = grade_col + 1
        while at < len(folded) and folded[at] in NOTES_COLUMNS:
            at += 1
        header[at:at] = [FEEDBACK, FEEDBACK_FORMAT]
        for row in body:
            row[at:at] = ["", ""]
        return at, at + 1

    @staticmethod
    def _set(row: list[str], grade_col: int, feedback_cols, result, settings: ExportSettings) -> None:
        row[grade_col] = grade_cell(result, settings)
        if feedback_cols is not None:
            row[feedback_cols[0]] = feedback_html(feedback_text(result, settings))
            row[feedback_cols[1]] = "HTML"


class BlackboardTabExporter(BlackboardExporter):
    description = "Blackboard Grade Center upload, tab-delimited .xls (plain text: UTF-8, or as the download was)"
    delimiter = "\t"
    suffix = ".xls"
