"""Final points: the TA's review decisions (grader review), the late penalty from the Blackboard submission
time, then the TA's overrides (overrides.yaml, which therefore win over a review decision on the same item).

All are applied to a copy of the result's machine points, which stay as the sandbox and the
rubric made them; `final_points` is what goes to the gradebook.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from grader.intake.blackboard import MANIFEST, read_manifest
from grader.integrity.copies import CopyReport, read_copy_report
from grader.pipeline.items import graded_items, item_names
from grader.policy.late import LatePolicy, apply_late_penalty
from grader.policy.overrides import TOTAL, Overrides, apply_overrides, check_limits, load_overrides, validate
from grader.results.model import LateInfo, OverrideRecord, Points, Result
from grader.results.store import load_result, result_path, save_result
from grader.review.apply import apply_decisions
from grader.review.store import DecisionStore
from grader.review.subjects import COPY_SUBJECT
from grader.rubric.config import Rubric


@dataclass(frozen=True)
class CoursePolicy:
    late: LatePolicy | None
    overrides: Overrides
    decisions: DecisionStore | None = None  # read at each result, so a decision made during a run is applied
    copies: CopyReport | None = None  # the class's copied models, whose decisions apply like the others'

    @classmethod
    def load(
        cls, rubric: Rubric, rubric_path: Path, overrides_path: Path | None = None, results_dir: Path | None = None
    ) -> CoursePolicy:
        """overrides.yaml beside the rubric unless another file is named; a missing file means no overrides.
        With `results_dir`, the review decisions stored there (results/review.sqlite) and the copied models found
        there (results/integrity/copies.json), read once, too."""
        overrides_path = overrides_path or Path(rubric_path).parent / "overrides.yaml"
        overrides = load_overrides(overrides_path)
        check_limits(overrides, item_maxima(rubric))
        decisions = DecisionStore.of_results(results_dir) if results_dir is not None else None
        copies = read_copy_report(results_dir) if results_dir is not None else None
        return cls(late=rubric.late, overrides=overrides, decisions=decisions, copies=copies)

    def check(self, students: Iterable[str]) -> None:
        """An override for a student or item the grader does not know is an error (OverridesError)."""
        validate(self.overrides, set(students), set(item_names()))


def item_maxima(rubric: Rubric) -> dict[str, float]:
    """What each graded item is worth, and the total: the most an override may give."""
    maxima = {item.name: item.max_points(rubric) for item in graded_items()}
    return {**maxima, TOTAL: sum(maxima.values())}


def submission_time(folder: Path) -> tuple[datetime | None, str | None]:
    """(when it was submitted, why that is unknown) from the manifest the Blackboard import wrote."""
    if not (Path(folder) / MANIFEST).is_file():
        return None, "no Blackboard manifest"
    try:
        return read_manifest(folder).submitted_at, None
    except (OSError, ValueError, ValidationError) as error:
        return None, f"unreadable {MANIFEST}: {type(error).__name__}"


def late_penalty(points: Points, folder: Path, policy: LatePolicy | None) -> tuple[dict, LateInfo | None]:
    """Every item loses the same share as the total, so that the items still add up."""
    machine = points.model_dump()
    if policy is None:
        return machine, None
    submitted_at, unknown = submission_time(folder)
    outcome = apply_late_penalty(machine[TOTAL], submitted_at, policy)
    keep = 1 - outcome.penalty_fraction
    after = {item: None if value is None else round(value * keep, 4) for item, value in machine.items()}
    after[TOTAL] = outcome.points_after
    info = LateInfo(
        submitted_at=submitted_at.isoformat() if submitted_at else None,
        days_late=outcome.days_late,
        penalty_fraction=outcome.penalty_fraction,
        reason=outcome.reason + (f" ({unknown})" if unknown and submitted_at is None else ""),
    )
    return after, info


def apply_policy(result: Result, folder: Path, policy: CoursePolicy) -> Result:
    """A copy of `result` with decisions, late, overrides and final_points filled in; `points` is left as it was."""
    stored = policy.decisions.for_student(result.student) if policy.decisions is not None else []
    rescores = policy.decisions.rescores_for(result.student) if policy.decisions is not None else []
    decided, decisions = apply_decisions(result, stored, rescores, policy.copies)
    after_late, late = late_penalty(Points(**decided), folder, policy.late)
    override = policy.overrides.for_student(result.student)
    final = apply_overrides(after_late, override)
    records = [OverrideRecord(**record) for record in override.records()] if override else []
    update = {"late": late, "overrides": records, "decisions": decisions, "final_points": Points(**final)}
    return result.model_copy(update=update, deep=True)


def apply_new_copy_report(
    policy: CoursePolicy,
    report: CopyReport,
    results_dir: Path,
    submissions: Path,
    folders: Mapping[str, Path] | None = None,
) -> list[str]:
    """After the class was compared again (compare_class): the stored results of the students with a TA's decision
    on a possible copy take the new report, so that another pairing re-opens the decision there too. `folders`: a
    student's folder where it is not in `submissions`. The students whose result changed."""
    if policy.decisions is None:
        return []
    policy = replace(policy, copies=report)
    students = sorted({decision.student for decision in policy.decisions.active() if decision.subject == COPY_SUBJECT})
    written = []
    for student in students:
        stored = load_result(result_path(results_dir, student))
        if stored is None:
            continue
        updated = apply_policy(stored, (folders or {}).get(student, Path(submissions) / student), policy)
        if updated.model_dump() != stored.model_dump():
            save_result(updated, results_dir)
            written.append(student)
    return written
