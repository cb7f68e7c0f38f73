"""Decided answers of an earlier class, to teach the review of a new one from its first answer.

A course graded last year on the same rubric questions keeps its results folder and its decisions file
(results/review.sqlite). Each answer a TA decided there, as it read when decided, is a seed: the new class's answers
are rescored from the seeds as from its own decided answers (learn.py), and the reasons name them as
"<earlier folder>/<student>". Seeds are matched to the new class by question number and maximum points, so they are
for the same rubric questions only; `grader review --seed-from DIR` names the folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from grader.errors import GraderError
from grader.results.store import load_result
from grader.review.learn import TADecision
from grader.review.store import DecisionStore, store_path
from grader.review.subjects import Answer, answers_of


class SeedError(GraderError, ValueError):
    """An earlier class's folder cannot seed the review; the message names it."""


@dataclass(frozen=True)
class Seed:
    """An earlier class's answer and the points a TA gave it."""

    answer: Answer
    decision_points: float
    decided_by: str
    decided_at: datetime

    def decision(self) -> TADecision:
        return TADecision(
            student=self.answer.student,
            question=self.answer.question,
            text_hash=self.answer.text_sha256,
            points=self.decision_points,
            decided_by=self.decided_by,
            decided_at=self.decided_at,
        )


def seeds_from(results_dir: Path, max_points: dict[int, float]) -> list[Seed]:
    """The decided answers of the class whose results are in `results_dir`, for the questions of `max_points`
    (question -> its maximum in the rubric now); answers to another maximum are left out."""
    results_dir = Path(results_dir)
    decisions_file = store_path(results_dir)
    if not decisions_file.is_file():
        raise SeedError(f"{results_dir}: no {decisions_file.name}: that class has no TA decisions to learn from")
    decisions = {(d.student, d.subject): d for d in DecisionStore.of_results(results_dir).active()}
    seeds = []
    for path in sorted(results_dir.glob("*.json")):
        result = load_result(path)
        if result is None or result.sample:
            continue
        for answer in answers_of(result):
            decision = decisions.get((answer.student, answer.subject))
            if (
                decision is None
                or decision.points is None
                or decision.text_sha256 != answer.text_sha256
                or max_points.get(answer.question) != answer.max_points
            ):
                continue
            earlier = replace(answer, student=f"{results_dir.name}/{answer.student}")
            seeds.append(Seed(earlier, decision.points, decision.decided_by, decision.decided_at))
    return seeds


def seeds_of(folders: Sequence[Path], max_points: dict[int, float]) -> list[Seed]:
    return [seed for folder in folders for seed in seeds_from(folder, max_points)]
