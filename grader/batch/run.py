"""`grader grade --all`: every student's submission, in parallel, resumable.

Each result is saved atomically the moment it is finished, so a crash, Ctrl-C or kill loses
only the submissions still in their sandbox, and the next run picks up where this one
stopped: the plan skips every student whose inputs match their stored result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from grader.batch.display import BatchDisplay
from grader.batch.executors.base import EXECUTORS, Executor, ExecutorSettings, Finished
from grader.batch.executors.local import GpuPool  # noqa: F401 - its home before the executors; tests import it here
from grader.batch.plan import CurrentInputs, StudentPlan, plan_class
from grader.batch.summary import main as summary_main
from grader.intake.class_folders import sample_names, student_folders
from grader.integrity.copies import compare_class
from grader.pipeline import CoursePolicy, GradingSession, apply_policy, open_session, rescore
from grader.pipeline.policy import apply_new_copy_report
from grader.report.text import line
from grader.results.store import results_lock, save_result
from grader.rubric.config import Rubric, load_rubric
from grader.sandbox.base import SandboxBackend
from grader.sandbox.gpus import visible_gpus

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
    executor: str = "local"  # where the sandboxes run: grader.batch.executors' registry
    address: str | None = None  # the cluster to join (ray); None: a cluster of this machine alone


@dataclass
class BatchReport:
    planned: Counter = field(default_factory=Counter)
    sandbox_runs: int = 0
    written: list[str] = field(default_factory=list)
    crashed: dict[str, str] = field(default_factory=dict)
    workers: int = 0
    where: str = ""  # the executor's own words: "2 workers", "the Ray cluster at head:6379"
    seconds: float = 0.0
    interrupted: bool = False


def choose_workers(requested: int | None, rubric: Rubric) -> int:
    """--workers, else the rubric's sandbox.workers, else one per GPU, else one per two CPU cores."""
    if requested:
        return requested
    if rubric.sandbox.workers:
        return rubric.sandbox.workers
    gpus = len(visible_gpus()) if rubric.sandbox.device != "cpu" else 0
    return gpus or max(1, (os.cpu_count() or 1) // 2)


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


def _grade_in_sandboxes(
    executor_class: type[Executor],
    plans: list[StudentPlan],
    session: GradingSession,
    policy: CoursePolicy,
    options: BatchOptions,
    report: BatchReport,
    console: Console,
) -> None:
    """The executor runs the sandboxes; this thread alone applies the policy, saves and shows each outcome.

    A student is saved once per run even if a retried task on a cluster reports it twice. On Ctrl-C or
    SIGTERM the executor stops every sandbox and hands back what had finished before, which is saved too.
    """
    executor = executor_class(ExecutorSettings(workers=report.workers, address=options.address))
    report.where = executor.describe()
    limit = session.timeout_seconds or session.rubric.sandbox.limits.wall_clock_seconds
    display = BatchDisplay(console, total=len(plans), workers=report.workers, limit_seconds=limit)
    saved: set[str] = set()

    def keep(finished: Finished) -> None:
        student = finished.plan.student
        if student in saved:
            log.warning("%r: a second outcome for this student (a retried task); the first is kept", student)
            return
        saved.add(student)
        crash = finished.crash
        if crash is None:
            try:
                result = apply_policy(finished.result, finished.plan.folder, policy)
                save_result(result, options.results)
            except Exception as error:  # the grader's own fault: reported, never saved as the student's
                crash = f"{type(error).__name__}: {error}"
        if crash is not None:
            log.error("%r: grader failure: %s", student, crash)
            report.crashed[student] = crash
            display.finished(student, None, crash)
            return
        log.info("%r: %s, %s points, %s", student, result.status, result.final_points.total, result.error_kind or "ok")
        report.sandbox_runs += 1
        report.written.append(student)
        display.finished(student, result)

    started = time.monotonic()
    with display:
        try:
            for finished in executor.grade(plans, session, display.started):
                keep(finished)
        except KeyboardInterrupt:
            report.interrupted = True
            log.warning("interrupted: stopping every sandbox")
            for finished in executor.cancel():
                keep(finished)
        finally:
            executor.close()
    report.seconds = round(time.monotonic() - started, 2)


def grade_all(options: BatchOptions, console: Console) -> BatchReport:
    rubric = load_rubric(options.rubric)
    policy = CoursePolicy.load(rubric, options.rubric, options.overrides, results_dir=options.results)
    policy.check(folder.name for folder in student_folders(options.submissions))
    executor_class = EXECUTORS.get(options.executor)
    executor_class.check_available()  # a missing cluster package stops the run before the session opens
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
        samples = sorted(sample_names(options.submissions))
        if samples:
            console.print(line((f"not graded as students (a SAMPLE file inside): {', '.join(samples)}", "dim")))
        console.print(line((f"log: {log_path}", "dim")))
        log.info("%s", _plan_line(plans, session))
        for plan in plans:
            log.debug("%r: %s (%s)", plan.student, plan.action, plan.describe())
        if session.isolation_warning:
            console.print(line((f"warning: {session.isolation_warning}", "yellow")))
        _update_without_sandbox(
            [plan for plan in plans if plan.action != "grade"], session, current, policy, options, report
        )
        if to_grade:
            _grade_in_sandboxes(executor_class, to_grade, session, policy, options, report, console)
        if not report.interrupted:  # copied models: every stored pair of students (flags never change points)
            copies = compare_class(options.results, session.split.labels, rubric.integrity, session.split_sha256)
            apply_new_copy_report(policy, copies, options.results, options.submissions)
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
        parts.append(f"{report.sandbox_runs} graded in the sandbox ({report.where}, {report.seconds:.1f} s)")
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
    summary_main(results=batch.results, submissions=batch.submissions, console=console)  # as `grader summary` ends
    return 1 if report.crashed else 0
