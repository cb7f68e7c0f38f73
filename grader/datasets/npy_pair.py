"""A split stored as two .npy files, NAME_data.npy (uint8 [N, 32, 32, 3]) and NAME_labels.npy (int [N]), as
CIFAR-10.1 ships them (cifar10.1_v6_data.npy, cifar10.1_v6_labels.npy). PATH is either file, or a folder
holding one such pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.datasets.base import DatasetError, LabelledImages, Part

DATA, LABELS = "_data.npy", "_labels.npy"


def pair_paths(path: Path) -> tuple[Path, Path]:
    """(data, labels) for a path naming either file of the pair, or a folder holding exactly one pair."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*{DATA}"))
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) or "none"
            raise DatasetError(f"{path}: expected one NAME{DATA} with its NAME{LABELS} beside it, found {listed}")
        path = found[0]
    if path.name.endswith(DATA):
        return path, path.with_name(path.name[: -len(DATA)] + LABELS)
    if path.name.endswith(LABELS):
        return path.with_name(path.name[: -len(LABELS)] + DATA), path
    raise DatasetError(
        f"{path}: a .npy split is a pair NAME{DATA} (uint8 [N, 32, 32, 3]) and NAME{LABELS} (int [N]), as "
        "CIFAR-10.1 ships them; name the files so, or pass their folder"
    )


def _load(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"{path}: no such file (the {what} of the .npy pair)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path}: not a readable .npy array of {what} ({error})") from error


def read(path: Path, part: Part = "test") -> LabelledImages:
    """`part` is ignored: a pair is one split."""
    data_path, labels_path = pair_paths(path)
    images, labels = _load(data_path, "images"), _load(labels_path, "labels")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{labels_path}: labels must be integers, found {labels.dtype}")
    return LabelledImages(images=images, labels=labels.astype(np.int64), source=str(data_path))
