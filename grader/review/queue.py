"""The review queue: everything that waits for a TA, the likeliest machine mistakes first.

An entry is an undecided answer, ordered by the chance that the machine's points (rescored by learn.py from the
answers already decided) are off from a TA's by half a point or more; or an error or integrity flag, which the
machine cannot settle and which therefore come first, with the answers whose decision was re-opened (the answer
changed since). A decision takes its subject out; every question is rescored from the standing decisions and the
queue re-ordered (`ReviewQueue.record`).

Decided answers of an earlier class graded on the same rubric questions (seeds.py) teach the rescoring from the
start: they take part as decided answers, are never queued and never rescored themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from grader.results.model import Result
from grader.review.learn import AnswerItem, Suggestion, TADecision, suggest
from grader.review.seeds import Seed
from grader.review.store import Decision, Rescore
from grader.review.subjects import ANSWERS_ITEM, Answer, Case, answers_of, cases_of

if TYPE_CHECKING:
    from grader.integrity.copies import CopyReport

Encoder = Callable[[list[str]], np.ndarray]
EntryKind = Literal["error", "integrity", "answer"]
CERTAIN = 1.0  # the priority of what the machine cannot settle alone
KIND_ORDER = {"error": 0, "integrity": 1, "answer": 2}


@dataclass
class QueueEntry:
    student: str
    subject: str
    kind: EntryKind
    question: int | None
    priority: float = 0.0
    points: float | None = None
    machine_points: float | None = None
    max_points: float | None = None
    reason: str = ""
    followed: list[str] = field(default_factory=list)
    reopened: bool = False
    title: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.subject

    def order(self) -> tuple:
        return -self.priority, KIND_ORDER[self.kind], self.question or 0, self.student


def default_encoder() -> Encoder | None:
    """MiniLM's sentence vectors when the embeddings extra is installed (and not turned off), else None. It names
    its model, so `grader review` keeps the answers' vectors beside the results (vector_file.py)."""
    from grader.answers.similarity import get_method, resolve_method_name
    from grader.answers.similarity.embedding import load_encoder
    from grader.review.vector_file import KeyedEncoder

    if resolve_method_name() != "minilm":
        return None
    method = get_method("minilm")
    return KeyedEncoder(f"minilm-sentence:{load_encoder().key}", method.embed)


def _item(answer: Answer) -> AnswerItem:
    return AnswerItem(
        student=answer.student,
        question=answer.question,
        text=answer.text,
        text_hash=answer.text_sha256,
        machine_points=answer.machine_points,
        max_points=answer.max_points,
        machine_reason=answer.machine_reason,
    )


def _ta_decision(decision: Decision) -> TADecision | None:
    if decision.question is None or decision.points is None or decision.withdrawn:
        return None
    return TADecision(
        student=decision.student,
        question=decision.question,
        text_hash=decision.text_sha256,
        points=decision.points,
        comment=decision.comment,
        decided_by=decision.decided_by,
        decided_at=decision.decided_at,
    )


