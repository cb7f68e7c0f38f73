"""Copied models across a class: pairs of students whose weights or predictions are too alike to be independent.

After `grade --all`, every pair of graded students is compared on the test split. Identical weights files or
identical predictions are flagged outright. Otherwise a pair is flagged by its logits: the correlation of the
logits over the wrong classes on the course's secret fingerprint images (grader/integrity/fingerprint.py), which
a copy keeps however it changes its answers; or by error consistency (Geirhos et al. 2020): Cohen's kappa on
which images each model gets wrong, together with how often the two pick the same wrong class where both are
wrong. Independently trained models share many mistakes (hard images are hard for every model) but rarely to
the degree a copy fine-tuned for an epoch does; the thresholds in IntegritySettings state where that line was
drawn and on which models. Flags never change points.

All pairs at once: a class's predictions are one matrix and every pairwise count is a matrix product.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from grader.atomic_write import write_atomic
from grader.integrity.fingerprint import correlations, decode
from grader.integrity.model import IntegritySettings
from grader.results.model import Result
from grader.results.store import load_results

COPIES_FILE = Path("integrity") / "copies.json"  # under the results folder
log = logging.getLogger(__name__)
CLASSES = 10


class CopyPair(BaseModel):
    student_a: str
    student_b: str
    reasons: list[str] = Field(
        description="identical-weights, identical-predictions, logit-correlation, error-consistency"
    )
    identical_predictions: bool
    identical_weights: bool
    agreement: float = Field(description="Share of test images on which both predict the same class")
    kappa: float | None = Field(description="Error consistency: Cohen's kappa on which images each gets wrong")
    kappa_bar: float = Field(description="The kappa the rule asks of a pair of this accuracy")
    shared_mistakes: int = Field(description="Test images both get wrong")
    shared_mistake_agreement: float | None = Field(description="Among those, the share with the same wrong class")
    accuracy_a: float
    accuracy_b: float
    logit_correlation: float | None = Field(
        default=None, description="Correlation of the wrong-class logits on the fingerprint images (None: not both)"
    )
    logit_correlation_bar: float | None = Field(default=None, description="The correlation the rule flags from")
    message: str = Field(description="One plain sentence for the TA")


class CopyReport(BaseModel):
    """results/integrity/copies.json: the flagged pairs of one class, the strongest evidence first."""

    students: int = Field(description="Graded students compared (error results have no predictions)")
    images: int
    fingerprint_images: int = Field(default=0, description="Secret images whose logits were compared (0: none)")
    fingerprinted_students: int = Field(default=0, description="Students compared on those logits")
    rule: str = Field(description="The rule the pairs were flagged by")
    pairs: list[CopyPair] = Field(default_factory=list)

    @property
    def flagged_students(self) -> list[str]:
        return sorted({pair.student_a for pair in self.pairs} | {pair.student_b for pair in self.pairs})


@dataclass
class PairMetrics:
    """n x n matrices over every pair of n prediction vectors (the diagonal compares a model with itself)."""

    accuracy: np.ndarray  # [n]
    agreement: np.ndarray
    kappa: np.ndarray  # nan where undefined: both models entirely right, or entirely wrong
    shared_mistakes: np.ndarray  # int
    shared_mistake_agreement: np.ndarray  # nan where there is no shared mistake


def pair_metrics(predictions: np.ndarray, labels: np.ndarray) -> PairMetrics:
    """`predictions` [n, images] of classes 0-9, `labels` [images]. Counts are exact: float32 holds them."""
    images = predictions.shape[1]
    right = predictions == labels[None, :]
    right_f = right.astype(np.float32)
    both_right = right_f @ right_f.T
    # Where both are wrong with the same class: one class at a time, so that memory stays at one [n, images].
    same_wrong = np.zeros_like(both_right)
    for cls in range(CLASSES):
        wrong_as = ((predictions == cls) & ~right).astype(np.float32)
        same_wrong += wrong_as @ wrong_as.T
    correct = right.sum(axis=1).astype(np.float64)
    both_right = both_right.astype(np.float64)
    both_wrong = images - correct[:, None] - correct[None, :] + both_right
    p = correct / images
    observed = (both_right + both_wrong) / images
    expected = p[:, None] * p[None, :] + (1 - p[:, None]) * (1 - p[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected < 1, (observed - expected) / (1 - expected), np.nan)
        mistake_agreement = np.where(both_wrong > 0, same_wrong / both_wrong, np.nan)
    return PairMetrics(
        accuracy=p,
        agreement=(both_right + same_wrong) / images,  # both right implies the same class
        kappa=kappa,
        shared_mistakes=np.rint(both_wrong).astype(np.int64),
        shared_mistake_agreement=mistake_agreement,
    )


def kappa_bar(metrics: PairMetrics, settings: IntegritySettings) -> np.ndarray:
    """n x n: the kappa a pair must reach, by its mean accuracy (independent accurate models share more mistakes)."""
    mean_accuracy = (metrics.accuracy[:, None] + metrics.accuracy[None, :]) / 2
    return np.interp(mean_accuracy, settings.copy_kappa_accuracy, (settings.copy_kappa, settings.copy_kappa_high))


def consistent_errors(metrics: PairMetrics, settings: IntegritySettings) -> np.ndarray:
    """The calibrated rule as a boolean n x n matrix (IntegritySettings' copy_* fields state it and its calibration)."""
    with np.errstate(invalid="ignore"):
        return (
            (metrics.kappa >= kappa_bar(metrics, settings))
            & (metrics.shared_mistake_agreement >= settings.copy_mistake_agreement)
            & (metrics.shared_mistakes >= settings.copy_min_shared_mistakes)
        )


def rule_text(settings: IntegritySettings) -> str:
    low, high = settings.copy_kappa_accuracy
    return (
        f"identical weights, identical predictions, logits over the wrong classes correlating at least "
        f"{settings.copy_logit_correlation} on the secret fingerprint images, or error consistency: kappa at least "
        f"{settings.copy_kappa} for "
        f"a pair of mean accuracy up to {low:.0%}, rising linearly to {settings.copy_kappa_high} from {high:.0%}, "
        f"and the same wrong class in at least {settings.copy_mistake_agreement:.0%} of at least "
        f"{settings.copy_min_shared_mistakes} shared mistakes"
    )


def _comparable(results: list[Result], images: int) -> list[Result]:
    """Graded results with predictions on this split; a stale result of another split's length is left out."""

    def usable(predictions: str | None) -> bool:
        if predictions is None or len(predictions) != images:
            return False
        return predictions.isascii() and predictions.isdigit()

    found = [result for result in results if result.status == "graded" and usable(result.predictions)]
    return sorted(found, key=lambda result: result.student)


def _weights_hash(result: Result) -> str | None:
    name = result.files.get("weights")
    return result.inputs.submission.get(name) if name else None


def _groups(keys: list[str | None]) -> set[tuple[int, int]]:
    """Index pairs (i < j) whose keys are equal and not None."""
    by_key: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        if key is not None:
            by_key.setdefault(key, []).append(index)
    return {pair for members in by_key.values() for pair in combinations(members, 2)}


@dataclass
class LogitComparison:
    """The correlation of every two fingerprints (nan where a student has none of the compared sample)."""

    correlation: np.ndarray  # n x n
    images: int
    students: int


def compare_fingerprints(found: list[Result]) -> LogitComparison:
    """Fingerprints of the sample most students carry (a rubric or secret changed since some were graded leaves
    the others out), all pairs at once."""
    samples = [result.integrity.fingerprint if result.integrity else None for result in found]
    counts: dict[str, int] = {}
    for fingerprint in samples:
        if fingerprint is not None:
            counts[fingerprint.sample] = counts.get(fingerprint.sample, 0) + 1
    correlation = np.full((len(found), len(found)), np.nan)
    if not counts:
        return LogitComparison(correlation, 0, 0)
    common = max(sorted(counts), key=counts.get)
    decoded = {i: decode(fp) for i, fp in enumerate(samples) if fp is not None and fp.sample == common}
    shapes = {values.shape for values in decoded.values() if values is not None}
    members = [i for i, values in decoded.items() if values is not None and values.shape == max(shapes)]
    if members:
        index = np.ix_(members, members)
        correlation[index] = correlations(np.stack([decoded[i] for i in members]))
    return LogitComparison(correlation, max(shapes)[0] if members else 0, len(members))


def copied_pairs(results: list[Result], labels: np.ndarray, settings: IntegritySettings) -> list[CopyPair]:
    """Every flagged pair among the graded results: identical weights first, then the most alike."""
    return _copied_pairs(_comparable(results, len(labels)), labels, settings)[0]


def _copied_pairs(
    found: list[Result], labels: np.ndarray, settings: IntegritySettings
) -> tuple[list[CopyPair], LogitComparison]:
    labels = np.asarray(labels, dtype=np.int64)
    logits = compare_fingerprints(found)
    if len(found) < 2:
        return [], logits
    table = np.frombuffer("".join(r.predictions for r in found).encode("ascii"), dtype=np.uint8) - ord("0")
    predictions = table.reshape(len(found), len(labels))
    metrics = pair_metrics(predictions, labels.astype(np.uint8))
    bars = kappa_bar(metrics, settings)
    same_weights = _groups([_weights_hash(result) for result in found])
    same_predictions = _groups([result.predictions for result in found])
    by_kappa = _upper_pairs(consistent_errors(metrics, settings))
    with np.errstate(invalid="ignore"):
        by_logits = _upper_pairs(logits.correlation >= settings.copy_logit_correlation)
    pairs = [
        _pair(
            found, metrics, bars, logits.correlation, settings, i, j, weights=(i, j) in same_weights,
            predictions=(i, j) in same_predictions, logit_rule=(i, j) in by_logits, kappa_rule=(i, j) in by_kappa,
        )
        for i, j in sorted(same_weights | same_predictions | by_kappa | by_logits)
    ]  # fmt: skip
    pairs.sort(key=lambda pair: (not pair.identical_weights, -pair.agreement, pair.student_a, pair.student_b))
    return pairs, logits


def _upper_pairs(flags: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(flags, k=1)))}


