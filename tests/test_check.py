"""Students' self-check and pack: every mistake the advice names is made here with a real file."""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import unittest.mock
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import HOSTILE, assert_printed_literally, bwrap_available, require_tool, terminal, write_npz, write_rubric
from rich.console import Console

from grader.answers.similarity import METHOD_ENV
from grader.answers.similarity.base import METHODS
from grader.check import selfcheck
from grader.check.answers import INSTALL_SCORER, AnswersStatus, scorer_finding
from grader.check.diagnose import interpret, normalisation_finding
from grader.check.file_checks import Staged
from grader.check.findings import Finding
from grader.check.report import render_check
from grader.check.selfcheck import CheckReport, check_submission
from grader.check.verbs import check_main, pack_main
from grader.datasets import LabelledImages
from grader.intake.submission import SubmissionFiles
from grader.results.model import InputHashes, Result, RunInfo
from grader.sandbox.protocol import NormalisationProbe

pytestmark = pytest.mark.integration  # nearly every check runs the submission in the local sandbox

# Each class is one grey level: a model that reads the mean brightness classifies it perfectly,
# and only if it sees the images normalised as it was "trained".
LEVELS = np.arange(10) * 24 + 12
BRIGHTNESS_MODEL = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(1, 10)

    def forward(self, x):
        return self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1))
