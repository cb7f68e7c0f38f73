"""The class at a glance: how many were graded, how accuracy and points spread, and why the others failed."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.answers import AnswersResult, DuplicatePair, class_duplicate_report
from grader.batch.plan import sample_names
from grader.integrity.copies import CopyReport, read_copy_report
from grader.report.text import line, literal
from grader.results.model import Result
from grader.results.store import load_results
from grader.review.counts import ReviewCounts, describe, review_counts

QUANTILES = ("min", "25%", "50%", "75%", "max")
SHOWN_STUDENTS = 8


@dataclass
class ClassSummary:
    """`accuracy` and `points` (the final totals) hold count, mean, std and quantiles;
    `errors` maps an error kind to its (student, error) pairs, the commonest kind first."""

    graded: int = 0
    failed: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    errors: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    duplicates: list[DuplicatePair] = field(default_factory=list)
    unsandboxed: list[str] = field(default_factory=list)
    copies: CopyReport | None = None  # results/integrity/copies.json, written by grade --all
    integrity_flags: list[tuple[str, str, str]] = field(default_factory=list)  # (student, code, message)
    review: ReviewCounts = field(default_factory=ReviewCounts)  # the TA's decisions in grader review


def _describe(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {key: float(value) for key, value in pd.Series(values, dtype=float).describe().items()}


def answer_duplicates(results: list[Result]) -> list[DuplicatePair]:
    """Pairs of students whose written answers to one question are near-duplicates, most similar first."""
    answers = {}
    for result in results:
        if result.answers and result.answers.get("questions"):
            with contextlib.suppress(ValidationError):
                answers[result.student] = AnswersResult.model_validate(result.answers)
    return class_duplicate_report(answers)


def summarise(
    results: list[Result], unreadable: list[str] | None = None, copies: CopyReport | None = None
) -> ClassSummary:
    errors: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for result in results:
        if result.status != "graded":
            errors[result.error_kind or "unknown"].append((result.student, result.error or ""))
    totals = [r.final_points.total if r.final_points.total is not None else r.points.total for r in results]
    return ClassSummary(
        graded=sum(result.status == "graded" for result in results),
        failed=sum(result.status != "graded" for result in results),
        accuracy=_describe([result.accuracy for result in results if result.accuracy is not None]),
        points=_describe([total for total in totals if total is not None]),
        errors=dict(sorted(errors.items(), key=lambda entry: (-len(entry[1]), entry[0]))),
        unreadable=list(unreadable or []),
        duplicates=answer_duplicates(results),
        unsandboxed=[result.student for result in results if result.run and not result.run.sandboxed],
        copies=copies,
        integrity_flags=[
            (result.student, flag.code, flag.message)
            for result in results
            if result.integrity
            for flag in result.integrity.flags
        ],
        review=review_counts(results),
    )


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
