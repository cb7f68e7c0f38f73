"""Grading one submission end to end: intake, sandbox run, scoring, rubric, result."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from grader import __version__
from grader.answers import AnswersResult, find_answers_file, grade_answers
from grader.datasets import LabelledImages
from grader.datasets.pin import load_pinned_split, write_images_for_sandbox
from grader.intake.submission import IntakeError, SubmissionFiles, find_submission_files, submission_hashes
from grader.results.model import BaselineComparison, InputHashes, Points, Result, RunInfo, Timings
from grader.rubric.config import Rubric, split_root
from grader.rubric.points import ItemPoints, exercise1_points
from grader.rubric.points import resolve_anchors as check_anchors
from grader.sandbox.base import SandboxBackend, SandboxUnavailable, get_backend, run_folder
from grader.sandbox.local import bwrap_remedy
from grader.sandbox.protocol import SandboxJob, SandboxOutcome
from grader.sandbox.supervisor import reset_cancel
from grader.scoring.accuracy import InvalidOutput, score


@dataclass
class GradingSession:
    """What every submission in one grading run shares: the rubric, the split, the sandbox."""

    rubric: Rubric
    rubric_path: Path
    split: LabelledImages
    split_sha256: str
    images_file: Path
    backend: SandboxBackend
    baselines: dict[str, float] = field(default_factory=dict)
    hidden_paths: list[Path] = field(default_factory=list)
    timeout_seconds: float | None = None
    diagnose: bool = False

    @property
    def isolation_warning(self) -> str | None:
        if self.backend.is_boundary:
            return None
        return (
            f"student code runs in a plain process ({self.backend.isolation}), which is not a security boundary: "
            "a hostile submission can read the labels and other students' files"
        )


def resolve_split_path(rubric: Rubric, rubric_path: Path, data: Path | None) -> Path:
    """--data / DATA first, then CIFAR10_ROOT, then the rubric's own path."""
    import os

    if data is not None:
        return Path(data)
    if os.environ.get("CIFAR10_ROOT"):
        return Path(os.environ["CIFAR10_ROOT"])
    return split_root(rubric_path, rubric.split)


@contextmanager
def open_session(
    rubric: Rubric,
    rubric_path: Path,
    *,
    data: Path | None = None,
    backend: str | None = None,
    timeout_seconds: float | None = None,
    reference_dir: Path | None = None,
    extra_hidden: list[Path] | None = None,
    resolve_anchors: bool = True,
    isolation: str | None = None,
) -> Iterator[GradingSession]:
    """isolation: 'sandbox' refuses to run student code without bwrap or Docker; 'process' accepts the
    plain-process fallback. None: the rubric's sandbox.isolation."""
    from grader.reference.baselines import baseline_accuracies

    split_path = resolve_split_path(rubric, rubric_path, data)
    split = load_pinned_split(split_path, rubric.split.format, rubric.split.sha256, rubric.split.md5)
    split_sha256 = split.content_sha256()
    baselines = baseline_accuracies(reference_dir or Path("reference"), split_sha256)
    if resolve_anchors:
        check_anchors(rubric.exercise1, baselines)  # a baseline missing for this split stops grading before it starts
    reset_cancel()  # a new session starts with no interrupt pending from an earlier one in this process
    sandbox = get_backend(backend or rubric.sandbox.backend)
    require_boundary(sandbox, isolation or rubric.sandbox.isolation)
    with run_folder("grader-images-") as folder:
        images_file = write_images_for_sandbox(split, folder)
        try:
            yield GradingSession(
                rubric=rubric,
                rubric_path=Path(rubric_path),
                split=split,
                split_sha256=split_sha256,
                images_file=images_file,
                backend=sandbox,
                baselines=baselines,
                hidden_paths=[split_path.resolve(), Path(rubric_path).resolve().parent, *(extra_hidden or [])],
                timeout_seconds=timeout_seconds,
            )
        finally:
            sandbox.close()


def require_boundary(backend: SandboxBackend, isolation: str) -> None:
    """Student code runs without a real sandbox only when someone asked for that in so many words."""
    if backend.is_boundary or isolation == "process":
        return
    raise SandboxUnavailable(
        f"no sandbox that isolates student code is available here, so grading stops before running any. "
        f"{bwrap_remedy()} Or build and start the Docker sandbox (`make sandbox-image`, then --sandbox docker). "
        "To grade anyway in a plain process, which is NOT a security boundary (a hostile submission can read "
        "the labels, other students' files and the grader's results), pass --isolation process "
        "(make ... ISOLATION=process) or set sandbox.isolation: process in the rubric."
    )


def _job(session: GradingSession, files: SubmissionFiles, gpu: str | None) -> SandboxJob:
    settings = session.rubric.sandbox
    limits = settings.limits
    if session.timeout_seconds:
        limits = limits.model_copy(update={"wall_clock_seconds": session.timeout_seconds})
    return SandboxJob(
        submission_dir=files.folder,
        model_file=files.model_file,
        weights_file=files.weights_file,
        images_file=session.images_file,
        batch_size=settings.batch_size,
        device=settings.device,
        gpu=gpu,
        diagnose=session.diagnose,
        limits=limits,
        hidden_paths=[*session.hidden_paths, files.folder.resolve().parent],
    )


def _run_info(outcome: SandboxOutcome) -> RunInfo:
    meta = outcome.meta
    return RunInfo(
        backend=outcome.backend,
        isolation=outcome.isolation,
        device=meta.device if meta else None,
        torch_version=meta.torch_version if meta else None,
        parameter_count=meta.parameter_count if meta else None,
        weights_format=meta.weights_format if meta else None,
        image_digest=outcome.image_digest,
        warnings=meta.warnings if meta else [],
        stdout_tail=outcome.stdout_tail,
        stderr_tail=outcome.stderr_tail,
    )