"""
ANSWERS = "1. Yes, autoencoders.\n\n2. Overfitting.\n\n3. Pooling.\n\n4. Batch size.\n"


@pytest.fixture(scope="module")
def grey_split() -> LabelledImages:
    rng = np.random.default_rng(1)
    labels = np.arange(60) % 10
    images = LEVELS[labels][:, None, None, None] + rng.integers(-3, 4, size=(60, 32, 32, 3))
    return LabelledImages(images=images.astype(np.uint8), labels=labels.astype(np.int64), source="grey")


@pytest.fixture
def rubric(tmp_path, grey_split) -> Path:
    return write_rubric(tmp_path / "rubric.yaml", write_npz(grey_split, tmp_path / "grey.npz"), grey_split)


def brightness_weights(mean=0.5, std=0.5, order=range(10)) -> dict:
    """Nearest-centre on the mean pixel: logit_k = 2 c_k m - c_k^2, scaled, for inputs (x/255 - mean) / std."""
    centres = torch.tensor([(LEVELS[k] / 255 - mean) / std for k in order], dtype=torch.float32)
    return {"fc.weight": (40 * 2 * centres).unsqueeze(1), "fc.bias": -40 * centres**2}


def submission(root: Path, name: str, source: str = BRIGHTNESS_MODEL, weights=None, answers=ANSWERS) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(textwrap.dedent(source))
    torch.save(brightness_weights() if weights is None else weights, folder / "weights.pth")
    if answers is not None:
        (folder / "answers.md").write_text(answers)
    return folder


def run_check(rubric, folder, tmp_path, **options):
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=tmp_path))
    return check_submission(folder, staging, rubric_path=rubric, sandbox="local", **options)


def codes(report) -> set[str]:
    return {finding.code for finding in report.findings}


def finding(report, code):
    return next(f for f in report.findings if f.code == code)


def test_a_correct_submission_passes_with_the_grader_figures(rubric, tmp_path):
    report = run_check(rubric, submission(tmp_path, "good"), tmp_path)
    assert report.passed, report.findings
    assert report.result.accuracy == 1.0 and report.result.items[0].points == 100
    assert report.answers.found == [1, 2, 3, 4] and not report.answers.missing
    assert not codes(report) - {"left-out", "scorer"}, report.findings


def test_check_command_prints_accuracy_points_and_answers(rubric, tmp_path):
    console = Console(record=True, width=200)
    assert check_main(submission=submission(tmp_path, "cli"), rubric=rubric, sandbox="local", console=console) == 0
    text = console.export_text()
    assert "Accuracy: 100.00% on all 60 images" in text
    assert "Exercise 1: 100 / 100 points" in text and "has all 4 answers" in text and "PASS" in text


def test_quick_check_runs_a_fixed_subset_and_says_so(rubric, tmp_path, monkeypatch):
    monkeypatch.setattr(selfcheck, "QUICK_PER_CLASS", 2)
    console = Console(record=True, width=300)
    folder = submission(tmp_path, "quick")
    assert check_main(submission=folder, rubric=rubric, sandbox="local", quick=True, console=console) == 0
    text = console.export_text()
    assert "on a fixed quick subset of 20 of the 60 images" in text and "estimate" in text


def test_whole_pickled_model_is_a_warning_that_shows_how_to_save_the_state_dict(rubric, tmp_path):
    folder = submission(tmp_path, "whole")
    import sys
    import types

    module = types.ModuleType("student_model")
    exec(compile(BRIGHTNESS_MODEL, "student_model", "exec"), module.__dict__)
    sys.modules["student_model"] = module
    try:
        model = module.Net()
        model.load_state_dict(brightness_weights())
        torch.save(model, folder / "weights.pth")
    finally:
        del sys.modules["student_model"]
    report = run_check(rubric, folder, tmp_path)
    assert report.passed and report.result.accuracy == 1.0
    assert "torch.save(model.state_dict()" in finding(report, "whole-model").hint


def test_weights_saved_from_gpu_tensors_are_flagged(rubric, tmp_path):
    folder = submission(tmp_path, "gpu")
    # torch.save records each storage's device; this is what a save from a CUDA model writes.
    with unittest.mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        torch.save(brightness_weights(), folder / "weights.pth")
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(folder / "weights.pth", weights_only=True)  # what happens on a laptop without a GPU
    report = run_check(rubric, folder, tmp_path)
    assert report.passed and report.result.accuracy == 1.0
    assert "cuda:0" in finding(report, "gpu-tensors").message


def test_batchnorm_saved_before_training_is_flagged(rubric, tmp_path):
    source = BRIGHTNESS_MODEL.replace(
        "self.fc = nn.Linear(1, 10)", "self.fc = nn.Linear(1, 10)\n        self.bn = nn.BatchNorm2d(3)"
    ).replace("x.mean(", "self.bn(x).mean(")
    weights = {**brightness_weights(), **{f"bn.{k}": v for k, v in torch.nn.BatchNorm2d(3).state_dict().items()}}
    report = run_check(rubric, submission(tmp_path, "bn", source, weights), tmp_path)
    assert "bn" in finding(report, "batchnorm-init").message


def test_dropout_left_active_at_inference_is_flagged(rubric, tmp_path):
    source = BRIGHTNESS_MODEL.replace(
        "return self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1))",
        "return nn.functional.dropout(self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1)), 0.5)",
    )
    report = run_check(rubric, submission(tmp_path, "drop", source), tmp_path)
    assert "F.dropout(x, p, training=self.training)" in finding(report, "dropout-active").hint, report


def test_forward_that_switches_back_to_training_mode_is_flagged(rubric, tmp_path):
    source = textwrap.dedent(BRIGHTNESS_MODEL).replace(
        "self.fc = nn.Linear(1, 10)", "self.fc = nn.Linear(1, 10)\n        self.bn = nn.BatchNorm1d(1)"
    )
    source = source.replace(
        "return self.fc(x.mean(dim=(1, 2, 3)).unsqueeze(1))",
        "self.train()\n        return self.fc(self.bn(x.mean(dim=(1, 2, 3)).unsqueeze(1)))",
    )
    weights = {**brightness_weights(), **{f"bn.{k}": v for k, v in torch.nn.BatchNorm1d(1).state_dict().items()}}
    weights["bn.num_batches_tracked"] = torch.tensor(5)
    weights["bn.running_var"] = torch.tensor([2.0])
    report = run_check(rubric, submission(tmp_path, "train", source, weights), tmp_path)
    assert {"train-mode", "batchnorm-training"} <= codes(report), report.findings


def test_normalisation_differing_from_training_is_found_with_the_fix(rubric, tmp_path):
    folder = submission(tmp_path, "norm", weights=brightness_weights(mean=0.0, std=1.0))
    report = run_check(rubric, folder, tmp_path)
    assert report.result.accuracy < 0.5
    hit = finding(report, "normalisation")
    assert "with inputs in [0, 1] (ToTensor() without Normalize) it scores 100.0% (100 points, +" in hit.message
    assert "def preprocess(images)" in hit.hint
    (folder / "model.py").write_text(BRIGHTNESS_MODEL + "\n\n" + textwrap.dedent(hit.hint.split("\n", 1)[1]))
    fixed = run_check(rubric, folder, tmp_path)
    assert fixed.result.accuracy == 1.0 and "normalisation" not in codes(fixed)


def test_a_different_class_order_is_named(rubric, tmp_path):
    order = [1, 0, 2, 3, 4, 5, 6, 7, 9, 8]
    report = run_check(rubric, submission(tmp_path, "order", weights=brightness_weights(order=order)), tmp_path)
    assert report.result.accuracy == pytest.approx(0.6)
    message = finding(report, "class-order").message
    assert "output 0 (airplane) is really automobile" in message and "100%" in message


MNIST_LENET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))
"""


