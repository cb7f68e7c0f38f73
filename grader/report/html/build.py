"""Building every page of a class: the students' pages (in worker processes for a large class: each draws two
charts), then the class page that links to them. Every file is written whole."""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib

from grader.atomic_write import write_atomic
from grader.errors import GraderError
from grader.integrity.copies import read_copy_report
from grader.report.class_summary import class_results, summarise
from grader.report.html.class_page import class_page
from grader.report.html.hostpaths import HostPaths
from grader.report.html.split import ReportSplit, load_report_split
from grader.report.html.student import student_page
from grader.results.model import Result
from grader.results.store import load_results
from grader.rubric.config import Rubric, load_rubric

STUDENTS_FOLDER = "students"
KEY_WITHIN = 4096  # the page key is in <head>, before the style sheet
_KEY = re.compile(r'<meta name="grader-page-key" content="([0-9a-f]{64})">')
# Below this many students one process is quicker than starting workers (each imports matplotlib and reads the split).
STUDENTS_PER_WORKER = 25


class ReportError(GraderError):
    """No results to report on, or no result for the student asked for."""


@dataclass
class WrittenReport:
    index: Path
    students: dict[str, Path]
    split: ReportSplit
    drawn: int = 0  # student pages written this time; the others were unchanged


def student_page_path(folder: Path, student: str) -> Path:
    return Path(folder) / STUDENTS_FOLDER / f"{student}.html"


@functools.cache
def _code_fingerprint() -> str:
    """The page-making code and templates, and matplotlib's version: a new grader draws every page again."""
    digest = hashlib.sha256(matplotlib.__version__.encode())
    here = Path(__file__).parent
    for source in sorted([*here.glob("*.py"), *here.glob("templates/*.html")]):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def page_key(result: Result, split: ReportSplit, host: HostPaths) -> str:
    """Everything a student's page is made from: the result, the split (or why there is none), the folders taken
    out of its messages, and the code."""
    parts = (_code_fingerprint(), result.model_dump_json(), split.sha256 or f"no split: {split.problem}", repr(host))
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def stored_key(page: Path) -> str | None:
    try:
        with open(page, encoding="utf-8", errors="replace") as stream:
            head = stream.read(KEY_WITHIN)
    except OSError:
        return None
    found = _KEY.search(head)
    return found.group(1) if found else None


def write_student_page(result: Result, folder: Path, split: ReportSplit, host: HostPaths) -> Path:
    """The page, unless the one there was made from the very same inputs."""
    path = student_page_path(folder, result.student)
    key = page_key(result, split, host)
    if stored_key(path) == key:
        return path
    return write_atomic(path, student_page(result, split, host, key))


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
    found: list[Result], folder: Path, rubric: Path, split: ReportSplit, host: HostPaths, workers: int | None
) -> tuple[dict[str, Path], int]:
    """The pages that changed, drawn here or by `workers` processes (None: as many as the changed pages call for).
    Workers are started with "spawn", never by forking the grader (a fork of a process with threads can hang)."""
    pages = {result.student: student_page_path(folder, result.student) for result in found}
    changed = [result for result in found if stored_key(pages[result.student]) != page_key(result, split, host)]
    workers = workers or report_workers(len(changed))
    if workers <= 1 or len(changed) <= 1:
        for result in changed:
            write_student_page(result, folder, split, host)
        return pages, len(changed)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(folder, rubric, host)) as pool:  # fmt: skip
        list(pool.map(_write_in_worker, [result.model_dump_json() for result in changed], chunksize=8))
    return pages, len(changed)


def remove_stale_pages(folder: Path, current: set[Path]) -> None:
    """A page whose result is gone (a student removed from results/) would otherwise outlive it, unlinked."""
    for page in (folder / STUDENTS_FOLDER).glob("*.html"):
        if page not in current:
            page.unlink(missing_ok=True)


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
    pages, drawn = write_student_pages(found, Path(output), rubric, split, host, workers)
    remove_stale_pages(Path(output), set(pages.values()))
    summary = summarise(found, unreadable, read_copy_report(results))
    index = write_atomic(
        Path(output) / "index.html", class_page(class_results(found), summary, exports, _rubric_or_none(rubric))
    )
    return WrittenReport(index, pages, split, drawn)


def _rubric_or_none(path: Path) -> Rubric | None:
    """The pages are made from results/ alone; the rubric only adds the baselines' points to a chart."""
    try:
        return load_rubric(path)
    except (GraderError, OSError):
        return None
