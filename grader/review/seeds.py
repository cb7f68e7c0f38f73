"""Decided answers of an earlier class, to teach the review of a new one from its first answer.

A course graded last year on the same rubric questions keeps its results folder and its decisions file
(results/review.sqlite). Each answer a TA decided there, as it read when decided, is a seed: the new class's answers
are rescored from the seeds as from its own decided answers (learn.py), and the reasons name them as
"<earlier folder>/<student>". A seed is for the same rubric question only: the same number, maximum points and
question text (results keep a hash of it; an answer graded before they did is matched by number and points, and
counted as unchecked). `grader review --seed-from DIR` names the folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from grader.answers.rubric import QuestionRubric
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
    question_checked: bool = True  # False: graded before results kept the question's text, matched without it

    def decision(self) -> TADecision:
        return TADecision(
            student=self.answer.student,
            question=self.answer.question,
            text_hash=self.answer.text_sha256,
            points=self.decision_points,
            decided_by=self.decided_by,
            decided_at=self.decided_at,
        )


def _same_question(answer: Answer, questions: Mapping[int, QuestionRubric]) -> bool:
    question = questions.get(answer.question)
    return (
        question is not None
        and question.points == answer.max_points
        and answer.prompt_sha256 in (None, question.prompt_sha256)
    )


def seeds_from(results_dir: Path, questions: Mapping[int, QuestionRubric]) -> list[Seed]:
    """The decided answers of the class whose results are in `results_dir`, to the rubric's `questions` (by number)
    as they are now; answers to a question of another maximum or text are left out."""
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
                or not _same_question(answer, questions)
            ):
                continue
            earlier = replace(answer, student=f"{results_dir.name}/{answer.student}")
            checked = answer.prompt_sha256 is not None
            seeds.append(Seed(earlier, decision.points, decision.decided_by, decision.decided_at, checked))
    return seeds


def seeds_of(folders: Sequence[Path], questions: Mapping[int, QuestionRubric], own_results: Path) -> list[Seed]:
    """The seeds of every earlier class's folder; the class's own results folder is refused (its decisions teach
    the review already, and as seeds they would be counted twice)."""
    for folder in folders:
        if Path(folder).resolve() == Path(own_results).resolve():
            raise SeedError(
                f"{folder}: this is the class's own results folder; --seed-from names an earlier class's results "
                "folder (a copy kept from last time, e.g. `cp -r results results-2025` before the new class)"
            )
    return [seed for folder in folders for seed in seeds_from(folder, questions)]
