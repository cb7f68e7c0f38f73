"""How far the checker's points for one answer can be trusted: p_off, the calibrated chance that they are off
from a TA's grade by half a point or more.

Before any TA decision p_off is a logistic model of what the answer and the checker's verdict say: the points,
the share of key ideas found and the closeness its reason states, its flags, the answer's length. The review
(grader/review/learn.py) adds what the TA's decisions say (the nearest decided answers, the student's other
grades) to the same model. Its weights, fitted together with the review's rescoring settings on the lab's tuning
answers only (benchmarks/fit_review_calibration.py), live in confidence.json beside this module, one entry per
similarity method ("minilm", "tfidf"): the checker's reasons read differently under each.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

CALIBRATION_FILE = Path(__file__).with_name("confidence.json")
# An answer a TA should read: the checker's points are this likely off by 0.5 or more.
NEEDS_REVIEW_P_OFF = 0.2
# The checker's 0 for an answer it would not read is a placeholder: of the tuning answers' 7 such, none was
# worth 0 to the TA.
UNJUDGED_P_OFF = 0.9


class POffModel(BaseModel):
    """Logistic weights of p_off over named features (verdict_features() and the review's own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    intercept: float
    weights: dict[str, float]


@lru_cache(maxsize=4)
def load_p_off_model(kind: str, path: Path = CALIBRATION_FILE) -> POffModel | None:
    """The p_off weights for answers graded by the similarity method `kind` ("minilm" or "tfidf"); None for a
    method never calibrated."""
    fitted = json.loads(path.read_text(encoding="utf-8")).get(kind)
    return None if fitted is None else POffModel.model_validate(fitted["p_off"])


# --- what the checker's reason says (grader/answers/score.py words it) --------------------------------------

UNSCORED = "until a TA grades it"
_CONTRADICTS = ("wrong claim:", "says the opposite of:", "where the model answer says")
_NOTHING_STATED = ("a list of terms", "states none of the key ideas", "copied from the lab text")
_CAPPED = ("no mechanism given", "does not say when")
_UNNUMBERED = "does not number its answers"


def _ideas_and_closeness(reason: str) -> tuple[float, float]:
    """(share of key ideas stated, closeness to the model answer), from "2 of 6 key ideas stated; closeness
    to the model answer 0.71"; 0 where the reason does not say."""
    ideas = closeness = 0.0
    for part in reason.split("; "):
        found, of, rest = part.partition(" of ")
        if of and rest.endswith(" key ideas stated"):
            total = rest.split(" ", 1)[0]
            if found.isdigit() and total.isdigit() and int(total):
                ideas = int(found) / int(total)
        elif part.startswith("closeness to the model answer "):
            try:
                closeness = float(part.rsplit(" ", 1)[1].rstrip("."))
            except ValueError:
                closeness = 0.0
    return ideas, closeness


def verdict_features(text: str, points: float, max_points: float, reason: str) -> dict[str, float]:
    """What an answer and the checker's verdict on it say about how far its points can be trusted."""
    share = points / max_points if max_points else 0.0
    ideas, closeness = _ideas_and_closeness(reason)
    return {
        "between": 1 - abs(2 * share - 1),
        "share": share,
        "ideas": ideas,
        "closeness": closeness,
        "unscored": float(UNSCORED in reason),
        "empty": float(not text.strip()),
        "contradicts": float(any(c in reason for c in _CONTRADICTS)),
        "states_nothing": float(any(c in reason for c in _NOTHING_STATED)),
        "capped": float(any(c in reason for c in _CAPPED)),
        "unnumbered": float(_UNNUMBERED in reason),
        "log_words": math.log1p(len(text.split())),
    }


def p_off(features: dict[str, float], model: POffModel) -> float:
    """The logistic model's chance; a feature the model has no weight for counts nothing, one it weighs but
    `features` lacks counts as 0 (no decided neighbour, no other grade of the student)."""
    z = model.intercept + sum(w * features.get(name, 0.0) for name, w in model.weights.items())
    return float(1 / (1 + math.exp(-max(-30.0, min(30.0, z)))))


def machine_p_off(text: str, points: float, max_points: float, reason: str, kind: str) -> float | None:
    """p_off of the checker's verdict before any TA decision, with the calibration of the method that graded
    (None: that method has none); an answer the checker would not judge (not English) is at least
    UNJUDGED_P_OFF."""
    model = load_p_off_model(kind)
    if model is None:
        return None
    features = verdict_features(text, points, max_points, reason)
    chance = p_off(features, model)
    return max(chance, UNJUDGED_P_OFF) if features["unscored"] else chance
