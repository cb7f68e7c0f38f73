"""Every component per student in one CSV for the instructor: machine points, final points,
late penalty, overrides, review decisions, errors (the run's, and an answers file that could not be read),
what still waits for a TA's decision, per-class accuracy and the grade that goes to the LMS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from grader.datasets.base import CIFAR10_CLASSES
from grader.export.base import (
    TOTAL,
    Exporter,
    ExportJob,
    ExportSettings,
    defuse_formula,
    export_stem,
    final_points,
    grade_cell,
    index_results,
    write_bytes_atomic,
)


def component_row(
    student: str,
    result: Mapping[str, Any] | None,
    roster: set[str],
    settings: ExportSettings,
    waiting: Mapping[str, Sequence[str]] | None = None,
) -> dict:
    """`waiting`: student -> what still waits for a TA (ExportJob.waiting); None leaves its column out."""
    row: dict[str, Any] = {"student": student, "in_roster": student in roster}
    if result is None:
        row.update(status="missing", grade=grade_cell(None, settings))
        return row
    row["status"] = result.get("status")
    row["accuracy"] = result.get("accuracy")
    machine, final = dict(result.get("points") or {}), final_points(result)
    for item in _items(machine, final):
        row[f"points_{item}"] = machine.get(item)
        row[f"final_{item}"] = final.get(item)
    late = result.get("late") or {}
    row["days_late"] = late.get("days_late")
    row["late_penalty_fraction"] = late.get("penalty_fraction")
    row["late_reason"] = late.get("reason")
    row["overrides"] = "; ".join(
        f"{entry.get('item')}={entry.get('points')} by {entry.get('decided_by')}: {entry.get('reason')}"
        for entry in result.get("overrides") or []
    )
    row["review"] = "; ".join(_review(entry) for entry in result.get("decisions") or [])
    row["error"] = result.get("error")
    row["answers_error"] = (result.get("answers") or {}).get("error")
    if waiting is not None:
        row["review_waiting"] = "; ".join(waiting.get(student, ()))
    row["grade"] = grade_cell(result, settings)
    per_class = result.get("per_class_accuracy") or []
    names = CIFAR10_CLASSES if len(per_class) == len(CIFAR10_CLASSES) else [str(i) for i in range(len(per_class))]
    row.update({f"accuracy_{name}": value for name, value in zip(names, per_class, strict=True)})
    return row


def _review(entry: Mapping[str, Any]) -> str:
    """One decision of grader review: `q3=0.5 by Kim: comment`, marked when the answer changed since."""
    points = "unchanged" if entry.get("points") is None else entry.get("points")
    reopened = " (re-opened: changed since)" if entry.get("status") == "reopened" else ""
    comment = f": {entry.get('comment')}" if entry.get("comment") else ""
    return f"{entry.get('subject')}={points} by {entry.get('decided_by')}{reopened}{comment}"


def _items(machine: dict, final: dict) -> list[str]:
    """Rubric items in their order, the total last."""
    items = list(dict.fromkeys([*machine, *final]))
    return [item for item in items if item != TOTAL] + ([TOTAL] if TOTAL in items else [])


class FullCsvExporter(Exporter):
    description = "every component per student, for the instructor (UTF-8 CSV with BOM, for Excel)"

    def write(self, job: ExportJob) -> list[Path]:
        by_student, roster, settings = index_results(job.results), job.roster, job.settings
        known = set(roster)
        rows = [
            component_row(student, by_student.get(student), known, settings, job.waiting)
            for student in dict.fromkeys(roster)
        ]
        frame = pd.DataFrame(rows).map(defuse_formula)
        if "days_late" in frame:
            frame["days_late"] = frame["days_late"].astype("Int64")
        path = job.out_dir / f"{export_stem(settings)}_full.csv"
        text = frame.to_csv(index=False, float_format="%.10g")
        return [write_bytes_atomic(path, text.encode("utf-8-sig"))]
