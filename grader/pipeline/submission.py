"""Grading one submission: intake, the sandbox run, scoring, every graded item; and rescoring a stored result.

Both return the machine's figures (`points`); `finish` then adds the course policy on top.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from grader import __version__
from grader.intake.class_folders import is_sample
from grader.intake.model_source import describe_training_at_import
from grader.intake.submission import IntakeError, SubmissionFiles, find_submission_files, submission_hashes
from grader.integrity.checks import KnownLabels, check_integrity
from grader.integrity.fingerprint import fingerprint_sample
from grader.integrity.probes import ProbeSet, build_probes, submission_key
from grader.pipeline.items import GradedItem, ItemInput, ItemScore, graded_items
from grader.pipeline.session import GradingSession
from grader.results.model import BaselineComparison, InputHashes, Points, Result, RunInfo, Timings
from grader.sandbox.base import run_folder
from grader.sandbox.protocol import ErrorKind, SandboxJob, SandboxOutcome
from grader.scoring.accuracy import InvalidOutput, score, validate_logits


class BackgroundScore:
    """One item scored in a daemon thread of its own, which the grader stops waiting for at a deadline.

    Not an executor's thread: input that hangs a scorer (a pathological file, a stuck library) costs
    that student that item, never the batch, and never blocks the grader's exit.
    """

    def __init__(self, item: GradedItem, given: ItemInput) -> None:
        self.item, self.rubric = item, given.session.rubric
        self._started = time.monotonic()
        self._done = threading.Event()
        self._score: ItemScore | None = None
        self._error: BaseException | None = None

        def work() -> None:
            try:
                self._score = item.score(given)
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                self._error = error
            finally:
                self._done.set()

        threading.Thread(target=work, name=f"score-{item.name}", daemon=True).start()

    def result(self, seconds: float | None = None) -> ItemScore:
        seconds = self.item.deadline_seconds(self.rubric) if seconds is None else seconds
        if not self._done.wait(max(0.0, seconds - (time.monotonic() - self._started))):
            return self.item.not_graded(self.rubric, f"scoring took longer than {seconds:g} s")
        if self._error is not None:
            raise self._error
        return self._score


def grade_submission(
    folder: Path, session: GradingSession, student: str | None = None, gpu: str | None = None
) -> Result:
    """Never raises for a fault of the submission: such faults become an error result with the reason.

    `gpu` pins the run to one GPU, so that parallel workers spread over the GPUs instead of sharing one.
    """
    started = time.monotonic()
    folder = Path(folder)
    student = student or folder.name
    inputs = _inputs(folder, session)
    result = Result(student=student, status="error", split_name=session.rubric.split.name, inputs=inputs)
    result.sample = is_sample(folder)
    files = None
    try:
        files = find_submission_files(folder, student)
        result.files, result.notes = files.roles(), list(files.notes)
    except IntakeError as error:
        result.error_kind, result.error = "intake", str(error)
    given = ItemInput(session=session, folder=folder, files=files, result=result)
    # The items that need no model run are scored on the host while the sandbox runs.
    items = graded_items()
    beside = {item.name: BackgroundScore(item, given) for item in items if not item.needs_sandbox}
    if files:
        with shown_images(session, inputs.submission) as (images_file, probes):
            outcome = session.backend.run(_job(session, files, gpu, images_file))
        _record_outcome(result, outcome, session, probes)
        if outcome.failure_phase == "import" and files.model_file:
            found = describe_training_at_import(files.folder / files.model_file)
            result.error += f" ({found})" if found else ""
    scores = {item.name: beside[item.name].result() if item.name in beside else item.score(given) for item in items}
    _set_items(result, scores, session.baselines)
    result.final_points = result.points.model_copy()
    result.timings.total_seconds = round(time.monotonic() - started, 3)
    result.timings.graded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return result


def rescore(
    stored: Result, folder: Path, session: GradingSession, sections: tuple[str, ...], submission: dict[str, str]
) -> Result:
    """The stored result brought up to the current rubric without running the sandbox.

    Items whose rubric section changed are scored again (from the stored accuracy where they need the
    sandbox); the others keep their stored points. Baselines are always re-applied, so re-measured
    baselines move the points too.
    """
    result = stored.model_copy(deep=True)
    try:
        files = find_submission_files(folder, result.student)
    except IntakeError:
        files = None
    given = ItemInput(session=session, folder=Path(folder), files=files, result=result)
    kept = {entry.item: entry for entry in result.items}
    scores = {}
    for item in graded_items():
        if item.needs_sandbox:
            scores[item.name] = item.score(given)
        elif item.rubric_section in sections or item.name not in kept:
            scores[item.name] = BackgroundScore(item, given).result()  # the same deadline as in grading
        else:
            scores[item.name] = ItemScore(kept[item.name])
    _set_items(result, scores, session.baselines, keep_details=True)
    rubric = session.rubric
    result.inputs = result.inputs.model_copy(
        update={"submission": submission, "rubric": rubric.content_hash(), "rubric_sections": rubric.section_hashes()}
    )
    return result


def _inputs(folder: Path, session: GradingSession) -> InputHashes:
    return InputHashes(
        submission=submission_hashes(folder) if folder.is_dir() else {},
        split=session.split_sha256,
        rubric=session.rubric.content_hash(),
        rubric_sections=session.rubric.section_hashes(),
        grader_version=__version__,
    )


def _set_items(
    result: Result, scores: dict[str, ItemScore], baselines: dict[str, float], keep_details: bool = False
) -> None:
    """Items, details and the machine's points (an item -> points map plus their total) onto the result."""
    result.items = [scores[item.name].points for item in graded_items()]
    for item in graded_items():
        details = scores[item.name].details
        if item.details_field and (details is not None or not keep_details):
            setattr(result, item.details_field, details)
    if result.accuracy is not None:
        result.comparison = compare_with_baselines(result.accuracy, baselines)
    by_item = {entry.item: entry.points for entry in result.items}
    result.points = Points(**by_item, total=round(sum(points or 0.0 for points in by_item.values()), 2))


