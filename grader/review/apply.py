"""The TA's decisions on one result, turned into points: no model runs, as with overrides.yaml.

A decision applies while what it was about is unchanged (its hash is the subject's current one): a decided
answer's points replace the machine's for that question, and the answers' item moves by the difference; a
decision on an error or an integrity flag with points sets its item. The total moves with the items. A decision
whose answer changed since is kept on the result as re-opened and changes nothing; one whose subject is gone (the
error no longer happens) is left out. The course policy applies these first, then the late penalty, then
overrides.yaml, which therefore wins over a decision on the same item.
"""

from __future__ import annotations

from collections.abc import Sequence

from grader.results.model import DecisionRecord, Result
from grader.review.store import Decision
from grader.review.subjects import ANSWERS_ITEM, answers_of, cases_of

TOTAL = "total"


def apply_decisions(
    result: Result, decisions: Sequence[Decision]
) -> tuple[dict[str, float | None], list[DecisionRecord]]:
    """(the machine's points with the decisions in, one record per decision that concerns this result)."""
    points = result.points.model_dump()
    if not decisions:
        return points, []
    answers = {answer.subject: answer for answer in answers_of(result)}
    cases = {case.subject: case for case in cases_of(result)}
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
    decided = dict(points)
    if answers_shift:
        decided[ANSWERS_ITEM] = round((points.get(ANSWERS_ITEM) or 0.0) + answers_shift, 4)
    decided.update(item_points)
    changed = [item for item in decided if item != TOTAL and decided[item] != points.get(item)]
    if changed:
        shift = sum((decided[item] or 0.0) - (points.get(item) or 0.0) for item in changed)
        decided[TOTAL] = round((points.get(TOTAL) or 0.0) + shift, 4)
    return decided, records


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