def _weights_of(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "model", "exec"), namespace)
    return namespace["Net"]().state_dict()


def test_a_model_built_for_28x28_mnist_is_explained(rubric, tmp_path):
    report = run_check(rubric, submission(tmp_path, "mnist", MNIST_LENET, _weights_of(MNIST_LENET)), tmp_path)
    assert not report.passed and report.result.error_kind == "forward"
    hit = finding(report, "input-size")
    assert hit.level == "error" and "[N, 1, 28, 28]" in hit.message and "28x28 MNIST" in hit.message


def test_windows_paths_in_model_py_are_flagged(rubric, tmp_path):
    source = BRIGHTNESS_MODEL + '\nWEIGHTS = "C:\\\\Users\\\\me\\\\lab8\\\\weights.pth"\n'
    report = run_check(rubric, submission(tmp_path, "win", source), tmp_path)
    assert report.passed  # only a string: it does no harm until it is opened
    assert "C:\\\\Users" in finding(report, "machine-path").message

    opening = BRIGHTNESS_MODEL + '\nstate = torch.load("C:\\\\Users\\\\me\\\\weights.pth")\n'
    report = run_check(rubric, submission(tmp_path, "win2", opening), tmp_path)
    assert not report.passed and report.result.error_kind == "import"
    assert "machine-path" in codes(report)


def test_model_py_that_trains_at_import_is_stopped_with_the_hint(rubric, tmp_path):
    source = BRIGHTNESS_MODEL + textwrap.dedent(
        """
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        for epoch in range(10**9):
            loss = model(torch.rand(64, 3, 32, 32)).sum()
            loss.backward()
            optimizer.step()
        """
    )
    report = run_check(rubric, submission(tmp_path, "trainer", source), tmp_path, timeout_seconds=12)
    assert report.result.error_kind == "timeout"
    assert "train or download at import time" in report.result.error
    assert "line 18: backward()" in finding(report, "trains-at-import").message


def test_a_local_import_that_is_not_uploaded_fails_the_check(rubric, tmp_path):
    folder = submission(tmp_path, "helper", "from helpers import Net\n")
    (folder / "helpers.py").write_text(textwrap.dedent(BRIGHTNESS_MODEL))
    report = run_check(rubric, folder, tmp_path)
    assert not report.passed and report.result.error_kind == "import"
    assert finding(report, "local-import").level == "error"


def test_missing_answers_are_reported(rubric, tmp_path):
    report = run_check(rubric, submission(tmp_path, "ans", answers="1. Yes.\n\n2. No.\n\n4. Maybe.\n"), tmp_path)
    assert report.answers.missing == [3] and "question 3" in finding(report, "answers").message
    report = run_check(rubric, submission(tmp_path, "noans", answers=None), tmp_path)
    assert not report.passed and finding(report, "answers").level == "error"


def test_unnumbered_answers_and_answers_in_another_language_are_warned_about(rubric, tmp_path):
    unnumbered = "Yes, autoencoders.\n\nOverfitting.\n\nPooling.\n\nBatch size.\n"
    report = run_check(rubric, submission(tmp_path, "plain", answers=unnumbered), tmp_path)
    assert report.answers.found == [1, 2, 3, 4]
    assert "not numbered" in finding(report, "answers").message and finding(report, "answers").level == "warning"
    sentence = "Ja, ein neuronales Netz kann die Daten ohne Etiketten komprimieren und die Struktur lernen."
    german = "".join(f"{n}. {sentence}\n\n" for n in range(1, 5))
    report = run_check(rubric, submission(tmp_path, "german", answers=german), tmp_path)
    messages = [f.message for f in report.findings if f.code == "answers"]
    assert messages == [
        "answers.md: not written in English; the automatic grading reads English only, so a TA grades these answers"
    ]
    assert report.passed  # a warning: the upload is still complete


