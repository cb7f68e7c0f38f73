"""A split stored as image files, one subfolder per class named as in CIFAR-10 (airplane, ...)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from grader.datasets.base import CIFAR10_CLASSES, IMAGE_SHAPE, DatasetError, LabelledImages, Part

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def read(path: Path, part: Part = "test") -> LabelledImages:
    """Images are ordered by class, then by file name, so the order (and the pin) is reproducible."""
    if (path / part).is_dir() and not (path / CIFAR10_CLASSES[0]).is_dir():
        path = path / part
    unknown = sorted(p.name for p in path.iterdir() if p.is_dir() and p.name not in CIFAR10_CLASSES)
    if unknown:
        raise DatasetError(f"{path}: unknown class folder(s) {unknown}; expected names from {list(CIFAR10_CLASSES)}")
    images, labels = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        folder = path / name
        if not folder.is_dir():
            continue
        for file in sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES):
            images.append(_decode(file))
            labels.append(label)
    if not images:
        raise DatasetError(f"{path}: no images found in the class folders")
    return LabelledImages(images=np.stack(images), labels=np.asarray(labels, dtype=np.int64), source=str(path))


def _decode(file: Path) -> np.ndarray:
    try:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise DatasetError(f"{file}: cannot decode image ({error})") from error
    if pixels.shape != IMAGE_SHAPE:
        raise DatasetError(f"{file}: images must be 32x32 RGB, found {pixels.shape[1]}x{pixels.shape[0]}")
    return pixels
