"""Grading the reference baselines exactly as students are graded, then recording them in baselines.json."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from grader.atomic_write import write_atomic
from grader.pipeline import GradingSession, grade_submission
from grader.reference.baselines import BASELINES_FILE, Baseline, BaselineFile
from grader.reference.recipes import RECIPES
from grader.reference.train import build, load_reference_module
from grader.rubric.config import RubricError
from grader.rubric.points import exercise1_points


def multiply_accumulates(model: torch.nn.Module) -> int:
    """Multiply-accumulates of one 32x32 image through the convolutions and linear layers."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * kernel
        elif isinstance(module, torch.nn.Linear):
            total += output.numel() * module.in_features

    hooks = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.inference_mode():
        model.eval()(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    return total


def measure_baseline(name: str, folder: Path, session: GradingSession) -> Baseline:
    model = build(load_reference_module(folder))
    parameters = sum(p.numel() for p in model.parameters())
    training_file = folder / "training.json"
    training = json.loads(training_file.read_text()) if training_file.is_file() else {}
    baseline = Baseline(
        name=name,
        trained=(folder / "weights.pth").is_file(),
        parameters=parameters,
        macs_per_image=multiply_accumulates(model),
        # The recipe the weights were trained with, which may predate a change to RECIPES.
        recipe=training.get("recipe") or (RECIPES[name].model_dump() if name in RECIPES else {}),
        training={
            key: training[key] for key in ("epochs_trained", "wall_seconds", "device", "train_data") if key in training
        },
    )
    if not baseline.trained:
        baseline.note = "untrained: no weights.pth yet"
        return baseline
    result = grade_submission(folder, session, student=f"reference-{name}")
    if result.status != "graded":
        baseline.note = f"grading failed: {result.error}"
        return baseline
    baseline.accuracy = result.accuracy
    baseline.split_name = session.rubric.split.name
    baseline.split_sha256 = session.split_sha256
    return baseline


def measure_all(reference_dir: Path, session: GradingSession, names: list[str]) -> BaselineFile:
    """Grades every baseline, then gives each the points the rubric would give (anchors may name baselines)."""
    measured = [measure_baseline(name, reference_dir / name, session) for name in names]
    accuracies = {b.name: b.accuracy for b in measured if b.accuracy is not None}
    for baseline in measured:
        if baseline.accuracy is not None:
            try:
                baseline.points = exercise1_points(baseline.accuracy, session.rubric.exercise1, accuracies).points
            except RubricError as error:
                baseline.note = f"no points: {error}"
    # Keep what was measured on other splits, so one file serves several pinned splits.
    kept = [b for b in _load_existing(reference_dir) if b.name not in names or b.split_sha256 != session.split_sha256]
    combined = [*kept, *measured]
    baselines = BaselineFile(baselines=sorted(combined, key=lambda b: (b.name, b.split_name or "")))
    write_atomic(reference_dir / BASELINES_FILE, baselines.model_dump_json(indent=2) + "\n")
    return baselines


def _load_existing(reference_dir: Path) -> list[Baseline]:
    from grader.reference.baselines import load_baselines

    return [b for b in load_baselines(reference_dir).baselines if b.trained and b.split_sha256]
