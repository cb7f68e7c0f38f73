"""CIFAR-10's python pickle batches, as torchvision downloads them (cifar-10-batches-py/)."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np

from grader.datasets.base import DatasetError, LabelledImages, Part

FOLDER = "cifar-10-batches-py"
BATCH_FILES = {"test": ("test_batch",), "train": tuple(f"data_batch_{i}" for i in range(1, 6))}
# The md5s that torchvision's CIFAR10 class checks for the official batches.
OFFICIAL_TEST_BATCH_MD5 = "40351d587109b95175f43aff81a1287e"
OFFICIAL_TRAIN_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
}
MAX_BATCH_BYTES = 200 * 2**20


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The batches are pickles; allow only the numpy types they contain, so a planted file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # bytes inside a protocol-2 pickle written by Python 3
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def batch_folder(path: Path) -> Path:
    """Accepts the data root, the cifar-10-batches-py folder itself, or one batch file inside it."""
    if path.is_file():
        return path.parent
    return path / FOLDER if (path / FOLDER).is_dir() else path


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(f"{path}: missing CIFAR-10 batch file")
    if path.stat().st_size > MAX_BATCH_BYTES:
        raise DatasetError(f"{path}: {path.stat().st_size} bytes is too large for a CIFAR-10 batch")
    try:
        with open(path, "rb") as stream:
            entry = _NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise DatasetError(f"{path}: not a CIFAR-10 pickle batch ({error})") from error
    if not isinstance(entry, dict) or "data" not in entry or not ({"labels", "fine_labels"} & entry.keys()):
        raise DatasetError(f"{path}: a CIFAR-10 batch must be a dict with 'data' and 'labels'")
    data = np.asarray(entry["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetError(f"{path}: 'data' must be [N, 3072] bytes, found {list(data.shape)}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    return np.ascontiguousarray(images), labels


def read(path: Path, part: Part = "test") -> LabelledImages:
    folder = batch_folder(path)
    batches = [read_batch(folder / name) for name in BATCH_FILES[part]]
    images = np.concatenate([images for images, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    return LabelledImages(images=images, labels=labels, source=str(folder))
