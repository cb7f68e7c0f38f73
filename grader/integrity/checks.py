"""One submission's integrity figures and flags, from the logits of its one sandbox run.

Each rule is a threshold stated in the rubric (IntegritySettings); each flag says in plain words what
was seen and why it matters, with the figures as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.integrity.fingerprint import make_fingerprint
from grader.integrity.model import IntegrityFlag, IntegrityReport, IntegritySettings
from grader.integrity.probes import PERTURBED, PRIVATE, TEST, TRAIN, TRAIN_PERTURBED, ProbeSet

# An order replay answers position i of what the sandbox sees with the i-th label of the public split.
REPLAY_AGREEMENT = 0.5


@dataclass(frozen=True)
class KnownLabels:
    """The host's labels of what the sandbox saw beside the test split (None: that part was not shown), and the
    course's fingerprint images (test indices and their name)."""

    train: np.ndarray | None = None
    private: np.ndarray | None = None
    fingerprint: tuple[np.ndarray, str] | None = None


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(float((logits.argmax(axis=1) == labels).mean()), 4) if len(labels) else 0.0


def check_integrity(
    probes: ProbeSet,
    sandbox_logits: np.ndarray,
    test_labels: np.ndarray,
    known: KnownLabels,
    settings: IntegritySettings,
    not_measured: list[str],
) -> IntegrityReport:
    parts = probes.split_logits(sandbox_logits)
    report = IntegrityReport(order_permuted=settings.permute_order, not_measured=list(not_measured))
    test_accuracy = _accuracy(parts[TEST], test_labels)
    if settings.permute_order:
        _order_replay(report, sandbox_logits[: len(test_labels)], test_labels, test_accuracy)
    if TRAIN in parts and known.train is not None:
        _generalisation(report, _accuracy(parts[TRAIN], known.train), len(known.train), test_accuracy, settings)
    if PERTURBED in parts:
        _perturbations(report, parts, probes, test_labels, known.train, settings)
    if PRIVATE in parts and known.private is not None:
        _private_gap(report, _accuracy(parts[PRIVATE], known.private), len(known.private), test_accuracy, settings)
    if known.fingerprint is not None and len(known.fingerprint[0]):
        indices, sample = known.fingerprint
        report.fingerprint = make_fingerprint(parts[TEST][indices], test_labels[indices], sample)
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
    report: IntegrityReport, parts: dict[str, np.ndarray], probes: ProbeSet, test_labels: np.ndarray,
    train_labels: np.ndarray | None, settings: IntegritySettings,
) -> None:  # fmt: skip
    """The drop on the test sample, against the rubric's bound and against the drop on the training images."""
    labels = test_labels[probes.sample]
    report.sample_images = len(probes.sample)
    report.sample_accuracy = _accuracy(parts[TEST][probes.sample], labels)
    perturbed = _accuracy(parts[PERTURBED], labels)
    report.perturbed_accuracy = {"perturbed test": perturbed}
    report.perturbation_drop = round(report.sample_accuracy - perturbed, 4)
    evidence = {"sample_accuracy": report.sample_accuracy, "perturbed_accuracy": perturbed,
                "drop": report.perturbation_drop, "max_drop": settings.max_perturbation_drop}  # fmt: skip
    excess = None
    if TRAIN_PERTURBED in parts and train_labels is not None:
        rows = probes.train_perturbed
        clean = _accuracy(parts[TRAIN][rows], train_labels[rows])
        shaken = _accuracy(parts[TRAIN_PERTURBED], train_labels[rows])
        report.perturbed_accuracy["perturbed train"] = shaken
        report.train_perturbation_drop = round(clean - shaken, 4)
        excess = round(report.perturbation_drop - report.train_perturbation_drop, 4)
        evidence |= {
            "train_accuracy": clean, "train_perturbed_accuracy": shaken, "train_drop": report.train_perturbation_drop,
            "max_excess": settings.max_perturbation_excess,
        }  # fmt: skip
    too_large = report.perturbation_drop > settings.max_perturbation_drop
    test_only = excess is not None and excess > settings.max_perturbation_excess
    if not (too_large or test_only):
        return
    seen = (
        f"Accuracy falls from {report.sample_accuracy:.0%} to {perturbed:.0%} on a sample of the test images changed "
        "slightly (cropped and rescaled, turned a few degrees, colours and compression changed, each image its own "
        "way, drawn in secret)"
    )
    if test_only:
        seen += (
            f", but only by {report.train_perturbation_drop:.0%} on training images changed the same way: the model "
            "knows the test images themselves rather than what they show. An honest model loses as much on both, "
            "or more on its training images; a table of the test images collapses on them alone."
        )
    else:
        seen += ": a genuine CNN loses a little; a table of the test images collapses like this"
        train_drop = report.train_perturbation_drop
        seen += "." if train_drop is None else f" (on training images changed the same way: {train_drop:.0%})."
    report.flags.append(IntegrityFlag(code="perturbation-collapse", message=seen, evidence=evidence))


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


def _private_gap(
    report: IntegrityReport, private_accuracy: float, images: int, test_accuracy: float, settings: IntegritySettings
) -> None:
    report.private_images, report.private_accuracy = images, private_accuracy
    report.private_gap = round(test_accuracy - private_accuracy, 4)
    if report.private_gap > settings.max_private_gap:
        report.flags.append(
            IntegrityFlag(
                code="private-split-gap",
                message=(
                    f"The model scores {test_accuracy:.1%} on the public test images but {private_accuracy:.1%} on "
                    "the instructor's private images of the same classes, which no student has seen: a model that "
                    "learned the task loses a few points there; one that memorised the public test set (its images "
                    "or its labels) loses what it memorised."
                ),
                evidence={
                    "test_accuracy": test_accuracy,
                    "private_accuracy": private_accuracy,
                    "gap": report.private_gap,
                    "max_gap": settings.max_private_gap,
                },
            )
        )