class ReviewQueue:
    """The queue of one class: `entries` in order; `suggestions` for every answer, decided or not."""

    def __init__(
        self,
        answers: Sequence[Answer],
        cases: Sequence[Case],
        decisions: Iterable[Decision],
        vectors: dict[int, np.ndarray | None] | None = None,
        seeds: Sequence[Seed] = (),
        seed_vectors: dict[int, np.ndarray | None] | None = None,
    ) -> None:
        """`seeds`: an earlier class's decided answers, with `seed_vectors` (answer_vectors() of their answers)."""
        self.answers: dict[int, list[Answer]] = {}
        for answer in sorted(answers, key=lambda answer: (answer.question, answer.student)):
            self.answers.setdefault(answer.question, []).append(answer)
        self.cases = list(cases)
        self.vectors = vectors or {}
        self.seeds: dict[int, list[Seed]] = {}
        for seed in sorted(seeds, key=lambda seed: (seed.answer.question, seed.answer.student)):
            self.seeds.setdefault(seed.answer.question, []).append(seed)
        self.seed_vectors = seed_vectors or {}
        self.standing: dict[tuple[str, str], Decision] = {}
        self.suggestions: dict[tuple[str, int], Suggestion] = {}
        self.entries: list[QueueEntry] = []
        self._entries: dict[tuple[str, str], QueueEntry] = {}
        self._absorb(decisions)
        self._suggest_all()
        self._rebuild()

    def _absorb(self, decisions: Iterable[Decision]) -> set[int]:
        """Takes decisions in as the standing ones; the questions they concern."""
        touched = set()
        for decision in decisions:
            if decision.withdrawn:
                self.standing.pop(decision.key, None)
            else:
                self.standing[decision.key] = decision
            if decision.question is not None:
                touched.add(decision.question)
        return touched

    def _suggest_all(self) -> None:
        """Every question rescored from every standing decision: a TA's grades of a student's other answers are
        evidence too (learn.suggest reads them), so one decision can move answers of any question."""
        standing = (self.standing.get((answer.student, answer.subject)) for answers in self.answers.values()
                    for answer in answers)  # fmt: skip
        taught = [found for found in map(_ta_decision, filter(None, standing)) if found is not None]
        taught += [seed.decision() for seeds in self.seeds.values() for seed in seeds]
        for question, answers in self.answers.items():
            items = [_item(answer) for answer in answers]
            earlier = [_item(seed.answer) for seed in self.seeds.get(question, [])]
            vectors, earlier_vectors = self.vectors.get(question), self.seed_vectors.get(question)
            for made in suggest(question, items, taught, vectors, earlier, earlier_vectors):
                self.suggestions[(made.student, made.question)] = made

    def decided(self, student: str, subject: str, text_sha256: str) -> Decision | None:
        """The standing decision on a subject, when it is about the subject as it is now."""
        decision = self.standing.get((student, subject))
        return decision if decision is not None and decision.text_sha256 == text_sha256 else None

    def _rebuild(self) -> None:
        entries = []
        for answers in self.answers.values():
            entries += [entry for entry in map(self._answer_entry, answers) if entry is not None]
        entries += [entry for entry in map(self._case_entry, self.cases) if entry is not None]
        entries.sort(key=QueueEntry.order)
        self.entries = entries
        self._entries = {entry.key: entry for entry in entries}

    def _answer_entry(self, answer: Answer) -> QueueEntry | None:
        if self.decided(answer.student, answer.subject, answer.text_sha256):
            return None
        made = self.suggestions.get((answer.student, answer.question))
        reopened = (answer.student, answer.subject) in self.standing
        return QueueEntry(
            student=answer.student,
            subject=answer.subject,
            kind="answer",
            question=answer.question,
            priority=CERTAIN if reopened else (made.p_off if made else 1.0),
            points=made.points if made else answer.machine_points,
            machine_points=answer.machine_points,
            max_points=answer.max_points,
            reason=made.reason if made else answer.machine_reason,
            followed=list(made.followed) if made else [],
            reopened=reopened,
            title=f"Question {answer.question}",
        )

    def _case_entry(self, case: Case) -> QueueEntry | None:
        if self.decided(case.student, case.subject, case.text_sha256):
            return None
        return QueueEntry(
            student=case.student,
            subject=case.subject,
            kind=case.kind,
            question=None,
            priority=CERTAIN,
            points=case.machine_points,
            machine_points=case.machine_points,
            max_points=case.max_points,
            reason=case.message,
            reopened=(case.student, case.subject) in self.standing,
            title=case.title,
        )

    def record(self, decisions: Iterable[Decision]) -> None:
        """Re-orders after decisions (one, or a group's): every question is rescored from the standing ones."""
        self._absorb(decisions)
        self._suggest_all()
        self._rebuild()

    def rescores(self) -> list[Rescore]:
        """The undecided answers whose points the TA's decisions moved: what the results take until a TA decides."""
        out = []
        for answers in self.answers.values():
            for answer in answers:
                made = self.suggestions.get((answer.student, answer.question))
                if made is None or not made.followed or abs(made.points - answer.machine_points) < 1e-9:
                    continue
                if not self.decided(answer.student, answer.subject, answer.text_sha256):
                    out.append(
                        Rescore(
                            student=answer.student,
                            subject=answer.subject,
                            text_sha256=answer.text_sha256,
                            item=ANSWERS_ITEM,
                            points=made.points,
                            followed=made.followed,
                        )
                    )
        return out

    def entry(self, student: str, subject: str) -> QueueEntry | None:
        return self._entries.get((student, subject))

    def position(self, student: str, subject: str) -> int | None:
        """0 for the first entry; None when the subject does not wait (decided, or unknown)."""
        entry = self._entries.get((student, subject))
        return None if entry is None else self.entries.index(entry)


def answer_vectors(answers: Sequence[Answer], encode: Encoder | None) -> dict[int, np.ndarray | None]:
    """Each question's answer vectors, in the queue's order of its answers (by student); None without an encoder."""
    by_question: dict[int, list[Answer]] = {}
    for answer in sorted(answers, key=lambda answer: (answer.question, answer.student)):
        by_question.setdefault(answer.question, []).append(answer)
    if encode is None or not by_question:
        return {question: None for question in by_question}
    # One call for the whole class: a storing encoder (session.CachedEncoder) then writes its file once.
    encoded = encode([answer.text for found in by_question.values() for answer in found])
    ends = np.cumsum([len(found) for found in by_question.values()])
    return {
        question: encoded[end - len(found) : end]
        for (question, found), end in zip(by_question.items(), ends, strict=True)
    }


def build_queue(
    results: Sequence[Result],
    decisions: Sequence[Decision],
    *,
    encode: Encoder | None = None,
    seeds: Sequence[Seed] = (),
    copies: CopyReport | None = None,
) -> ReviewQueue:
    """The queue of a class from its stored results and the standing decisions (DecisionStore.active()).
    `encode` turns texts into sentence vectors (default_encoder()); None: learn.py's TF-IDF. `seeds`: an earlier
    class's decided answers (seeds.seeds_from()). `copies`: the class's copied models (read_copy_report), each
    flagged student a case."""
    answers = [answer for result in results for answer in answers_of(result)]
    cases = [case for result in results for case in cases_of(result, copies)]
    seed_vectors = answer_vectors([seed.answer for seed in seeds], encode)
    return ReviewQueue(answers, cases, decisions, answer_vectors(answers, encode), seeds, seed_vectors)
