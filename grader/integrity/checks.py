"""One submission's integrity figures and flags, from the logits of its one sandbox run.

Each rule is a threshold stated in the rubric (IntegritySettings); each flag says in plain words what
was seen and why it matters, with the figures as evidence.
"""

from __future__ import annotations

import numpy as np

from grader.integrity.model import IntegrityFlag, IntegrityReport, IntegritySettings
from grader.integrity.probes import PERTURBATIONS, ProbeSet

# An order replay answers position i of what the sandbox sees with the i-th label of the public split.
REPLAY_AGREEMENT = 0.5


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(float((logits.argmax(axis=1) == labels).mean()), 4) if len(labels) else 0.0


def check_integrity(
    probes: ProbeSet,
    sandbox_logits: np.ndarray,
    test_labels: np.ndarray,
    train_labels: np.ndarray | None,
    settings: IntegritySettings,
    not_measured: list[str],
) -> IntegrityReport:
    parts = probes.split_logits(sandbox_logits)
    report = IntegrityReport(order_permuted=settings.permute_order, not_measured=list(not_measured))
    test_accuracy = _accuracy(parts["test"], test_labels)
    if settings.permute_order:
        _order_replay(report, sandbox_logits[: len(test_labels)], test_labels, test_accuracy)
    if len(probes.sample):
        _perturbations(report, parts, probes.sample, test_labels[probes.sample], settings)
    if "train" in parts and train_labels is not None:
        _generalisation(report, _accuracy(parts["train"], train_labels), len(train_labels), test_accuracy, settings)
    return report


def _order_replay(report: IntegrityReport, in_sandbox_order: np.ndarray, labels: np.ndarray, accuracy: float) -> None:
    agreement = _accuracy(in_sandbox_order, labels)
    if agreement >= REPLAY_AGREEMENT and agreement > accuracy + 0.3:
        report.flags.append(
            IntegrityFlag(
                code="order-replay",
                message=(
                    f"The answers follow the public order of the test labels ({agreement:.0%} of them, in the order "
                    f"the split is published) although the grader showed the images shuffled: the model replays "
                    f"the labels by position instead of looking at the pictures (accuracy {accuracy:.0%})."
                ),
                evidence={"agreement_with_published_order": agreement, "accuracy": accuracy},
            )
        )


def _perturbations(
    report: IntegrityReport, parts: dict[str, np.ndarray], sample: np.ndarray, labels: np.ndarray,
    settings: IntegritySettings,
) -> None:  # fmt: skip
    report.sample_images = len(sample)
    report.sample_accuracy = _accuracy(parts["test"][sample], labels)
    report.perturbed_accuracy = {name: _accuracy(parts[name], labels) for name in PERTURBATIONS if name in parts}
    collapsed = {
        name: accuracy
        for name, accuracy in report.perturbed_accuracy.items()
        if report.sample_accuracy - accuracy > settings.max_perturbation_drop
    }
    if collapsed:
        shown = ", ".join(f"{name} {accuracy:.0%}" for name, accuracy in collapsed.items())
        report.flags.append(
            IntegrityFlag(
                code="perturbation-collapse",
                message=(
                    f"Accuracy falls from {report.sample_accuracy:.0%} to {shown} on the same test images changed "
                    "imperceptibly (mirrored, one grey level up or down, shifted by one pixel): a genuine CNN loses "
                    "a few points at most; a table of the exact test images collapses like this."
                ),
                evidence={"sample_accuracy": report.sample_accuracy, **report.perturbed_accuracy},
            )
        )


def _generalisation(
    report: IntegrityReport, train_accuracy: float, images: int, test_accuracy: float, settings: IntegritySettings
) -> None:
    report.train_images, report.train_accuracy = images, train_accuracy
    report.generalisation_gap = round(train_accuracy - test_accuracy, 4)
    if test_accuracy >= settings.gap_from_accuracy and report.generalisation_gap < settings.min_generalisation_gap:
        report.flags.append(
            IntegrityFlag(
                code="no-generalisation-gap",
                message=(
                    f"The model is no better on images it was trained on ({train_accuracy:.1%}) than on the test "
                    f"images ({test_accuracy:.1%}); an honest model is. A model trained on the test set looks like "
                    "this."
                ),
                evidence={
                    "train_accuracy": train_accuracy,
                    "test_accuracy": test_accuracy,
                    "gap": report.generalisation_gap,
                    "min_gap": settings.min_generalisation_gap,
                },
            )
        )
