"""The typed model of rubric.yaml. Every key documents itself; unknown keys are errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.answers import Exercise2Rubric
from grader.datasets import SplitFormat
from grader.errors import GraderError
from grader.export.base import ExportSettings
from grader.integrity.model import IntegritySettings
from grader.policy.late import AttemptPolicy, LatePolicy
from grader.sandbox.protocol import SandboxLimits

DEFAULT_IMPORT_SECONDS = SandboxLimits.model_fields["import_seconds"].default


class RubricError(GraderError, ValueError):
    """rubric.yaml is missing, unreadable or invalid; the message names the file and the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SplitPin(Strict):
    name: str = Field(default="cifar10-test", description="A label for reports")
    format: SplitFormat = Field(
        default=SplitFormat.cifar_batches, description="cifar-batches, npz, image-folder or npy-pair"
    )
    path: str = Field(default="data", description="Where the split lies, relative to the rubric file's folder")
    sha256: str | None = Field(default=None, description="sha256 over the decoded images and labels")
    md5: str | None = Field(default=None, description="md5 of test_batch (cifar-batches only), as torchvision checks")

    @model_validator(mode="after")
    def needs_a_hash(self) -> SplitPin:
        if not self.sha256 and not self.md5:
            raise ValueError("pin the split with sha256 (any format) or md5 (cifar-batches); run `grader pin-split`")
        if self.md5 and self.format != SplitFormat.cifar_batches:
            raise ValueError("md5 pins only the cifar-batches format; use sha256")
        return self


class TrainSplitPin(SplitPin):
    """The training split, for the generalisation-gap check: pinned by sha256, or the official batches by md5."""

    name: str = Field(default="cifar10-train", description="A label for reports")
    md5: dict[str, str] | None = Field(  # type: ignore[assignment]
        default=None, description="md5 of each training batch file (cifar-batches only), as torchvision checks"
    )

    @model_validator(mode="after")
    def needs_a_hash(self) -> TrainSplitPin:
        if not self.sha256 and not self.md5:
            raise ValueError("pin the training split: run `grader pin-split PATH --train`")
        if self.md5 and self.format != SplitFormat.cifar_batches:
            raise ValueError("md5 pins only the cifar-batches format; use sha256")
        return self


class PrivateSplitPin(SplitPin):
    """The instructor's private split (images students never saw, e.g. CIFAR-10.1): pinned by sha256."""

    name: str = Field(default="private", description="A label for reports")

    @model_validator(mode="after")
    def needs_sha256(self) -> PrivateSplitPin:
        if not self.sha256:
            raise ValueError("pin the private split by sha256: run `grader pin-split PATH --private`")
        return self


class SandboxSettings(Strict):
    backend: Literal["auto", "local", "docker"] = Field(default="auto", description="auto: Docker when it answers")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="auto: CUDA when visible")
    batch_size: int = Field(default=500, gt=0, description="Images per forward pass")
    image: str = Field(
        default="lab8-grader-sandbox:latest",
        description="Docker image holding torch and the runner; $GRADER_SANDBOX_IMAGE overrides it on one machine",
    )
    workers: int = Field(default=0, ge=0, description="Parallel submissions in grade --all; 0: one per GPU or CPU")
    isolation: Literal["sandbox", "process"] = Field(
        default="sandbox",
        description="sandbox: grade only inside bubblewrap or Docker; process: also in a plain process, which is "
        "not a security boundary (trusted code only)",
    )
    limits: SandboxLimits = SandboxLimits()
    warm: bool = Field(
        default=True,
        description="local backend with bubblewrap: each worker keeps a sandbox that imported torch once and forks "
        "every submission into its own fresh namespaces (same isolation, no interpreter start per student); "
        "false starts a cold sandbox per submission; $GRADER_WARM_SANDBOX=1 or 0 overrides it on one machine",
    )


