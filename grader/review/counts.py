"""What waits for a TA, from the stored results alone (each carries its decisions and overrides): the one
definition of "needs review" that `grader summary`, `grader export` and the class page share.

The review app's own "waiting" count (`grader review`, its queue) is wider: it holds every undecided answer, so
that the TA can grade them all, and does not know overrides.yaml.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from grader.policy.overrides import TOTAL
from grader.report.text import first_names
from grader.results.model import Result
from grader.review.subjects import ANSWERS_ERROR, ANSWERS_ITEM, RUN_ITEM, answers_of, cases_of

if TYPE_CHECKING:
    from grader.integrity.copies import CopyReport


WaitingKind = Literal["error", "integrity", "answer", "reopened"]


def decided_subjects(result: Result, copies: CopyReport | None = None) -> set[str]:
    """What a TA has decided: the subjects of grader review's decisions (not re-opened since), and those of the
    items an override in overrides.yaml sets (an override of the total decides them all)."""
    decided = {decision.subject for decision in result.decisions if decision.status == "applied"}
    items = {override.item for override in result.overrides}
    cases = cases_of(result, copies)
    if RUN_ITEM in items or TOTAL in items:
        decided |= {case.subject for case in cases if case.item == RUN_ITEM}
    if ANSWERS_ITEM in items or TOTAL in items:
        decided |= {ANSWERS_ERROR} | {answer.subject for answer in answers_of(result)}
    return decided


def waiting_subjects(result: Result, copies: CopyReport | None = None) -> dict[str, WaitingKind]:
    """What of this result still waits for a TA's decision ("needs review"), subject -> kind, in the order a TA
    acts on them: an error (the model's run, or an answers file that could not be read), an integrity flag, an
    answer the grader flagged (needs_review), and a decision re-opened because what it was about changed since;
    less what a TA decided in grader review or overrides.yaml (decided_subjects). `copies`: the class's copy report
    (read_copy_report), whose flagged students wait like any other integrity flag."""
    reopened = {decision.subject for decision in result.decisions if decision.status == "reopened"}
    waiting: dict[str, WaitingKind] = {}
    for case in cases_of(result, copies):
        waiting[case.subject] = "integrity" if case.kind == "integrity" else "error"
    for answer in answers_of(result):
        if answer.needs_review:
            waiting[answer.subject] = "answer"
    waiting.update(dict.fromkeys(reopened, "reopened"))
    decided = decided_subjects(result, copies)
    return {subject: kind for subject, kind in waiting.items() if subject not in decided}


@dataclass
class ReviewCounts:
    decided_answers: int = 0
    decided_cases: int = 0  # errors and integrity flags
    waiting_answers: int = 0  # the machine asked for a review and no TA has decided
    waiting_errors: int = 0
    waiting_flags: int = 0
    reopened: int = 0  # decided, but the answer (or error, flag) changed since
    waiting_students: list[str] = field(default_factory=list)  # who has something waiting, in the results' order

    @property
    def decided(self) -> int:
        return self.decided_answers + self.decided_cases

    @property
    def waiting(self) -> int:
        return self.waiting_answers + self.waiting_errors + self.waiting_flags + self.reopened


def review_counts(results: Iterable[Result], copies: CopyReport | None = None) -> ReviewCounts:
    counts = ReviewCounts()
    for result in results:
        applied = {decision.subject for decision in result.decisions if decision.status == "applied"}
        counts.decided_answers += sum(answer.subject in applied for answer in answers_of(result))
        counts.decided_cases += sum(case.subject in applied for case in cases_of(result, copies))
        waiting = waiting_subjects(result, copies)
        kinds = list(waiting.values())
        counts.waiting_answers += kinds.count("answer")
        counts.waiting_errors += kinds.count("error")
        counts.waiting_flags += kinds.count("integrity")
        counts.reopened += kinds.count("reopened")
        if waiting:
            counts.waiting_students.append(result.student)
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


def waiting_line(counts: ReviewCounts) -> str:
    """'5 answers, errors or integrity flags still wait for a TA's decision (2 students: alice, bob)', the same
    words and number in the summary and the export; empty when nothing waits."""
    if not counts.waiting:
        return ""
    students = counts.waiting_students
    who = f"{len(students)} student{'s' if len(students) != 1 else ''}: {first_names(students)}"
    return f"{counts.waiting} answers, errors or integrity flags still wait for a TA's decision ({who})"
