"""The exporter interface, the registry by name, and what every exporter shares.

An exporter turns result dicts (results/<username>.json, or Result.model_dump()) and a
roster into files in an exports folder, written atomically, and returns their paths.
Only these result fields are relied on: student, status, accuracy, per_class_accuracy,
points, final_points (falls back to points), error, late, overrides.
"""

from __future__ import annotations

import csv
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.atomic_write import write_atomic
from grader.errors import GraderError
from grader.registry import Registry

TOTAL = "total"
MAX_ERROR_CHARS = 300  # feedback is a short note; the full error stays in the result
# Names people type for the registered ones; used only to suggest the right name.
ALIASES = {"blackboard": "bb", "blackboard-tab": "bb-tab", "tab": "bb-tab", "xls": "bb-tab", "csv": "full"}


class ExportSettings(BaseModel):
    """rubric.yaml `export:`."""

    model_config = ConfigDict(extra="forbid")

    column_name: str = Field(default="Lab 8", min_length=1, description="the grade column's name in the LMS")
    column_id: str | None = Field(
        default=None,
        pattern=r"^\d+$",
        description="Blackboard Column ID (digits after the last | in the header); read from the gradebook if null",
    )
    points_possible: float = Field(default=104, gt=0)
    missing_submission: Literal["zero", "blank"] = Field(
        default="zero", description="grade for a student in the roster without a result"
    )
    feedback: bool = Field(default=False, description="add Feedback to Learner with a short text per student")


class ExportError(GraderError, ValueError):
    """An export that cannot be written as asked; the message says what to change."""


class Exporter(ABC):
    description: ClassVar[str]

    @abstractmethod
    def export(
        self,
        results: list[Mapping[str, Any]],
        roster: list[str],
        settings: ExportSettings,
        out_dir: Path,
        gradebook: Path | None = None,
    ) -> list[Path]:
        """Writes this exporter's files into out_dir and returns their paths."""


EXPORTERS: Registry[type[Exporter]] = Registry("export format", error=ExportError, aliases=ALIASES)
EXPORTERS.register("bb", "grader.export.blackboard:BlackboardExporter")
EXPORTERS.register("bb-tab", "grader.export.blackboard:BlackboardTabExporter")
EXPORTERS.register("canvas", "grader.export.canvas:CanvasExporter")
EXPORTERS.register("full", "grader.export.full_csv:FullCsvExporter")


def get_exporter(name: str) -> Exporter:
    return EXPORTERS.get(name)()


# What a result says, read defensively: old results may lack final_points.


def as_dict(result: Any) -> dict[str, Any]:
    return result.model_dump() if hasattr(result, "model_dump") else dict(result)


def index_results(results: Iterable[Any]) -> dict[str, dict[str, Any]]:
    indexed: dict[str, dict[str, Any]] = {}
    for result in results:
        data = as_dict(result)
        indexed[str(data["student"])] = data
    return indexed


def final_points(result: Mapping[str, Any]) -> dict[str, float | None]:
    return dict(result.get("final_points") or result.get("points") or {})


def format_points(points: float) -> str:
    text = f"{round(points, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def grade_cell(result: Mapping[str, Any] | None, settings: ExportSettings) -> str:
    """The grade to upload: the final total; for no result, 0 or blank as the rubric says.
    A result without a total (grading could not finish) stays blank, so that it is not mistaken for a 0."""
    if result is None:
        return "0" if settings.missing_submission == "zero" else ""
    total = final_points(result).get(TOTAL)
    return "" if total is None else format_points(total)


def item_label(item: str) -> str:
    match = re.fullmatch(r"([A-Za-z_]+?)_?(\d+)", item)
    return f"{match[1].replace('_', ' ').capitalize()} {match[2]}" if match else item.replace("_", " ").capitalize()


def feedback_text(result: Mapping[str, Any] | None, settings: ExportSettings) -> str:
    """A short plain-text summary for the student; lines separated by newlines."""
    name, possible = settings.column_name, format_points(settings.points_possible)
    if result is None:
        return f"No submission was received for {name}."
    lines = []
    if result.get("status") == "error":
        error = str(result.get("error") or "unknown error")
        error = error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 3] + "..."
        lines.append(f"Your submission could not be fully graded: {error}")
    if result.get("accuracy") is not None:
        lines.append(f"Test accuracy: {result['accuracy']:.2%}")
    points = final_points(result)
    for item, value in points.items():
        if item != TOTAL and value is not None:
            lines.append(f"{item_label(item)}: {format_points(value)} points")
    late = result.get("late") or {}
    if late.get("days_late"):
        lines.append(f"Late: {late.get('reason') or str(late['days_late']) + ' day(s)'}")
    for override in result.get("overrides") or []:
        lines.append(
            f"{item_label(str(override.get('item')))} set to {format_points(float(override.get('points', 0)))} "
            f"by {override.get('decided_by')}: {override.get('reason')}"
        )
    if points.get(TOTAL) is not None:
        lines.append(f"Total: {format_points(points[TOTAL])} / {possible}")
    return "\n".join(lines)


def students_in_order(roster: Iterable[str], results: Mapping[str, Any]) -> list[str]:
    """The roster in its order, then students with a result who are not in it."""
    ordered = list(dict.fromkeys(roster))
    known = set(ordered)
    return ordered + sorted(student for student in results if student not in known)


def export_stem(settings: ExportSettings) -> str:
    """A file-name-safe form of the column name: 'Lab 8' -> 'lab-8'."""
    return re.sub(r"[^a-z0-9]+", "-", settings.column_name.lower()).strip("-") or "grades"


# Files: written whole to a temporary name beside the target, then moved into place.


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, data)


def write_table_atomic(path: Path, rows: Iterable[list[str]], delimiter: str, encoding: str = "utf-8") -> Path:
    """Every value quoted, as Blackboard's upload wants; CRLF line ends, as spreadsheets write them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerows(rows)
    return write_bytes_atomic(path, buffer.getvalue().encode(encoding))


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """A downloaded gradebook: comma or tab delimited; UTF-16 when it has a UTF-16 BOM, else UTF-8 (BOM or not)."""
    raw = Path(path).read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ExportError(
                f"{path}: neither UTF-8 nor UTF-16 text ({error}); download the gradebook again"
            ) from error
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    rows = [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(cell for cell in row)]
    if not rows:
        raise ExportError(f"{path}: the gradebook file is empty")
    header, body = rows[0], rows[1:]
    width = len(header)
    return header, [row + [""] * (width - len(row)) for row in body]


def find_column(header: list[str], wanted: str, path: Path) -> int:
    folded = [cell.strip().casefold() for cell in header]
    if wanted.casefold() not in folded:
        raise ExportError(f"{path}: no {wanted!r} column; found {', '.join(repr(cell) for cell in header)}")
    return folded.index(wanted.casefold())
