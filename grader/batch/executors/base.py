"""Where the class run's sandboxes run: the interface every executor implements, and their registry.

An executor is handed the students to grade and yields each one's outcome as it finishes, in whatever
order they finish. The class run alone applies the course policy, saves, displays and handles the
interrupt, so that every executor keeps the same resume, caching and exactly-once rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grader.errors import GraderError
from grader.registry import Registry

if TYPE_CHECKING:  # the registry is read before anything heavy (torch) is imported
    from grader.batch.plan import StudentPlan
    from grader.pipeline import GradingSession
    from grader.results.model import Result


class ExecutorError(GraderError, RuntimeError):
    """The executor cannot start here (not installed, no cluster at the address); the message says what to do."""


@dataclass(frozen=True)
class Finished:
    """One student's outcome: their machine result (before the course policy), or the grader's own fault."""

    plan: StudentPlan
    result: Result | None = None
    crash: str | None = None


@dataclass(frozen=True)
class ExecutorSettings:
    """What the class run tells every executor; each uses what applies to it."""

    workers: int
    address: str | None = None


class Executor(ABC):
    name: str

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    @classmethod
    def check_available(cls) -> None:
        """Raises ExecutorError saying what to install when this executor cannot run here."""
        return None  # most executors need nothing beyond the grader itself

    def describe(self) -> str:
        """For the plan line and the report, e.g. "2 workers" or "a Ray cluster at head:6379"."""
        workers = self.settings.workers
        return f"{workers} worker{'s' if workers > 1 else ''}"

    @abstractmethod
    def grade(
        self, plans: list[StudentPlan], session: GradingSession, started: Callable[[str], None]
    ) -> Iterator[Finished]:
        """Each plan's outcome once, as it finishes; `started(student)` when its sandbox is about to start."""

    @abstractmethod
    def cancel(self) -> list[Finished]:
        """Ctrl-C: stops every sandbox and every outstanding student; returns the outcomes that were already
        finished before the stop and not yet yielded (the class run saves those too)."""

    def close(self) -> None:  # noqa: B027 - most executors hold nothing between runs
        """Releases what the executor holds (a cluster connection)."""


EXECUTORS: Registry[type[Executor]] = Registry("executor", error=ExecutorError)
EXECUTORS.register("local", "grader.batch.executors.local:LocalExecutor")
EXECUTORS.register("ray", "grader.batch.executors.ray:RayExecutor")


def executor_names() -> list[str]:
    return EXECUTORS.names()
