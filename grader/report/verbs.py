"""`grader report` (the HTML pages of the class and of each student, from results/, running no model) and
`grader show STUDENT` (one stored result in the terminal, and its page in a browser with --open)."""

from __future__ import annotations

import difflib
import webbrowser
from pathlib import Path

from rich.console import Console

from grader.report.console import render_result
from grader.report.html.build import (
    STUDENTS_FOLDER,
    ReportError,
    build_reports,
    student_page_path,
    write_student_page,
)
from grader.report.html.hostpaths import HostPaths
from grader.report.html.split import load_report_split
from grader.report.text import line
from grader.results.model import Result
from grader.results.store import load_result, result_path

REPORT_FOLDER = "report"


def report_folder(results: Path, output: Path | None) -> Path:
    return Path(output) if output is not None else Path(results) / REPORT_FOLDER


def report_main(
    *,
    results: Path = Path("results"),
    rubric: Path = Path("rubric.yaml"),
    output: Path | None = None,
    exports: Path = Path("exports"),
    console: Console | None = None,
) -> int:
    console = console or Console(soft_wrap=True)
    folder = report_folder(results, output)
    with console.status(line(f"writing the pages into {folder}")):
        written = build_reports(results=results, rubric=rubric, output=folder, exports=exports)
    if written.split.problem:
        console.print(line(("no misclassified images on the pages", "yellow"), f": {written.split.problem}"))
    unchanged = len(written.students) - written.drawn
    console.print(
        line(
            f"{len(written.students)} student page(s) in {folder / STUDENTS_FOLDER}: {written.drawn} drawn, "
            f"{unchanged} unchanged"
        )
    )
    console.print(line(("class page: ", "bold"), str(written.index)))
    return 0


def find_student(results: Path, student: str) -> Result:
    """The stored result of `student`, or an error that names the closest students there are."""
    if not Path(results).is_dir():
        raise ReportError(f"{results}: no results folder; grade first (`grader grade --all`) or pass --results")
    path = result_path(results, student)
    result = load_result(path) if path.is_file() else None
    if result is not None:
        return result
    if path.is_file():
        raise ReportError(f"{path}: unreadable (from an older grader?); grade {student} again")
    names = sorted(stored.stem for stored in Path(results).glob("*.json"))
    close = difflib.get_close_matches(student, names, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ReportError(f"no result for {student!r} in {results}{hint} ({len(names)} student(s) there)")


def show_main(
    *,
    student: str,
    results: Path = Path("results"),
    rubric: Path = Path("rubric.yaml"),
    output: Path | None = None,
    open_page: bool = False,
    console: Console | None = None,
) -> int:
    """The stored result as `grader grade` printed it; --open also opens the student's page (drawn when missing
    or out of date)."""
    console = console or Console(soft_wrap=True)
    result = find_student(results, student)
    render_result(result, console)
    if open_page:
        folder = report_folder(results, output)
        page = student_page_path(folder, result.student)
        host = HostPaths.of_run(results, Path(rubric).parent, folder, Path("submissions"))
        write_student_page(result, folder, load_report_split(rubric), host)  # unless the page is up to date
        if not webbrowser.open(page.resolve().as_uri()):
            console.print(line(("no web browser found here", "yellow"), f"; the page is {page}"))
            return 0
        console.print(line(f"opened {page}"))
    return 0