# --- pack ----------------------------------------------------------------------------------


def test_pack_writes_the_contract_files_flat(rubric, tmp_path):
    folder = submission(tmp_path, "packer")
    (folder / "weights.pth").rename(folder / "best_model.pt")
    (folder / "notes.txt").write_text("scratch")
    output = tmp_path / "out" / "packer.zip"
    assert pack_main(submission=folder, output=output, rubric=rubric, sandbox="local", console=Console()) == 0
    with zipfile.ZipFile(output) as archive:
        assert sorted(archive.namelist()) == ["answers.md", "model.py", "weights.pt"]  # own extension kept


def test_pack_refuses_a_submission_that_fails_the_check(rubric, tmp_path):
    folder = submission(tmp_path, "broken", MNIST_LENET, _weights_of(MNIST_LENET))
    output = tmp_path / "broken.zip"
    console = Console(record=True, width=200)
    assert pack_main(submission=folder, output=output, rubric=rubric, sandbox="local", console=console) == 1
    assert not output.exists() and "not packed" in console.export_text()


def test_packed_zip_goes_through_the_blackboard_import_and_grades_the_same(rubric, tmp_path):
    require_tool(
        bwrap_available(), "grading in the local sandbox needs bubblewrap (TA grading refuses a plain process)"
    )
    from helpers import BulkZip

    from grader.intake.blackboard import import_bulk_download
    from grader.pipeline import grade_submission, open_session
    from grader.policy.late import AttemptPolicy
    from grader.rubric.config import load_rubric

    folder = submission(tmp_path, "jdoe3")
    packed = tmp_path / "lab8 jdoe3 (final).zip"
    assert pack_main(submission=folder, output=packed, rubric=rubric, sandbox="local", console=Console()) == 0
    bulk = BulkZip()
    bulk.attempt("jdoe3", datetime(2022, 11, 1, 20, 0), {packed.name: packed.read_bytes()})
    report = import_bulk_download(bulk.write(tmp_path / "gradebook.zip"), tmp_path / "subs", AttemptPolicy(), None)
    assert report.students[0].status == "imported", report
    imported = tmp_path / "subs" / "jdoe3"
    assert {"model.py", "weights.pth", "answers.md"} <= {p.name for p in imported.iterdir()}
    with open_session(load_rubric(rubric), rubric, backend="local") as session:
        result = grade_submission(imported, session)
    assert result.status == "graded" and result.accuracy == 1.0


def test_check_report_prints_what_the_submission_wrote_literally(tmp_path):
    result = Result(
        student=HOSTILE,
        status="error",
        accuracy=0.5,
        split_name=HOSTILE,
        error=HOSTILE,
        error_kind=HOSTILE,
        run=RunInfo(backend="local", isolation=HOSTILE, device=HOSTILE, warnings=[f"{HOSTILE}: {HOSTILE}"]),
        inputs=InputHashes(grader_version="1"),
    )
    files = SubmissionFiles(
        student="s", folder=tmp_path, model_file="model.py", weights_file="w.pth", answers_file=None
    )
    report = CheckReport(
        folder=tmp_path / "[link=x]x",
        staged=Staged(files=files, sources={"model.py": HOSTILE}),
        result=result,
        answers=AnswersStatus(file=HOSTILE, questions=[1, 2], found=[1]),
        findings=[
            *interpret(result, np.arange(10), custom_preprocess=False, points_of=lambda accuracy: 100 * accuracy),
            Finding(level="error", code="answers", message=HOSTILE, hint=HOSTILE),
        ],
    )
    console = terminal()
    render_check(report, console)
    output = console.file.getvalue()
    assert_printed_literally(output)
    # The warning and device are not of the runner's form: dropped, the warning counted as unrecognised.
    assert "[link=x]x" in output and output.count("[link=http://evil]click[/link]") >= 7


def test_check_command_prints_a_folder_name_and_an_error_from_the_student_literally(rubric, tmp_path):
    folder = submission(tmp_path, "[red]x [link=x]y \x1b[31mEVIL", source=f"raise RuntimeError({HOSTILE!r})\n")
    console = terminal()
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 1
    output = console.file.getvalue()
    assert_printed_literally(output)
    assert "[red]x [link=x]y" in output


