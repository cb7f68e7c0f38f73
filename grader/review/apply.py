"""The TA's decisions on one result, turned into points: no model runs, as with overrides.yaml.

A decision applies while what it was about is unchanged (its hash is the subject's current one): a decided
answer's points replace the machine's for that question, and the answers' item moves by the difference; a
decision on an error or an integrity flag with points sets its item. The total moves with the items. A decision
whose answer changed since is kept on the result as re-opened and changes nothing; one whose subject is gone (the
error no longer happens) is left out. An undecided answer the review rescored from the TA's decisions on similar
answers (a Rescore, about the answer as it is now) takes the rescored points the same way, recorded as "rescored".
The course policy applies these first, then the late penalty, then
overrides.yaml, which therefore wins over a decision on the same item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from grader.results.model import DecisionRecord, Result
from grader.review.store import Decision, Rescore
from grader.review.subjects import ANSWERS_ITEM, answers_of, cases_of

if TYPE_CHECKING:
    from grader.integrity.copies import CopyReport

TOTAL = "total"
RESCORED_BY = "the grader, after the TA's grades of similar answers"


def apply_decisions(
    result: Result, decisions: Sequence[Decision], rescores: Sequence[Rescore] = (), copies: CopyReport | None = None
) -> tuple[dict[str, float | None], list[DecisionRecord]]:
    """(the machine's points with the decisions and rescores in, one record per decision or rescore that concerns
    this result). `copies`: the class's copy report, without which a decision on a possible copy is left out."""
    points = result.points.model_dump()
    if not decisions and not rescores:
        return points, []
    answers = {answer.subject: answer for answer in answers_of(result)}
    cases = {case.subject: case for case in cases_of(result, copies)}
    answers_shift, item_points, records = 0.0, {}, []
    for decision in sorted(decisions, key=lambda decision: decision.id or 0):
        subject = answers.get(decision.subject) or cases.get(decision.subject)
        if decision.withdrawn or subject is None:
            continue
        applied = subject.text_sha256 == decision.text_sha256
        records.append(_record(decision, subject.machine_points, applied))
        if not applied or decision.points is None:
            continue
        if decision.subject in answers:
            answers_shift += decision.points - subject.machine_points
        else:
            item_points[decision.item] = decision.points  # the later of two decisions on one item wins
    decided_answers = {record.subject for record in records if record.status == "applied"}
    for rescore in rescores:
        answer = answers.get(rescore.subject)
        if answer is None or rescore.subject in decided_answers or answer.text_sha256 != rescore.text_sha256:
            continue
        answers_shift += rescore.points - answer.machine_points
        records.append(_rescored(rescore, answer.machine_points))
    decided = dict(points)
    if answers_shift:
        decided[ANSWERS_ITEM] = round((points.get(ANSWERS_ITEM) or 0.0) + answers_shift, 4)
    decided.update(item_points)
    changed = [item for item in decided if item != TOTAL and decided[item] != points.get(item)]
    if changed:
        shift = sum((decided[item] or 0.0) - (points.get(item) or 0.0) for item in changed)
        decided[TOTAL] = round((points.get(TOTAL) or 0.0) + shift, 4)
    return decided, records


def _rescored(rescore: Rescore, machine_points: float) -> DecisionRecord:
    return DecisionRecord(
        subject=rescore.subject,
        item=rescore.item,
        question=rescore.question,
        points=rescore.points,
        machine_points=machine_points,
        decided_by=RESCORED_BY,
        decided_at="",
        status="rescored",
    )


def _record(decision: Decision, machine_points: float | None, applied: bool) -> DecisionRecord:
    return DecisionRecord(
        subject=decision.subject,
        item=decision.item,
        question=decision.question,
        points=decision.points,
        machine_points=machine_points,
        comment=decision.comment,
        decided_by=decision.decided_by,
        decided_at=decision.decided_at.isoformat(),
        status="applied" if applied else "reopened",
    )
