"""What the sandbox is shown instead of the bare split: the test images in a secret order, mixed with perturbed
copies of a secret sample of them, a sample of the training split (clean and perturbed) and a sample of the
instructor's private split; and how the logits are put back in split order afterwards. One sandbox run answers
every integrity question.

Nothing here follows a rule a student could read in the code: the course secret draws the course's samples (the
training, private and fingerprint images: the same for every student, so regrading and the class comparison see
the same images) and the submission's key draws the rest (which test images are perturbed, every perturbation's
parameters, the order), so that the same files graded again see exactly the same images.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.atomic_write import write_atomic
from grader.integrity.perturb import perturb

SECRET_FILE = ".grader-secret"
# The parts of what the sandbox sees, in the order they are stacked before the secret shuffle.
TEST, PERTURBED, TRAIN, TRAIN_PERTURBED, PRIVATE = "test", "perturbed", "train", "train-perturbed", "private"


def course_secret(folder: Path) -> bytes:
    """The course's secret, beside the rubric (a folder no sandbox sees); created on first use, never shown."""
    path = Path(folder) / SECRET_FILE
    if not path.exists():
        write_atomic(path, secrets.token_hex(32) + "\n")
        os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def course_sample(secret: bytes, purpose: str, count: int, size: int) -> np.ndarray:
    """`size` of `count` indices (all of them when size >= count), sorted, drawn by the course secret for one
    purpose ("train", "private", "fingerprint"): unknowable without the secret, the same on every regrade."""
    if size >= count:
        return np.arange(count)
    seed = hmac.new(secret, f"course sample: {purpose}".encode(), hashlib.sha256).digest()
    return np.sort(np.random.default_rng(int.from_bytes(seed, "big")).choice(count, size, replace=False))


@dataclass
class ProbeSet:
    """The images one submission's sandbox sees, and how to take its logits apart again."""

    order: np.ndarray  # sandbox position -> index into `parts` concatenated
    parts: dict[str, slice]  # TEST, PERTURBED, TRAIN, TRAIN_PERTURBED, PRIVATE -> rows of the concatenation
    sample: np.ndarray  # test indices of the perturbed sample, in the order of the PERTURBED part
    train_perturbed: np.ndarray  # indices into the training sample of the TRAIN_PERTURBED part
    images: np.ndarray  # in sandbox order

    def split_logits(self, logits: np.ndarray) -> dict[str, np.ndarray]:
        """Each part's logits, in its own order (the test part in split order)."""
        restored = np.empty_like(logits)
        restored[self.order] = logits
        return {name: restored[rows] for name, rows in self.parts.items()}


def build_probes(
    test_images: np.ndarray,
    train_images: np.ndarray | None,
    *,
    key: bytes,
    permute: bool,
    sample_size: int,
    private_images: np.ndarray | None = None,
) -> ProbeSet:
    """`key` (from the course secret and the submission's hash) draws the perturbed sample, the perturbations and
    the order: the same files graded again see the same images in the same order. `sample_size` test images are
    perturbed, and as many of the training sample's."""
    rng = np.random.default_rng(int.from_bytes(key, "big"))
    count = len(test_images)
    sample = np.sort(rng.choice(count, min(sample_size, count), replace=False)) if sample_size else np.arange(0)
    train_count = 0 if train_images is None else len(train_images)
    train_perturbed = np.sort(rng.choice(train_count, min(sample_size, train_count), replace=False))
    blocks = {TEST: test_images}
    if len(sample):
        blocks[PERTURBED] = perturb(test_images[sample], rng)
    if train_count:
        blocks[TRAIN] = train_images
        if len(train_perturbed):
            blocks[TRAIN_PERTURBED] = perturb(train_images[train_perturbed], rng)
    if private_images is not None and len(private_images):
        blocks[PRIVATE] = private_images
    parts, start = {}, 0
    for name, block in blocks.items():
        parts[name], start = slice(start, start + len(block)), start + len(block)
    every = np.concatenate(list(blocks.values()))
    order = rng.permutation(len(every)) if permute else np.arange(len(every))
    return ProbeSet(
        order=order, parts=parts, sample=sample, train_perturbed=train_perturbed,
        images=np.ascontiguousarray(every[order]),
    )  # fmt: skip


def submission_key(secret: bytes, submission: dict[str, str], split_sha256: str) -> bytes:
    """HMAC of the submission's file hashes and the split: unpredictable without the secret, stable with it."""
    message = "\n".join(f"{name} {digest}" for name, digest in sorted(submission.items())) + f"\nsplit {split_sha256}"
    return hmac.new(secret, message.encode(), hashlib.sha256).digest()