def compare_with_baselines(accuracy: float, baselines: dict[str, float]) -> list[BaselineComparison]:
    return [
        BaselineComparison(baseline=name, accuracy=value, difference=round(accuracy - value, 6), beats=accuracy > value)
        for name, value in sorted(baselines.items(), key=lambda item: item[1])
    ]


@contextmanager
def shown_images(session: GradingSession, submission: dict[str, str]) -> Iterator[tuple[Path, ProbeSet | None]]:
    """The .npy the sandbox reads: the split as it is, or, with integrity checks on, the submission's own
    mix of test images in a secret order, perturbed copies, training and private images."""
    if session.secret is None:
        yield session.images_file, None
        return
    integrity = session.rubric.integrity
    train = session.train_sample.images if session.train_sample is not None else None
    private = session.private_sample.images if session.private_sample is not None else None
    key = submission_key(session.secret, submission, session.split_sha256)
    probes = build_probes(
        session.split.images, train, key=key, permute=integrity.permute_order,
        sample_size=integrity.perturbation_sample, private_images=private,
    )  # fmt: skip
    if list(probes.parts) == ["test"] and not integrity.permute_order:
        yield session.images_file, probes  # the split as it is: no file of its own to write
        return
    with run_folder("grader-shown-") as folder:
        path = folder / "images.npy"
        np.save(path, probes.images, allow_pickle=False)
        path.chmod(0o644)
        yield path, probes


def _job(session: GradingSession, files: SubmissionFiles, gpu: str | None, images_file: Path) -> SandboxJob:
    settings = session.rubric.sandbox
    limits = settings.limits
    if session.timeout_seconds:
        limits = limits.model_copy(update={"wall_clock_seconds": session.timeout_seconds})
    return SandboxJob(
        submission_dir=files.folder,
        model_file=files.model_file,
        weights_file=files.weights_file,
        images_file=images_file,
        batch_size=settings.batch_size,
        device=settings.device,
        gpu=gpu,
        diagnose=session.diagnose,
        limits=limits,
        hidden_paths=[*session.hidden_paths, files.folder.resolve().parent],
    )


def _record_outcome(
    result: Result, outcome: SandboxOutcome, session: GradingSession, probes: ProbeSet | None = None
) -> None:
    """The sandbox's run into the result: its figures, then the scores, or the reason there are none."""
    meta = outcome.meta
    result.run = RunInfo(
        backend=outcome.backend,
        isolation=outcome.isolation,
        device=meta.device if meta else None,
        torch_version=meta.torch_version if meta else None,
        parameter_count=meta.parameter_count if meta else None,
        weights_format=meta.weights_format if meta else None,
        image_digest=outcome.image_digest,
        cold_rerun=outcome.cold_rerun,
        warnings=meta.warnings if meta else [],
        diagnostics=meta.diagnostics if meta else None,
        stdout_tail=outcome.stdout_tail,
        stderr_tail=outcome.stderr_tail,
    )
    result.timings = Timings(
        load_seconds=meta.load_seconds if meta else None,
        inference_seconds=meta.inference_seconds if meta else None,
        sandbox_seconds=outcome.wall_seconds,
    )
    if outcome.failure:
        result.error_kind, result.error = (outcome.failure_kind or ErrorKind.ERROR).value, outcome.failure
        return
    labels, logits = session.split.labels, outcome.logits
    try:
        if probes is not None:
            validate_logits(logits, len(probes.order))
            logits = probes.split_logits(logits)["test"]
        scores = score(logits, labels)
    except InvalidOutput as error:
        result.error_kind, result.error = ErrorKind.OUTPUT.value, str(error)
        return
    result.status = "graded"
    result.accuracy = scores.accuracy
    result.per_class_accuracy = scores.per_class_accuracy
    result.confusion_matrix = scores.confusion_matrix
    result.predictions_sha256 = scores.predictions_sha256
    result.predictions = scores.predictions
    if probes is not None:
        result.integrity = check_integrity(
            probes, outcome.logits, labels, _known_labels(session), session.rubric.integrity,
            session.integrity_not_measured,
        )  # fmt: skip


def _known_labels(session: GradingSession) -> KnownLabels:
    """The labels of the training and private samples, and the course's fingerprint images (the same for every
    student, so that the class can be compared)."""
    size = session.rubric.integrity.fingerprint_sample
    fingerprint = fingerprint_sample(session.secret, session.split_sha256, len(session.split), size) if size else None
    return KnownLabels(
        train=session.train_sample.labels if session.train_sample is not None else None,
        private=session.private_sample.labels if session.private_sample is not None else None,
        fingerprint=fingerprint,
    )
