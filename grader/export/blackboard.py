"""Blackboard Grade Center upload files ("Work Offline > Upload").

Students are matched by `Username`, the grade column by the Column ID after the last `|`
of its header (`Lab 8 [Total Pts: 104 Score] |123456`). A header without an id would make
Blackboard create a new text column worth 0 points, so this exporter never invents one: the
id comes from the rubric, or the instructor's downloaded gradebook is filled in place,
keeping its other columns and rows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader.export.base import (
    Exporter,
    ExportError,
    ExportSettings,
    export_stem,
    feedback_text,
    find_column,
    format_points,
    grade_cell,
    index_results,
    read_table,
    students_in_order,
    write_table_atomic,
)

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


def find_grade_column(header: list[str], settings: ExportSettings, path: Path) -> int:
    """The column with the rubric's id, else the only grade column named like the rubric's column."""
    ids = {index: match["id"] for index, cell in enumerate(header) if (match := COLUMN_ID.search(cell))}
    if settings.column_id is not None:
        found = [index for index, column_id in ids.items() if column_id == settings.column_id]
        if not found:
            raise ExportError(f"{path}: no column with id {settings.column_id}; grade columns: {_listing(header, ids)}")
        return found[0]
    wanted = settings.column_name.strip().casefold()
    found = [
        index
        for index in ids
        if (match := COLUMN_NAME.match(header[index])) and match["name"].strip().casefold() == wanted
    ]
    if len(found) != 1:
        what = "no" if not found else "several"
        raise ExportError(
            f"{path}: {what} grade column named {settings.column_name!r}; set export.column_id in rubric.yaml. "
            f"Grade columns: {_listing(header, ids)}"
        )
    return found[0]


def _listing(header: list[str], ids: Mapping[int, str]) -> str:
    return ", ".join(repr(header[index]) for index in ids) or "none"


def feedback_html(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


class BlackboardExporter(Exporter):
    description = "Blackboard Grade Center upload, comma-separated .csv (UTF-8, every value quoted)"
    delimiter = ","
    suffix = ".csv"

    def export(
        self,
        results: list[Mapping[str, Any]],
        roster: list[str],
        settings: ExportSettings,
        out_dir: Path,
        gradebook: Path | None = None,
    ) -> list[Path]:
        by_student = index_results(results)
        if gradebook is not None:
            rows = self._fill(Path(gradebook), by_student, settings)
        else:
            rows = self._fresh(by_student, roster, settings)
        path = Path(out_dir) / f"{export_stem(settings)}_blackboard{self.suffix}"
        return [write_table_atomic(path, rows, self.delimiter)]

    def _fresh(self, by_student: dict, roster: list[str], settings: ExportSettings) -> list[list[str]]:
        header = [USERNAME, column_header(settings)]
        if settings.feedback:
            header += [FEEDBACK, FEEDBACK_FORMAT]
        rows = [header]
        for student in students_in_order(roster, by_student):
            result = by_student.get(student)
            row = [student, grade_cell(result, settings)]
            if settings.feedback:
                row += [feedback_html(feedback_text(result, settings)), "HTML"]
            rows.append(row)
        return rows

    def _fill(self, gradebook: Path, by_student: dict, settings: ExportSettings) -> list[list[str]]:
        header, body = read_table(gradebook)
        user_col = find_column(header, USERNAME, gradebook)
        grade_col = find_grade_column(header, settings, gradebook)
        feedback_cols = self._feedback_columns(header, body, grade_col) if settings.feedback else None
        seen = set()
        for row in body:
            student = row[user_col].strip()
            seen.add(student)
            self._set(row, grade_col, feedback_cols, by_student.get(student), settings)
        # A graded student missing from the download (enrolled since) still gets a row;
        # Blackboard reports it on upload instead of the grade silently vanishing here.
        for student in sorted(set(by_student) - seen):
            row = [""] * len(header)
            row[user_col] = student
            self._set(row, grade_col, feedback_cols, by_student[student], settings)
            body.append(row)
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
    description = "Blackboard Grade Center upload, tab-delimited .xls (plain UTF-8 text)"
    delimiter = "\t"
    suffix = ".xls"
