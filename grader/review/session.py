"""One `grader review`: the class's stored results, the rubric's questions, the decisions file, the queue and the
groups of every question, shared by the server's threads.

Every page first catches up: decisions another server appended to the same file are taken into the queue, and
results that `grade --all` rewrote are read again, and so is the class's copy report (the queue and the groups are
built anew only when an answer, an error or a flag changed). A decision is appended to the store, the queue
re-ordered, and the students it concerns get their result's final points brought up to date (the course policy, as
`grader export` applies it), unless a `grade --all` holds the results folder: that run applies it as it saves each
student, and any export applies it too.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.intake.class_folders import sample_names
from grader.integrity.copies import COPIES_FILE, CopyReport, read_copy_report
from grader.pipeline.policy import CoursePolicy, apply_policy
from grader.results.model import Result
from grader.results.store import BatchBusy, load_result, result_path, results_lock, save_result
from grader.review.groups import AnswerGroup, group_answers
from grader.review.queue import Encoder, ReviewQueue, build_queue
from grader.review.seeds import seeds_of
from grader.review.store import MAX_COMMENT_CHARS, MAX_NAME_CHARS, Decision, DecisionStore, Recorded
from grader.review.subjects import ANSWERS_ITEM, Answer, Case, answers_of, cases_of, question_subject
from grader.review.vector_file import AnswerVectorFile, Vectors, text_digest
from grader.rubric.config import Rubric, load_rubric

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 1.0  # another review server writing results holds the lock for milliseconds
POINTS_DECIMALS = 4


class DecisionRefused(GraderError, ValueError):
    """A decision the session cannot take (unknown answer, points out of range); the message says why."""


@dataclass
class Outcome:
    """What a decision did, in the TA's words."""

    message: str
    ok: bool = True
    students: list[str] = field(default_factory=list)


