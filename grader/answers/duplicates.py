"""Class-level report of near-duplicate answers, for the TA to look at.

Two correct answers are always semantically close, so this compares wording, not meaning:
the share of 3-word runs two answers have in common, relative to the shorter answer.
"""

from __future__ import annotations

from itertools import combinations

from .results import AnswersResult, DuplicatePair
from .score import shingles

_SHINGLE = 3
_MIN_SHINGLES = 10  # "Yes, they can." twice is not copying
FLAG = "near-duplicate"


def _overlap(a: set, b: set) -> float:
    return len(a & b) / min(len(a), len(b))


def class_duplicate_report(results: dict[str, AnswersResult], threshold: float = 0.6) -> list[DuplicatePair]:
    """Pairs of students whose answers to a question overlap at least `threshold`, most similar first.

    Also marks those answers in `results` (flag "near-duplicate", needs_review), in place; calling
    it again adds nothing twice.
    """
    by_question: dict[int, list[tuple[str, set]]] = {}
    for student in sorted(results):
        for q in results[student].questions:
            runs = shingles(q.answer_text, _SHINGLE)
            if len(runs) >= _MIN_SHINGLES:
                by_question.setdefault(q.number, []).append((student, runs))
    pairs = []
    for number, answers in sorted(by_question.items()):
        for (a, runs_a), (b, runs_b) in combinations(answers, 2):
            similarity = _overlap(runs_a, runs_b)
            if similarity >= threshold:
                pairs.append(DuplicatePair(student_a=a, student_b=b, question=number, similarity=round(similarity, 3)))
    for pair in pairs:
        for student in (pair.student_a, pair.student_b):
            for q in results[student].questions:
                if q.number == pair.question and FLAG not in q.flags:
                    q.flags.append(FLAG)
                    q.needs_review = True
    return sorted(pairs, key=lambda p: (-p.similarity, p.question, p.student_a, p.student_b))
