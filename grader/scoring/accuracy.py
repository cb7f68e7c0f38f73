"""Checks the logits that came back from the sandbox and measures them against the labels."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

NUM_CLASSES = 10


class InvalidOutput(ValueError):
    """The model's output cannot be scored; the message says what is wrong with it."""


class Scores(BaseModel):
    accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]
    predictions_sha256: str
    predictions: str  # one digit per image, the predicted class, in the split's order


def validate_logits(logits: np.ndarray, expected_rows: int) -> None:
    if logits.ndim != 2 or logits.shape != (expected_rows, NUM_CLASSES):
        raise InvalidOutput(f"the model's output has shape {list(logits.shape)}; expected [{expected_rows}, 10]")
    bad = ~np.isfinite(logits)
    if bad.any():
        rows = int(bad.any(axis=1).sum())
        kind = "NaN" if np.isnan(logits).any() else "infinite"
        raise InvalidOutput(f"the model's output holds {kind} values in {rows} of {expected_rows} rows")


def score(logits: np.ndarray, labels: np.ndarray) -> Scores:
    import hashlib

    validate_logits(logits, len(labels))
    predictions = logits.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    per_class_total = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), per_class_total, out=np.zeros(NUM_CLASSES), where=per_class_total > 0)
    return Scores(
        accuracy=round(float((predictions == labels).mean()), 6),
        per_class_accuracy=[round(float(value), 6) for value in per_class],
        confusion_matrix=confusion.tolist(),
        predictions_sha256=hashlib.sha256(predictions.astype("<i8").tobytes()).hexdigest(),
        predictions="".join(map(str, predictions.tolist())),
    )
