"""Learn from a TA's decisions: rescore every undecided answer of a question from the graded ones.

suggest() takes one question's answers, the TA's decisions on them (and on answers of an earlier
class, passed along as answers too, which is how they seed a new class), and the answers' sentence
vectors. Each answer gets points, a calibrated chance that they are off from a TA's grade by 0.5 or
more, and a reason in plain words naming the graded answers it followed.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

import numpy as np
from pydantic import BaseModel

from grader.answers.text import content_lemmas

POINTS_STEP = 0.25
NEIGHBOURS = 3
# Below this cosine a decided answer says too little about another to be followed.
MIN_SIMILARITY = 0.5
# At or above this cosine an answer is the decided one again (a copy, a typo fixed).
SAME_ANSWER = 0.97


class AnswerItem(BaseModel):
    """One student's answer to one question, with the rubric scorer's points."""

    student: str
    question: int
    text: str
    text_hash: str
    machine_points: float
    max_points: float
    machine_reason: str


class TADecision(BaseModel):
    """The points a TA gave one answer (identified by its text's hash)."""

    student: str
    question: int
    text_hash: str
    points: float
    comment: str = ""
    decided_by: str
    decided_at: datetime


class Suggestion(BaseModel):
    """What the machine proposes for one answer, and how likely a TA would disagree."""

    student: str
    question: int
    points: float  # the machine's points, rescored from TA decisions once there are any
    p_off: float  # calibrated chance that `points` is off from a TA's grade by 0.5 or more
    reason: str  # plain words; names the graded answers it followed when it followed any
    followed: list[str] = []  # students whose decided answers it followed


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    """Unit-length sublinear TF-IDF rows over the texts' own content lemmas."""
    counts = [Counter(content_lemmas(t)) for t in texts]
    vocabulary = {lemma: i for i, lemma in enumerate(sorted({lemma for c in counts for lemma in c}))}
    df = Counter(lemma for c in counts for lemma in c)
    matrix = np.zeros((len(texts), len(vocabulary)))
    for row, c in enumerate(counts):
        for lemma, n in c.items():
            matrix[row, vocabulary[lemma]] = (1 + math.log(n)) * (math.log((len(texts) + 1) / (df[lemma] + 1)) + 1)
    return _unit_rows(matrix)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _round_to_step(points: float, max_points: float) -> float:
    return float(min(max_points, max(0.0, round(points / POINTS_STEP) * POINTS_STEP)))


def _decided_points(question: int, answers: list[AnswerItem], decisions: list[TADecision]) -> dict[int, float]:
    """Index of each answer the TA decided -> its points; the latest decision on an answer wins."""
    latest: dict[tuple[str, str], TADecision] = {}
    for d in sorted((d for d in decisions if d.question == question), key=lambda d: d.decided_at):
        latest[(d.student, d.text_hash)] = d
    return {
        i: latest[(a.student, a.text_hash)].points for i, a in enumerate(answers) if (a.student, a.text_hash) in latest
    }


def _machine_p_off(answer: AnswerItem) -> float:
    """Chance the rubric scorer alone is off by 0.5 or more; mid-range points are the doubtful ones."""
    share = answer.machine_points / answer.max_points if answer.max_points else 0.0
    return float(0.05 + 0.3 * (1 - abs(2 * share - 1)))


def suggest(
    question: int, answers: list[AnswerItem], decisions: list[TADecision], vectors: np.ndarray | None
) -> list[Suggestion]:
    """One suggestion per answer, in the answers' order."""
    answers = [a for a in answers]
    decided = _decided_points(question, answers, decisions)
    unit = (
        _unit_rows(np.asarray(vectors, dtype=float))
        if vectors is not None
        else tfidf_vectors([a.text for a in answers])
    )
    decided_rows = sorted(decided)
    cosines = unit @ unit[decided_rows].T if decided_rows else np.zeros((len(answers), 0))
    out = []
    for i, answer in enumerate(answers):
        if i in decided:
            out.append(
                Suggestion(
                    student=answer.student, question=question, points=decided[i], p_off=0.0, reason="graded by the TA"
                )
            )
            continue
        out.append(_rescored(question, answer, cosines[i], decided_rows, [decided[j] for j in decided_rows], answers))
    return out


def _rescored(
    question: int,
    answer: AnswerItem,
    cosines: np.ndarray,
    decided_rows: list[int],
    decided_points: list[float],
    answers: list[AnswerItem],
) -> Suggestion:
    order = [k for k in np.argsort(-cosines)[:NEIGHBOURS] if cosines[k] >= MIN_SIMILARITY]
    if not order:
        return Suggestion(
            student=answer.student,
            question=question,
            points=answer.machine_points,
            p_off=_machine_p_off(answer),
            reason=answer.machine_reason,
        )
    weights = np.array([cosines[k] for k in order])
    neighbour_points = np.array([decided_points[k] for k in order])
    knn = float(weights @ neighbour_points / weights.sum())
    closeness = float(cosines[order[0]])
    trust = 1.0 if closeness >= SAME_ANSWER else (closeness - MIN_SIMILARITY) / (SAME_ANSWER - MIN_SIMILARITY)
    points = _round_to_step(trust * knn + (1 - trust) * answer.machine_points, answer.max_points)
    followed = [answers[decided_rows[k]].student for k in order]
    spread = float(neighbour_points.max() - neighbour_points.min())
    p_off = float(min(1.0, max(0.0, (1 - trust) * _machine_p_off(answer) + 0.3 * spread)))
    reason = f"rescored from the TA's grades of similar answers ({', '.join(followed)})"
    return Suggestion(
        student=answer.student, question=question, points=points, p_off=p_off, reason=reason, followed=followed
    )
