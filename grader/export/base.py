"""The exporter interface, the registry by name, and what every exporter shares.

An exporter turns result dicts (results/<username>.json, or Result.model_dump()) and a
roster (who is exported, reconciled by grader/export/roster.py) into files in an exports
folder, written atomically, and returns their paths. Only these result fields are relied on:
student, status, accuracy, per_class_accuracy, points, final_points (falls back to points),
items, comparison, answers, error, late, overrides (the last five for the feedback only).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from grader.atomic_write import write_atomic
from grader.errors import GraderError
from grader.registry import Registry

TOTAL = "total"
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
    canvas_assignment_id: str | None = Field(
        default=None,
        pattern=r"^\d+$",
        description="Canvas assignment id (the digits in the gradebook column 'Lab 8 (4321)'); null: find it by name",
    )


class ExportError(GraderError, ValueError):
    """An export that cannot be written as asked; the message says what to change."""


@dataclass(frozen=True)
class ExportJob:
    """One export. `roster` is who is exported, in order; a result outside it is left out. With a downloaded
    `gradebook`, only its roster rows and, unless `all_columns`, only the columns the LMS needs to take this
    lab's grade are written, in the file's own encoding and line ends. `assignment_names` (recorded by the
    import) help find the grade column. `waiting`: student -> the subjects that still wait for a TA's decision
    (review.counts.waiting_subjects), for the formats that show them; None where the caller did not say."""

    results: list[Mapping[str, Any]]
    roster: list[str]
    settings: ExportSettings
    out_dir: Path
    gradebook: Path | None = None
    all_columns: bool = False
    assignment_names: tuple[str, ...] = ()
    waiting: Mapping[str, Sequence[str]] | None = None


class Exporter(ABC):
    description: ClassVar[str]

    def __init__(self) -> None:
        self.notes: list[str] = []  # what the TA should know about the files written (a column chosen, ...)

    def export(
        self,
        results: list[Mapping[str, Any]],
        roster: list[str],
        settings: ExportSettings,
        out_dir: Path,
        gradebook: Path | None = None,
        *,
        all_columns: bool = False,
        assignment_names: Sequence[str] = (),
        waiting: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Path]:
        """Writes this exporter's files into out_dir and returns their paths (ExportJob says what each input is)."""
        job = ExportJob(
            results=list(results),
            roster=list(roster),
            settings=settings,
            out_dir=Path(out_dir),
            gradebook=Path(gradebook) if gradebook is not None else None,
            all_columns=all_columns,
            assignment_names=tuple(assignment_names),
            waiting=None if waiting is None else {student: tuple(subjects) for student, subjects in waiting.items()},
        )
        return self.write(job)

    @abstractmethod
    def write(self, job: ExportJob) -> list[Path]:
        """This format's files for the job, written atomically."""


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


