"""Exercise 1's points: accuracy mapped through the rubric's piecewise-linear anchors."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from grader.rubric.config import Exercise1, RubricError


class ItemPoints(BaseModel):
    item: str
    points: float | None
    max_points: float
    reason: str


def resolve_anchors(exercise: Exercise1, baseline_accuracy: Mapping[str, float]) -> list[tuple[float, float]]:
    """(accuracy, points) pairs sorted by accuracy, with baselines replaced by their measured accuracy."""
    pairs = []
    for anchor in exercise.anchors:
        if anchor.baseline is None:
            pairs.append((anchor.accuracy, anchor.points))
            continue
        if anchor.baseline not in baseline_accuracy:
            known = ", ".join(sorted(baseline_accuracy)) or "none"
            raise RubricError(
                f"exercise1.anchors: baseline '{anchor.baseline}' has no accuracy measured on the pinned split "
                f"(measured: {known}); run `make reference` or anchor on a fixed accuracy"
            )
        pairs.append((baseline_accuracy[anchor.baseline], anchor.points))
    pairs.sort()
    accuracies = [accuracy for accuracy, _ in pairs]
    if len(set(accuracies)) != len(accuracies):
        raise RubricError(f"exercise1.anchors: two anchors sit at the same accuracy {accuracies}")
    return pairs


def interpolate(accuracy: float, anchors: list[tuple[float, float]]) -> float:
    if accuracy <= anchors[0][0]:
        return anchors[0][1]
    for (low_acc, low_pts), (high_acc, high_pts) in zip(anchors, anchors[1:]):
        if accuracy <= high_acc:
            return low_pts + (accuracy - low_acc) / (high_acc - low_acc) * (high_pts - low_pts)
    return anchors[-1][1]


def exercise1_points(
    accuracy: float, exercise: Exercise1, baseline_accuracy: Mapping[str, float] | None = None
) -> ItemPoints:
    anchors = resolve_anchors(exercise, baseline_accuracy or {})
    points = round(interpolate(accuracy, anchors), 2)
    table = ", ".join(f"{acc:.2%}->{pts:g}" for acc, pts in anchors)
    return ItemPoints(
        item="exercise1",
        points=points,
        max_points=exercise.points,
        reason=f"accuracy {accuracy:.2%} on the anchors {table}",
    )
