"""Logit fingerprints: what each model answers on the course's fingerprint images, compared across a class.

Every student's model runs on the same secret sample of test images (drawn by the course secret). Per image the
fingerprint keeps the logits of the nine wrong classes (the true class left out, so that two accurate models
do not look alike merely for being right), standardised to mean 0 and variance 1 (so that a copy cannot hide by
scaling or shifting its logits), less the model's mean over the sample's images of the same class (what every
model learns: a cat is more a dog than a truck), standardised again. What is left is how the model sees each
image. Two fingerprints are compared by the mean over images of the correlation of those nine numbers:
independently trained models share it only in part (at most 0.59 in `make bench-integrity`, 0.75 for two from
the same initial weights); a copy keeps its original's however it changes a few answers (0.99 and more).
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from grader.integrity.model import LogitFingerprint
from grader.integrity.probes import course_sample

CLASSES = 10


def fingerprint_sample(secret: bytes, split_sha256: str, count: int, size: int) -> tuple[np.ndarray, str]:
    """The course's fingerprint images (test indices) and the name that says which they are."""
    indices = course_sample(secret, "fingerprint", count, size)
    digest = hashlib.sha256(split_sha256.encode() + b"\0" + indices.astype("<i8").tobytes()).hexdigest()
    return indices, digest[:16]


def wrong_class_profile(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[images, 9]: each image's logits without its true class, standardised per image, less the mean of the
    images of its class, standardised again (a row that says nothing becomes zeros). For the images of one class
    the nine columns are the same nine classes, so the class means line up."""
    labels = np.asarray(labels)
    logits = np.asarray(logits, dtype=np.float64)
    keep = np.arange(CLASSES)[None, :] != labels[:, None]
    profile = _standardised(logits[keep].reshape(len(logits), CLASSES - 1))
    for label in np.unique(labels):
        rows = labels == label
        profile[rows] -= profile[rows].mean(axis=0)
    return _standardised(profile)


def _standardised(rows: np.ndarray) -> np.ndarray:
    centred = rows - rows.mean(axis=1, keepdims=True)
    spread = np.sqrt((centred**2).mean(axis=1, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 1e-9 * (1 + np.abs(rows).max(axis=1, keepdims=True)), centred / spread, 0.0)


def make_fingerprint(logits: np.ndarray, labels: np.ndarray, sample: str) -> LogitFingerprint:
    profile = wrong_class_profile(logits, labels).astype(np.float16)
    values = base64.b64encode(np.ascontiguousarray(profile, dtype="<f2").tobytes()).decode("ascii")
    return LogitFingerprint(sample=sample, images=len(profile), values=values)


def decode(fingerprint: LogitFingerprint) -> np.ndarray | None:
    """[images, 9] float32, or None for a fingerprint that is not what it says (a result edited by hand)."""
    try:
        raw = base64.b64decode(fingerprint.values, validate=True)
    except ValueError:
        return None
    if len(raw) != fingerprint.images * (CLASSES - 1) * 2:
        return None
    values = np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(fingerprint.images, CLASSES - 1)
    return values if np.isfinite(values).all() else None


def correlations(profiles: np.ndarray) -> np.ndarray:
    """profiles [students, images, 9] -> [students, students]: the mean over images of the per-image correlation
    (each row is already standardised, so a correlation is a mean of products); one matrix product."""
    students, images, width = profiles.shape
    flat = profiles.reshape(students, images * width).astype(np.float64)
    return flat @ flat.T / (images * width)