# --- the student's laptop: no bubblewrap, the project's own layout ------------------------------


def test_check_asks_the_courses_own_questions(tmp_path, grey_split):
    from grader.answers import Exercise2Rubric

    course = Exercise2Rubric.default().model_dump(mode="json")
    course["questions"] = course["questions"][:2]
    course["questions"][1]["number"] = 7
    rubric = write_rubric(
        tmp_path / "rubric.yaml", write_npz(grey_split, tmp_path / "grey.npz"), grey_split, exercise2=course
    )
    answers = "1. Yes, an autoencoder learns without labels.\n\n7. Features are learned from data.\n"
    report = run_check(rubric, submission(tmp_path, "course", answers=answers), tmp_path)
    assert report.answers.questions == [1, 7]
    assert report.answers.missing == []


TORCHVISION_MODEL = BRIGHTNESS_MODEL.replace(
    "import torch\n",
    "import torch\nimport torchvision\n\n"
    "# Native torchvision operators must load in the sandbox too.\n"
    "torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)\n",
    1,
)


def test_laptop_check_without_bubblewrap_passes_a_torchvision_model_beside_the_projects_venv(
    tmp_path, grey_split, monkeypatch
):
    """The README's layout: .venv inside the project and the rubric at its root, so the rubric's folder
    (hidden from student code) holds the interpreter."""
    repo = Path(__file__).resolve().parents[1]
    if not Path(sys.prefix).resolve().is_relative_to(repo):
        pytest.skip("this interpreter's environment is not inside the project (make setup puts it there)")
    monkeypatch.setenv("GRADER_LOCAL_ISOLATION", "process")
    rubric = repo / f".test-rubric-{os.getpid()}.yaml"
    try:
        write_rubric(rubric, write_npz(grey_split, tmp_path / "grey.npz"), grey_split)
        report = run_check(rubric, submission(tmp_path, "tv", source=TORCHVISION_MODEL), tmp_path)
    finally:
        rubric.unlink(missing_ok=True)
    assert report.result.run.isolation.startswith("process")
    assert report.result.status == "graded", report.result.error
    assert report.result.accuracy == 1.0
    assert report.passed


CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def channel_brightness_weights(mean, std) -> dict:
    """brightness_weights for per-channel statistics: the centre of level L is the mean of (L/255 - m_c) / s_c."""
    centres = torch.tensor(
        [float(np.mean([(LEVELS[k] / 255 - m) / s for m, s in zip(mean, std)])) for k in range(10)],
        dtype=torch.float32,
    )
    return {"fc.weight": (40 * 2 * centres).unsqueeze(1), "fc.bias": -40 * centres**2}


def test_a_model_trained_with_cifar_statistics_and_no_preprocess_is_told_the_points_it_loses(rubric, tmp_path):
    folder = submission(tmp_path, "cifarnorm", weights=channel_brightness_weights(CIFAR_MEAN, CIFAR_STD))
    report = run_check(rubric, folder, tmp_path)
    hit = finding(report, "normalisation")
    used = report.result.accuracy  # the probe sees every image of this small split: the same figure
    used_points = report.result.points.by_item["exercise1"]
    assert used < 0.9
    assert hit.message == (
        f"on 60 test images your model scores {used:.1%} ({used_points:g} points) as submitted "
        "(Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), the default); with CIFAR-10 mean/std normalisation it "
        f"scores 100.0% (100 points, +{100 - used_points:g}): add a preprocess function (see STUDENTS.md)"
    )
    assert "torch.tensor((0.4914, 0.4822, 0.4465))" in hit.hint
    (folder / "model.py").write_text(BRIGHTNESS_MODEL + "\n\n" + textwrap.dedent(hit.hint.split("\n", 1)[1]))
    fixed = run_check(rubric, folder, tmp_path)
    assert fixed.result.accuracy == 1.0 and "normalisation" not in codes(fixed)


def probe_with(labels, used_right: int, alternative_right: int) -> NormalisationProbe:
    """Predictions right on the first `n` images and one class off on the rest, as digits."""

    def digits(right: int) -> str:
        return "".join(str(label if i < right else (label + 1) % 10) for i, label in enumerate(labels))

    wrong = digits(0)
    return NormalisationProbe(
        step=1, used=digits(used_right), unit=wrong, half=wrong, cifar=digits(alternative_right), imagenet=wrong
    )