def anchor(student: str, subject: str) -> str:
    """A page-local id for one subject of one student (names may hold any character but a slash)."""
    return "s-" + hashlib.sha256(f"{student}\n{subject}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def group_key(students: Sequence[str]) -> str:
    """Names the members of a group, so that a decision on it applies to the group the TA saw."""
    return hashlib.sha256("\n".join(sorted(students)).encode("utf-8", "surrogatepass")).hexdigest()[:16]


class CachedEncoder:
    """Sentence vectors encoded once per distinct answer text: kept for the whole session (a reload re-encodes
    nothing it has seen) and, for an encoder that names its model, in a file beside the results, so that the next
    `grader review` on them encodes only new answers (vector_file.py)."""

    def __init__(self, encode: Encoder | None, stored: AnswerVectorFile | None = None) -> None:
        self._encode = encode
        self._stored = stored if encode is not None else None
        self._known: Vectors | None = None  # by text digest; read from the file at the first call

    @property
    def active(self) -> bool:
        return self._encode is not None

    def __call__(self, texts: list[str]) -> np.ndarray:
        assert self._encode is not None
        if self._known is None:
            self._known = self._stored.load() if self._stored is not None else {}
        digests = [text_digest(text) for text in texts]
        todo = {digest: text for digest, text in zip(digests, texts, strict=True) if digest not in self._known}
        if todo:
            fresh = {digest: np.asarray(vector, dtype=np.float32)
                     for digest, vector in zip(todo, self._encode(list(todo.values())), strict=True)}  # fmt: skip
            self._take(fresh)
        return np.stack([self._known[digest] for digest in digests]) if texts else np.zeros((0, 1), dtype=np.float32)

    def _take(self, fresh: Vectors) -> None:
        assert self._known is not None
        size = len(next(iter(fresh.values())))
        if any(len(vector) != size for vector in self._known.values()):  # a file of other vectors under our key
            self._known = {digest: vector for digest, vector in self._known.items() if len(vector) == size}
        self._known.update(fresh)
        if self._stored is not None:
            self._stored.save(self._known)


def _signature(result: Result, copies: CopyReport | None) -> tuple:
    """What the queue is built from: a result whose signature is unchanged needs no new queue."""
    answers = tuple(
        (a.subject, a.text_sha256, a.machine_points, a.max_points, a.machine_reason) for a in answers_of(result)
    )
    cases = tuple((c.subject, c.text_sha256, c.machine_points) for c in cases_of(result, copies))
    return answers, cases


class ReviewSession:
    def __init__(
        self,
        *,
        results: Path,
        rubric: Path,
        submissions: Path = Path("submissions"),
        overrides: Path | None = None,
        encode: Encoder | None = None,
        progress: Callable[[str], None] = lambda message: None,
        seed_from: Sequence[Path] = (),
    ) -> None:
        """`seed_from`: results folders of earlier classes graded on the same rubric questions, whose TA decisions
        teach the rescoring (seeds.py)."""
        self.results_dir = Path(results)
        self.submissions = Path(submissions)
        self.rubric: Rubric = load_rubric(rubric)
        self._copies_seen = self._copies_status()  # before the policy reads the file: a newer one is read again
        self.policy = CoursePolicy.load(self.rubric, Path(rubric), overrides, results_dir=self.results_dir)
        self.store = DecisionStore.of_results(self.results_dir)
        self.questions = {question.number: question for question in self.rubric.exercise2.questions}
        self.seeds = seeds_of(seed_from, self.questions, self.results_dir)
        self.lock = threading.RLock()
        self._progress = progress
        self._encoder = CachedEncoder(encode, AnswerVectorFile.of_results(self.results_dir, encode))
        self._seen: dict[str, tuple[int, int]] = {}
        self._signatures: dict[str, tuple] = {}
        self.results: dict[str, Result] = {}
        self.unreadable: set[str] = set()
        self.samples = sample_names(self.submissions)
        self._last_decision = 0
        self.queue = ReviewQueue([], [], [])
        self.groups: dict[int, list[AnswerGroup]] = {}
        self.method = "minilm" if self._encoder.active else "tfidf"
        self.refresh()

    # --- keeping up with the files ---------------------------------------------------------------------------

    def _scan(self) -> dict[str, tuple[int, int]]:
        found = {}
        for path in self.results_dir.glob("*.json") if self.results_dir.is_dir() else []:
            try:
                status = path.stat()
            except OSError:
                continue
            if path.stem not in self.samples:
                found[path.stem] = (status.st_mtime_ns, status.st_size)
        return found

    @property
    def copies(self) -> CopyReport | None:
        """The class's copied models (results/integrity/copies.json) as last read."""
        return self.policy.copies

    def _copies_status(self) -> tuple[int, int] | None:
        try:
            status = (self.results_dir / COPIES_FILE).stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    def refresh(self) -> None:
        """Catches up with the results folder, the copy report and the decisions file; cheap when nothing changed."""
        with self.lock:
            scan = self._scan()
            copies_seen = self._copies_status()
            copied = copies_seen != self._copies_seen
            if copied:  # grade --all compared the class again: the copy cases are read anew
                self._copies_seen = copies_seen
                self.policy = replace(self.policy, copies=read_copy_report(self.results_dir))
            rebuilt, restated = self._read_results(scan, copied) if scan != self._seen or copied else (False, [])
            fresh = self.store.since(self._last_decision)
            if fresh:
                self._last_decision = max(decision.id or 0 for decision in fresh)
                self.queue.record(fresh)
            if fresh or rebuilt:  # the queue's rescores may have moved: the results take them
                touched = self.store.replace_rescores(self.queue.rescores())
                self._write_results(sorted(touched | set(restated)))

    def _read_results(self, scan: dict[str, tuple[int, int]], copied: bool = False) -> tuple[bool, list[str]]:
        """Takes in the results that changed (all of them after a new copy report); (True when the queue had to be
        built again, the unchanged results whose cases the copy report changed: their decisions apply anew)."""
        changed = [
            student for student in scan.keys() | self._seen.keys() if scan.get(student) != self._seen.get(student)
        ]
        restated = []
        if copied:
            for student in sorted(self.results.keys() - set(changed)):
                signature = _signature(self.results[student], self.copies)
                if self._signatures.get(student) != signature:
                    restated.append(student)
                    self._signatures[student] = signature
        rebuild = bool(not self._seen and scan) or bool(restated)
        for student in changed:
            result = load_result(result_path(self.results_dir, student)) if student in scan else None
            if result is None:
                rebuild |= student in self.results
                self.results.pop(student, None)
                if student in scan:
                    self.unreadable.add(student)
                continue
            self.unreadable.discard(student)
            signature = _signature(result, self.copies)
            rebuild |= self._signatures.get(student) != signature
            self._signatures[student] = signature
            self.results[student] = result
        self._seen = scan
        if rebuild:
            self._build()
        return rebuild, restated

    def _build(self) -> None:
        results = [self.results[student] for student in sorted(self.results)]
        encoder = self._encoder if self._encoder.active else None
        if encoder is not None:
            self._progress(f"encoding {sum(len(answers_of(result)) for result in results)} answers by meaning (MiniLM)")
        last = self.store.last_id()  # first: a decision appended meanwhile is then taken in twice, never missed
        decisions = self.store.active()
        self._last_decision = last
        self.queue = build_queue(results, decisions, encode=encoder, seeds=self.seeds, copies=self.copies)
        self.groups = {
            question: group_answers([answer.text for answer in found], self.queue.vectors.get(question))
            for question, found in self.queue.answers.items()
        }

    # --- what the pages show ---------------------------------------------------------------------------------

    def answers_of_question(self, question: int) -> list[Answer]:
        return self.queue.answers.get(question, [])

    def find_answer(self, question: int, student: str) -> tuple[int, Answer] | None:
        for index, answer in enumerate(self.answers_of_question(question)):
            if answer.student == student:
                return index, answer
        return None

    def find_case(self, student: str, subject: str) -> Case | None:
        return next((case for case in self.queue.cases if case.student == student and case.subject == subject), None)

    def group_of(self, question: int, index: int) -> tuple[AnswerGroup, tuple[int, ...]] | None:
        """The group of the answer at `index` and its sub-group."""
        for group in self.groups.get(question, []):
            for subgroup in group.subgroups:
                if index in subgroup:
                    return group, subgroup
        return None

    # --- decisions -------------------------------------------------------------------------------------------

    def _points(self, raw: str, maximum: float | None, *, optional: bool = False) -> float | None:
        text = raw.strip().replace(",", ".")
        if not text and optional:
            return None
        try:
            points = float(text)
        except ValueError as error:
            raise DecisionRefused(f"points must be a number, not {raw[:20]!r}") from error
        if not math.isfinite(points) or points < 0 or (maximum is not None and points > maximum + 1e-9):
            limit = f" and {maximum:g}" if maximum is not None else ""
            raise DecisionRefused(f"points must be between 0{limit}, not {text[:20]}")
        return round(points, POINTS_DECIMALS)

    @staticmethod
    def _words(comment: str, decided_by: str) -> tuple[str, str]:
        comment, decided_by = comment.replace("\r\n", "\n").strip(), " ".join(decided_by.split())
        if len(comment) > MAX_COMMENT_CHARS:
            raise DecisionRefused(f"the comment is longer than {MAX_COMMENT_CHARS} characters")
        if not decided_by or len(decided_by) > MAX_NAME_CHARS:
            raise DecisionRefused(f"say who decides: a name of 1 to {MAX_NAME_CHARS} characters")
        return comment, decided_by

    def decide_answer(
        self,
        *,
        question: int,
        student: str,
        scope: str,
        points: str,
        comment: str,
        decided_by: str,
        seen_sha256: str,
        expected: int | None,
        seen_group: str = "",
    ) -> Outcome:
        """Grades one answer (scope "answer"), or every undecided member of its sub-group or group."""
        with self.lock:
            self.refresh()
            found = self.find_answer(question, student)
            if found is None:
                raise DecisionRefused(f"no answer of {student!r} to question {question}")
            index, answer = found
            value = self._points(points, answer.max_points)
            comment, decided_by = self._words(comment, decided_by)
            if scope == "answer":
                decision = self._answer_decision(answer, value, comment, decided_by, seen_sha256)
                recorded = self.store.record([decision], expected={decision.key: expected})
                return self._after(recorded, "answer")
            members = self._members(question, index, scope, seen_group)
            decisions, expected_ids = [], {}
            for member in members:
                if self.queue.decided(member.student, member.subject, member.text_sha256):
                    continue
                decision = self._answer_decision(member, value, comment, decided_by, member.text_sha256)
                decisions.append(decision)
                standing = self.queue.standing.get(decision.key)
                expected_ids[decision.key] = standing.id if standing else None
            recorded = self.store.record(decisions, expected=expected_ids)
            kept = len(members) - len(decisions)
            return self._after(recorded, scope, kept=kept)

    def _members(self, question: int, index: int, scope: str, seen_group: str) -> list[Answer]:
        found = self.group_of(question, index)
        if found is None or scope not in ("group", "subgroup"):
            raise DecisionRefused(f"no {scope} to grade here")
        group, subgroup = found
        indices = group.members if scope == "group" else subgroup
        answers = self.answers_of_question(question)
        members = [answers[position] for position in indices]
        if seen_group and seen_group != group_key([member.student for member in members]):
            raise DecisionRefused(f"the {scope} changed since the page was drawn (answers were regraded); look again")
        return members

    @staticmethod
    def _answer_decision(answer: Answer, points: float | None, comment: str, decided_by: str, seen: str) -> Decision:
        return Decision(
            student=answer.student,
            subject=question_subject(answer.question),
            text_sha256=seen,
            item=ANSWERS_ITEM,
            points=points,
            comment=comment,
            decided_by=decided_by,
        )

    def decide_case(
        self,
        *,
        student: str,
        subject: str,
        points: str,
        comment: str,
        decided_by: str,
        seen_sha256: str,
        expected: int | None,
    ) -> Outcome:
        """Decides an error or an integrity flag: blank points keep the machine's for its item."""
        with self.lock:
            self.refresh()
            case = self.find_case(student, subject)
            if case is None:
                raise DecisionRefused(f"{student!r} has no {subject} waiting")
            maximum = case.max_points if case.max_points is not None else self._item_maximum(case.item)
            value = self._points(points, maximum, optional=True)
            comment, decided_by = self._words(comment, decided_by)
            decision = Decision(
                student=student,
                subject=subject,
                text_sha256=seen_sha256,
                item=case.item,
                points=value,
                comment=comment,
                decided_by=decided_by,
            )
            return self._after(self.store.record([decision], expected={decision.key: expected}), "case")

    def withdraw(self, *, student: str, subject: str, decided_by: str, expected: int | None) -> Outcome:
        """Takes a decision back: the machine's points stand again and the subject waits in the queue."""
        with self.lock:
            self.refresh()
            standing = self.queue.standing.get((student, subject))
            if standing is None:
                raise DecisionRefused("there is no decision to take back")
            _, decided_by = self._words("", decided_by)
            decision = Decision(
                student=student,
                subject=subject,
                text_sha256=standing.text_sha256,
                item=standing.item,
                decided_by=decided_by,
                withdrawn=True,
            )
            return self._after(self.store.record([decision], expected={decision.key: expected}), "withdrawal")

    def _item_maximum(self, item: str) -> float | None:
        from grader.pipeline.policy import item_maxima

        return item_maxima(self.rubric).get(item)

    def _after(self, recorded: Recorded, what: str, kept: int = 0) -> Outcome:
        self.refresh()
        students = sorted({decision.student for decision in recorded.recorded})
        written = self._write_results(students)
        parts = []
        if recorded.recorded:
            count = len(recorded.recorded)
            parts.append(
                f"recorded {count} decision{'s' if count != 1 else ''}" if what != "withdrawal" else "taken back"
            )
        if kept:
            parts.append(f"{kept} already decided, kept as they were")
        for conflict in recorded.conflicts:
            current = conflict.current
            who = f"{current.decided_by} decided it meanwhile" if current else "its decision was taken back meanwhile"
            parts.append(f"{conflict.refused.student}, {conflict.refused.subject}: not recorded, {who}; look again")
        if students and not written:
            parts.append("a grade --all holds the results: it applies the decision as it saves, and so does export")
        ok = not recorded.conflicts and bool(recorded.recorded or kept)
        return Outcome("; ".join(parts) or "nothing to record", ok=ok, students=students)

    def _write_results(self, students: list[str]) -> bool:
        """The students' stored results with the decisions applied; False when the results folder is busy."""
        if not students:
            return True
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                with results_lock(self.results_dir):
                    for student in students:
                        self._write_result(student)
                self._saw(students)  # our own writes change no answer: nothing to read again
                return True
            except BatchBusy:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)

    def _saw(self, students: list[str]) -> None:
        for student in students:
            try:
                status = result_path(self.results_dir, student).stat()
            except OSError:
                continue
            self._seen[student] = (status.st_mtime_ns, status.st_size)

    def _write_result(self, student: str) -> None:
        stored = load_result(result_path(self.results_dir, student))
        if stored is None:
            return
        updated = apply_policy(stored, self.submissions / student, self.policy)
        if updated.model_dump() != stored.model_dump():
            save_result(updated, self.results_dir)
        self.results[student] = updated
