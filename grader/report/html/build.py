"""Building every page of a class: the students' pages (in worker processes for a large class: each draws two
charts), then the class page that links to them. Every file is written whole."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader.atomic_write import write_atomic
from grader.batch.summary import summarise
from grader.errors import GraderError
from grader.integrity.copies import read_copy_report
from grader.report.html.class_page import class_page
from grader.report.html.hostpaths import HostPaths
from grader.report.html.split import ReportSplit, load_report_split
from grader.report.html.student import student_page
from grader.results.model import Result
from grader.results.store import load_results
from grader.rubric.config import Rubric, load_rubric

STUDENTS_FOLDER = "students"
# Below this many students one process is quicker than starting workers (each imports matplotlib and reads the split).
STUDENTS_PER_WORKER = 25


class ReportError(GraderError):
    """No results to report on, or no result for the student asked for."""


@dataclass
class WrittenReport:
    index: Path
    students: dict[str, Path]
    split: ReportSplit


def student_page_path(folder: Path, student: str) -> Path:
    return Path(folder) / STUDENTS_FOLDER / f"{student}.html"


def write_student_page(result: Result, folder: Path, split: ReportSplit, host: HostPaths) -> Path:
    return write_atomic(student_page_path(folder, result.student), student_page(result, split, host))


def stored_results(results: Path) -> tuple[list[Result], list[str]]:
    if not Path(results).is_dir():
        raise ReportError(f"{results}: no results folder; grade first (`grader grade --all`) or pass --results")
    found, unreadable = load_results(results)
    if not found and not unreadable:
        raise ReportError(f"{results}: no results/<student>.json in it; grade first (`grader grade --all`)")
    return found, unreadable


def report_workers(students: int) -> int:
    return max(1, min(os.cpu_count() or 1, students // STUDENTS_PER_WORKER))


_worker: dict = {}


def _start_worker(folder: Path, rubric: Path, host: HostPaths) -> None:
    _worker.update(folder=folder, split=load_report_split(rubric), host=host)


def _write_in_worker(result_json: str) -> Path:
    result = Result.model_validate_json(result_json)
    return write_student_page(result, _worker["folder"], _worker["split"], _worker["host"])


def write_student_pages(
    found: list[Result], folder: Path, rubric: Path, split: ReportSplit, host: HostPaths, workers: int
) -> dict[str, Path]:
    """Workers are started with "spawn", never by forking the grader (a fork of a process with threads can hang)."""
    if workers <= 1:
        return {result.student: write_student_page(result, folder, split, host) for result in found}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(folder, rubric, host)) as pool:  # fmt: skip
        paths = pool.map(_write_in_worker, [result.model_dump_json() for result in found], chunksize=8)
        return dict(zip((result.student for result in found), paths))


def remove_stale_pages(folder: Path, current: set[Path]) -> None:
    """A page whose result is gone (a student removed from results/) would otherwise outlive it, unlinked."""
    for page in (folder / STUDENTS_FOLDER).glob("*.html"):
        if page not in current:
            page.unlink(missing_ok=True)


def page_is_current(page: Path, result_file: Path) -> bool:
    """The page exists and was written after the result it shows."""
    return page.is_file() and page.stat().st_mtime >= result_file.stat().st_mtime


def build_reports(
    *,
    results: Path,
    rubric: Path,
    output: Path,
    exports: Path | None = Path("exports"),
    workers: int | None = None,
) -> WrittenReport:
    found, unreadable = stored_results(results)
    split = load_report_split(rubric)
    host = HostPaths.of_run(results, Path(rubric).parent, output, Path("submissions"))
    workers = workers or report_workers(len(found))
    pages = write_student_pages(found, Path(output), rubric, split, host, workers)
    remove_stale_pages(Path(output), set(pages.values()))
    summary = summarise(found, unreadable, read_copy_report(results))
    index = write_atomic(Path(output) / "index.html", class_page(found, summary, exports, _rubric_or_none(rubric)))
    return WrittenReport(index, pages, split)


def _rubric_or_none(path: Path) -> Rubric | None:
    """The pages are made from results/ alone; the rubric only adds the baselines' points to a chart."""
    try:
        return load_rubric(path)
    except (GraderError, OSError):
        return None