def test_the_normalisation_warning_needs_five_rubric_points_beyond_the_noise():
    labels = np.arange(500) % 10
    points = lambda accuracy: round(100 * accuracy, 2)  # noqa: E731 - one rubric point per accuracy point
    assert normalisation_finding(probe_with(labels, 300, 324), labels, False, points) is None  # +4.8 points
    hit = normalisation_finding(probe_with(labels, 300, 326), labels, False, points)  # +5.2 points, 26 images
    assert hit is not None and "scores 60.0% (60 points) as submitted" in hit.message
    assert "it scores 65.2% (65.2 points, +5.2)" in hit.message
    small = np.arange(40) % 10  # +5 points on 40 images is two images: noise, not a normalisation
    assert normalisation_finding(probe_with(small, 20, 22), small, False, points) is None


def test_the_probes_see_a_permuted_preprocess_as_the_grader_does(rubric, tmp_path):
    """preprocess returning a permuted (non-contiguous) tensor grades fine, so the extra checks must run too."""
    source = BRIGHTNESS_MODEL.replace("x.mean(dim=(1, 2, 3))", "x.view(x.size(0), -1).mean(dim=1)") + textwrap.dedent(
        """

        def preprocess(images):
            return (images.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
        """
    )
    report = run_check(rubric, submission(tmp_path, "permuted", source), tmp_path)
    assert report.result.accuracy == 1.0
    assert "diagnostics-skipped" not in codes(report), [f.message for f in report.findings]
    assert report.result.run.diagnostics.normalisation is not None


# --- the verdict: points at risk, Exercise 2, weights errors ----------------------------------------


def test_the_verdict_names_the_points_a_missing_preprocess_loses_and_the_exit_status_is_1(rubric, tmp_path):
    folder = submission(tmp_path, "cifarverdict", weights=channel_brightness_weights(CIFAR_MEAN, CIFAR_STD))
    console = Console(record=True, width=300)
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 1
    text = console.export_text()
    gain = next(line for line in text.splitlines() if "[normalisation]" in line).split("points, +")[1].split(")")[0]
    verdict = text.strip().splitlines()[-1]
    assert verdict == (
        f"PASS, but about {round(float(gain)):g} points of Exercise 1 are lost: add preprocess "
        "(see the normalisation warning)."
    )
    assert "as it stands" not in text
    output = tmp_path / "cifarverdict.zip"  # it runs in grading: pack still writes the zip
    assert pack_main(submission=folder, output=output, rubric=rubric, sandbox="local", console=Console()) == 0
    assert output.is_file()


def test_the_check_estimates_exercise_2_as_grading_scores_it(rubric, tmp_path):
    console = Console(record=True, width=300)
    folder = submission(tmp_path, "ex2")
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 0
    report = run_check(rubric, folder, tmp_path)
    graded = report.result.answers
    line = next(line for line in console.export_text().splitlines() if line.startswith("Exercise 2: "))
    expected = f"Exercise 2: about {round(graded['points'], 1):g} of {graded['max_points']:g} points by the machine's"
    assert line.startswith(expected), line
    assert line.endswith("; a TA reviews answers it is unsure of") == graded["needs_review"]


def test_the_answers_line_says_unnumbered_answers_are_not_numbered(rubric, tmp_path):
    unnumbered = "Yes, autoencoders.\n\nOverfitting.\n\nPooling.\n\nBatch size.\n"
    console = Console(record=True, width=300)
    check_main(
        submission=submission(tmp_path, "plainline", answers=unnumbered),
        rubric=rubric,
        sandbox="local",
        console=console,
    )
    line = next(line for line in console.export_text().splitlines() if line.startswith("Answers: "))
    assert "has all 4 answers" not in line
    assert (
        line == "Answers: answers.md has text for all 4 questions, but not numbered, so which answer is which is "
        "the machine's guess"
    )


def test_weights_that_do_not_fit_the_model_are_explained_without_a_missing_device(rubric, tmp_path):
    renamed = {
        f"linear.{name}": value
        for name, value in (("weight", brightness_weights()["fc.weight"]), ("bias", brightness_weights()["fc.bias"]))
    }
    console = Console(record=True, width=300)
    folder = submission(tmp_path, "keys", weights=renamed)
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 1
    text = console.export_text()
    assert "None" not in text
    assert "Sandbox: local (" in text and "error [weights-keys]" in text and "layer names" in text


