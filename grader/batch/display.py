"""What `grade --all` shows while it runs.

On a terminal: a progress bar over the class and a live table of students. Piped, logged or in CI: one
plain line per finished student, no redraw. Both show an ETA that a slow submission cannot make lie:
a student running far longer than the typical one may run up to the wall-clock limit, and the ETA says so.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from grader.report.text import line, literal
from grader.results.model import Result

RECENT = 10
STATUS_STYLE = {"grading": "yellow", "graded": "green", "error": "red", "crashed": "red"}
# A running student counts as overdue past this many typical durations (plus the margin, for tiny typicals).
OVERDUE_FACTOR = 2.0
OVERDUE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Eta:
    """The time left: an estimate, or None when nothing has finished yet; `waiting_on` an overdue student."""

    seconds: float | None
    waiting_on: str | None = None
    waiting_seconds: float = 0.0
    typical_seconds: float = 0.0
    limit_seconds: float = 0.0

    def text(self) -> str:
        if self.seconds is None:
            return "ETA unknown (no student finished yet)"
        if self.waiting_on is None:
            return f"ETA {duration(self.seconds)}"
        return (
            f"ETA up to {duration(self.seconds)}: {self.waiting_on} has run {duration(self.waiting_seconds)} "
            f"(typical {duration(self.typical_seconds)}, limit {duration(self.limit_seconds)})"
        )


def estimate_eta(
    *, queued: int, running: dict[str, float], finished: list[float], workers: int, limit_seconds: float
) -> Eta:
    """Time left from the observed per-student time, never less than an overdue student may still take.

    queued: students not started; running: student -> seconds it has run; finished: the seconds each took.
    A student running past OVERDUE_FACTOR typical durations may be stuck until the wall-clock limit, so the
    ETA is at least what the oldest such student has left of the limit, and it holds a worker meanwhile.
    """
    if not queued and not running:
        return Eta(0.0)
    if not finished:
        return Eta(None)
    typical = statistics.median(finished)
    overdue_after = OVERDUE_FACTOR * typical + OVERDUE_MARGIN_SECONDS
    overdue = {student: ran for student, ran in running.items() if ran > overdue_after}
    on_pace = [ran for student, ran in running.items() if student not in overdue]
    work = queued * typical + sum(max(typical - ran, 0.0) for ran in on_pace)
    estimate = work / max(1, workers - len(overdue))
    if not overdue:
        return Eta(estimate)
    oldest = max(overdue, key=lambda student: overdue[student])
    left_of_limit = max(limit_seconds - overdue[oldest], 0.0)
    return Eta(max(estimate, left_of_limit), oldest, overdue[oldest], typical, limit_seconds)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class EtaColumn(ProgressColumn):
    """The ETA text, which may name a student: literal, never read as markup."""

    def render(self, task: Task) -> Text:
        return literal(task.fields.get("eta", ""))


class BatchDisplay:
    """Workers report from their threads; rich's refresh thread renders, so the state sits behind a lock."""

    def __init__(self, console: Console, total: int, workers: int, limit_seconds: float = 600.0) -> None:
        self.console = console
        self.total, self.workers, self.limit_seconds = total, workers, limit_seconds
        self.live_redraw = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(),
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            EtaColumn(),
            console=console,
        )
        self.task = self.progress.add_task(f"grading with {workers} worker(s)", total=total, eta="")
        self.live = Live(self, console=console, refresh_per_second=4)
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._durations: list[float] = []
        self._done = 0
        self._recent: deque[tuple[str, str, str, str, str]] = deque(maxlen=RECENT)  # a row's plain strings

    def __enter__(self) -> BatchDisplay:
        if self.live_redraw:
            self.live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        if self.live_redraw:
            self.live.stop()

    def started(self, student: str) -> None:
        with self._lock:
            self._running[student] = time.monotonic()

    def finished(self, student: str, result: Result | None, crash: str | None = None) -> None:
        with self._lock:
            started = self._running.pop(student, time.monotonic())
            took = time.monotonic() - started
            self._done += 1
            if result is not None:
                self._durations.append(took)
            row = self._row(student, result, crash, took)
            self._recent.appendleft(row)
            eta = self._eta()
            done = self._done
        self.progress.advance(self.task)
        if not self.live_redraw:
            self.console.print(self._plain_line(done, student, result, crash, took, eta))

    def _eta(self) -> Eta:
        now = time.monotonic()
        running = {student: now - started for student, started in self._running.items()}
        queued = max(self.total - self._done - len(running), 0)
        return estimate_eta(
            queued=queued,
            running=running,
            finished=self._durations,
            workers=self.workers,
            limit_seconds=self.limit_seconds,
        )

    @staticmethod
    def _row(student: str, result: Result | None, crash: str | None, took: float) -> tuple[str, str, str, str, str]:
        seconds = f"{took:.1f} s"
        if result is None:
            return (student, "crashed", "", "", crash or "stopped")
        if result.status == "graded":
            points = result.final_points.total
            shown = "" if points is None else f"{points:g}"
            return (student, "graded", f"{result.accuracy:.2%}", shown, seconds)
        return (student, "error", "", "", f"{result.error_kind}: {(result.error or '')[:80]}")

    def _plain_line(self, done: int, student: str, result: Result | None, crash: str | None, took: float, eta: Eta):
        """`[12/40] alice graded 87.50 points (4.1 s); ETA 2 min 10 s`, the student's strings literal."""
        if result is None:
            outcome = (f" grader failure: {crash or 'stopped'}", "red")
        elif result.status == "graded":
            points = result.final_points.total
            outcome = (f" graded {'no' if points is None else f'{points:.2f}'} points ({took:.1f} s)", "")
        else:
            outcome = (f" error: {result.error_kind} ({took:.1f} s)", "red")
        return line(f"[{done}/{self.total}] ", student, outcome, f"; {eta.text()}")

    def __rich__(self) -> Group:
        table = Table("Student", "Status", "Accuracy", "Points", "Detail", expand=False)
        now = time.monotonic()
        with self._lock:
            eta = self._eta()
            running = sorted(self._running.items(), key=lambda entry: entry[1])
            rows = [(student, "grading", "", "", f"{now - started:.0f} s") for student, started in running]
            for student, status, *cells in rows + list(self._recent):
                table.add_row(literal(student), literal(status, STATUS_STYLE[status]), *map(literal, cells))
        self.progress.update(self.task, eta=eta.text())
        return Group(self.progress, table)
