"""Canvas gradebook import: `Student,ID,SIS User ID,SIS Login ID,Section,<Assignment> (<id>)`.

Students are matched by SIS Login ID, which holds the username the submissions came under; the
assignment by the id in its column's brackets, `export.canvas_assignment_id` (Canvas's ids are not
Blackboard's column ids). A column without `(<id>)` makes Canvas create a new assignment, which is
acceptable there. With a downloaded Canvas gradebook, the roster's rows are written with the
identity columns and the assignment's only (every column with `all_columns`), in the download's
encoding, line ends and quoting.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from grader.export.base import (
    Exporter,
    ExportError,
    ExportJob,
    ExportSettings,
    Table,
    export_stem,
    find_column,
    grade_cell,
    index_results,
    read_gradebook,
    suggest_column,
    write_table_atomic,
)

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
LOGIN = "SIS Login ID"
POINTS_POSSIBLE = "Points Possible"
ASSIGNMENT = re.compile(r"^(?P<name>.*?)\s*\((?P<id>\d+)\)\s*$")


def assignment_header(settings: ExportSettings) -> str:
    assignment_id = settings.canvas_assignment_id
    return f"{settings.column_name} ({assignment_id})" if assignment_id else settings.column_name


def find_assignment_column(
    header: list[str], settings: ExportSettings, path: Path, assignment_names: Sequence[str] = ()
) -> int:
    columns = {index: match for index, cell in enumerate(header) if (match := ASSIGNMENT.match(cell.strip()))}
    listing = ", ".join(repr(header[index]) for index in columns) or "none"
    if settings.canvas_assignment_id:
        found = [index for index, match in columns.items() if match["id"] == settings.canvas_assignment_id]
        if not found:
            raise ExportError(
                f"{path}: no assignment with id {settings.canvas_assignment_id} (export.canvas_assignment_id in "
                f"rubric.yaml); assignment columns: {listing}"
            )
        return found[0]
    wanted = settings.column_name.strip().casefold()
    found = [index for index, cell in enumerate(header) if cell.strip().casefold() == wanted]
    found += [index for index, match in columns.items() if match["name"].strip().casefold() == wanted]
    if len(found) != 1:
        hint = {
            match["name"].strip(): f'column_name: "{match["name"].strip()}" (or canvas_assignment_id: "{match["id"]}")'
            for match in columns.values()
        }
        advice = suggest_column(settings.column_name, hint, assignment_names) if not found else ""
        advice = advice or "; set export.canvas_assignment_id in rubric.yaml"
        raise ExportError(
            f"{path}: {'no' if not found else 'several'} column for {assignment_header(settings)!r}{advice}. "
            f"Assignment columns: {listing}"
        )
    return found[0]


class CanvasExporter(Exporter):
    description = "Canvas gradebook import .csv, students matched by SIS Login ID"

    def write(self, job: ExportJob) -> list[Path]:
        by_student, roster, settings = index_results(job.results), job.roster, job.settings
        path = job.out_dir / f"{export_stem(settings)}_canvas.csv"
        if job.gradebook is None:
            rows = [IDENTITY + [assignment_header(settings)]]
            rows.append(["    " + POINTS_POSSIBLE, "", "", "", "", f"{settings.points_possible:.2f}"])
            for student in dict.fromkeys(roster):
                rows.append([student, "", "", student, "", grade_cell(by_student.get(student), settings)])
            return [write_table_atomic(path, rows, ",")]
        table = read_gradebook(job.gradebook)
        rows = self._fill(table, job, by_student)
        return [write_table_atomic(path, rows, ",", table.format)]

    @staticmethod
    def _fill(table: Table, job: ExportJob, by_student: dict) -> list[list[str]]:
        gradebook, roster, settings = job.gradebook, job.roster, job.settings
        all_columns, assignment_names = job.all_columns, job.assignment_names
        header = table.header
        login_col = find_column(header, LOGIN, gradebook)
        grade_col = find_assignment_column(header, settings, gradebook, assignment_names)
        wanted = set(roster)
        kept = []
        for row in table.rows:
            if row[0].strip() == POINTS_POSSIBLE:
                kept.append(row)  # Canvas's own row; it ignores it on import
            elif row[login_col].strip() in wanted:
                row[grade_col] = grade_cell(by_student.get(row[login_col].strip()), settings)
                kept.append(row)
        if all_columns:
            return [header, *kept]
        folded = [cell.strip().casefold() for cell in header]
        columns = [folded.index(name.casefold()) for name in IDENTITY if name.casefold() in folded] + [grade_col]
        return [[row[index] for index in columns] for row in [header, *kept]]
