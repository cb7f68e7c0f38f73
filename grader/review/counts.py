"""How far the TA's review has got, from the stored results alone (each carries its decisions): what `grader
summary` prints."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from grader.results.model import Result
from grader.review.subjects import answers_of, cases_of


@dataclass
class ReviewCounts:
    decided_answers: int = 0
    decided_cases: int = 0  # errors and integrity flags
    waiting_answers: int = 0  # the machine asked for a review and no TA has decided
    waiting_errors: int = 0
    waiting_flags: int = 0
    reopened: int = 0  # decided, but the answer (or error, flag) changed since

    @property
    def decided(self) -> int:
        return self.decided_answers + self.decided_cases

    @property
    def waiting(self) -> int:
        return self.waiting_answers + self.waiting_errors + self.waiting_flags + self.reopened


def review_counts(results: Iterable[Result]) -> ReviewCounts:
    counts = ReviewCounts()
    for result in results:
        applied = {decision.subject for decision in result.decisions if decision.status == "applied"}
        reopened = {decision.subject for decision in result.decisions if decision.status == "reopened"}
        counts.reopened += len(reopened)
        for answer in answers_of(result):
            if answer.subject in applied:
                counts.decided_answers += 1
            elif answer.needs_review and answer.subject not in reopened:
                counts.waiting_answers += 1
        for case in cases_of(result):
            if case.subject in applied:
                counts.decided_cases += 1
            elif case.subject in reopened:
                continue
            elif case.kind == "integrity":
                counts.waiting_flags += 1
            else:
                counts.waiting_errors += 1
    return counts


def describe(counts: ReviewCounts) -> str:
    """One line for the summary: 'TA review (grader review): 12 decided (...); waiting: ...'."""
    decided = f"{counts.decided} decided ({counts.decided_answers} answers, {counts.decided_cases} errors or flags)"
    waiting = [
        f"{count} {label}"
        for count, label in (
            (counts.waiting_answers, "answers the grader flagged"),
            (counts.waiting_errors, "errors"),
            (counts.waiting_flags, "integrity flags"),
            (counts.reopened, "re-opened (changed since decided)"),
        )
        if count
    ]
    return f"{decided}; waiting: " + (", ".join(waiting) if waiting else "nothing")
