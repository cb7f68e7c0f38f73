"""The grading session: what every submission of one run shares (rubric, split, sandbox, baselines)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from grader.datasets import LabelledImages, SplitFormat
from grader.datasets.npy_pair import pair_paths
from grader.datasets.pinned_split import SplitMissing, load_pinned_split, write_images_for_sandbox
from grader.integrity.probes import course_sample, course_secret
from grader.rubric.config import Rubric, split_root
from grader.rubric.points import resolve_anchors as check_anchors
from grader.sandbox.base import SandboxBackend, SandboxUnavailable, get_backend, run_folder
from grader.sandbox.bwrap import bwrap_remedy
from grader.sandbox.supervisor import reset_cancel


@dataclass
class GradingSession:
    """What every submission in one grading run shares: the rubric, the split, the sandbox."""

    rubric: Rubric
    rubric_path: Path
    split: LabelledImages
    split_sha256: str
    images_file: Path
    backend: SandboxBackend
    baselines: dict[str, float] = field(default_factory=dict)
    hidden_paths: list[Path] = field(default_factory=list)
    timeout_seconds: float | None = None
    diagnose: bool = False
    # Integrity checks (None: off, as in a student's self-check): the course secret, the training and private samples.
    secret: bytes | None = None
    train_sample: LabelledImages | None = None
    private_sample: LabelledImages | None = None
    integrity_not_measured: list[str] = field(default_factory=list)

    @property
    def isolation_warning(self) -> str | None:
        if self.backend.is_boundary:
            return None
        return (
            f"student code runs in a plain process ({self.backend.isolation}), which is not a security boundary: "
            "a hostile submission can read the labels and other students' files"
        )


def resolve_split_path(rubric: Rubric, rubric_path: Path, data: Path | None) -> Path:
    """--data / DATA first, then CIFAR10_ROOT, then the rubric's own path."""
    if data is not None:
        return Path(data)
    if os.environ.get("CIFAR10_ROOT"):
        return Path(os.environ["CIFAR10_ROOT"])
    return split_root(rubric_path, rubric.split)


@dataclass
class SessionInputs:
    """What a session reads from disk before any sandbox starts: the split, the baselines, the integrity inputs,
    and the host paths a plain-process sandbox must not reach. A cluster node gets them from the driver."""

    split: LabelledImages
    split_sha256: str
    baselines: dict[str, float] = field(default_factory=dict)
    hidden_paths: list[Path] = field(default_factory=list)
    secret: bytes | None = None
    train_sample: LabelledImages | None = None
    private_sample: LabelledImages | None = None
    integrity_not_measured: list[str] = field(default_factory=list)


def read_session_inputs(
    rubric: Rubric,
    rubric_path: Path,
    *,
    data: Path | None = None,
    reference_dir: Path | None = None,
    resolve_anchors: bool = True,
    integrity: bool = True,
) -> SessionInputs:
    from grader.reference.baselines import baseline_accuracies

    split_path = resolve_split_path(rubric, rubric_path, data)
    split = load_pinned_split(split_path, rubric.split.format, rubric.split.sha256, rubric.split.md5)
    split_sha256 = split.content_sha256()
    baselines = baseline_accuracies(reference_dir or Path("reference"), split_sha256)
    if resolve_anchors:
        check_anchors(rubric.exercise1, baselines)  # a baseline missing for this split stops grading before it starts
    secret, train_sample, private_sample, not_measured = (
        _integrity_inputs(rubric, rubric_path, split_path) if integrity else (None, None, None, [])
    )
    return SessionInputs(
        split=split,
        split_sha256=split_sha256,
        baselines=baselines,
        hidden_paths=[
            split_path.resolve(),
            Path(rubric_path).resolve().parent,
            *_private_paths(rubric, rubric_path),
        ],
        secret=secret,
        train_sample=train_sample,
        private_sample=private_sample,
        integrity_not_measured=not_measured,
    )


