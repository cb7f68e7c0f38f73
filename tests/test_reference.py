"""Reference baselines: training resumes exactly, MACs are counted, and students are compared with them."""

import json
from pathlib import Path

import pytest
import torch
from helpers import FakeBackend, fake_submission, logits_with_accuracy, write_baselines

from grader.datasets import LabelledImages
from grader.pipeline import grade_submission, open_session
from grader.reference import train as training
from grader.reference.baselines import baseline_accuracies
from grader.reference.measure import multiply_accumulates
from grader.reference.recipes import Recipe, WarmRestart
from grader.rubric.config import RubricError, load_rubric

TINY_REFERENCE = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 10))
"""


def test_lenet5_multiply_accumulates_match_a_hand_count():
    module = training.load_reference_module(Path("reference/lenet5"))
    # conv1 28*28*6*75 + conv2 10*10*16*150 + fc 400*120 + 120*84 + 84*10
    assert multiply_accumulates(module.Net()) == 352_800 + 240_000 + 48_000 + 10_080 + 840


def test_resnet_sizes_are_those_of_the_papers():
    resnet20 = training.build(training.load_reference_module(Path("reference/resnet20")))
    resnet18 = training.build(training.load_reference_module(Path("reference/resnet18")))
    assert sum(p.numel() for p in resnet20.parameters()) == pytest.approx(0.27e6, rel=0.01)
    assert sum(p.numel() for p in resnet18.parameters()) == pytest.approx(11.17e6, rel=0.01)


ONE_CYCLE = Recipe(name="tiny", epochs=2, batch_size=8, learning_rate=0.05, momentum=0.9, augment=True,
                   schedule="one-cycle")  # fmt: skip
# The stop below falls in the second epoch: here the restart phase, whose scheduler must resume too.
ONE_CYCLE_THEN_RESTART = ONE_CYCLE.model_copy(
    update={"epochs": 1, "warm_restarts": [WarmRestart(epochs=1, learning_rate=0.03)]}
)


@pytest.mark.parametrize("recipe", [ONE_CYCLE, ONE_CYCLE_THEN_RESTART], ids=["one-cycle", "one-cycle-then-restart"])
def test_training_stopped_midway_resumes_to_the_same_weights(recipe, tmp_path, tiny_split, monkeypatch):
    monkeypatch.setattr(training, "CHECKPOINT_EVERY_STEPS", 2)
    data = LabelledImages(images=tiny_split.images, labels=tiny_split.labels, source="tiny")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for folder in (straight, stopped):
        folder.mkdir()
        (folder / "model.py").write_text(TINY_REFERENCE)
    training.train(recipe, straight, data, data)

    real_augment, calls = training.augment, []

    def augment_then_stop(images, generator):
        calls.append(1)
        if len(calls) == 9:  # step 4 of epoch 2, after the checkpoint taken at its step 2
            raise KeyboardInterrupt
        return real_augment(images, generator)

    monkeypatch.setattr(training, "augment", augment_then_stop)
    with pytest.raises(KeyboardInterrupt):
        training.train(recipe, stopped, data, data)
    assert torch.load(stopped / "checkpoint.pt", weights_only=False)["state"]["step"] == 2
    monkeypatch.setattr(training, "augment", real_augment)
    report = training.train(recipe, stopped, data, data)

    assert report["epochs_trained"] == 2
    assert len(report["history"]) == 2
    expected = torch.load(straight / "weights.pth", weights_only=True)
    resumed = torch.load(stopped / "weights.pth", weights_only=True)
    assert all(torch.equal(expected[key], resumed[key]) for key in expected)
    assert json.loads((stopped / "training.json").read_text())["train_data"]["sha256"] == data.content_sha256()


def test_each_warm_restart_starts_from_its_own_learning_rate_and_anneals_to_zero(tmp_path, tiny_split, monkeypatch):
    data = LabelledImages(images=tiny_split.images, labels=tiny_split.labels, source="tiny")
    (tmp_path / "model.py").write_text(TINY_REFERENCE)
    rates = []
    real_step = torch.optim.SGD.step

    def record_rate(optimizer, *args, **kwargs):
        rates.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]))
        return real_step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", record_rate)
    restarts = [WarmRestart(epochs=1, learning_rate=0.03), WarmRestart(epochs=1, learning_rate=0.02)]
    training.train(ONE_CYCLE.model_copy(update={"epochs": 1, "warm_restarts": restarts}), tmp_path, data, data)

    steps = len(data) // ONE_CYCLE.batch_size
    assert len(rates) == 3 * steps
    first_phase, *restart_phases = (rates[start : start + steps] for start in range(0, 3 * steps, steps))
    assert max(rate for rate, _ in first_phase) < 0.05 + 1e-9
    for restart, phase_rates in zip(restarts, restart_phases, strict=True):
        assert phase_rates[0] == (pytest.approx(restart.learning_rate), 0.9)
        assert all(later[0] < earlier[0] for earlier, later in zip(phase_rates, phase_rates[1:]))
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["state"]["phase"] == 2


def test_baselines_from_another_split_do_not_compare(tmp_path):
    write_baselines(tmp_path, "a" * 64, lenet5=0.6)
    assert baseline_accuracies(tmp_path, "a" * 64) == {"lenet5": 0.6}
    assert baseline_accuracies(tmp_path, "b" * 64) == {}


def test_student_result_compares_with_each_baseline(tmp_path, rubric_file, submissions, tiny_split, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_baselines(tmp_path / "reference", tiny_split.content_sha256(), lenet5=0.0, resnet20=0.99)
    backend = FakeBackend({"alice": logits_with_accuracy(tiny_split.labels, 0.5)})
    with open_session(load_rubric(rubric_file), rubric_file, backend=backend) as session:
        result = grade_submission(fake_submission(submissions, "alice"), session)
    assert result.accuracy == 0.5
    by_name = {entry.baseline: entry for entry in result.comparison}
    assert by_name["lenet5"].beats and not by_name["resnet20"].beats
    assert by_name["resnet20"].difference == pytest.approx(result.accuracy - 0.99)


def test_rubric_anchored_on_a_missing_baseline_stops_before_grading(tmp_path, rubric_file, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rubric = load_rubric(rubric_file)
    rubric.exercise1.anchors[1].accuracy, rubric.exercise1.anchors[1].baseline = None, "resnet20"
    expected = "baseline 'resnet20' has no accuracy measured on the pinned split"
    with pytest.raises(RubricError, match=expected), open_session(rubric, rubric_file):
        pass
