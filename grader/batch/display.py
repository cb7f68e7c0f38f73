"""What `grade --all` shows while it runs: a progress bar over the class and a live table of students."""

from __future__ import annotations

import threading
import time
from collections import deque

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader.report.text import literal
from grader.results.model import Result

RECENT = 10
STATUS_STYLE = {"grading": "yellow", "graded": "green", "error": "red", "crashed": "red"}


class BatchDisplay:
    """Workers report from their threads; rich's refresh thread renders, so the state sits behind a lock."""

    def __init__(self, console: Console, total: int, workers: int) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            "[bold]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            "left",
            TimeRemainingColumn(),
            console=console,
        )
        self.task = self.progress.add_task(f"grading with {workers} worker(s)", total=total)
        self.live = Live(self, console=console, refresh_per_second=4)
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._recent: deque[tuple[str, str, str, str, str]] = deque(maxlen=RECENT)  # a row's plain strings

    def __enter__(self) -> BatchDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.live.stop()
        if not self.live.console.is_terminal:  # rich ends the last frame with a newline only on a terminal
            self.live.console.line()

    def started(self, student: str) -> None:
        with self._lock:
            self._running[student] = time.monotonic()

    def finished(self, student: str, result: Result | None, crash: str | None = None) -> None:
        with self._lock:
            started = self._running.pop(student, time.monotonic())
            seconds = f"{time.monotonic() - started:.0f} s"
            if result is None:
                self._recent.appendleft((student, "crashed", "", "", crash or "stopped"))
            elif result.status == "graded":
                points = result.final_points.total
                shown = "" if points is None else f"{points:g}"
                self._recent.appendleft((student, "graded", f"{result.accuracy:.2%}", shown, seconds))
            else:
                detail = f"{result.error_kind}: {(result.error or '')[:80]}"
                self._recent.appendleft((student, "error", "", "", detail))
        self.progress.advance(self.task)

    def __rich__(self) -> Group:
        table = Table("Student", "Status", "Accuracy", "Points", "Detail", expand=False)
        now = time.monotonic()
        with self._lock:
            running = sorted(self._running.items(), key=lambda entry: entry[1])
            rows = [(student, "grading", "", "", f"{now - started:.0f} s") for student, started in running]
            for student, status, *cells in rows + list(self._recent):
                table.add_row(literal(student), literal(status, STATUS_STYLE[status]), *map(literal, cells))
        return Group(self.progress, table)
