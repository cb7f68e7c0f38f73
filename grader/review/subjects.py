"""What a TA decides on in `grader review`, read from a stored result: each written answer, and each error or
integrity flag the machine could not settle.

Every subject has a key within its student (`q3`, `error`, `answers-error`, `integrity:<code>`) and the sha256 of
the text the decision is about (the answer as stored, the error message, the flag's words): a decision applies
while that hash is the current one, so a changed answer re-opens it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from grader.results.model import Result

if TYPE_CHECKING:
    from grader.integrity.copies import CopyPair, CopyReport

ANSWERS_ITEM = "exercise2"  # the item a question's points add up to
RUN_ITEM = "exercise1"  # the item an error of the model's run or an integrity flag concerns
ERROR = "error"
ANSWERS_ERROR = "answers-error"
INTEGRITY_PREFIX = "integrity:"
COPY_SUBJECT = INTEGRITY_PREFIX + "possible-copy"  # a class-level flag: results/integrity/copies.json

CaseKind = Literal["error", "integrity"]


def text_hash(text: str) -> str:
    """sha256 of the text as UTF-8 (a lone surrogate from a broken file is kept, not refused)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def question_subject(number: int) -> str:
    return f"q{number}"


def subject_question(subject: str) -> int | None:
    """3 for "q3"; None for a subject that is no question."""
    digits = subject[1:]
    return int(digits) if subject.startswith("q") and digits.isdigit() else None


@dataclass(frozen=True)
class Answer:
    """One student's answer to one question, with what the machine gave it."""

    student: str
    question: int
    text: str
    text_sha256: str
    machine_points: float
    max_points: float
    machine_reason: str
    needs_review: bool = False
    flags: tuple[str, ...] = ()
    prompt_sha256: str | None = None  # the question's text as graded; None from a grader that did not keep it

    @property
    def subject(self) -> str:
        return question_subject(self.question)


@dataclass(frozen=True)
class Case:
    """An error or an integrity flag that waits for a TA: the points of `item` stand until the TA decides."""

    student: str
    subject: str
    kind: CaseKind
    title: str
    message: str
    text_sha256: str
    item: str
    machine_points: float | None
    max_points: float | None
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def answers_of(result: Result) -> list[Answer]:
    """The answers as the result stored them, one per question of the rubric (an unanswered one has no text)."""
    details = result.answers or {}
    if details.get("error"):
        return []
    found = []
    for question in details.get("questions") or []:
        text = str(question.get("answer_text") or "")
        found.append(
            Answer(
                student=result.student,
                question=int(question.get("number")),
                text=text,
                text_sha256=text_hash(text),
                machine_points=float(question.get("points") or 0.0),
                max_points=float(question.get("max_points") or 0.0),
                machine_reason=str(question.get("reason") or ""),
                needs_review=bool(question.get("needs_review")),
                flags=tuple(str(flag) for flag in question.get("flags") or ()),
                prompt_sha256=question.get("prompt_sha256") if isinstance(question.get("prompt_sha256"), str) else None,
            )
        )
    return found


def _item_points(result: Result, name: str) -> tuple[float | None, float | None]:
    for item in result.items:
        if item.item == name:
            return item.points, item.max_points
    return result.points.by_item.get(name), None


def cases_of(result: Result, copies: CopyReport | None = None) -> list[Case]:
    """The errors and integrity flags of one result, each a subject of its own; with the class's copy report
    (read_copy_report), a flag for a model that looks copied too. Without it, no copy case."""
    cases = []
    if result.status != "graded":
        message = result.error or "unknown error"
        kind = result.error_kind or "unknown"
        cases.append(_case(result, ERROR, "error", f"could not be graded: {kind}", message, f"{kind}\n{message}"))
    answers_error = (result.answers or {}).get("error")
    if answers_error:
        message = str(answers_error)
        case = _case(result, ANSWERS_ERROR, "error", "written answers not graded", message, message, ANSWERS_ITEM)
        cases.append(case)
    for flag in result.integrity.flags if result.integrity else []:
        subject = INTEGRITY_PREFIX + flag.code
        hashed = subject + "\n" + flag.message
        case = _case(result, subject, "integrity", f"integrity: {flag.code}", flag.message, hashed)
        cases.append(replace(case, evidence=dict(flag.evidence)))
    copy_case = _copy_case(result, copies) if copies is not None else None
    return cases + ([copy_case] if copy_case is not None else [])


def _copy_case(result: Result, copies: CopyReport) -> Case | None:
    """One case per flagged student, whatever the number of partners: the TA decides on the student's model.
    The hash covers the partners and their pairs' words, so that another pairing re-opens a decision."""
    pairs = {_partner(pair, result.student): pair for pair in copies.pairs if result.student in (pair.student_a,
             pair.student_b)}  # fmt: skip
    if not pairs:
        return None
    partners = sorted(pairs)
    message = "\n".join(pairs[partner].message for partner in partners)  # each names both students
    hashed = COPY_SUBJECT + "".join(f"\n{partner}\n{pairs[partner].message}" for partner in partners)
    case = _case(result, COPY_SUBJECT, "integrity", "integrity: possible copy", message, hashed)
    return replace(case, evidence={f"with {partner}": _copy_evidence(pairs[partner]) for partner in partners})


def _partner(pair: CopyPair, student: str) -> str:
    return pair.student_b if pair.student_a == student else pair.student_a


def _copy_evidence(pair: CopyPair) -> str:
    """The pair's reasons and key figures in one line (the rest stays in copies.json)."""
    figures = [
        ", ".join(pair.reasons),
        f"same class on {pair.agreement:.1%} of the test images",
        f"accuracy {pair.accuracy_a:.2%} ({pair.student_a}) and {pair.accuracy_b:.2%} ({pair.student_b})",
    ]
    if pair.kappa is not None:
        figures.append(f"kappa {pair.kappa:.2f} (bar {pair.kappa_bar:.2f})")
    if pair.shared_mistake_agreement is not None:
        figures.append(f"same wrong class in {pair.shared_mistake_agreement:.0%} of {pair.shared_mistakes} shared "
                       "mistakes")  # fmt: skip
    if pair.logit_correlation is not None:
        figures.append(f"logit correlation {pair.logit_correlation:.2f} (bar {pair.logit_correlation_bar:.2f})")
    return "; ".join(figures)


def _case(result: Result, subject: str, kind: CaseKind, title: str, message: str, hashed: str, item: str = RUN_ITEM):
    points, maximum = _item_points(result, item)
    return Case(result.student, subject, kind, title, message, text_hash(hashed), item, points, maximum)


def current_hashes(result: Result, copies: CopyReport | None = None) -> dict[str, str]:
    """subject -> the hash of what it is about now, for every subject of this result."""
    hashes = {answer.subject: answer.text_sha256 for answer in answers_of(result)}
    hashes.update({case.subject: case.text_sha256 for case in cases_of(result, copies)})
    return hashes
