"""Learn from a TA's decisions: rescore every undecided answer of a question from the graded ones.

suggest() takes one question's answers, the TA's decisions on them and the answers' sentence vectors.
Each answer gets points, a calibrated chance that they are off from a TA's grade by half a point or
more (`p_off`), and a reason in plain words naming the graded answers it followed.

Rescoring follows the nearest decided answers (cosine of their vectors): an answer nearly the same
as a decided one takes its points; a merely similar one moves from the machine's points by the
corrections the TA made to its neighbours, more the closer they are. Decisions on an earlier class's
answers to the same rubric question seed a new class: pass those answers along (with their vectors)
and the decisions on them.

p_off is a logistic model of what the rubric scorer's reason says (its points, the share of key ideas
found, flags), the answer's length (grader/answers/confidence.py: the part that needs no decision, which
the grading result carries too) and how close and how unanimous the decided neighbours are. Its weights and
the rescoring settings live in grader/answers/confidence.json, fitted on the lab's tuning answers only by
benchmarks/fit_review_calibration.py.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from grader.answers.confidence import (
    CALIBRATION_FILE,
    NEEDS_REVIEW_P_OFF,
    UNJUDGED_P_OFF,
    POffModel,
    p_off,
    verdict_features,
)
from grader.answers.text import content_lemmas

POINTS_STEP = 0.25


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


def needs_review(suggestion: Suggestion) -> bool:
    return suggestion.p_off >= NEEDS_REVIEW_P_OFF


class Neighbours(BaseModel):
    """How decided answers move an undecided one, for one kind of vectors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(3, ge=1, description="Decided answers followed at most.")
    floor: float = Field(description="Cosine below which a decided answer says nothing about another.")
    same: float = Field(description="Cosine from which an answer is the decided one again: its points taken.")
    direct_from: float = Field(description="Cosine from which the neighbours' own points start to count.")
    correction: float = Field(ge=0, le=1, description="Share of the neighbours' corrections applied below that.")


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fitted_on: str = Field(description="The answers the weights were fitted on (never the measured sets).")
    neighbours: Neighbours
    p_off: POffModel


@lru_cache(maxsize=4)
def load_calibration(kind: str, path: Path = CALIBRATION_FILE) -> Calibration:
    """The settings for "minilm" (sentence vectors given) or "tfidf" (none given)."""
    return Calibration.model_validate(json.loads(path.read_text(encoding="utf-8"))[kind])


def machine_features(item: AnswerItem) -> dict[str, float]:
    """What the answer and the rubric scorer's verdict say about how far its points can be trusted."""
    return verdict_features(item.text, item.machine_points, item.max_points, item.machine_reason)


# --- vectors ------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _lemma_counts(text: str) -> Counter[str]:
    return Counter(content_lemmas(text))


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    """Unit-length sublinear TF-IDF rows over the texts' own content lemmas."""
    counts = [_lemma_counts(t) for t in texts]
    df = Counter(lemma for c in counts for lemma in c)
    vocabulary = {lemma: i for i, lemma in enumerate(sorted(df))}
    matrix = np.zeros((len(texts), len(vocabulary)))
    for row, c in enumerate(counts):
        for lemma, n in c.items():
            matrix[row, vocabulary[lemma]] = (1 + math.log(n)) * (math.log((len(texts) + 1) / (df[lemma] + 1)) + 1)
    return _unit_rows(matrix)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


# --- rescoring ----------------------------------------------------------------------------------------


class Rescored(BaseModel):
    """An undecided answer's points after its decided neighbours, and what p_off is computed from."""

    points: float
    followed: list[str]
    features: dict[str, float]
    same_text: bool = False  # the very words of a decided answer: the TA's points, nothing left to doubt


def _round_to_step(points: float, max_points: float) -> float:
    return float(min(max_points, max(0.0, round(points / POINTS_STEP) * POINTS_STEP)))