def test_weights_that_are_not_a_torch_save_file_are_explained(rubric, tmp_path):
    folder = submission(tmp_path, "lfs")
    (folder / "weights.pth").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12\n")
    report = run_check(rubric, folder, tmp_path)
    assert not report.passed
    hit = finding(report, "weights-unreadable")
    assert hit.level == "error" and "weights.pth cannot be read" in hit.message and "torch.save" in hit.hint
    assert [f.code for f in report.findings].count("weights-unreadable") == 1


def test_students_md_explains_every_weights_error_the_check_names():
    table = (Path(__file__).resolve().parents[1] / "STUDENTS.md").read_text()
    rows = [row for row in table.splitlines() if row.startswith("| `")]
    for code in ("weights-keys", "weights-unreadable", "whole-model", "key-prefix"):
        assert any(f"`{code}`" in row.split("|")[1] for row in rows), code


# --- which scorer estimated Exercise 2 -------------------------------------------------------------


def test_the_check_names_the_scorer_grading_uses_when_it_scored_the_answers(rubric, tmp_path, monkeypatch):
    monkeypatch.delenv(METHOD_ENV, raising=False)
    if not METHODS.is_available("minilm"):
        pytest.skip("the embeddings extra is not installed")
    console = Console(record=True, width=300)
    assert check_main(submission=submission(tmp_path, "minilm"), rubric=rubric, sandbox="local", console=console) == 0
    lines = console.export_text().splitlines()
    assert "note [scorer] Exercise 2 was scored with MiniLM (sentence embeddings), as in grading" in lines
    assert not any("warning [scorer]" in line for line in lines)


def test_answers_scored_with_tfidf_give_a_warning_not_a_failure(rubric, tmp_path, monkeypatch):
    monkeypatch.setenv(METHOD_ENV, "tfidf")
    console = Console(record=True, width=300)
    folder = submission(tmp_path, "tfidf")
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 0
    lines = console.export_text().splitlines()
    warning = (
        "warning [scorer] Exercise 2 was scored here with TF-IDF (word overlap), not MiniLM (sentence embeddings) "
        "as in grading, so the Exercise 2 estimate may differ from the grade"
    )
    assert warning in lines
    unset = f"`unset {METHOD_ENV}`; PowerShell: `Remove-Item Env:{METHOD_ENV}`"
    assert f"    {METHOD_ENV} chose this scorer here: unset it ({unset}), then check again." in lines
    assert lines[-1].startswith("PASS: ")
    report = run_check(rubric, folder, tmp_path)
    assert report.result.answers["method"] == "tfidf"
    assert finding(report, "scorer").level == "warning" and report.passed and report.exit_code == 0


def test_the_scorer_warning_gives_the_command_students_md_installs_the_grading_scorer_with():
    missing = scorer_finding("tfidf", installed=False)
    assert missing.level == "warning"
    assert missing.hint == f"Install grading's scorer from the repository root, then check again: {INSTALL_SCORER}"
    assert INSTALL_SCORER == 'python -m pip install -e ".[embeddings]"'
    students = (Path(__file__).resolve().parents[1] / "STUDENTS.md").read_text()
    assert INSTALL_SCORER in students
    assert scorer_finding("minilm", installed=True).level == "info"


# --- answers files that cannot be read -------------------------------------------------------------


def test_an_answers_file_that_is_not_a_pdf_says_how_to_save_it_as_one(rubric, tmp_path):
    folder = submission(tmp_path, "fakepdf", answers=None)
    (folder / "answers.pdf").write_text(ANSWERS)  # a text file renamed to .pdf
    console = Console(record=True, width=300)
    assert check_main(submission=folder, rubric=rubric, sandbox="local", console=console) == 1
    lines = console.export_text().splitlines()
    at = lines.index("error [answers] answers.pdf: not a PDF (no %PDF header)")
    hint = lines[at + 1]
    assert hint.startswith("    The file is named .pdf but holds something else"), hint
    assert "export them as PDF" in hint and "answers.md or answers.txt" in hint
