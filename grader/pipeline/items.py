"""Graded items: each rubric item a student earns points for is one GradedItem.

An item names the rubric section its points depend on (a change there rescores it, from the
stored result where it can), says whether it needs the model's run in the sandbox, and scores.
Items that need no sandbox are scored on the host while the sandbox runs, each against a
deadline. To add an item (an integrity check, a later exercise): subclass GradedItem in a module
of its own and register it in ITEMS; points, totals, overrides, rescoring and exports follow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from grader.answers import AnswersResult, find_answers_file
from grader.answers.isolated import GRADE_JOB, grade_answers_in_worker
from grader.answers.worker import WorkerPool
from grader.intake.submission import SubmissionFiles
from grader.registry import Registry
from grader.rubric.config import Rubric
from grader.rubric.points import ItemPoints, exercise1_points

if TYPE_CHECKING:
    from grader.pipeline.session import GradingSession
    from grader.results.model import Result

DEFAULT_DEADLINE_SECONDS = 120.0
# An item that stops its own work at its deadline (in a worker process) is waited for this much longer, so
# that its own result says what happened.
SELF_STOP_GRACE_SECONDS = 10.0


@dataclass
class ItemInput:
    """What an item may read when it scores: the session, the student's folder and files, the result so far."""

    session: GradingSession
    folder: Path
    files: SubmissionFiles | None
    result: Result


@dataclass
class ItemScore:
    points: ItemPoints
    details: dict[str, Any] | None = None  # stored on the result under the item's `details_field`


class GradedItem(ABC):
    name: ClassVar[str]
    rubric_section: ClassVar[str]
    needs_sandbox: ClassVar[bool]
    details_field: ClassVar[str | None] = None

    @abstractmethod
    def max_points(self, rubric: Rubric) -> float: ...

    @abstractmethod
    def score(self, given: ItemInput) -> ItemScore:
        """Never raises for a fault of the submission: that is 0 points with the reason."""

    def deadline_seconds(self, rubric: Rubric) -> float:
        """How long the host waits for a score computed beside the sandbox."""
        return DEFAULT_DEADLINE_SECONDS

    def not_graded(self, rubric: Rubric, why: str) -> ItemScore:
        """The score when scoring itself failed or ran past its deadline: 0, to be reviewed."""
        reason = f"not graded: {why}; needs review"
        return ItemScore(ItemPoints(item=self.name, points=0.0, max_points=self.max_points(rubric), reason=reason))


class Exercise1(GradedItem):
    """The model's accuracy on the pinned split, mapped through the rubric's anchors."""

    name = "exercise1"
    rubric_section = "exercise1"
    needs_sandbox = True

    def max_points(self, rubric: Rubric) -> float:
        return rubric.exercise1.points

    def score(self, given: ItemInput) -> ItemScore:
        result, rubric = given.result, given.session.rubric
        if result.accuracy is None:
            reason = f"not graded: {result.error}"
            return ItemScore(ItemPoints(item=self.name, points=0.0, max_points=self.max_points(rubric), reason=reason))
        return ItemScore(exercise1_points(result.accuracy, rubric.exercise1, given.session.baselines))


class Exercise2(GradedItem):
    """The written answers, scored on key concepts and closeness to the reference answers.

    The file is read and scored in a worker process (grader/answers/worker.py), which is killed at
    `exercise2.limits.scoring_timeout_s`: a thread's deadline cannot stop code that holds the GIL.
    """

    name = "exercise2"
    rubric_section = "exercise2"
    needs_sandbox = False
    details_field = "answers"
    worker_job: ClassVar[str] = GRADE_JOB  # the function the worker runs
    workers: ClassVar[WorkerPool | None] = None  # None: the pool of this process

    def max_points(self, rubric: Rubric) -> float:
        return rubric.exercise2.max_points

    def deadline_seconds(self, rubric: Rubric) -> float:
        return rubric.exercise2.limits.scoring_timeout_s + SELF_STOP_GRACE_SECONDS

    def score(self, given: ItemInput) -> ItemScore:
        """Graded whatever happened to Exercise 1: an unreadable answers file fails Exercise 2 alone."""
        files, folder = given.files, given.folder
        answers_file = folder / files.answers_file if files and files.answers_file else find_answers_file(folder)
        settings = given.session.rubric.exercise2
        graded = grade_answers_in_worker(
            answers_file, settings, seconds=settings.limits.scoring_timeout_s, job=self.worker_job, pool=self.workers
        )
        if graded.points is None:
            reason = f"not graded: {graded.error}"
        else:
            answered = sum(1 for question in graded.questions if question.points > 0)
            reason = f"{answered} of {len(graded.questions)} answers earned points ({graded.method})"
            if graded.needs_review:
                reason += "; needs review"
        points = ItemPoints(item=self.name, points=graded.points or 0.0, max_points=graded.max_points, reason=reason)
        return ItemScore(points, graded.model_dump(mode="json"))

    def not_graded(self, rubric: Rubric, why: str) -> ItemScore:
        answers = AnswersResult(points=None, max_points=self.max_points(rubric), method="none", error=why)
        return ItemScore(super().not_graded(rubric, why).points, answers.model_dump(mode="json"))


ITEMS: Registry[GradedItem] = Registry("graded item")
ITEMS.register(Exercise1.name, Exercise1())
ITEMS.register(Exercise2.name, Exercise2())


def graded_items() -> list[GradedItem]:
    """In the rubric's order: results, reports and exports list the items this way."""
    return [ITEMS.get(name) for name in ITEMS.names()]


def item_names() -> list[str]:
    return ITEMS.names()
