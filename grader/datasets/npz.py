"""A split stored as one .npz file with `images` uint8 [N, 32, 32, 3] and `labels` int [N]."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from grader.datasets.base import DatasetError, LabelledImages, Part


def read(path: Path, part: Part = "test") -> LabelledImages:
    if not path.is_file():
        raise DatasetError(f"{path}: no such .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = {"images", "labels"} - set(archive.files)
            if missing:
                raise DatasetError(f"{path}: missing array(s) {sorted(missing)}; found {sorted(archive.files)}")
            images, labels = archive["images"], archive["labels"]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        if isinstance(error, DatasetError):
            raise
        raise DatasetError(f"{path}: not a readable .npz file ({error})") from error
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: labels must be integers, found {labels.dtype}")
    return LabelledImages(images=images, labels=labels.astype(np.int64), source=str(path))
