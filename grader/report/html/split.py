"""The test split on the host, for the strip of misclassified images: loaded once for every page, never
downloaded, and only trusted for a result graded on the very same split (its sha256)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.datasets import LabelledImages, SplitFormat
from grader.datasets.cifar_batches import batch_folder
from grader.datasets.pinned_split import load_pinned_split
from grader.errors import GraderError
from grader.pipeline.session import resolve_split_path
from grader.rubric.config import load_rubric

log = logging.getLogger(__name__)
STRIP_IMAGES = 24
UNAVAILABLE = "The test images are not available where this report was made, so they are not shown here."
OTHER_SPLIT = "These results were graded on another test split than the one available here, so no images are shown."


@dataclass(frozen=True)
class ReportSplit:
    """The split's images and labels, or why there are none (said to the TA when the report is built)."""

    images: LabelledImages | None
    sha256: str | None
    problem: str | None = None

    def misclassified(self, predictions: str) -> list[tuple[int, int, int]] | None:
        """Up to STRIP_IMAGES (index, true class, predicted class), taken class by class in turn so that the strip
        shows the variety of mistakes; the same result always gives the same images. None: the predictions do
        not fit this split (another length, or not one digit per image)."""
        labels = self.images.labels
        if len(predictions) != len(labels) or not (predictions.isascii() and predictions.isdigit()):
            return None
        predicted = np.frombuffer(predictions.encode("ascii"), dtype=np.uint8) - ord("0")
        wrong = np.flatnonzero(predicted != labels)
        by_class = [wrong[labels[wrong] == label].tolist() for label in range(int(labels.max()) + 1)]
        chosen: list[int] = []
        while len(chosen) < STRIP_IMAGES and any(by_class):
            for queue in by_class:
                if queue and len(chosen) < STRIP_IMAGES:
                    chosen.append(queue.pop(0))
        return [(index, int(labels[index]), int(predicted[index])) for index in chosen]


def load_report_split(rubric_path: Path, data: Path | None = None) -> ReportSplit:
    """The rubric's pinned split, read as grading reads it; a missing rubric or split is not an error here:
    the pages say the images are unavailable and everything else still renders."""
    try:
        rubric = load_rubric(rubric_path)
        path = resolve_split_path(rubric, Path(rubric_path), data)
        if rubric.split.format == SplitFormat.cifar_batches and not (batch_folder(path) / "test_batch").is_file():
            return ReportSplit(None, None, f"{path}: no CIFAR-10 test batch there (the report never downloads it)")
        split = load_pinned_split(path, rubric.split.format, rubric.split.sha256, rubric.split.md5)
    except (GraderError, OSError, ValueError) as error:
        log.info("no test images for the report: %s", error)
        return ReportSplit(None, None, str(error))
    return ReportSplit(split, split.content_sha256())
