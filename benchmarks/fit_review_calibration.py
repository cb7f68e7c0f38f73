"""Refit grader/answers/confidence.json (how decided answers rescore the others, and p_off) on the tuning answers.

    python -m benchmarks.fit_review_calibration [--write] [--kind minilm|tfidf]

Tuning answers only: every other file of the lab's first set by name (from the first) and the dev set, as
`make bench-review` labels them. The sets measured as never tuned on are not read.

For each kind of vectors (MiniLM sentence vectors; TF-IDF where no encoder is installed, the answers then
also graded by TF-IDF) and each candidate neighbour setting of a small grid:
1. p_off is a logistic regression of "off by 0.5 or more" on the features of the answers' suggestions, in
   random TA states (a random 10% to 50% of a set's answers decided with their true grades) and in the states
   a simulated TA passes through working down the queue (ordered by the previous round's p_off);
2. the setting is scored by the simulated TA of `make bench-review` at budgets 0.1, 0.2 and 0.3: the share of
   answers more than 0.25 off, plus the share of files whose total is more than 0.5 off.
The best setting and its p_off are printed, and stored with --write.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import click
import numpy as np

from benchmarks.bench_review import (
    FIRST_SET,
    TUNING_SETS,
    bench_rubric,
    bench_sets,
    machine_items,
    question_vectors,
    simulate_ta,
)
from grader.answers.confidence import CALIBRATION_FILE, POffModel
from grader.atomic_write import write_atomic
from grader.review.learn import (
    AnswerItem,
    Calibration,
    Neighbours,
    TADecision,
    decided_and_vectors,
    graded_elsewhere,
    rescore,
    suggest_with,
)

DECIDED_SHARES = (0.1, 0.2, 0.3, 0.5)
DRAWS_PER_SHARE = 4
QUEUE_ROUNDS = 2
QUEUE_BUDGET = 0.5
L2 = 1.0
GRIDS = {  # cosines mean different things for the two kinds of vectors
    "minilm": {"floor": (0.6, 0.7), "direct_from": (0.75, 0.8), "same": (0.85, 0.9), "correction": (0.0, 0.5, 1.0)},
    "tfidf": {"floor": (0.3, 0.4), "direct_from": (0.5, 0.6), "same": (0.8, 0.9), "correction": (0.0, 0.5, 1.0)},
}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class TuningSet:
    label: str
    items: list[AnswerItem]
    truth: dict[tuple[str, int], float]
    vectors: dict[int, np.ndarray | None]


@dataclass
class Rows:
    """Features of suggestions and whether each was off by 0.5 or more, each row weighted."""

    features: list[dict[str, float]]
    off: list[bool]
    weights: list[float]

    def add(self, other: Rows) -> Rows:
        return Rows(self.features + other.features, self.off + other.off, self.weights + other.weights)


def _decision(item: AnswerItem, points: float) -> TADecision:
    return TADecision(
        student=item.student,
        question=item.question,
        text_hash=item.text_hash,
        points=points,
        decided_by="tuning",
        decided_at=START,
    )


def state_rows(tuning: TuningSet, decided_keys: set, settings: Neighbours, weight: float) -> Rows:
    """The undecided answers' features with the given answers decided."""
    decisions = [
        _decision(i, tuning.truth[(i.student, i.question)])
        for i in tuning.items
        if (i.student, i.question) in decided_keys
    ]
    rows = Rows([], [], [])
    for question, vectors in tuning.vectors.items():
        answers = [i for i in tuning.items if i.question == question]
        decided, unit = decided_and_vectors(question, answers, decisions, vectors)
        for i, made in rescore(answers, decided, unit, settings, graded_elsewhere(question, decisions)).items():
            rows.features.append(made.features)
            rows.off.append(abs(made.points - tuning.truth[(answers[i].student, question)]) >= 0.5 - 1e-9)
            rows.weights.append(weight)
    return rows


def random_rows(tuning: TuningSet, settings: Neighbours) -> Rows:
    rng = np.random.default_rng(0)
    keys = [(i.student, i.question) for i in tuning.items]
    rows = state_rows(tuning, set(), settings, 1.0)
    for share in DECIDED_SHARES:
        for _ in range(DRAWS_PER_SHARE):
            picked = rng.choice(len(keys), round(share * len(keys)), replace=False)
            rows = rows.add(state_rows(tuning, {keys[j] for j in picked}, settings, 1 / DRAWS_PER_SHARE))
    return rows


def queue_rows(tuning: TuningSet, calibration: Calibration) -> Rows:
    """The states a simulated TA passes through, each of the queue's steps weighing as one random draw."""
    rows = Rows([], [], [])
    steps = round(QUEUE_BUDGET * len(tuning.items))

    def recording(question, answers, decisions, vectors):
        decided, unit = decided_and_vectors(question, answers, decisions, vectors)
        elsewhere = graded_elsewhere(question, decisions)
        for i, made in rescore(answers, decided, unit, calibration.neighbours, elsewhere).items():
            rows.features.append(made.features)
            rows.off.append(abs(made.points - tuning.truth[(answers[i].student, question)]) >= 0.5 - 1e-9)
            rows.weights.append(len(DECIDED_SHARES) / max(steps, 1))
        return suggest_with(calibration, question, answers, decisions, vectors)

    simulate_ta(tuning.items, tuning.truth, tuning.vectors, (QUEUE_BUDGET,), recording)
    return rows


