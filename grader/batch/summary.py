"""`grader summary`: the class at a glance (grader/report/class_summary.py) printed on the console, ending with the
warnings `grader export` gives too (batch/class_warnings.py): results without a submission folder, and what still
waits for a TA's decision."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.batch.class_warnings import results_without_folder, warn_results_without_folder, warn_waiting
from grader.export.base import format_points
from grader.intake.class_folders import sample_names
from grader.integrity.copies import CopyReport, read_copy_report
from grader.report.class_summary import ClassSummary, summarise
from grader.report.clusters import Cluster, answer_clusters, copy_clusters
from grader.report.text import first_names, line, literal
from grader.results.store import load_results
from grader.review.counts import describe

QUANTILES = ("min", "25%", "50%", "75%", "max")
SHOWN_STUDENTS = 8


def render_summary(summary: ClassSummary, console: Console) -> None:
    failed = (f"{summary.failed} failed", "red" if summary.failed else "green")
    console.print(line(("Class summary", "bold"), ": ", (f"{summary.graded} graded", "green"), ", ", failed))
    if summary.unsandboxed:
        who = first_names(summary.unsandboxed, SHOWN_STUDENTS)
        console.print(
            line(
                (f"{len(summary.unsandboxed)} graded without a sandbox", "yellow"),
                f" (--isolation process, not a security boundary): {who}",
            )
        )
    if summary.accuracy or summary.points:
        table = Table("", "n", "mean", *QUANTILES, title_justify="left", title="Distribution")
        if summary.accuracy:
            table.add_row(*_row("accuracy", summary.accuracy, lambda value: f"{value:.2%}"))
        if summary.points:
            table.add_row(*_row("final points", summary.points, format_points))
        console.print(table)
    if summary.review.decided or summary.review.waiting:
        console.print(line(("TA review", "bold"), " (grader review): ", describe(summary.review)))
    _render_decisions(summary, console)
    if summary.errors:
        table = Table("Cause", "Students", "Who", "Example", title="Errors by cause", title_justify="left")
        for kind, entries in summary.errors.items():
            who = first_names([student for student, _ in entries], SHOWN_STUDENTS)
            table.add_row(*map(literal, (kind, len(entries), who, _shorten(entries[0][1]))))
        console.print(table)
    if summary.duplicates:
        console.print(line(("Near-duplicate answers to review", "bold"), " (each group read together):"))
        for cluster in answer_clusters(summary.duplicates):
            questions = "Q" + ", Q".join(map(str, cluster.questions))
            _print_cluster(
                console, cluster, f"{questions}; {cluster.pairs} pair(s), most overlap {cluster.strongest:.0%}"
            )
    if summary.integrity_flags:
        console.print(line(("Integrity flags for the TA", "bold"), " (points unchanged):"))
        for student, code, message in summary.integrity_flags:
            console.print(line("  ", student, ": ", (code, "yellow"), ": ", message), soft_wrap=True)
    if summary.copies and summary.copies.pairs:
        render_copies(summary.copies, console)
    for name in summary.unreadable:
        console.print(line(("unreadable result", "yellow"), f" {name}: it will be graded again"))


def render_copies(report: CopyReport, console: Console) -> None:
    """One line per group of students whose models look copied; each pair's evidence is in copies.json."""
    console.print(line(("Possibly copied models", "bold"), " (each group read together):"))
    for cluster in copy_clusters(report):
        _print_cluster(console, cluster, f"{', '.join(cluster.reasons)}; {cluster.pairs} pair(s), "
                       f"most agreement {cluster.strongest:.1%}")  # fmt: skip
    flagged = report.flagged_students
    console.print(
        line(
            (f"{len(flagged)} student(s) flagged as possible copies", "yellow"),
            ". Points are unchanged; the evidence for the TA is in integrity/copies.json",
        )
    )


def _print_cluster(console: Console, cluster: Cluster, details: str) -> None:
    """Every name in full: the line is never cut or folded at the terminal's width."""
    console.print(line("  ", (", ".join(cluster.students), "bold"), f" ({details})"), soft_wrap=True)


def _render_decisions(summary: ClassSummary, console: Console) -> None:
    """Who has a number that is not the machine's alone: overrides, late penalties, and the import's choices."""
    shown = [
        ("override(s) in overrides.yaml", summary.overridden),
        ("late (penalty applied)", summary.late),
        ("with attempts after the deadline set aside", summary.set_aside),
        ("graded on answers typed into Blackboard's text field", summary.text_field),
    ]
    for words, students in shown:
        if students:
            console.print(line((f"{len(students)} student(s) {words}", "yellow"), ": ", ", ".join(students)),
                          soft_wrap=True)  # fmt: skip


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
    summary = summarise(found, unreadable, read_copy_report(results))
    render_summary(summary, console)
    class_results = [result for result in found if not result.sample]
    warn_results_without_folder(results_without_folder(class_results, submissions), submissions, results, console)
    warn_waiting(summary.review, "`grader review` decides them; until then exports have the machine's points", console)
    return 0
