"""Canvas gradebook import: `Student,ID,SIS User ID,SIS Login ID,Section,<Assignment> (<id>)`.

Students are matched by SIS Login ID, which holds the username the submissions came under.
A column without `(<id>)` makes Canvas create a new assignment, which is acceptable there.
With a downloaded Canvas gradebook, its rows and other columns are kept and the assignment
column is filled in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grader.export.base import (
    Exporter,
    ExportError,
    ExportSettings,
    export_stem,
    find_column,
    grade_cell,
    index_results,
    read_table,
    students_in_order,
    write_table_atomic,
)

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
LOGIN = "SIS Login ID"
POINTS_POSSIBLE = "Points Possible"


def assignment_header(settings: ExportSettings) -> str:
    return f"{settings.column_name} ({settings.column_id})" if settings.column_id else settings.column_name


def find_assignment_column(header: list[str], settings: ExportSettings, path: Path) -> int:
    if settings.column_id:
        found = [index for index, cell in enumerate(header) if cell.strip().endswith(f"({settings.column_id})")]
    else:
        name = re.escape(settings.column_name.strip())
        found = [index for index, cell in enumerate(header) if re.fullmatch(rf"{name}(\s*\(\d+\))?", cell.strip())]
    if len(found) != 1:
        raise ExportError(
            f"{path}: {'no' if not found else 'several'} column for {assignment_header(settings)!r}; "
            f"columns: {', '.join(repr(cell) for cell in header[len(IDENTITY) :]) or 'none'}"
        )
    return found[0]


class CanvasExporter(Exporter):
    description = "Canvas gradebook import .csv, students matched by SIS Login ID"

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
            rows = [IDENTITY + [assignment_header(settings)]]
            rows.append(["    " + POINTS_POSSIBLE, "", "", "", "", f"{settings.points_possible:.2f}"])
            for student in students_in_order(roster, by_student):
                rows.append([student, "", "", student, "", grade_cell(by_student.get(student), settings)])
        path = Path(out_dir) / f"{export_stem(settings)}_canvas.csv"
        return [write_table_atomic(path, rows, ",")]

    def _fill(self, gradebook: Path, by_student: dict, settings: ExportSettings) -> list[list[str]]:
        header, body = read_table(gradebook)
        login_col = find_column(header, LOGIN, gradebook)
        grade_col = find_assignment_column(header, settings, gradebook)
        seen = set()
        for row in body:
            if row[0].strip() == POINTS_POSSIBLE:
                continue  # Canvas's own row; it ignores it on import
            student = row[login_col].strip()
            seen.add(student)
            row[grade_col] = grade_cell(by_student.get(student), settings)
        for student in sorted(set(by_student) - seen):
            row = [""] * len(header)
            row[0], row[login_col], row[grade_col] = student, student, grade_cell(by_student[student], settings)
            body.append(row)
        return [header, *body]
