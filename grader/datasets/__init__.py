"""Labelled image splits in the formats instructors use: CIFAR pickle batches, .npz, image folders."""

from grader.datasets.base import (
    CIFAR10_CLASSES,
    DatasetError,
    LabelledImages,
    SplitFormat,
    detect_format,
    load_split,
)

__all__ = ["CIFAR10_CLASSES", "DatasetError", "LabelledImages", "SplitFormat", "detect_format", "load_split"]
