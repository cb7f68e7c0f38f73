"""A student's check: stage the upload, grade it the instructor's way in the local sandbox, explain."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.check.answers import AnswersStatus, check_answers, scorer_findings
from grader.check.diagnose import interpret
from grader.check.file_checks import Staged, defines_preprocess, source_findings, stage_submission, weights_findings
from grader.check.findings import Finding
from grader.datasets import LabelledImages
from grader.datasets.pinned_split import write_images_for_sandbox
from grader.pipeline import GradingSession, grade_submission, open_session
from grader.results.model import Result
from grader.rubric.config import load_rubric
from grader.rubric.points import exercise1_points
from grader.sandbox.base import run_folder

QUICK_PER_CLASS = 100


@dataclass
class CheckReport:
    folder: Path
    findings: list[Finding] = field(default_factory=list)
    staged: Staged | None = None
    result: Result | None = None
    answers: AnswersStatus | None = None
    images: int = 0
    split_images: int = 0
    quick: bool = False

    @property
    def passed(self) -> bool:
        """Whether the upload runs in grading as it stands (points may still be lost: see points_at_risk)."""
        graded = self.result is not None and self.result.status == "graded"
        return graded and not any(finding.level == "error" for finding in self.findings)

    @property
    def costliest_fix(self) -> Finding | None:
        """The finding whose fix wins back the most Exercise 1 points. The gains overlap (a wrong normalisation
        also scrambles the class order), so the report names the largest, never their sum."""
        costly = [finding for finding in self.findings if finding.points_lost]
        return max(costly, key=lambda finding: finding.points_lost or 0.0, default=None)

    @property
    def exit_code(self) -> int:
        """0 when the submission passes as it stands, 1 when it would fail or lose points for a fixable reason."""
        return 0 if self.passed and self.costliest_fix is None else 1


def quick_subset(split: LabelledImages, per_class: int) -> LabelledImages:
    """The first `per_class` images of each class, in the split's order: the same images every time."""
    chosen = np.sort(np.concatenate([np.flatnonzero(split.labels == c)[:per_class] for c in np.unique(split.labels)]))
    return LabelledImages(images=split.images[chosen], labels=split.labels[chosen], source=f"{split.source} (quick)")


def _session_for_check(session: GradingSession, quick: bool, folder: Path) -> GradingSession:
    changes: dict = {"diagnose": True}
    if quick:
        subset = quick_subset(session.split, QUICK_PER_CLASS)
        changes.update(split=subset, images_file=write_images_for_sandbox(subset, folder))
    return dataclasses.replace(session, **changes)


def check_submission(
    folder: Path,
    staging: Path,
    *,
    rubric_path: Path,
    data: Path | None = None,
    sandbox: str | None = None,
    timeout_seconds: float | None = None,
    quick: bool = False,
) -> CheckReport:
    """Stages the upload under `staging`, grades it with grade_submission and gathers the advice."""
    report = CheckReport(folder=Path(folder), quick=quick)
    rubric = load_rubric(rubric_path)
    report.staged, report.findings = stage_submission(folder, staging)
    if report.staged is None:
        return report
    files = report.staged.files
    model_path = files.folder / files.model_file if files.model_file else None
    if model_path:
        report.findings += source_findings(model_path, Path(folder))
    report.findings += weights_findings(files.folder / files.weights_file)
    backend = "local" if sandbox in (None, "auto") else sandbox
    with (
        # The student runs their own code: the plain-process fallback is acceptable here, and the report says so.
        open_session(
            rubric,
            rubric_path,
            data=data,
            backend=backend,
            timeout_seconds=timeout_seconds,
            isolation="process",
            integrity=False,  # the TA's checks: no course secret on a student's laptop
        ) as session,
        run_folder("grader-check-") as scratch,
    ):
        report.split_images = len(session.split)
        session = _session_for_check(session, quick, scratch)
        report.images = len(session.split)
        report.result = grade_submission(files.folder, session, student=files.student)
        labels, baselines = session.split.labels, session.baselines

    def points_of(accuracy: float) -> float:
        return exercise1_points(accuracy, rubric.exercise1, baselines).points

    found = {finding.code for finding in report.findings}  # the host may have named a fault the sandbox met too
    advice = interpret(report.result, labels, defines_preprocess(model_path), points_of)
    report.findings += [finding for finding in advice if finding.code not in found]
    report.answers, answer_findings = check_answers(files.folder, files.answers_file, rubric)
    report.findings += answer_findings + scorer_findings(report.result.answers)
    return report
