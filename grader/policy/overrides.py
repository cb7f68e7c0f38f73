"""TA overrides from overrides.yaml, applied on top of the machine's points.

Either a mapping by student::

    alice:
      items: {total: 90}
      reason: model.py imported a file the TA added by hand
      decided_by: TA Kim

or a list of entries that name the student::

    - student: bob
      items: {exercise2: 4}
      reason: answer 3 accepted after discussion
      decided_by: Dr Lee

The machine's figures are never changed: `apply_overrides` returns new final points. Points are
between 0 and the item's maximum (`check_limits`, with the rubric's maxima). docs/OVERRIDES.md is the
TA's guide.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader.errors import GraderError
from grader.strict_yaml import load_unique_keys

TOTAL = "total"
LIMIT_TOLERANCE = 1e-9  # maxima are sums of floats


class OverridesError(GraderError, ValueError):
    """overrides.yaml cannot be used; the message names the file and the key."""


Points = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Override(BaseModel):
    # Student ids written as bare numbers in YAML are still ids, not numbers.
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    student: str = Field(min_length=1)
    items: dict[str, Points] = Field(min_length=1, description="rubric item (or `total`) -> points the TA decided")
    reason: str = Field(min_length=1)
    decided_by: str = Field(min_length=1)

    def records(self) -> list[dict[str, Any]]:
        """The result's `overrides` entries, one per item."""
        return [
            {"item": item, "points": points, "reason": self.reason, "decided_by": self.decided_by}
            for item, points in self.items.items()
        ]


class Overrides(BaseModel):
    source: str = "overrides.yaml"
    by_student: dict[str, Override] = Field(default_factory=dict)

    def for_student(self, student: str) -> Override | None:
        return self.by_student.get(student)


def load_overrides(path: Path) -> Overrides:
    """Reads overrides.yaml; a missing file means no overrides."""
    path = Path(path)
    if not path.exists():
        return Overrides(source=str(path))
    try:
        raw = load_unique_keys(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise OverridesError(f"{path}: not valid YAML: {error}") from error
    return parse_overrides(raw, source=str(path))


def parse_overrides(raw: Any, source: str = "overrides.yaml") -> Overrides:
    if raw is None:
        return Overrides(source=source)
    if isinstance(raw, dict):
        entries = [(str(student), _with_student(str(student), body, source)) for student, body in raw.items()]
    elif isinstance(raw, list):
        entries = [(f"[{index}]", body) for index, body in enumerate(raw)]
    else:
        raise OverridesError(
            f"{source}: expected a mapping of student -> override, or a list, not {type(raw).__name__}"
        )
    by_student: dict[str, Override] = {}
    for key, body in entries:
        try:
            override = Override.model_validate(body)
        except ValidationError as error:
            raise OverridesError(_describe(source, key, error)) from error
        if override.student in by_student:
            raise OverridesError(f"{source}: {key}: a second override for {override.student!r}; merge them into one")
        by_student[override.student] = override
    return Overrides(source=source, by_student=by_student)


def _with_student(student: str, body: Any, source: str) -> dict:
    if not isinstance(body, dict):
        raise OverridesError(f"{source}: {student}: expected items, reason and decided_by, not {body!r}")
    if "student" in body and str(body["student"]) != student:
        raise OverridesError(f"{source}: {student}: names another student, {body['student']!r}")
    return {**body, "student": student}


def _describe(source: str, key: str, error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in (key, *detail["loc"]))
        if detail["type"] == "greater_than_equal":
            problems.append(f"{where}: {detail['input']} is negative; at least 0")
        else:
            problems.append(f"{where}: {detail['msg']}")
    return f"{source}: " + "; ".join(problems)


def validate(overrides: Overrides, known_students: list[str] | set[str], known_items: list[str] | set[str]) -> None:
    """Raises OverridesError listing every override for a student or item the grader does not know."""
    students = set(known_students)
    items = set(known_items) | {TOTAL}
    problems = []
    for student, override in overrides.by_student.items():
        if student not in students:
            problems.append(f"{student}: unknown student{_suggest(student, students)}")
        for item in override.items:
            if item not in items:
                problems.append(f"{student}.items.{item}: unknown item{_suggest(item, items)}")
    if problems:
        raise OverridesError(f"{overrides.source}: " + "; ".join(problems))


def check_limits(overrides: Overrides, maxima: Mapping[str, float]) -> None:
    """Raises OverridesError listing every override above its item's maximum (`total`: the rubric's sum).
    Below 0 is refused when the file is read."""
    problems = []
    for student, override in overrides.by_student.items():
        for item, points in override.items.items():
            limit = maxima.get(item)
            if limit is not None and points > limit + LIMIT_TOLERANCE:
                problems.append(
                    f"{student}.items.{item}: {points:g} is more than the item is worth (at most {limit:g})"
                )
    if problems:
        raise OverridesError(f"{overrides.source}: " + "; ".join(problems))


def _suggest(name: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def apply_overrides(result_points: dict[str, float | None], override: Override | None) -> dict[str, float | None]:
    """Final points: overridden items take the TA's figure and the total moves by the same amount,
    unless the total itself is overridden, which then wins. The input is left as it was."""
    final = dict(result_points)
    if override is None:
        return final
    item_points = {item: points for item, points in override.items.items() if item != TOTAL}
    shift = sum(points - (final.get(item) or 0.0) for item, points in item_points.items())
    final.update(item_points)
    if TOTAL in override.items:
        final[TOTAL] = override.items[TOTAL]
    elif item_points:
        final[TOTAL] = round((final.get(TOTAL) or 0.0) + shift, 4)
    return final


apply = apply_overrides
