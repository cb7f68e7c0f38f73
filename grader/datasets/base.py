"""The common shape of a split and the dispatch to one reader per file format."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal

import numpy as np

from grader.errors import GraderError
from grader.registry import Registry

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SHAPE = (32, 32, 3)

Part = Literal["train", "test"]


class DatasetError(GraderError, ValueError):
    """A split that cannot be read or is not what the harness expects; the message names the file."""


class SplitFormat(str, Enum):
    cifar_batches = "cifar-batches"
    npz = "npz"
    image_folder = "image-folder"
    npy_pair = "npy-pair"


@dataclass(frozen=True)
class LabelledImages:
    """uint8 images [N, 32, 32, 3] (RGB, HWC, as CIFAR-10 stores them) and int64 labels [N]."""

    images: np.ndarray
    labels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[1:] != IMAGE_SHAPE:
            raise DatasetError(
                f"{self.source}: images must be uint8 [N, 32, 32, 3], "
                f"found {self.images.dtype} {list(self.images.shape)}"
            )
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise DatasetError(
                f"{self.source}: need one label per image, "
                f"found {len(self.labels)} labels for {len(self.images)} images"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(CIFAR10_CLASSES)):
            raise DatasetError(
                f"{self.source}: labels must lie in 0..9, found {self.labels.min()}..{self.labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def content_sha256(self) -> str:
        """A hash of the decoded pixels and labels, independent of the file format that held them."""
        digest = hashlib.sha256()
        digest.update(repr(self.images.shape).encode())
        digest.update(np.ascontiguousarray(self.images).tobytes())
        digest.update(np.ascontiguousarray(self.labels, dtype="<i8").tobytes())
        return digest.hexdigest()


def detect_format(path: Path) -> SplitFormat:
    if path.is_file() and path.suffix == ".npz":
        return SplitFormat.npz
    if path.is_file() and path.suffix == ".npy":
        return SplitFormat.npy_pair
    if path.is_file() or (path / "cifar-10-batches-py").is_dir() or (path / "test_batch").is_file():
        return SplitFormat.cifar_batches
    if path.is_dir() and any((path / name).is_dir() for name in CIFAR10_CLASSES):
        return SplitFormat.image_folder
    if path.is_dir() and any(path.glob("*_data.npy")):
        return SplitFormat.npy_pair
    raise DatasetError(
        f"{path}: not a CIFAR-10 split: expected a .npz file, a folder holding cifar-10-batches-py/test_batch, "
        f"an image folder with one subfolder per class ({', '.join(CIFAR10_CLASSES)}), or a pair NAME_data.npy "
        "and NAME_labels.npy (as CIFAR-10.1 ships them)"
    )


SPLIT_FORMATS: Registry[Callable[[Path, Part], LabelledImages]] = Registry("split format", error=DatasetError)
for _format in SplitFormat:  # every format has its reader, read() in the module named after it
    SPLIT_FORMATS.register(_format.value, f"grader.datasets.{_format.name}:read")


def load_split(path: Path, split_format: SplitFormat | str | None = None, part: Part = "test") -> LabelledImages:
    path = Path(path)
    split_format = split_format or detect_format(path)
    return SPLIT_FORMATS.get(getattr(split_format, "value", split_format))(path, part)
