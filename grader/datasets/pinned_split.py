"""Pinning the test split: every student is graded on exactly the images and labels the rubric names."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from grader.datasets.base import DatasetError, LabelledImages, Part, SplitFormat, detect_format, load_split
from grader.datasets.cifar_batches import BATCH_FILES, FOLDER, batch_folder, file_md5

DOWNLOAD_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class SplitMismatch(DatasetError):
    """The data found is not the split the rubric pins."""


class SplitMissing(DatasetError):
    """The pinned split is not on this machine and could not be downloaded."""


def ensure_cifar_batches(root: Path, part: Part = "test") -> None:
    """Download the official batches with torchvision when they are absent; offline, say where to put them."""
    if (batch_folder(root) / BATCH_FILES[part][0]).is_file():
        return
    wanted = root / FOLDER / BATCH_FILES[part][0]
    try:
        from torchvision.datasets import CIFAR10

        CIFAR10(root=str(root), train=part == "train", download=True)
    except Exception as error:  # noqa: BLE001 - any network or archive failure gets the same instructions
        raise SplitMissing(
            f"CIFAR-10 {part} batch not found at {wanted} and the download failed ({error}).\n"
            f"Download {DOWNLOAD_URL}, extract it so that {wanted} exists, "
            "or point --data (make's DATA=, or the variable CIFAR10_ROOT) at a folder or split file that holds it."
        ) from error


def load_pinned_split(
    path: Path, split_format: SplitFormat, sha256: str | None, md5: str | dict[str, str] | None, part: Part = "test"
) -> LabelledImages:
    """Loads the split and refuses it, printing expected versus found, unless it matches the pin.

    md5: the test batch's md5, or each batch file's (the training split's five)."""
    path = Path(path)
    # Only the test batch is downloaded: the archive holds the training batches too, so where they are missing
    # someone placed the test batch alone, and the training split is then reported as not measured.
    if split_format == SplitFormat.cifar_batches and path.suffix != ".npz" and part == "test":
        ensure_cifar_batches(path, part)
    if not path.exists():
        raise SplitMissing(f"{path}: the split named by the rubric does not exist")
    found_format = detect_format(path)
    if found_format != split_format:
        raise SplitMismatch(
            f"{path}: the rubric pins a {split_format.value} split, found {found_format.value}.\n"
            "Grade on the pinned data, or adopt this split with `grader pin-split PATH` (it rewrites the rubric's pin)."
        )
    for name, expected in ({"test_batch": md5} if isinstance(md5, str) else md5 or {}).items():
        batch = batch_folder(path) / name
        if part == "train" and not batch.is_file():
            raise SplitMissing(f"{batch}: not found (the official CIFAR-10 archive holds it: {DOWNLOAD_URL})")
        found = file_md5(batch) if batch.is_file() else f"(no {name})"
        if found != expected:
            raise SplitMismatch(
                f"{batch}: not the pinned split: md5 expected {expected}, found {found}.\n"
                "Grade on the pinned data, or adopt this split with `grader pin-split PATH`."
            )
    split = load_split(path, split_format, part)
    if sha256:
        found = split.content_sha256()
        if found != sha256:
            raise SplitMismatch(
                f"{path}: not the pinned split: sha256 expected {sha256}, found {found}.\n"
                "Grade on the pinned data, or adopt this split with `grader pin-split PATH`."
            )
    return split


def write_images_for_sandbox(split: LabelledImages, folder: Path) -> Path:
    """The images alone, as the one .npy file the sandbox may read: the labels stay on the host."""
    path = Path(folder) / f"images-{split.content_sha256()[:16]}.npy"
    if not path.exists():
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, np.ascontiguousarray(split.images), allow_pickle=False)
        os.replace(temporary, path)
        os.chmod(path, 0o644)
    return path