class Anchor(Strict):
    """One point of the accuracy-to-points line: a fixed accuracy, or a baseline's measured accuracy."""

    accuracy: float | None = Field(default=None, ge=0, le=1, description="Accuracy as a fraction (0.6 = 60%)")
    baseline: str | None = Field(default=None, description="A reference baseline, e.g. lenet5 or resnet20")
    points: float = Field(ge=0)

    @model_validator(mode="after")
    def one_position(self) -> Anchor:
        if (self.accuracy is None) == (self.baseline is None):
            raise ValueError("give exactly one of accuracy or baseline")
        return self


class Exercise1(Strict):
    points: float = Field(default=100, gt=0, description="Most points Exercise 1 can give")
    anchors: list[Anchor] = Field(
        min_length=2,
        description="(accuracy, points) pairs joined by straight lines; below the first and above the last "
        "the points stay flat",
    )

    @model_validator(mode="after")
    def anchors_within_points(self) -> Exercise1:
        for anchor in self.anchors:
            if anchor.points > self.points:
                raise ValueError(f"an anchor gives {anchor.points} points, more than the {self.points} available")
        fixed = [a.accuracy for a in self.anchors if a.accuracy is not None]
        if all(a.baseline is None for a in self.anchors) and fixed != sorted(set(fixed)):
            raise ValueError("anchor accuracies must increase")
        return self


class Rubric(Strict):
    course: str = Field(default="Lab 8", description="Shown in reports and exports")
    split: SplitPin
    sandbox: SandboxSettings = SandboxSettings()
    exercise1: Exercise1
    exercise2: Exercise2Rubric = Field(
        default_factory=Exercise2Rubric.default, description="The written questions: references and key concepts"
    )
    integrity: IntegritySettings = Field(
        default_factory=IntegritySettings, description="Checks for replayed, test-trained and copied models"
    )
    train_split: TrainSplitPin | None = Field(
        default=None, description="The training split, for the generalisation gap; none: the gap is not measured"
    )
    private_split: PrivateSplitPin | None = Field(
        default=None,
        description="Images no student has seen, for the strongest memorisation check (their gap to the test split)",
    )
    late: LatePolicy | None = Field(default=None, description="Due date, grace period and penalty; none: no penalty")
    attempts: AttemptPolicy = Field(default_factory=AttemptPolicy, description="Which Blackboard attempt is graded")
    export: ExportSettings = Field(default_factory=ExportSettings, description="The grade column in the LMS")

    def section_hashes(self) -> dict[str, str]:
        """One hash per section, so a change regrades only what it affects."""
        data = self.model_dump(mode="json")
        # How many submissions run at once, and whether a plain process is accepted, change no result:
        # neither must trigger regrading.
        data["sandbox"].pop("workers", None)
        data["sandbox"].pop("isolation", None)
        # The import limit changes a sandbox run, so a changed value reruns the class; at its default it is
        # left out, so that results graded before the setting existed are not all rerun for it.
        if data["sandbox"]["limits"].get("import_seconds") == DEFAULT_IMPORT_SECONDS:
            data["sandbox"]["limits"].pop("import_seconds")
        data["sandbox"].pop("warm", None)  # a warm sandbox runs the same runner in the same isolation
        # The copy rules are applied to the stored predictions of the whole class: no student reruns for them.
        for key in [key for key in data["integrity"] if key.startswith("copy_")]:
            data["integrity"].pop(key)
        return {key: _hash_json(value) for key, value in data.items()}

    def content_hash(self) -> str:
        return _hash_json(self.section_hashes())


def _hash_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: invalid rubric"]
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {key}: {problem['msg']}")
    return "\n".join(lines)


def load_rubric(path: Path) -> Rubric:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RubricError(
            f"{path}: no such rubric file; run the command in the grader's folder (where rubric.yaml is), "
            "or name the rubric with --rubric PATH"
        ) from error
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise RubricError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(data, dict):
        raise RubricError(f"{path}: the rubric must be a mapping of sections (split, sandbox, exercise1, ...)")
    try:
        return Rubric.model_validate(data)
    except ValidationError as error:
        raise RubricError(format_validation_error(path, error)) from error


def split_root(rubric_path: Path, pin: SplitPin) -> Path:
    path = Path(pin.path).expanduser()
    return path if path.is_absolute() else Path(rubric_path).resolve().parent / path
