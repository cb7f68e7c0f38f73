"""What the sandbox is shown instead of the bare split: the test images in a secret order, mixed with
lightly perturbed copies of a fixed sample and a pinned sample of training images; and how the
logits are put back in split order afterwards. One sandbox run answers every integrity question.
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

SECRET_FILE = ".grader-secret"
PERTURBATIONS = ("flip", "grey-noise", "shift")


def course_secret(folder: Path) -> bytes:
    """The course's secret, beside the rubric (a folder no sandbox sees); created on first use, never shown."""
    path = Path(folder) / SECRET_FILE
    if not path.exists():
        write_atomic(path, secrets.token_hex(32) + "\n")
        os.chmod(path, 0o600)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def perturb(images: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """A change a genuine CNN barely notices and a table of exact pixels cannot survive."""
    if name == "flip":
        return images[:, :, ::-1, :]
    if name == "grey-noise":  # every pixel one grey level up or down
        steps = rng.choice(np.array([-1, 1], dtype=np.int16), size=images.shape)
        return np.clip(images.astype(np.int16) + steps, 0, 255).astype(np.uint8)
    if name == "shift":  # one pixel to the right, the first column repeated
        return np.concatenate([images[:, :, :1], images[:, :, :-1]], axis=2)
    raise ValueError(f"unknown perturbation {name!r}")


@dataclass
class ProbeSet:
    """The images one submission's sandbox sees, and how to take its logits apart again."""

    order: np.ndarray  # sandbox position -> index into `parts` concatenated
    parts: dict[str, slice]  # "test", each perturbation, "train" -> rows of the concatenation
    sample: np.ndarray  # test indices of the perturbation sample
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
) -> ProbeSet:
    """`key` (from the course secret and the submission's hash) fixes the order and the noise: the same files
    graded again see the same images in the same order."""
    rng = np.random.default_rng(int.from_bytes(key, "big"))
    count = len(test_images)
    sample = np.arange(0, count, max(1, count // sample_size))[:sample_size] if sample_size else np.arange(0)
    blocks, parts, start = [test_images], {"test": slice(0, count)}, count
    for name in PERTURBATIONS if len(sample) else ():
        blocks.append(perturb(test_images[sample], name, rng))
        parts[name], start = slice(start, start + len(sample)), start + len(sample)
    if train_images is not None and len(train_images):
        blocks.append(train_images)
        parts["train"] = slice(start, start + len(train_images))
    every = np.concatenate(blocks)
    order = rng.permutation(len(every)) if permute else np.arange(len(every))
    return ProbeSet(order=order, parts=parts, sample=sample, images=np.ascontiguousarray(every[order]))


def submission_key(secret: bytes, submission: dict[str, str], split_sha256: str) -> bytes:
    """HMAC of the submission's file hashes and the split: unpredictable without the secret, stable with it."""
    message = "\n".join(f"{name} {digest}" for name, digest in sorted(submission.items())) + f"\nsplit {split_sha256}"
    return hmac.new(secret, message.encode(), hashlib.sha256).digest()
