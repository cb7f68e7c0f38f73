"""What each page of `grader review` shows, built from the session under its lock: plain values for the templates,
which escape every one of them (a student's name, answer or error is text, never markup)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from grader.review.counts import review_counts
from grader.review.queue import QueueEntry
from grader.review.session import ReviewSession, anchor, group_key
from grader.review.store import Decision
from grader.review.subjects import Answer, Case

QUEUE_SHOWN = 200


def points_text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def chance_text(value: float) -> str:
    return f"{value:.0%}"


def case_link(student: str, subject: str) -> str:
    return "/case?" + urlencode({"student": student, "subject": subject})


def answer_link(question: int, student: str) -> str:
    return f"/question/{question}#{anchor(student, f'q{question}')}"


@dataclass
class DecisionView:
    id: int
    points: str
    comment: str
    decided_by: str
    decided_at: str

    @classmethod
    def of(cls, decision: Decision) -> DecisionView:
        return cls(
            id=decision.id or 0,
            points=points_text(decision.points) if decision.points is not None else "the machine's",
            comment=decision.comment,
            decided_by=decision.decided_by,
            decided_at=decision.decided_at.strftime("%Y-%m-%d %H:%M UTC"),
        )


@dataclass
class QueueRow:
    position: int
    kind: str
    student: str
    title: str
    machine: str
    suggested: str
    maximum: str
    chance: str
    reason: str
    href: str
    reopened: bool


@dataclass
class QueueView:
    waiting: int
    waiting_answers: int
    waiting_cases: int
    reopened: int
    decided: int
    needs_review: int  # of those waiting, what `grader summary` and the export count (review/counts.py)
    rows: list[QueueRow]
    questions: list[tuple[int, int, int]]  # (question, waiting, answers)
    method: str
    unreadable: list[str]


def _row(position: int, entry: QueueEntry) -> QueueRow:
    href = (
        answer_link(entry.question, entry.student)
        if entry.question is not None
        else case_link(entry.student, entry.subject)
    )
    return QueueRow(
        position=position + 1,
        kind=entry.kind,
        student=entry.student,
        title=entry.title,
        machine=points_text(entry.machine_points),
        suggested=points_text(entry.points),
        maximum=points_text(entry.max_points),
        chance=chance_text(entry.priority),
        reason=entry.reason,
        href=href,
        reopened=entry.reopened,
    )


def queue_view(session: ReviewSession, limit: int = QUEUE_SHOWN) -> QueueView:
    entries = session.queue.entries
    answers = sum(entry.kind == "answer" for entry in entries)
    waiting_by_question = {}
    for entry in entries:
        if entry.question is not None:
            waiting_by_question[entry.question] = waiting_by_question.get(entry.question, 0) + 1
    questions = [(number, waiting_by_question.get(number, 0), len(session.answers_of_question(number)))
                 for number in sorted(session.questions)]  # fmt: skip
    subjects = len(session.queue.cases) + sum(len(found) for found in session.queue.answers.values())
    return QueueView(
        waiting=len(entries),
        waiting_answers=answers,
        waiting_cases=len(entries) - answers,
        reopened=sum(entry.reopened for entry in entries),
        decided=subjects - len(entries),
        needs_review=review_counts(session.results.values(), session.copies).waiting,
        rows=[_row(position, entry) for position, entry in enumerate(entries[:limit])],
        questions=questions,
        method=session.method,
        unreadable=sorted(session.unreadable),
    )


@dataclass
class AnswerCard:
    anchor: str
    student: str
    text: str
    text_sha256: str
    machine: str
    machine_reason: str
    suggested: str
    chance: str
    suggestion_reason: str
    maximum: str
    flags: list[str]
    waiting: bool
    decision: DecisionView | None
    reopened: DecisionView | None
    expected: str
    group_key: str
    subgroup_key: str
    subgroup_size: int
    group_size: int
    doubt: float


@dataclass
class SubgroupView:
    cards: list[AnswerCard]


@dataclass
class GroupView:
    number: int
    size: int
    waiting: int
    subgroups: list[SubgroupView]
    doubt: float


@dataclass
class QuestionView:
    number: int
    prompt: str
    reference: str
    points: str
    ideas: list[tuple[str, str]]
    misconceptions: list[tuple[str, str]]
    groups: list[GroupView]
    waiting: int
    answers: int
    previous: int | None
    next: int | None
    method: str


def _card(session: ReviewSession, answer: Answer, group: tuple[str, int], subgroup: tuple[str, int]) -> AnswerCard:
    queue = session.queue
    decided = queue.decided(answer.student, answer.subject, answer.text_sha256)
    standing = queue.standing.get((answer.student, answer.subject))
    made = queue.suggestions.get((answer.student, answer.question))
    entry = queue.entry(answer.student, answer.subject)
    suggested = decided.points if decided and decided.points is not None else (made.points if made else None)
    return AnswerCard(
        anchor=anchor(answer.student, answer.subject),
        student=answer.student,
        text=answer.text,
        text_sha256=answer.text_sha256,
        machine=points_text(answer.machine_points),
        machine_reason=answer.machine_reason,
        suggested=points_text(suggested if suggested is not None else answer.machine_points),
        chance=chance_text(entry.priority) if entry else "",
        suggestion_reason=made.reason if made and made.reason != answer.machine_reason else "",
        maximum=points_text(answer.max_points),
        flags=list(answer.flags),
        waiting=entry is not None,
        decision=DecisionView.of(decided) if decided else None,
        reopened=DecisionView.of(standing) if standing and not decided else None,
        expected=str(standing.id) if standing and standing.id else "",
        group_key=group[0],
        subgroup_key=subgroup[0],
        group_size=group[1],
        subgroup_size=subgroup[1],
        doubt=entry.priority if entry else -1.0,
    )


def question_view(session: ReviewSession, number: int) -> QuestionView:
    rubric = session.questions[number]
    answers = session.answers_of_question(number)
    groups = []
    for group in session.groups.get(number, []):
        members = [answers[index] for index in group.members]
        key = (group_key([member.student for member in members]), len(members))
        subgroups = []
        for subgroup in group.subgroups:
            inside = [answers[index] for index in subgroup]
            sub_key = (group_key([member.student for member in inside]), len(inside))
            cards = sorted((_card(session, answer, key, sub_key) for answer in inside), key=lambda card: -card.doubt)
            subgroups.append(SubgroupView(cards))
        subgroups.sort(key=lambda view: -max(card.doubt for card in view.cards))
        waiting = sum(card.waiting for view in subgroups for card in view.cards)
        doubt = max(card.doubt for view in subgroups for card in view.cards)
        groups.append(GroupView(0, len(members), waiting, subgroups, doubt))
    groups.sort(key=lambda view: (-view.doubt, -view.size))
    for position, view in enumerate(groups, start=1):
        view.number = position
    numbers = sorted(session.questions)
    place = numbers.index(number)
    return QuestionView(
        number=number,
        prompt=rubric.prompt,
        reference=rubric.reference,
        points=points_text(rubric.points),
        ideas=[(concept.name, concept.description or "") for concept in rubric.concepts],
        misconceptions=[(concept.name, concept.description or "") for concept in rubric.misconceptions],
        groups=groups,
        waiting=sum(view.waiting for view in groups),
        answers=len(answers),
        previous=numbers[place - 1] if place > 0 else None,
        next=numbers[place + 1] if place + 1 < len(numbers) else None,
        method=session.method,
    )


@dataclass
class CaseView:
    student: str
    subject: str
    kind: str
    title: str
    message: str
    evidence: list[tuple[str, str]]
    item: str
    machine: str
    maximum: str
    text_sha256: str
    decision: DecisionView | None
    reopened: DecisionView | None
    expected: str
    history: list[DecisionView] = field(default_factory=list)


def _evidence(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(key), f"{value:.4g}" if isinstance(value, float) else str(value)) for key, value in evidence.items()]


def case_view(session: ReviewSession, case: Case) -> CaseView:
    """An error names the student's folder, so that the TA can open what was handed in."""
    queue = session.queue
    evidence = _evidence(case.evidence)
    if case.kind == "error":
        evidence.append(("the student's files", str(session.submissions / case.student)))
    decided = queue.decided(case.student, case.subject, case.text_sha256)
    standing = queue.standing.get((case.student, case.subject))
    return CaseView(
        student=case.student,
        subject=case.subject,
        kind=case.kind,
        title=case.title,
        message=case.message,
        evidence=evidence,
        item=case.item,
        machine=points_text(case.machine_points),
        maximum=points_text(case.max_points),
        text_sha256=case.text_sha256,
        decision=DecisionView.of(decided) if decided else None,
        reopened=DecisionView.of(standing) if standing and not decided else None,
        expected=str(standing.id) if standing and standing.id else "",
        history=[
            DecisionView.of(row) for row in session.store.history(case.student, case.subject) if not row.withdrawn
        ],  # fmt: skip
    )