def _decided_points(question: int, answers: list[AnswerItem], decisions: list[TADecision]) -> dict[int, float]:
    """Index of each answer the TA decided (as it reads now) -> its points; a later decision replaces one before."""
    latest: dict[tuple[str, str], TADecision] = {}
    for d in sorted((d for d in decisions if d.question == question), key=lambda d: d.decided_at):
        latest[(d.student, d.text_hash)] = d
    return {
        i: latest[(a.student, a.text_hash)].points for i, a in enumerate(answers) if (a.student, a.text_hash) in latest
    }


def _neighbour_features(cosines: np.ndarray, ta: np.ndarray, machine: np.ndarray, points: float, own: float) -> dict:
    corrections = ta - machine
    return {
        "nearest": float(cosines[0]) if len(cosines) else 0.0,
        "neighbours_disagree": float(ta.max() - ta.min()) if len(ta) else 0.0,
        "neighbours_corrected": float(np.abs(corrections).mean()) if len(ta) else 0.0,
        "moved": abs(points - own),
    }


def graded_elsewhere(question: int, decisions: list[TADecision]) -> dict[str, float]:
    """Each student's mean points from the TA on the other questions (a student the machine misread on one
    question, by language, layout or a wrong idea throughout, is often misread on the next)."""
    latest: dict[tuple[str, int], float] = {}
    for d in sorted((d for d in decisions if d.question != question), key=lambda d: d.decided_at):
        latest[(d.student, d.question)] = d.points
    by_student: dict[str, list[float]] = {}
    for (student, _), points in latest.items():
        by_student.setdefault(student, []).append(points)
    return {student: sum(points) / len(points) for student, points in by_student.items()}


def _student_gap(answer: AnswerItem, points: float, elsewhere: dict[str, float]) -> float:
    if answer.student not in elsewhere or not answer.max_points:
        return 0.0
    return min(1.0, abs(elsewhere[answer.student] - points) / answer.max_points)


def rescore(
    answers: list[AnswerItem],
    decided: dict[int, float],
    unit: np.ndarray,
    settings: Neighbours,
    elsewhere: dict[str, float] | None = None,
) -> dict[int, Rescored]:
    """Every undecided answer (by index) rescored from the decided ones, with its p_off features.
    `elsewhere`: graded_elsewhere() of the class's decisions."""
    elsewhere = elsewhere or {}
    # An empty answer's grade says nothing of another's: why it is empty (unanswered, or its text given to
    # another question by a misread layout) is what a TA decides.
    rows = sorted(j for j in decided if answers[j].text.strip())
    cosines = unit @ unit[rows].T if rows else np.zeros((len(answers), 0))
    ta_points = np.array([decided[j] for j in rows])
    machine_points = np.array([answers[j].machine_points for j in rows])
    same_text = {}
    for j in rows:
        same_text.setdefault(answers[j].text_hash, j)
    out = {}
    for i, answer in enumerate(answers):
        if i in decided:
            continue
        order = [k for k in np.argsort(-cosines[i], kind="stable")[: settings.count] if cosines[i, k] >= settings.floor]
        if not answer.text.strip():
            order = []
        elif answer.text_hash in same_text:  # the same text graded for someone else
            order = [rows.index(same_text[answer.text_hash])]
        near, ta, machine = cosines[i, order], ta_points[order], machine_points[order]
        if answer.text_hash in same_text and order:
            near = np.ones(1)  # the very words, whatever the vectors say
        points, followed = answer.machine_points, []
        if order:
            top = float(near[0])
            followed = [answers[rows[k]].student for k in order]
            weights = np.maximum(near - settings.floor, 1e-6)
            direct = float(weights @ ta / weights.sum())
            corrected = answer.machine_points + settings.correction * float(weights @ (ta - machine) / weights.sum())
            trust = min(1.0, max(0.0, (top - settings.direct_from) / max(settings.same - settings.direct_from, 1e-6)))
            points = _round_to_step(trust * direct + (1 - trust) * corrected, answer.max_points)
            if top >= settings.same:
                points, followed, near, ta, machine = float(ta[0]), followed[:1], near[:1], ta[:1], machine[:1]
            if abs(points - answer.machine_points) < 1e-9 and top < settings.same:
                followed = []  # the neighbours agreed with the machine: nothing was followed
        features = machine_features(answer) | _neighbour_features(near, ta, machine, points, answer.machine_points)
        features["student_gap"] = _student_gap(answer, points, elsewhere)
        same = answer.text_hash in same_text and bool(order)
        out[i] = Rescored(points=points, followed=followed, features=features, same_text=same)
    return out


