"""What `grade --all` does for each student, decided from the stored result's input hashes.

Running the sandbox is the only expensive step, so it is reserved for changes that can alter
a model's predictions: the submission's files, the test split, the sandbox settings or the
grader itself. A changed points rule is applied to the stored accuracy or answers instead,
and a changed course policy (late, export) only moves the final points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader import __version__
from grader.intake.blackboard import MANIFEST
from grader.intake.class_folders import student_folders
from grader.intake.submission import submission_hashes
from grader.pipeline.items import graded_items
from grader.results.model import Result
from grader.results.store import load_result, result_path

Action = Literal["grade", "rescore", "keep"]

# The import's own record: its submission time feeds the late policy, never the model's predictions.
NOT_GRADED_FILES = frozenset({MANIFEST})
# What the sandbox is shown, or what is read from its logits: a change reruns it.
SANDBOX_SECTIONS = ("split", "sandbox", "integrity", "train_split", "private_split")


@dataclass(frozen=True)
class CurrentInputs:
    """The inputs every student shares in this run; each student adds the hashes of their files."""

    split: str
    rubric: str
    rubric_sections: dict[str, str]
    grader_version: str = __version__


@dataclass
class StudentPlan:
    student: str
    folder: Path
    action: Action
    reasons: list[str] = field(default_factory=list)
    rescore: tuple[str, ...] = ()
    stored: Result | None = None
    submission: dict[str, str] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        return "; ".join(self.reasons) or "unchanged"


def changed_files(before: dict[str, str], now: dict[str, str]) -> list[str]:
    names = (set(before) | set(now)) - NOT_GRADED_FILES
    return sorted(name for name in names if before.get(name) != now.get(name))


def changed_sections(before: dict[str, str], now: dict[str, str]) -> list[str]:
    return sorted(key for key in set(before) | set(now) if before.get(key) != now.get(key))


def plan_student(folder: Path, stored: Result | None, current: CurrentInputs, *, force: bool = False) -> StudentPlan:
    folder = Path(folder)
    submission = submission_hashes(folder)
    plan = StudentPlan(student=folder.name, folder=folder, action="grade", stored=stored, submission=submission)
    if force:
        plan.reasons.append("--force")
        return plan
    if stored is None:
        plan.reasons.append("no result yet")
        return plan
    inputs = stored.inputs
    if inputs.grader_version != current.grader_version:
        plan.reasons.append(f"grader {inputs.grader_version} -> {current.grader_version}")
    if inputs.split != current.split:
        plan.reasons.append("the test split changed")
    files = changed_files(inputs.submission, submission)
    if files:
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        plan.reasons.append(f"changed files: {shown}")
    sections = changed_sections(inputs.rubric_sections, current.rubric_sections)
    rerun = [name for name in sections if name in SANDBOX_SECTIONS]
    if plan.reasons or rerun:
        plan.reasons += [f"rubric {name} changed" for name in rerun]
        return plan
    plan.reasons = [f"rubric {name} changed" for name in sections]
    item_sections = {item.rubric_section for item in graded_items()}
    plan.rescore = tuple(section for section in sections if section in item_sections)
    plan.action = "rescore" if plan.rescore else "keep"
    return plan


def plan_class(
    submissions_dir: Path, results_dir: Path, current: CurrentInputs, *, force: bool = False
) -> list[StudentPlan]:
    """A stored result that cannot be read (half an old format, hand-edited) counts as none."""
    return [
        plan_student(folder, load_result(result_path(results_dir, folder.name)), current, force=force)
        for folder in student_folders(submissions_dir)
    ]
