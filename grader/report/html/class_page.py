"""The class dashboard, for the TA: distributions with the baselines marked, a sortable table of students that
links to their pages, a triage list and what `grader export` last wrote.

The figures come from `grader summary`'s own functions (summarise, read_copy_report); this module only lays
them out and groups the near-duplicate and copied pairs into clusters.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from grader.errors import GraderError
from grader.export.base import TOTAL, format_points, read_gradebook
from grader.integrity.copies import CopyReport
from grader.report.class_summary import ClassSummary
from grader.report.clusters import Cluster, answer_clusters, copy_clusters
from grader.report.html import charts
from grader.report.html.shell import chart, render, template
from grader.report.words import import_marks
from grader.results.model import Result
from grader.review.counts import waiting_subjects
from grader.review.subjects import ANSWERS_ERROR, ERROR, INTEGRITY_PREFIX, subject_question
from grader.rubric.config import Rubric
from grader.rubric.points import exercise1_points

EXPORT_SUFFIXES = (".csv", ".tsv", ".txt", ".xls")


@dataclass
class Cell:
    text: str
    sort: str | float = ""
    number: bool = False
    why: str = ""  # a decision changed this number: which, for the cell's title (the table's * marker)


@dataclass
class StudentRow:
    student: str
    link: str
    cells: list[Cell]
    review: list[str]


@dataclass
class ExportFile:
    name: str
    written: str
    rows: int | None


@dataclass
class ClassView:
    graded: int
    failed: int
    columns: list[str]
    rows: list[StudentRow]
    charts: list[tuple[str, object]]
    baselines: list[tuple[str, str]]
    links: dict[str, str]  # the students with a page; others (an outdated copies.json) are named without a link
    review: list[tuple[str, list[str]]]
    errors: list[tuple[str, list[tuple[str, str]]]]  # kind -> (student, error)
    answer_clusters: list[Cluster]
    copy_clusters: list[Cluster]
    integrity_flags: list[tuple[str, str, str]]
    unreadable: list[str]
    exports: list[ExportFile] = field(default_factory=list)
    exports_folder: str = ""


def student_link(student: str) -> str:
    """The page of a student, relative to index.html; the name is a file name already (results/<name>.json)."""
    return "students/" + quote(student, safe="") + ".html"


def _final(result: Result) -> float | None:
    return result.final_points.total if result.final_points.total is not None else result.points.total


def review_reasons(result: Result, copies: CopyReport | None = None) -> list[str]:
    """Why a TA should look at this student, in the order a TA would act on them: what waits for a decision
    (review.counts.waiting_subjects, as `grader summary` and `grader export` count it, a possible copy in `copies`
    included), and a run without a sandbox."""
    waiting = waiting_subjects(result, copies)
    reasons = []
    if ERROR in waiting:
        reasons.append(f"error: {result.error_kind or 'unknown'}")
    questions = [str(subject_question(subject)) for subject, kind in waiting.items() if kind == "answer"]
    if questions or waiting.get(ANSWERS_ERROR) == "error":
        reasons.append("answers to review" + (f" (Q{', Q'.join(questions)})" if questions else ""))
    reasons += [f"integrity: {subject.removeprefix(INTEGRITY_PREFIX)}" for subject, kind in waiting.items()
                if kind == "integrity"]  # fmt: skip
    reopened = [subject for subject, kind in waiting.items() if kind == "reopened"]
    if reopened:
        reasons.append(f"re-opened in review, changed since decided ({', '.join(reopened)})")
    if result.run and not result.run.sandboxed:
        reasons.append("graded without a sandbox")
    return reasons


def item_names(results: list[Result]) -> list[str]:
    return list(dict.fromkeys(item.item for result in results for item in result.items))


def decisions_by_item(result: Result) -> dict[str, list[str]]:
    """item (or `total`) -> each decision that changed its number, in words for the TA."""
    found: dict[str, list[str]] = defaultdict(list)
    for decision in result.decisions:
        if decision.status == "applied" and decision.points is not None:
            what = f"Q{decision.question}" if decision.question is not None else decision.subject
            found[decision.item].append(f"review by {decision.decided_by}: {what} = {format_points(decision.points)}")
    if result.late and result.late.penalty_fraction:
        found[TOTAL].append(f"late penalty -{result.late.penalty_fraction:.0%} ({result.late.reason})")
    for override in result.overrides:
        found[override.item].append(
            f"override by {override.decided_by}: {format_points(override.points)} ({override.reason})"
        )
    for item, note in import_marks(result.notes).items():
        found[TOTAL if item == "final" else item].append(note)
    return found


def _points_cell(value: float | None, why: list[str], machine: float | None = None) -> Cell:
    text = "-" if value is None else format_points(value)
    if machine is not None and machine != value:
        why = [f"the grader gave {format_points(machine)}", *why]
    return Cell(text + (" *" if why else ""), -1 if value is None else value, number=True, why="; ".join(why))


def student_row(result: Result, items: list[str], copies: CopyReport | None = None) -> StudentRow:
    points = {item.item: item for item in result.items}
    final_items = result.final_points.by_item if result.final_points.total is not None else {}
    why = decisions_by_item(result)
    cells = [
        Cell(result.status, result.status),
        Cell("-" if result.accuracy is None else f"{result.accuracy:.2%}", -1 if result.accuracy is None else
             result.accuracy, number=True),
    ]  # fmt: skip
    for name in items:
        machine = None if points.get(name) is None else points[name].points
        value = final_items.get(name, machine)
        cells.append(_points_cell(value, why.get(name, []), machine))
    late = result.late.penalty_fraction if result.late else 0.0
    cells.append(Cell(f"-{late:.0%}" if late else "", late, number=True))
    changed = [entry for name, entries in why.items() if name != TOTAL for entry in entries]
    cells.append(_points_cell(_final(result), why.get(TOTAL, []) + changed))
    reasons = review_reasons(result, copies)
    cells.append(Cell("; ".join(reasons), len(reasons)))
    return StudentRow(result.student, student_link(result.student), cells, reasons)


def baseline_marks(results: list[Result]) -> dict[str, float]:
    """Each baseline's accuracy as the results compared with it (the same split's measurement for all)."""
    return {entry.baseline: entry.accuracy for result in results for entry in result.comparison}


def baseline_points(marks: dict[str, float], rubric: Rubric | None) -> dict[str, float]:
    """The Exercise 1 points each baseline's accuracy earns under the rubric; none without a rubric, or with one
    whose anchors name a baseline these results were not compared with (the chart is drawn without marks)."""
    if rubric is None:
        return {}
    try:
        return {f"{name} (Ex. 1)": exercise1_points(accuracy, rubric.exercise1, marks).points
                for name, accuracy in marks.items()}  # fmt: skip
    except GraderError:
        return {}


def export_files(folder: Path) -> list[ExportFile]:
    """What `grader export` wrote, newest first: the file, when, and its rows below the header."""
    found = []
    paths = [path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in EXPORT_SUFFIXES]
    for path in sorted(paths, key=lambda path: path.stat().st_mtime, reverse=True):
        written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        try:
            rows = len(read_gradebook(path).rows)
        except (GraderError, OSError, ValueError):
            rows = None
        found.append(ExportFile(path.name, written, rows))
    return found


def class_view(results: list[Result], summary: ClassSummary, exports: Path | None, rubric: Rubric | None) -> ClassView:
    items = item_names(results)
    marks = baseline_marks(results)
    totals = [total for total in map(_final, results) if total is not None]
    accuracies = [result.accuracy for result in results if result.accuracy is not None]
    pictures = [
        ("Accuracy", chart(charts.distribution(accuracies, marks, xlabel="accuracy on the test split (%)",
                                               label="Distribution of accuracy", scale=100))),
        ("Final points", chart(charts.distribution(totals, baseline_points(marks, rubric), xlabel="final points",
                                                   label="Distribution of points"))),
    ]  # fmt: skip
    rows = [student_row(result, items, summary.copies) for result in sorted(results, key=lambda result: result.student)]
    folder = Path(exports) if exports is not None else None
    return ClassView(
        graded=summary.graded,
        failed=summary.failed,
        columns=[
            "Status",
            "Accuracy",
            *(name.replace("exercise", "Ex. ") for name in items),
            "Late",
            "Final",
            "Review",
        ],  # fmt: skip
        rows=rows,
        charts=pictures,
        baselines=[(name, f"{accuracy:.2%}") for name, accuracy in sorted(marks.items())],
        links={row.student: row.link for row in rows},
        review=[(row.student, row.review) for row in rows if row.review],
        errors=list(summary.errors.items()),
        answer_clusters=answer_clusters(summary.duplicates),
        copy_clusters=copy_clusters(summary.copies),
        integrity_flags=list(summary.integrity_flags),
        unreadable=list(summary.unreadable),
        exports=export_files(folder) if folder is not None and folder.is_dir() else [],
        exports_folder=str(folder) if folder is not None else "",
    )


SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th.sortable").forEach(function (header) {
    header.addEventListener("click", function () {
      var column = header.cellIndex;
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th.sortable").forEach(function (other) { other.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var value = cell.getAttribute("data-sort");
        if (value === null) { value = cell.textContent.trim(); }
        var number = Number(value);
        return value.trim() !== "" && !isNaN(number) ? number : value.toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        var order = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

PAGE = template("class.html")


def class_page(results: list[Result], summary: ClassSummary, exports: Path | None, rubric: Rubric | None) -> str:
    view = class_view(results, summary, exports, rubric)
    return render(PAGE, title="Lab 8: class report", script=SORT_SCRIPT.strip(), view=view)