def compare_with_baselines(accuracy: float, baselines: dict[str, float]) -> list[BaselineComparison]:
    return [
        BaselineComparison(baseline=name, accuracy=value, difference=round(accuracy - value, 6), beats=accuracy > value)
        for name, value in sorted(baselines.items(), key=lambda item: item[1])
    ]


def exercise2_item(rubric: Rubric, folder: Path, files: SubmissionFiles | None) -> tuple[ItemPoints, dict]:
    """Graded whatever happened to Exercise 1: an unreadable answers file fails Exercise 2 alone."""
    answers_file = folder / files.answers_file if files and files.answers_file else find_answers_file(folder)
    graded = grade_answers(answers_file, rubric.exercise2)
    if graded.points is None:
        reason = f"not graded: {graded.error}"
    else:
        answered = sum(1 for question in graded.questions if question.points > 0)
        reason = f"{answered} of {len(graded.questions)} answers earned points ({graded.method})"
        if graded.needs_review:
            reason += "; needs review"
    item = ItemPoints(item="exercise2", points=graded.points or 0.0, max_points=graded.max_points, reason=reason)
    return item, graded.model_dump(mode="json")


class BackgroundScoring:
    """Scores Exercise 2 in a thread of its own, which the grader stops waiting for at a deadline.

    A daemon thread, not an executor's: a student's answers that hang the scorer (a pathological file,
    a stuck library) cost that student's Exercise 2, never the batch, and never block the grader's exit.
    """

    def __init__(self, function, *args) -> None:
        self._started = time.monotonic()
        self._done = threading.Event()
        self._value: tuple[ItemPoints, dict] | None = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self._value = function(*args)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                self._error = error
            finally:
                self._done.set()

        threading.Thread(target=work, name="exercise2", daemon=True).start()

    def result(self, seconds: float, rubric: Rubric) -> tuple[ItemPoints, dict]:
        if not self._done.wait(max(0.0, seconds - (time.monotonic() - self._started))):
            return _exercise2_not_graded(rubric, f"scoring the answers took longer than {seconds:g} s")
        if self._error is not None:
            raise self._error
        return self._value


def _exercise2_not_graded(rubric: Rubric, why: str) -> tuple[ItemPoints, dict]:
    maximum = rubric.exercise2.max_points
    graded = AnswersResult(points=None, max_points=maximum, method="none", error=why)
    item = ItemPoints(item="exercise2", points=0.0, max_points=maximum, reason=f"not graded: {why}; needs review")
    return item, graded.model_dump(mode="json")


def grade_submission(
    folder: Path, session: GradingSession, student: str | None = None, gpu: str | None = None
) -> Result:
    """Never raises for a fault of the submission: such faults become an error result with the reason.

    `gpu` pins the run to one GPU, so that parallel workers spread over the GPUs instead of sharing one.
    """
    started = time.monotonic()
    folder = Path(folder)
    student = student or folder.name
    inputs = InputHashes(
        submission=submission_hashes(folder) if folder.is_dir() else {},
        split=session.split_sha256,
        rubric=session.rubric.content_hash(),
        rubric_sections=session.rubric.section_hashes(),
        grader_version=__version__,
    )
    result = Result(student=student, status="error", split_name=session.rubric.split.name, inputs=inputs)
    files = None
    try:
        files = find_submission_files(folder, student)
        result.files = files.roles()
    except IntakeError as error:
        result.error_kind, result.error = "intake", str(error)
    # Exercise 2 is scored on the host while the sandbox runs; neither waits for the other.
    answers = BackgroundScoring(exercise2_item, session.rubric, folder, files)
    outcome = session.backend.run(_job(session, files, gpu)) if files else None
    exercise2, result.answers = answers.result(session.rubric.exercise2.limits.scoring_timeout_s, session.rubric)
    if outcome:
        _record_outcome(result, outcome, session.split.labels)
    exercise1 = exercise1_item(result, session)
    result.items = [exercise1, exercise2]
    if result.accuracy is not None:
        result.comparison = compare_with_baselines(result.accuracy, session.baselines)
    result.points = Points(
        exercise1=exercise1.points,
        exercise2=exercise2.points,
        total=round(sum(item.points or 0.0 for item in result.items), 2),
    )
    result.final_points = result.points.model_copy()
    result.timings.total_seconds = round(time.monotonic() - started, 3)
    result.timings.graded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


def _record_outcome(result: Result, outcome: SandboxOutcome, labels) -> None:
    """The sandbox's run into the result: its figures, then the scores, or the reason there are none."""
    result.run = _run_info(outcome)
    meta = outcome.meta
    result.timings = Timings(
        load_seconds=meta.load_seconds if meta else None,
        inference_seconds=meta.inference_seconds if meta else None,
        sandbox_seconds=outcome.wall_seconds,
    )
    if outcome.failure:
        result.error_kind, result.error = outcome.failure_kind, outcome.failure
        return
    try:
        scores = score(outcome.logits, labels)
    except InvalidOutput as error:
        result.error_kind, result.error = "output", str(error)
        return
    result.status = "graded"
    result.accuracy = scores.accuracy
    result.per_class_accuracy = scores.per_class_accuracy
    result.confusion_matrix = scores.confusion_matrix
    result.predictions_sha256 = scores.predictions_sha256


def exercise1_item(result: Result, session: GradingSession) -> ItemPoints:
    exercise = session.rubric.exercise1
    if result.accuracy is None:
        return ItemPoints(
            item="exercise1", points=0.0, max_points=exercise.points, reason=f"not graded: {result.error}"
        )
    return exercise1_points(result.accuracy, exercise, session.baselines)
