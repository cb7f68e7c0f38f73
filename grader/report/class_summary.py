"""The class at a glance, from the stored results: how many were graded, how accuracy and points spread, why the
others failed, what the integrity checks and the TA's review found. `grader summary` prints it, the class page
draws it."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd
from pydantic import ValidationError

from grader.answers import AnswersResult, DuplicatePair, class_duplicate_report
from grader.integrity.copies import CopyReport
from grader.report.words import import_marks
from grader.results.model import Result
from grader.review.counts import ReviewCounts, review_counts


@dataclass
class ClassSummary:
    """`accuracy` and `points` (the final totals) hold count, mean, std and quantiles;
    `errors` maps an error kind to its (student, error) pairs, the commonest kind first."""

    graded: int = 0
    failed: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)
    points: dict[str, float] = field(default_factory=dict)
    errors: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    duplicates: list[DuplicatePair] = field(default_factory=list)
    unsandboxed: list[str] = field(default_factory=list)
    copies: CopyReport | None = None  # results/integrity/copies.json, written by grade --all
    integrity_flags: list[tuple[str, str, str]] = field(default_factory=list)  # (student, code, message)
    review: ReviewCounts = field(default_factory=ReviewCounts)  # the TA's decisions in grader review
    overridden: list[str] = field(default_factory=list)  # students with an override in overrides.yaml
    late: list[str] = field(default_factory=list)  # students whose total a late penalty lowered
    set_aside: list[str] = field(default_factory=list)  # students with attempts after the deadline set aside
    text_field: list[str] = field(default_factory=list)  # students graded on answers typed into the text field


def _describe(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {key: float(value) for key, value in pd.Series(values, dtype=float).describe().items()}


def answer_duplicates(results: list[Result]) -> list[DuplicatePair]:
    """Pairs of students whose written answers to one question are near-duplicates, most similar first."""
    answers = {}
    for result in results:
        if result.answers and result.answers.get("questions"):
            with contextlib.suppress(ValidationError):
                answers[result.student] = AnswersResult.model_validate(result.answers)
    return class_duplicate_report(answers)


def class_results(results: list[Result]) -> list[Result]:
    """The class: every result but a shipped sample's (graded alone with `grader grade example`)."""
    return [result for result in results if not result.sample]


def summarise(
    results: list[Result], unreadable: list[str] | None = None, copies: CopyReport | None = None
) -> ClassSummary:
    results = class_results(results)
    errors: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for result in results:
        if result.status != "graded":
            errors[result.error_kind or "unknown"].append((result.student, result.error or ""))
    totals = [r.final_points.total if r.final_points.total is not None else r.points.total for r in results]
    return ClassSummary(
        graded=sum(result.status == "graded" for result in results),
        failed=sum(result.status != "graded" for result in results),
        accuracy=_describe([result.accuracy for result in results if result.accuracy is not None]),
        points=_describe([total for total in totals if total is not None]),
        errors=dict(sorted(errors.items(), key=lambda entry: (-len(entry[1]), entry[0]))),
        unreadable=list(unreadable or []),
        duplicates=answer_duplicates(results),
        unsandboxed=[result.student for result in results if result.run and not result.run.sandboxed],
        copies=copies,
        integrity_flags=[
            (result.student, flag.code, flag.message)
            for result in results
            if result.integrity
            for flag in result.integrity.flags
        ],
        review=review_counts(results, copies),
        overridden=[result.student for result in results if result.overrides],
        late=[result.student for result in results if result.late and result.late.penalty_fraction],
        set_aside=[result.student for result in results if "final" in import_marks(result.notes)],
        text_field=[result.student for result in results if "exercise2" in import_marks(result.notes)],
    )