def _chance_off(made: Rescored, model: POffModel) -> float:
    """p_off of the model; none for the very words of a decided answer; an answer the scorer would not judge
    (not English) is a TA's to grade whatever the tuning answers held of them, until a decided answer of the same
    text settles it."""
    if made.same_text:
        return 0.0
    chance = p_off(made.features, model)
    return max(chance, UNJUDGED_P_OFF) if made.features["unscored"] and not made.followed else chance


def _reason(answer: AnswerItem, rescored: Rescored) -> str:
    if not rescored.followed:
        return answer.machine_reason
    names = ", ".join(rescored.followed)
    if len(rescored.followed) == 1 and rescored.features["nearest"] >= 0.999:
        return f"{rescored.points:g}/{answer.max_points:g}: the same answer as {names}'s, which the TA graded."
    return (
        f"{rescored.points:g}/{answer.max_points:g}, rescored from the TA's grades of similar answers ({names}); "
        f"the rubric scorer alone gave {answer.machine_points:g}."
    )


def suggest(
    question: int,
    answers: list[AnswerItem],
    decisions: list[TADecision],
    vectors: np.ndarray | None,
    earlier: Sequence[AnswerItem] = (),
    earlier_vectors: np.ndarray | None = None,
) -> list[Suggestion]:
    """One suggestion per answer, in the answers' order. `vectors`: sentence vectors of `answers` in order
    (MiniLM); None: TF-IDF vectors of their texts. `decisions`: the class's, every question's (those on
    other questions tell how far the machine can be trusted with a student's answers). `earlier`: decided
    answers of an earlier class (their decisions among `decisions`, their vectors `earlier_vectors` when
    `vectors` are given), which teach the rescoring and get no suggestion of their own."""
    calibration = load_calibration("minilm" if vectors is not None else "tfidf")
    if earlier and vectors is not None:
        vectors = np.vstack([earlier_vectors, vectors])
    return suggest_with(calibration, question, [*earlier, *answers], decisions, vectors)[len(earlier) :]


def decided_and_vectors(
    question: int, answers: list[AnswerItem], decisions: list[TADecision], vectors: np.ndarray | None
) -> tuple[dict[int, float], np.ndarray]:
    """The decided answers' points by index, and unit vectors of all answers (none needed before a decision)."""
    decided = _decided_points(question, answers, decisions)
    if vectors is not None:
        return decided, _unit_rows(np.asarray(vectors, dtype=float).reshape(len(answers), -1))
    return decided, tfidf_vectors([a.text for a in answers]) if decided else np.zeros((len(answers), 0))


def suggest_with(
    calibration: Calibration,
    question: int,
    answers: list[AnswerItem],
    decisions: list[TADecision],
    vectors: np.ndarray | None,
) -> list[Suggestion]:
    """suggest() with the given settings (the calibration script tries its candidates so)."""
    decided, unit = decided_and_vectors(question, answers, decisions, vectors)
    rescored = rescore(answers, decided, unit, calibration.neighbours, graded_elsewhere(question, decisions))
    out = []
    for i, answer in enumerate(answers):
        if i in decided:
            suggestion = Suggestion(
                student=answer.student, question=question, points=decided[i], p_off=0.0, reason="graded by the TA"
            )
        else:
            made = rescored[i]
            suggestion = Suggestion(
                student=answer.student,
                question=question,
                points=made.points,
                p_off=_chance_off(made, calibration.p_off),
                reason=_reason(answer, made),
                followed=made.followed,
            )
        out.append(suggestion)
    return out
