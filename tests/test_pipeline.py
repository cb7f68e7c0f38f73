"""One submission through the pipeline, with the fake sandbox answering: items, points and totals, baselines,
error results, the job the sandbox is given, rescoring after a rubric change, and the course policy on top.

No student code runs here; tests/test_grade_local.py grades the same way in the real sandbox.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import (
    FAKE_LOGITS_FILE,
    TINY_MODEL,
    BulkZip,
    FakeBackend,
    FakeFailure,
    edit_rubric,
    fake_submission,
    logits_with_accuracy,
    write_baselines,
)

from grader.answers import Exercise2Rubric
from grader.answers.similarity import METHOD_ENV
from grader.intake.blackboard import import_bulk_download
from grader.intake.submission import submission_hashes
from grader.pipeline import CoursePolicy, apply_policy, grade_submission, open_session, rescore
from grader.policy.late import AttemptPolicy
from grader.policy.overrides import OverridesError
from grader.results.model import Result
from grader.rubric.config import load_rubric
from grader.rubric.points import exercise1_points
from grader.sandbox.base import SandboxUnavailable

ANSWERS = (
    "1. Yes: an autoencoder learns a compressed code of its input without labels.\n"
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n"
    "3. They need much data and compute, overfit small sets and are hard to interpret.\n"
    "4. They approximate nonlinear functions that fit the data well.\n"
)


@pytest.fixture(autouse=True)
def tfidf_answers(monkeypatch):
    """The answer scorer every machine has (test_answers.py covers the embeddings)."""
    monkeypatch.setenv(METHOD_ENV, "tfidf")


def grade(rubric_file, folder, backend: FakeBackend, rubric=None, **session_options) -> Result:
    rubric = rubric or load_rubric(rubric_file)
    with open_session(rubric, rubric_file, backend=backend, **session_options) as session:
        return grade_submission(folder, session)


def rescored(rubric_file, stored: Result, folder, sections: tuple[str, ...], **session_options) -> Result:
    backend = FakeBackend()
    with open_session(load_rubric(rubric_file), rubric_file, backend=backend, **session_options) as session:
        result = rescore(stored, folder, session, sections, submission_hashes(folder))
    assert backend.jobs == [], "rescoring never runs the sandbox"
    return result


# --- grading ------------------------------------------------------------------------------------


def test_the_logits_from_the_sandbox_decide_accuracy_items_and_total(rubric_file, submissions, tiny_split):
    backend = FakeBackend({"alice": logits_with_accuracy(tiny_split.labels, 0.75)})
    result = grade(rubric_file, fake_submission(submissions, "alice", ANSWERS), backend)

    assert result.status == "graded" and result.error is None, result.error
    assert result.accuracy == 0.75 and len(result.per_class_accuracy) == 10
    assert sum(map(sum, result.confusion_matrix)) == 40 and result.predictions_sha256
    exercise1, exercise2 = result.items
    assert (exercise1.item, exercise2.item) == ("exercise1", "exercise2")
    assert exercise1 == exercise1_points(0.75, load_rubric(rubric_file).exercise1)
    assert exercise1.points == pytest.approx((0.75 - 0.1) / 0.8 * 100, abs=0.01)
    assert 0 < exercise2.points <= exercise2.max_points == 4
    assert result.points.by_item == {"exercise1": exercise1.points, "exercise2": exercise2.points}
    assert result.points.total == pytest.approx(exercise1.points + exercise2.points)
    assert result.final_points == result.points, "no policy yet: the final points are the machine's"
    assert result.run.backend == "fake" and result.run.weights_format == "state_dict"
    assert set(result.inputs.submission) == {"model.py", "weights.pth", "answers.md"}
    assert result.files == {"model": "model.py", "weights": "weights.pth", "answers": "answers.md"}


def test_the_fake_sandbox_can_read_the_logits_from_a_file_in_the_submission(rubric_file, submissions, tiny_split):
    folder = fake_submission(submissions, "kai")
    np.save(folder / FAKE_LOGITS_FILE, logits_with_accuracy(tiny_split.labels, 0.25))
    assert grade(rubric_file, folder, FakeBackend()).accuracy == 0.25


def test_grading_twice_gives_identical_results_but_for_the_timings(rubric_file, submissions):
    folder = fake_submission(submissions, "bob", ANSWERS)
    first, second = grade(rubric_file, folder, FakeBackend()), grade(rubric_file, folder, FakeBackend())
    assert first.model_dump(exclude={"timings"}) == second.model_dump(exclude={"timings"})


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("syntax", "model.py line 3: SyntaxError: invalid syntax"),
        ("timeout", "exceeded the wall-clock limit of 60 s while loading the model"),
        ("memory", "ran out of memory (limit 3072 MB)"),
    ],
)
def test_a_failed_run_is_an_error_result_with_its_reason_and_the_answers_still_count(
    rubric_file, submissions, kind, message
):
    backend = FakeBackend({"carol": FakeFailure(kind, message)})
    result = grade(rubric_file, fake_submission(submissions, "carol", ANSWERS), backend)

    assert (result.status, result.error_kind, result.error) == ("error", kind, message)
    assert result.accuracy is None and result.comparison == [] and result.confusion_matrix is None
    exercise1, exercise2 = result.items
    assert exercise1.points == 0 and exercise1.reason == f"not graded: {message}"
    assert exercise2.points > 0, "the answers are graded whatever happened to the model"
    assert result.points.total == exercise2.points
    assert Result.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(
    ("logits", "message"),
    [
        (np.zeros((40, 9), np.float32), "has shape [40, 9]; expected [40, 10]"),
        (np.zeros((39, 10), np.float32), "has shape [39, 10]; expected [40, 10]"),
        (np.full((40, 10), np.nan, np.float32), "holds NaN values in 40 of 40 rows"),
    ],
    ids=["nine-classes", "too-few-rows", "nan"],
)
def test_logits_the_host_cannot_score_are_an_output_error(rubric_file, submissions, logits, message):
    result = grade(rubric_file, fake_submission(submissions, "dan"), FakeBackend({"dan": logits}))
    assert (result.status, result.error_kind) == ("error", "output")
    assert message in result.error


def test_a_folder_without_the_contract_files_is_an_intake_error_and_the_sandbox_never_runs(rubric_file, submissions):
    backend = FakeBackend()
    (submissions / "empty").mkdir()
    for folder in (submissions / "nobody", submissions / "empty"):
        result = grade(rubric_file, folder, backend)
        assert (result.status, result.error_kind) == ("error", "intake")
        assert result.items[0].points == 0 and result.points.total == 0
    assert backend.jobs == []


def test_the_sandbox_gets_the_rubric_limits_and_the_images_but_never_the_labels(rubric_file, submissions, tiny_split):
    seen = {}

    def run(job):
        seen["images"] = np.load(job.images_file, allow_pickle=False)  # only while the session lasts
        return logits_with_accuracy(tiny_split.labels, 1.0)

    backend = FakeBackend({"erin": run})
    folder = fake_submission(submissions, "erin")
    result = grade(rubric_file, folder, backend, timeout_seconds=7)

    [job] = backend.jobs
    assert (job.submission_dir, job.model_file, job.weights_file) == (folder, "model.py", "weights.pth")
    assert (job.batch_size, job.device) == (16, "cpu")
    assert job.limits.wall_clock_seconds == 7 and job.limits.memory_mb == 3072
    assert submissions.resolve() in job.hidden_paths, "the other students are hidden from this one"
    assert rubric_file.resolve().parent in job.hidden_paths, "so are the rubric's folder and the split"
    assert np.array_equal(seen["images"], tiny_split.images)
    assert result.accuracy == 1.0


def test_a_backend_that_is_no_boundary_is_refused_unless_a_plain_process_is_asked_for(rubric_file, submissions):
    plain = FakeBackend(boundary=False)
    with pytest.raises(SandboxUnavailable, match="--isolation process"):
        grade(rubric_file, fake_submission(submissions, "fay"), plain)
    with open_session(load_rubric(rubric_file), rubric_file, backend=plain, isolation="process") as session:
        assert "not a security boundary" in session.isolation_warning
        assert grade_submission(submissions / "fay", session).status == "graded"


def test_each_baseline_is_compared_and_can_anchor_the_points(tmp_path, rubric_file, submissions, tiny_split):
    write_baselines(tmp_path / "reference", tiny_split.content_sha256(), resnet20=0.7, lenet5=0.3)
    rubric = load_rubric(rubric_file)
    rubric.exercise1.anchors[1].accuracy, rubric.exercise1.anchors[1].baseline = None, "resnet20"
    backend = FakeBackend({"gus": logits_with_accuracy(tiny_split.labels, 0.5)})
    result = grade(
        rubric_file, fake_submission(submissions, "gus"), backend, rubric, reference_dir=tmp_path / "reference"
    )

    assert [(entry.baseline, entry.beats) for entry in result.comparison] == [("lenet5", True), ("resnet20", False)]
    assert [entry.difference for entry in result.comparison] == [pytest.approx(0.2), pytest.approx(-0.2)]
    assert result.points.exercise1 == pytest.approx((0.5 - 0.1) / (0.7 - 0.1) * 100, abs=0.01)


# --- rescoring a stored result after a rubric change ----------------------------------------------


@pytest.fixture
def stored(rubric_file, submissions, tiny_split) -> Result:
    backend = FakeBackend({"hana": logits_with_accuracy(tiny_split.labels, 0.5)})
    return grade(rubric_file, fake_submission(submissions, "hana", ANSWERS), backend)


def test_changed_exercise1_anchors_rescore_from_the_stored_accuracy(rubric_file, submissions, stored):
    anchors = [{"accuracy": 0.0, "points": 0}, {"accuracy": 0.5, "points": 100}]
    edit_rubric(rubric_file, lambda data: data["exercise1"].update(anchors=anchors))
    result = rescored(rubric_file, stored, submissions / "hana", ("exercise1",))

    assert result.points.exercise1 == 100 != stored.points.exercise1
    assert result.items[1] == stored.items[1], "Exercise 2 keeps its points"
    assert result.points.total == pytest.approx(100 + stored.points.exercise2)
    assert (result.accuracy, result.run, result.timings) == (stored.accuracy, stored.run, stored.timings)
    assert result.inputs.rubric_sections == load_rubric(rubric_file).section_hashes()


def test_a_changed_exercise2_section_regrades_the_answers_and_keeps_the_run(rubric_file, submissions, stored):
    exercise2 = Exercise2Rubric.default().model_dump(mode="json")
    exercise2["questions"][0]["points"] = 2.0
    edit_rubric(rubric_file, lambda data: data.update(exercise2=exercise2))
    result = rescored(rubric_file, stored, submissions / "hana", ("exercise2",))

    assert result.items[1].max_points == 5 and stored.items[1].max_points == 4
    assert result.answers["max_points"] == 5
    assert result.items[0] == stored.items[0] and result.accuracy == stored.accuracy
    assert result.points.total == pytest.approx(result.points.exercise1 + result.points.exercise2)


def test_rescoring_applies_re_measured_baselines_even_when_no_section_changed(
    tmp_path, rubric_file, submissions, stored, tiny_split
):
    write_baselines(tmp_path / "reference", tiny_split.content_sha256(), lenet5=0.6)
    result = rescored(rubric_file, stored, submissions / "hana", (), reference_dir=tmp_path / "reference")
    assert [(entry.baseline, entry.beats) for entry in result.comparison] == [("lenet5", False)]
    assert stored.comparison == [] and result.items == stored.items


# --- the course policy: the late penalty, then the TA's overrides ------------------------------------

LATE = {"due": "2022-11-01T23:59:00-06:00", "penalty_per_day": 0.1, "cap": 0.5}


def imported(submissions, tmp_path, student: str, when: datetime) -> Path:
    """A student's folder as the Blackboard import leaves it: its manifest records the submission time."""
    files = {"model.py": TINY_MODEL.encode(), "weights.pth": b"weights", "answers.md": ANSWERS.encode()}
    bulk = BulkZip()
    bulk.attempt(student, when, files)
    import_bulk_download(bulk.write(tmp_path / f"{student}.zip"), submissions, AttemptPolicy(), None)
    return submissions / student


