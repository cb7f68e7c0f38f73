"""What `grader summary` and `grader export` both warn about, in the same words: results of students who have no
folder under submissions/ (a previous class left in results/?), and what still waits for a TA's decision."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from grader.intake.class_folders import student_folders
from grader.report.text import first_names, line
from grader.results.model import Result
from grader.review.counts import ReviewCounts, waiting_line


def results_without_folder(results: Iterable[Result], submissions: Path) -> list[str]:
    """The students with a result and no folder in submissions/ (samples are left out by the caller)."""
    folders = {folder.name for folder in student_folders(submissions)}
    return sorted(result.student for result in results if result.student not in folders)


def warn_results_without_folder(students: list[str], submissions: Path, results: Path, console: Console) -> None:
    """Named, not dropped: a student may have withdrawn a folder by mistake."""
    if not students:
        return
    shown = first_names(students)
    have = "results have" if len(students) != 1 else "result has"
    warning = f"{len(students)} {have} no submission folder in {submissions}/"
    advice = f" ({shown}): a previous class? To start a new class, move {results}/ away (or grade into another "
    console.print(line((warning, "yellow"), advice + "--results folder)"), soft_wrap=True)


def warn_waiting(counts: ReviewCounts, consequence: str, console: Console) -> None:
    """The one line on what still waits for a TA (review.counts, as the class page's "needs review"), followed by
    `consequence`; nothing when nothing waits."""
    if counts.waiting:
        console.print(line((waiting_line(counts), "yellow"), f"; {consequence}"), soft_wrap=True)
