"""`grader grade --all`: every student's submission, in parallel, resumable.

Each result is saved atomically the moment it is finished, so a crash, Ctrl-C or kill loses
only the submissions still in their sandbox, and the next run picks up where this one
stopped: the plan skips every student whose inputs match their stored result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from grader.batch.display import BatchDisplay
from grader.batch.plan import CurrentInputs, StudentPlan, plan_class, student_folders
from grader.batch.summary import render_summary, summarise
from grader.integrity.copies import compare_class, read_copy_report
from grader.pipeline import CoursePolicy, GradingSession, apply_policy, grade_submission, open_session, rescore
from grader.report.text import line
from grader.results.model import Result
from grader.results.store import load_results, results_lock, save_result
from grader.rubric.config import Rubric, load_rubric
from grader.sandbox.base import SandboxBackend
from grader.sandbox.gpus import visible_gpus
from grader.sandbox.supervisor import cancel_all

# After Ctrl-C: how long the workers get to see their sandboxes killed and stop.
WIND_DOWN_SECONDS = 5.0
log = logging.getLogger(__name__)


@dataclass
class BatchOptions:
    rubric: Path = Path("rubric.yaml")
    submissions: Path = Path("submissions")
    results: Path = Path("results")
    overrides: Path | None = None
    data: Path | None = None
    sandbox: str | SandboxBackend | None = None  # a name, or a backend object (the fast tests use a fake)
    isolation: str | None = None
    timeout: float | None = None
    workers: int | None = None
    force: bool = False


@dataclass
class BatchReport:
    planned: Counter = field(default_factory=Counter)
    sandbox_runs: int = 0
    written: list[str] = field(default_factory=list)
    crashed: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    seconds: float = 0.0
    interrupted: bool = False


class GpuPool:
    """Hands each running sandbox a GPU of its own while there are enough; with none, runs get None."""

    def __init__(self, gpus: list[str]) -> None:
        self.free: queue.Queue[str] = queue.Queue()
        for gpu in gpus:
            self.free.put(gpu)
        self.enabled = bool(gpus)

    @contextlib.contextmanager
    def lease(self) -> Iterator[str | None]:
        if not self.enabled:
            yield None
            return
        gpu = self.free.get()
        try:
            yield gpu
        finally:
            self.free.put(gpu)


def choose_workers(requested: int | None, rubric: Rubric) -> int:
    """--workers, else the rubric's sandbox.workers, else one per GPU, else one per two CPU cores."""
    if requested:
        return requested
    if rubric.sandbox.workers:
        return rubric.sandbox.workers
    gpus = len(visible_gpus()) if rubric.sandbox.device != "cpu" else 0
    return gpus or max(1, (os.cpu_count() or 1) // 2)


def _grade_in_sandbox(
    plan: StudentPlan,
    session: GradingSession,
    policy: CoursePolicy,
    results_dir: Path,
    stop: threading.Event,
    display: BatchDisplay,
    gpus: GpuPool,
) -> Result | None:
    if stop.is_set():
        return None
    display.started(plan.student)
    log.info("%r: grading (%s)", plan.student, plan.describe())
    with gpus.lease() as gpu:
        result = grade_submission(plan.folder, session, plan.student, gpu=gpu)
    if stop.is_set():  # its sandbox may have been killed by the interrupt: that is no verdict on the student
        log.info("%r: stopped by the interrupt, nothing saved", plan.student)
        return None
    result = apply_policy(result, plan.folder, policy)
    save_result(result, results_dir)
    log.info("%r: %s, %s points, %s", plan.student, result.status, result.final_points.total, result.error_kind or "ok")
    return result


def _update_without_sandbox(
    plans: list[StudentPlan],
    session: GradingSession,
    current: CurrentInputs,
    policy: CoursePolicy,
    options: BatchOptions,
    report: BatchReport,
) -> None:
    """Rescores and refreshed final points (overrides.yaml, a new manifest) are written only when they differ."""
    for plan in plans:
        try:
            stored = rescore(plan.stored, plan.folder, session, plan.rescore, plan.submission)
            result = apply_policy(stored, plan.folder, policy)
        except Exception as error:  # a grader fault for one student must not stop the class
            report.crashed[plan.student] = f"{type(error).__name__}: {error}"
            continue
        if result.model_dump() != plan.stored.model_dump():
            save_result(result, options.results)
            report.written.append(plan.student)


def _grade_in_parallel(
    plans: list[StudentPlan],
    session: GradingSession,
    policy: CoursePolicy,
    options: BatchOptions,
    report: BatchReport,
    console: Console,
) -> None:
    """Daemon worker threads take students from a queue; the main thread only waits and reports.

    On Ctrl-C or SIGTERM every running sandbox is killed through cancel-all and the workers are given
    a few seconds to wind down; a worker still stuck after that (in a library call that never returns)
    cannot keep the grader alive, being a daemon thread.
    """
    stop = threading.Event()
    gpus = GpuPool(visible_gpus() if session.rubric.sandbox.device != "cpu" else [])
    limit = session.timeout_seconds or session.rubric.sandbox.limits.wall_clock_seconds
    display = BatchDisplay(console, total=len(plans), workers=report.workers, limit_seconds=limit)
    todo: queue.Queue[StudentPlan] = queue.Queue()
    for plan in plans:
        todo.put(plan)
    finished: queue.Queue[tuple[StudentPlan, Result | None, str | None]] = queue.Queue()

    def work() -> None:
        while not stop.is_set():
            try:
                plan = todo.get_nowait()
            except queue.Empty:
                return
            try:
                result = _grade_in_sandbox(plan, session, policy, options.results, stop, display, gpus)
            except Exception as error:  # the grader's own fault: reported, never saved as the student's
                finished.put((plan, None, f"{type(error).__name__}: {error}"))
            else:
                finished.put((plan, result, None))

    started = time.monotonic()
    workers = [threading.Thread(target=work, name=f"grade-{n}", daemon=True) for n in range(report.workers)]
    with display:
        for worker in workers:
            worker.start()
        try:
            for _ in plans:
                plan, result, crash = _next_finished(finished, workers)
                if crash is not None:
                    log.error("%r: grader failure: %s", plan.student, crash)
                    report.crashed[plan.student] = crash
                    display.finished(plan.student, None, crash)
                elif result is not None:
                    report.sandbox_runs += 1
                    report.written.append(plan.student)
                    display.finished(plan.student, result)
        except KeyboardInterrupt:
            report.interrupted = True
            log.warning("interrupted: stopping every sandbox")
            stop.set()  # before the kill, so that every killed sandbox's outcome is thrown away
            cancel_all()
            deadline = time.monotonic() + WIND_DOWN_SECONDS
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
    report.seconds = round(time.monotonic() - started, 2)


def _next_finished(finished: queue.Queue, workers: list[threading.Thread]):
    """The next finished student; waits in short steps so that Ctrl-C is seen at once."""
    while True:
        try:
            return finished.get(timeout=0.5)
        except queue.Empty:
            if not any(worker.is_alive() for worker in workers) and finished.empty():
                raise RuntimeError("every grading worker stopped with students left") from None


def grade_all(options: BatchOptions, console: Console) -> BatchReport:
    rubric = load_rubric(options.rubric)
    policy = CoursePolicy.load(rubric, options.rubric, options.overrides)
    policy.check(folder.name for folder in student_folders(options.submissions))
    report = BatchReport()
    with (
        results_lock(Path(options.results)),
        class_run_log(Path(options.results)) as log_path,
        open_session(
            rubric,
            options.rubric,
            data=options.data,
            backend=options.sandbox,
            timeout_seconds=options.timeout,
            extra_hidden=[Path(options.results).resolve(), Path(options.submissions).resolve()],
            isolation=options.isolation,
        ) as session,
    ):
        current = CurrentInputs(
            split=session.split_sha256, rubric=rubric.content_hash(), rubric_sections=rubric.section_hashes()
        )
        plans = plan_class(options.submissions, options.results, current, force=options.force)
        report.planned = Counter(plan.action for plan in plans)
        to_grade = [plan for plan in plans if plan.action == "grade"]
        report.workers = max(1, min(choose_workers(options.workers, rubric), len(to_grade) or 1))
        console.print(_plan_line(plans, session))
        console.print(line(f"log: {log_path}", "dim"))
        log.info("%s", _plan_line(plans, session))
        for plan in plans:
            log.debug("%r: %s (%s)", plan.student, plan.action, plan.describe())
        if session.isolation_warning:
            console.print(line((f"warning: {session.isolation_warning}", "yellow")))
        _update_without_sandbox(
            [plan for plan in plans if plan.action != "grade"], session, current, policy, options, report
        )
        if to_grade:
            _grade_in_parallel(to_grade, session, policy, options, report, console)
        if not report.interrupted:  # copied models: every stored pair of students (flags never change points)
            compare_class(options.results, session.split.labels, rubric.integrity, session.split_sha256)
    return report


@contextlib.contextmanager
def class_run_log(results_dir: Path) -> Iterator[Path]:
    """Everything the grader logs during one class run, at INFO and above, in results/logs/<start time>.log."""
    folder = results_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"grade-all-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(min(previous_level or logging.WARNING, logging.INFO))
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


def _plan_line(plans: list[StudentPlan], session: GradingSession) -> str:
    counts = Counter(plan.action for plan in plans)
    return (
        f"{len(plans)} student(s): {counts['grade']} to grade in the {session.backend.name} sandbox, "
        f"{counts['rescore']} to rescore from their stored results, {counts['keep']} unchanged"
    )


def render_report(report: BatchReport, console: Console) -> None:
    parts = []
    if report.planned["grade"]:
        workers = f"{report.workers} worker{'s' if report.workers > 1 else ''}"
        parts.append(f"{report.sandbox_runs} graded in the sandbox ({workers}, {report.seconds:.1f} s)")
    updated = len(report.written) - report.sandbox_runs
    parts.append(f"{report.planned['rescore']} rescored from stored results, {updated} result(s) updated without it")
    console.print("this run: " + "; ".join(parts))
    for student, error in sorted(report.crashed.items()):
        console.print(line(("grader failure", "red"), f" {student}: {error} (no result saved; run again to retry)"))
    if report.interrupted:
        console.print("[yellow]interrupted[/yellow]: finished results are saved; run the same command to resume")


def main(*, console: Console | None = None, **options) -> int:
    """Keyword arguments are BatchOptions' fields. 0: done, 1: some students hit a grader fault, 130: interrupted.

    A fault of the grader's inputs (overrides, a busy results folder) raises its GraderError."""
    console = console or Console()
    batch = BatchOptions(**options)
    report = grade_all(batch, console)
    render_report(report, console)
    if report.interrupted:
        return 130
    results, unreadable = load_results(batch.results)
    render_summary(summarise(results, unreadable, read_copy_report(batch.results)), console)
    return 1 if report.crashed else 0
