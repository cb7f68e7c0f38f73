"""`grader import-bb ZIP`: a Blackboard Assignment bulk download (the zip, or the folder it was unzipped into)
into submissions/<username>/."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from grader.intake.blackboard import import_bulk_download
from grader.report.text import line, literal
from grader.rubric.config import load_rubric


def main(
    *,
    zip: Path,
    submissions: Path = Path("submissions"),
    rubric: Path = Path("rubric.yaml"),
    console: Console | None = None,
) -> int:
    """0: every submission imported; 1: some failed (each named). An unusable download raises BulkDownloadError."""
    console = console or Console(soft_wrap=True)
    settings = load_rubric(rubric)
    due = settings.late.deadline if settings.late else None
    report = import_bulk_download(zip, submissions, settings.attempts, due)
    for problem in report.lines():
        console.print(line(("!", "yellow"), f" {problem}"))
    console.print(
        literal(
            f"{zip}: {report.count('imported')} imported, {report.count('skipped')} skipped, "
            f"{report.count('error')} failed, into {submissions}/"
        )
    )
    return 1 if report.count("error") else 0