def _number(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 4)


def _pair(
    found: list[Result], metrics: PairMetrics, bars: np.ndarray, correlation: np.ndarray, settings: IntegritySettings,
    i: int, j: int, *, weights: bool, predictions: bool, logit_rule: bool, kappa_rule: bool,
) -> CopyPair:  # fmt: skip
    hits = (
        ("identical-weights", weights), ("identical-predictions", predictions), ("logit-correlation", logit_rule),
        ("error-consistency", kappa_rule),
    )  # fmt: skip
    reasons = [name for name, hit in hits if hit]
    if weights or predictions:  # the strongest evidence says it all
        reasons = [name for name in reasons if name.startswith("identical-")]
    logit_correlation = _number(correlation[i, j])
    pair = CopyPair(
        student_a=found[i].student,
        student_b=found[j].student,
        reasons=reasons,
        identical_predictions=predictions,
        identical_weights=weights,
        agreement=round(float(metrics.agreement[i, j]), 4),
        kappa=_number(metrics.kappa[i, j]),
        kappa_bar=round(float(bars[i, j]), 4),
        shared_mistakes=int(metrics.shared_mistakes[i, j]),
        shared_mistake_agreement=_number(metrics.shared_mistake_agreement[i, j]),
        accuracy_a=round(float(metrics.accuracy[i]), 4),
        accuracy_b=round(float(metrics.accuracy[j]), 4),
        logit_correlation=logit_correlation,
        logit_correlation_bar=settings.copy_logit_correlation if logit_correlation is not None else None,
        message="",
    )
    pair.message = _message(pair)
    return pair


