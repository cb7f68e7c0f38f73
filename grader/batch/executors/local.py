"""The default executor: a pool of daemon threads on this machine, each running one sandbox at a time."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

from grader.batch.executors.base import Executor, Finished
from grader.batch.plan import StudentPlan
from grader.pipeline import GradingSession, grade_submission
from grader.sandbox.gpus import visible_gpus
from grader.sandbox.supervisor import cancel_all

# After Ctrl-C: how long the workers get to see their sandboxes killed and stop.
WIND_DOWN_SECONDS = 5.0
log = logging.getLogger(__name__)


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


class LocalExecutor(Executor):
    """Worker threads take students from a queue; the class run's thread only waits for what they finish.

    On cancel every running sandbox is killed through cancel-all and the workers get a few seconds to wind
    down; a worker still stuck after that (in a library call that never returns) cannot keep the grader
    alive, being a daemon thread.
    """

    name = "local"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self._stop = threading.Event()
        self._finished: queue.Queue[Finished] = queue.Queue()
        self._threads: list[threading.Thread] = []

    def grade(
        self, plans: list[StudentPlan], session: GradingSession, started: Callable[[str], None]
    ) -> Iterator[Finished]:
        gpus = GpuPool(visible_gpus() if session.rubric.sandbox.device != "cpu" else [])
        todo: queue.Queue[StudentPlan] = queue.Queue()
        for plan in plans:
            todo.put(plan)

        def work() -> None:
            while not self._stop.is_set():
                try:
                    plan = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    finished = self._grade_one(plan, session, started, gpus)
                except Exception as error:  # the grader's own fault: reported, never saved as the student's
                    finished = Finished(plan, crash=f"{type(error).__name__}: {error}")
                self._finished.put(finished)

        self._threads = [
            threading.Thread(target=work, name=f"grade-{n}", daemon=True) for n in range(self.settings.workers)
        ]
        for thread in self._threads:
            thread.start()
        for _ in plans:
            finished = self._next_finished()
            if finished.result is not None or finished.crash is not None:
                yield finished

    def _grade_one(
        self, plan: StudentPlan, session: GradingSession, started: Callable[[str], None], gpus: GpuPool
    ) -> Finished:
        if self._stop.is_set():
            return Finished(plan)
        started(plan.student)
        log.info("%r: grading (%s)", plan.student, plan.describe())
        with gpus.lease() as gpu:
            result = grade_submission(plan.folder, session, plan.student, gpu=gpu)
        if self._stop.is_set():  # its sandbox may have been killed by the interrupt: that is no verdict on the student
            log.info("%r: stopped by the interrupt, nothing saved", plan.student)
            return Finished(plan)
        return Finished(plan, result=result)

    def _next_finished(self) -> Finished:
        """The next finished student; waits in short steps so that Ctrl-C is seen at once."""
        while True:
            try:
                return self._finished.get(timeout=0.5)
            except queue.Empty:
                if not any(thread.is_alive() for thread in self._threads) and self._finished.empty():
                    raise RuntimeError("every grading worker stopped with students left") from None

    def cancel(self) -> list[Finished]:
        self._stop.set()  # before the kill, so that every killed sandbox's outcome is thrown away
        cancel_all()
        deadline = time.monotonic() + WIND_DOWN_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        done = []
        while not self._finished.empty():
            finished = self._finished.get_nowait()
            if finished.result is not None:
                done.append(finished)
        return done