# Spreadsheets run a cell starting with these as a formula (OWASP's CSV injection list). Some skip leading
# whitespace (a space, a line break, a no-break space) and read compatibility forms (a fullwidth ＝) as the plain
# sign, so the first character is looked for after NFKC normalisation, past whitespace and invisible characters.
FORMULA_START = ("=", "+", "-", "@")
CONTROL_START = ("\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def _first_visible(text: str) -> str:
    for character in unicodedata.normalize("NFKC", text):
        if not (character.isspace() or unicodedata.category(character) in ("Cc", "Cf")):
            return character
    return ""


def defuse_formula(value: Any) -> Any:
    """A text a spreadsheet could run as a formula, with a leading apostrophe; a plain number (a grade, "-2.5"),
    a text that is no formula and a value that is not text as they are. Every exporter passes every cell through
    this: names, usernames and folders, feedback, and the cells of a filled download."""
    if not isinstance(value, str) or PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value if value.startswith(CONTROL_START) or _first_visible(value) in FORMULA_START else value


def item_label(item: str) -> str:
    match = re.fullmatch(r"([A-Za-z_]+?)_?(\d+)", item)
    return f"{match[1].replace('_', ' ').capitalize()} {match[2]}" if match else item.replace("_", " ").capitalize()


def export_stem(settings: ExportSettings) -> str:
    """A file-name-safe form of the column name: 'Lab 8' -> 'lab-8'."""
    return re.sub(r"[^a-z0-9]+", "-", settings.column_name.lower()).strip("-") or "grades"


# Files: written whole to a temporary name beside the target, then moved into place.

BOMS = {"utf-8-sig": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}


@dataclass(frozen=True)
class TableFormat:
    """How a downloaded gradebook was written, so that the filled copy is written the same way."""

    encoding: str = "utf-8"  # utf-8, utf-8-sig (a BOM), utf-16-le or utf-16-be (each with its BOM)
    line_end: str = "\r\n"
    delimiter: str = ","
    quote_all: bool = True

    def encode(self, text: str) -> bytes:
        if self.encoding.startswith("utf-16"):
            return BOMS[self.encoding] + text.encode(self.encoding)
        return text.encode(self.encoding)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    format: TableFormat


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    return write_atomic(path, data)


def write_table_atomic(
    path: Path, rows: Iterable[list[str]], delimiter: str, table_format: TableFormat | None = None
) -> Path:
    """Every value quoted, as Blackboard's upload wants; CRLF line ends, as spreadsheets write them;
    or as the downloaded file was written (`table_format`), with this exporter's delimiter. No cell starts a
    formula (`defuse_formula`)."""
    table_format = table_format or TableFormat()
    buffer = io.StringIO()
    quoting = csv.QUOTE_ALL if table_format.quote_all else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=table_format.line_end)
    writer.writerows([defuse_formula(cell) for cell in row] for row in rows)
    return write_bytes_atomic(path, table_format.encode(buffer.getvalue()))


def _decode(raw: bytes, path: Path) -> tuple[str, str]:
    """(text, encoding): UTF-16 when it has a UTF-16 BOM, else UTF-8 with or without its BOM."""
    for encoding, bom in BOMS.items():
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(encoding), encoding
            except UnicodeDecodeError as error:
                raise ExportError(f"{path}: not {encoding} text after its byte-order mark ({error})") from error
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        raise ExportError(f"{path}: neither UTF-8 nor UTF-16 text ({error}); download the gradebook again") from error


def read_gradebook(path: Path) -> Table:
    """A downloaded gradebook: comma or tab delimited, in UTF-8 (BOM or not) or UTF-16 with its BOM."""
    text, encoding = _decode(Path(path).read_bytes(), path)
    first_line = text.split("\n", 1)[0]
    table_format = TableFormat(
        encoding=encoding,
        line_end="\r\n" if first_line.endswith("\r") or "\n" not in text else "\n",
        delimiter="\t" if first_line.count("\t") > first_line.count(",") else ",",
        quote_all=first_line.startswith('"'),
    )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=table_format.delimiter)
    rows = [row for row in reader if any(cell for cell in row)]
    if not rows:
        raise ExportError(f"{path}: the gradebook file is empty")
    header, body = rows[0], rows[1:]
    width = len(header)
    return Table(header, [row + [""] * (width - len(row)) for row in body], table_format)


def find_column(header: list[str], wanted: str, path: Path) -> int:
    folded = [cell.strip().casefold() for cell in header]
    if wanted.casefold() not in folded:
        raise ExportError(f"{path}: no {wanted!r} column; found {', '.join(repr(cell) for cell in header)}")
    return folded.index(wanted.casefold())


def suggest_column(wanted: str, names: Mapping[str, str], assignment_names: Sequence[str] = ()) -> str:
    """A hint for a grade column not found: a column named as the assignment the import recorded, else the
    names closest to the rubric's. `names` maps each candidate column's name to what to set in the rubric."""
    by_folded = {name.strip().casefold(): name for name in names}
    for assignment in dict.fromkeys(assignment_names):
        if assignment.strip().casefold() in by_folded:
            name = by_folded[assignment.strip().casefold()]
            return (
                f"; the import recorded the assignment {assignment!r}, and the gradebook has the column {name!r}: "
                f"set {names[name]} in rubric.yaml's export section"
            )
    close = difflib.get_close_matches(wanted.casefold(), list(by_folded), n=3, cutoff=0.5)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"{by_folded[name]!r} ({names[by_folded[name]]})" for name in close) + "?"