def test_late_then_overridden_points_go_to_final_and_the_machine_points_stay(
    tmp_path, rubric_file, submissions, tiny_split
):
    edit_rubric(rubric_file, lambda data: data.update(late=LATE))
    overrides = {"ivy": {"items": {"exercise2": 4}, "reason": "answer 3 accepted", "decided_by": "TA Kim"}}
    (rubric_file.parent / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    folder = imported(submissions, tmp_path, "ivy", datetime(2022, 11, 3, 9, 0))  # two days late
    result = grade(rubric_file, folder, FakeBackend({"ivy": logits_with_accuracy(tiny_split.labels, 0.75)}))
    policy = CoursePolicy.load(load_rubric(rubric_file), rubric_file)

    final = apply_policy(result, folder, policy)

    assert final.points == result.points, "the machine's figures are never overwritten"
    assert (final.late.days_late, final.late.penalty_fraction) == (2, pytest.approx(0.2))
    assert final.final_points.exercise1 == pytest.approx(result.points.exercise1 * 0.8, abs=1e-4)
    assert final.final_points.exercise2 == 4, "the override comes after the penalty"
    late_total = result.points.total * 0.8
    assert final.final_points.total == pytest.approx(late_total + 4 - result.points.exercise2 * 0.8, abs=1e-3)
    assert [(entry.item, entry.decided_by) for entry in final.overrides] == [("exercise2", "TA Kim")]
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"ivi": overrides["ivy"]}))
    with pytest.raises(OverridesError, match="ivi: unknown student"):
        CoursePolicy.load(load_rubric(rubric_file), rubric_file, tmp_path / "typo.yaml").check(["ivy"])


def test_without_a_manifest_the_late_policy_says_the_time_is_unknown(rubric_file, submissions, tiny_split):
    edit_rubric(rubric_file, lambda data: data.update(late=LATE))
    folder = fake_submission(submissions, "jo")
    result = grade(rubric_file, folder, FakeBackend())
    final = apply_policy(result, folder, CoursePolicy.load(load_rubric(rubric_file), rubric_file))
    assert final.late.days_late == 0 and final.final_points == result.points
    assert "no Blackboard manifest" in final.late.reason
    assert json.loads(final.model_dump_json())["late"]["submitted_at"] is None