def logistic(features: np.ndarray, off: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Intercept and coefficients by Newton's method, rows weighted, an L2 penalty on the coefficients."""
    design = np.c_[np.ones(len(features)), features]
    penalty = L2 * np.diag(np.r_[0.0, np.ones(features.shape[1])])
    w = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-design @ w))
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, design.T @ (weights * (p - off)) + penalty @ w)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_p_off(rows: Rows) -> POffModel:
    names = list(rows.features[0])
    features = np.array([[r[n] for n in names] for r in rows.features])
    w = logistic(features, np.array(rows.off, dtype=float), np.array(rows.weights))
    return POffModel(intercept=round(float(w[0]), 4), weights={n: round(float(x), 4) for n, x in zip(names, w[1:])})


def fit_for(sets: list[TuningSet], settings: Neighbours, fitted_on: str) -> Calibration:
    base = Rows([], [], [])
    for tuning in sets:
        base = base.add(random_rows(tuning, settings))
    calibration = Calibration(fitted_on=fitted_on, neighbours=settings, p_off=fit_p_off(base))
    for _ in range(QUEUE_ROUNDS):
        rows = base
        for tuning in sets:
            rows = rows.add(queue_rows(tuning, calibration))
        calibration = Calibration(fitted_on=fitted_on, neighbours=settings, p_off=fit_p_off(rows))
    return calibration


def queue_loss(sets: list[TuningSet], calibration: Calibration) -> float:
    loss = 0.0
    for tuning in sets:

        def suggester(question, answers, decisions, vectors):
            return suggest_with(calibration, question, answers, decisions, vectors)

        files = len({i.student for i in tuning.items})
        for outcome in simulate_ta(tuning.items, tuning.truth, tuning.vectors, (0.1, 0.2, 0.3), suggester):
            loss += (1 - outcome.within) + outcome.files_off / files
    return loss


def reliability(sets: list[TuningSet], calibration: Calibration) -> str:
    """Said against seen: p_off of the queue's states, by band, against how often the points were off."""
    rows = Rows([], [], [])
    for tuning in sets:
        rows = rows.add(queue_rows(tuning, calibration))
    z = np.array(
        [
            calibration.p_off.intercept + sum(w * r[n] for n, w in calibration.p_off.weights.items())
            for r in rows.features
        ]
    )
    p, off, weights = 1 / (1 + np.exp(-z)), np.array(rows.off, dtype=float), np.array(rows.weights)
    parts = []
    for low, high in ((0, 0.05), (0.05, 0.2), (0.2, 0.5), (0.5, 1.01)):
        inside = (p >= low) & (p < high)
        if inside.any():
            said, seen = (
                np.average(p[inside], weights=weights[inside]),
                np.average(off[inside], weights=weights[inside]),
            )
            parts.append(f"p_off {low:g}-{min(high, 1):g}: said {said:.2f}, off {seen:.2f}")
    return "; ".join(parts)


def tuning_sets(kind: str) -> list[TuningSet]:
    rubric = bench_rubric()
    out = []
    for graded in (s for s in bench_sets([FIRST_SET, *TUNING_SETS]) if s.tuning):
        items = machine_items(graded.files, rubric, kind)
        truth = {(f.name, q): p for f in graded.files for q, p in enumerate(f.points, start=1)}
        out.append(TuningSet(graded.label, items, truth, question_vectors(items, kind)))
    return out


def fit_kind(kind: str) -> Calibration:
    sets = tuning_sets(kind)
    fitted_on = ", ".join(s.label for s in sets)
    grid = GRIDS[kind]
    tried = []
    for floor, direct_from, same, correction in itertools.product(*grid.values()):
        if floor <= direct_from < same:
            settings = Neighbours(floor=floor, direct_from=direct_from, same=same, correction=correction)
            calibration = fit_for(sets, settings, fitted_on)
            loss = queue_loss(sets, calibration)
            print(f"{kind}: loss {loss:.4f} {settings.model_dump()}", flush=True)
            tried.append((loss, calibration))
    best = min(tried, key=lambda t: t[0])[1]
    print(f"{kind}: chosen {best.neighbours.model_dump()}\n{kind}: p_off {best.p_off.model_dump()}")
    print(f"{kind}: {reliability(sets, best)}", flush=True)
    return best


@click.command(help=__doc__.splitlines()[0])
@click.option("--write", is_flag=True, help=f"Store the fit in {CALIBRATION_FILE.name}.")
@click.option("--kind", type=click.Choice(["minilm", "tfidf"]), multiple=True, help="Fit only these (default: both).")
def main(write: bool, kind: tuple[str, ...]) -> None:
    stored = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))
    for name in kind or ("minilm", "tfidf"):
        stored[name] = fit_kind(name).model_dump(mode="json")
    if write:
        write_atomic(CALIBRATION_FILE, json.dumps(stored, indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
