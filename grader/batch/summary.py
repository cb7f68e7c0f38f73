"""`grader summary`: the class at a glance (grader/report/class_summary.py) printed on the console."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.intake.class_folders import sample_names
from grader.integrity.copies import CopyReport, read_copy_report
from grader.report.class_summary import ClassSummary, summarise
from grader.report.text import line, literal
from grader.results.store import load_results
from grader.review.counts import describe

QUANTILES = ("min", "25%", "50%", "75%", "max")
SHOWN_STUDENTS = 8


def render_summary(summary: ClassSummary, console: Console) -> None:
    failed = (f"{summary.failed} failed", "red" if summary.failed else "green")
    console.print(line(("Class summary", "bold"), ": ", (f"{summary.graded} graded", "green"), ", ", failed))
    if summary.unsandboxed:
        who = ", ".join(summary.unsandboxed[:SHOWN_STUDENTS])
        more = (
            f" and {len(summary.unsandboxed) - SHOWN_STUDENTS} more"
            if len(summary.unsandboxed) > SHOWN_STUDENTS
            else ""
        )
        console.print(
            line(
                (f"{len(summary.unsandboxed)} graded without a sandbox", "yellow"),
                f" (--isolation process, not a security boundary): {who}{more}",
            )
        )
    if summary.accuracy or summary.points:
        table = Table("", "n", "mean", *QUANTILES, title_justify="left", title="Distribution")
        if summary.accuracy:
            table.add_row(*_row("accuracy", summary.accuracy, lambda value: f"{value:.2%}"))
        if summary.points:
            table.add_row(*_row("final points", summary.points, lambda value: f"{value:.2f}"))
        console.print(table)
    if summary.review.decided or summary.review.waiting:
        console.print(line(("TA review", "bold"), " (grader review): ", describe(summary.review)))
    if summary.errors:
        table = Table("Cause", "Students", "Who", "Example", title="Errors by cause", title_justify="left")
        for kind, entries in summary.errors.items():
            who = ", ".join(student for student, _ in entries[:SHOWN_STUDENTS])
            if len(entries) > SHOWN_STUDENTS:
                who += f" and {len(entries) - SHOWN_STUDENTS} more"
            table.add_row(*map(literal, (kind, len(entries), who, _shorten(entries[0][1]))))
        console.print(table)
    if summary.duplicates:
        table = Table("Question", "Student", "Student", "Overlap", title="Near-duplicate answers to review")
        for pair in summary.duplicates:
            table.add_row(*map(literal, (pair.question, pair.student_a, pair.student_b, f"{pair.similarity:.0%}")))
        console.print(table)
    if summary.integrity_flags:
        table = Table("Student", "Flag", "What was seen", title="Integrity flags for the TA (points unchanged)")
        for entry in summary.integrity_flags:
            table.add_row(*map(literal, entry))
        console.print(table)
    if summary.copies and summary.copies.pairs:
        render_copies(summary.copies, console)
    for name in summary.unreadable:
        console.print(line(("unreadable result", "yellow"), f" {name}: it will be graded again"))


def render_copies(report: CopyReport, console: Console) -> None:
    """The pairs first (the evidence), then who is in them; each pair's message is in copies.json for the TA."""
    table = Table(
        "Student", "Student", "Why", "Same class", "Kappa", "Same wrong class", title="Possibly copied models"
    )  # fmt: skip
    for pair in report.pairs:
        kappa = "-" if pair.kappa is None else f"{pair.kappa:.2f}"
        mistakes = "-" if pair.shared_mistake_agreement is None else f"{pair.shared_mistake_agreement:.0%}"
        cells = (pair.student_a, pair.student_b, ", ".join(pair.reasons), f"{pair.agreement:.1%}", kappa, mistakes)
        table.add_row(*map(literal, cells))
    console.print(table)
    flagged = report.flagged_students
    console.print(
        line(
            (f"{len(flagged)} student(s) flagged as possible copies", "yellow"),
            f": {', '.join(flagged)}. Points are unchanged; the evidence for the TA is in integrity/copies.json",
        )
    )


def _row(name: str, stats: dict[str, float], show) -> list[Text]:
    cells = (name, int(stats["count"]), show(stats["mean"]), *(show(stats[key]) for key in QUANTILES))
    return [literal(cell) for cell in cells]


def _shorten(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(
    *, results: Path = Path("results"), submissions: Path = Path("submissions"), console: Console | None = None
) -> int:
    console = console or Console()
    found, unreadable = load_results(results)
    samples = sample_names(submissions)  # a shipped sample graded on its own is no student of the class
    found = [result for result in found if result.student not in samples]
    if not found and not unreadable:
        console.print(literal(f"no results in {results}; run `grader grade --all` first"))
        return 1
    render_summary(summarise(found, unreadable, read_copy_report(results)), console)
    return 0