@contextmanager
def open_session(
    rubric: Rubric,
    rubric_path: Path,
    *,
    data: Path | None = None,
    backend: str | SandboxBackend | None = None,
    timeout_seconds: float | None = None,
    reference_dir: Path | None = None,
    extra_hidden: list[Path] | None = None,
    resolve_anchors: bool = True,
    isolation: str | None = None,
    integrity: bool = True,
    inputs: SessionInputs | None = None,
) -> Iterator[GradingSession]:
    """The one way a session opens, for every verb and executor.

    isolation: 'sandbox' refuses to run student code without bwrap or Docker; 'process' accepts the
    plain-process fallback. None: the rubric's sandbox.isolation. backend: a name, or a SandboxBackend object
    (the fast tests' fake). integrity: run the integrity checks (off in a student's self-check). inputs: what
    read_session_inputs would read (a cluster node has them from the driver); data, reference_dir,
    resolve_anchors and integrity are then not used."""
    if inputs is None:
        inputs = read_session_inputs(
            rubric,
            rubric_path,
            data=data,
            reference_dir=reference_dir,
            resolve_anchors=resolve_anchors,
            integrity=integrity,
        )
    reset_cancel()  # a new session starts with no interrupt pending from an earlier one in this process
    sandbox = backend
    if not isinstance(sandbox, SandboxBackend):
        sandbox = get_backend(backend or rubric.sandbox.backend, rubric.sandbox.image, rubric.sandbox.warm)
    require_boundary(sandbox, isolation or rubric.sandbox.isolation)
    with run_folder("grader-images-") as folder:
        images_file = write_images_for_sandbox(inputs.split, folder)
        try:
            yield GradingSession(
                rubric=rubric,
                rubric_path=Path(rubric_path),
                split=inputs.split,
                split_sha256=inputs.split_sha256,
                images_file=images_file,
                backend=sandbox,
                baselines=dict(inputs.baselines),
                hidden_paths=[*inputs.hidden_paths, *(extra_hidden or [])],
                timeout_seconds=timeout_seconds,
                secret=inputs.secret,
                train_sample=inputs.train_sample,
                private_sample=inputs.private_sample,
                integrity_not_measured=list(inputs.integrity_not_measured),
            )
        finally:
            sandbox.close()


def _integrity_inputs(
    rubric: Rubric, rubric_path: Path, test_root: Path
) -> tuple[bytes, LabelledImages | None, LabelledImages | None, list[str]]:
    """The course secret (beside the rubric, where no sandbox looks) and the samples it draws of the pinned training
    and private splits. A pinned split that does not match its pin stops grading, as the test split's does; the
    training split missing from this machine (the default rubric pins the official batches) is noted instead."""
    secret = course_secret(Path(rubric_path).resolve().parent)
    settings, not_measured = rubric.integrity, []
    # The official batches lie together: a training pin at the test pin's path follows --data / CIFAR10_ROOT too.
    same_place = rubric.train_split is not None and rubric.train_split.path == rubric.split.path
    try:
        train_root = test_root if same_place else None
        train = _course_sample(rubric_path, rubric.train_split, settings.train_sample, secret, "train", train_root)
    except SplitMissing as error:
        train = None
        not_measured.append(f"generalisation gap: the pinned training split is not here: {str(error).splitlines()[0]}")
    if rubric.train_split is None:
        not_measured.append("generalisation gap: no train_split pinned in the rubric (grader pin-split PATH --train)")
    elif train is None and not settings.train_sample:
        not_measured.append("generalisation gap: integrity.train_sample is 0 in the rubric")
    private = _course_sample(rubric_path, rubric.private_split, settings.private_sample, secret, "private")
    if rubric.private_split is None:
        not_measured.append(
            "private split gap: no private_split pinned in the rubric (grader pin-split PATH --private), the "
            "strongest check against a memorised test set"
        )
    elif private is None:
        not_measured.append("private split gap: integrity.private_sample is 0 in the rubric")
    return secret, train, private, not_measured


def _private_paths(rubric: Rubric, rubric_path: Path) -> list[Path]:
    """The private split is kept from the fallback sandbox's reach, as the test split is (its labels most of all)."""
    pin = rubric.private_split
    if pin is None:
        return []
    path = split_root(rubric_path, pin).resolve()
    return list(pair_paths(path)) if pin.format == SplitFormat.npy_pair and path.is_file() else [path]


def _course_sample(
    rubric_path: Path, pin, wanted: int, secret: bytes, purpose: str, root: Path | None = None
) -> LabelledImages | None:
    """`wanted` images of a pinned split, drawn by the course secret (never by a rule a student can read)."""
    if pin is None or not wanted:
        return None
    part = "train" if purpose == "train" else "test"
    md5 = pin.md5 if isinstance(pin.md5, dict) else None  # the training batches' md5s; a test pin's is its own
    split = load_pinned_split(root or split_root(rubric_path, pin), pin.format, pin.sha256, md5, part=part)
    chosen = course_sample(secret, purpose, len(split), wanted)
    return LabelledImages(images=split.images[chosen], labels=split.labels[chosen], source=f"{split.source} (sample)")


def require_boundary(backend: SandboxBackend, isolation: str) -> None:
    """Student code runs without a real sandbox only when someone asked for that in so many words."""
    if backend.is_boundary or isolation == "process":
        return
    raise SandboxUnavailable(
        f"no sandbox that isolates student code is available here, so grading stops before running any. "
        f"{bwrap_remedy()} Or build and start the Docker sandbox (`make sandbox-image`, then --sandbox docker). "
        "To grade anyway in a plain process, which is NOT a security boundary (a hostile submission can read "
        "the labels, other students' files and the grader's results), pass --isolation process "
        "(make ... ISOLATION=process) or set sandbox.isolation: process in the rubric."
    )