def _message(pair: CopyPair) -> str:
    if pair.identical_weights:
        seen = "submitted byte-identical weights files"
    elif pair.identical_predictions:
        seen = "predict the same class on every test image"
    elif "logit-correlation" in pair.reasons:
        seen = (
            f"predict the same class on {pair.agreement:.1%} of the test images and weigh the wrong classes alike "
            f"far beyond independently trained models (their logits correlate at {pair.logit_correlation:.2f} on "
            f"the course's secret sample of images, bar {pair.logit_correlation_bar:.2f}), however their answers "
            "differ"
        )
    else:
        seen = (
            f"predict the same class on {pair.agreement:.1%} of the test images, get the same images wrong "
            f"beyond independently trained models of their accuracy (kappa {pair.kappa:.2f}, bar "
            f"{pair.kappa_bar:.2f}) and pick the same wrong class in {pair.shared_mistake_agreement:.0%} of "
            f"their {pair.shared_mistakes} shared mistakes"
        )
    return (
        f"{pair.student_a} and {pair.student_b} {seen} (accuracy {pair.accuracy_a:.2%} and {pair.accuracy_b:.2%}); "
        "independently trained models do not, so one model may be a copy of the other (or both ran the same code "
        "with the same seed)."
    )


def copy_report(results: list[Result], labels: np.ndarray, settings: IntegritySettings) -> CopyReport:
    found = _comparable(results, len(labels))
    pairs, logits = _copied_pairs(found, labels, settings)
    return CopyReport(
        students=len(found),
        images=len(labels),
        fingerprint_images=logits.images,
        fingerprinted_students=logits.students,
        rule=rule_text(settings),
        pairs=pairs,
    )


def compare_class(
    results_dir: Path, labels: np.ndarray, settings: IntegritySettings, split_sha256: str | None = None
) -> CopyReport:
    """Every stored result graded on this split (split_sha256; None: any of the labels' length), compared in
    pairs and written to results/integrity/copies.json; the end of grade --all."""
    started = time.monotonic()
    results, _ = load_results(results_dir)
    results = [result for result in results if not result.sample]  # a shipped sample is nobody's classmate
    if split_sha256 is not None:
        results = [result for result in results if result.inputs.split == split_sha256]
    report = copy_report(results, labels, settings)
    path = write_copy_report(report, results_dir)
    seconds = time.monotonic() - started
    log.info("copies: %d students compared, %d pair(s) flagged, %.1f s: %s", report.students, len(report.pairs),
             seconds, path)  # fmt: skip
    return report


def write_copy_report(report: CopyReport, results_dir: Path) -> Path:
    return write_atomic(Path(results_dir) / COPIES_FILE, report.model_dump_json(indent=2) + "\n")


def read_copy_report(results_dir: Path) -> CopyReport | None:
    """None when the class has not been compared yet, or by an older grader (the next grade --all rewrites it)."""
    path = Path(results_dir) / COPIES_FILE
    try:
        return CopyReport.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        log.warning("%s is unreadable (%s); grade --all writes it again", path, error)
        return None
