"""The result of grading one student. Field names are a contract with exports and later tools."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from grader.integrity.model import IntegrityReport
from grader.rubric.points import ItemPoints
from grader.sandbox.protocol import (
    ClaimedCount,
    ClaimedDevice,
    ClaimedFormat,
    ClaimedVersion,
    Diagnostics,
    RunWarning,
    read_warnings,
)

SCHEMA_VERSION = 1


class Points(BaseModel):
    """One field per graded item, named as the item (exercise1, exercise2, ...), and their total."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, float | None]

    total: float | None = None

    @property
    def by_item(self) -> dict[str, float | None]:
        return dict(self.__pydantic_extra__ or {})


class InputHashes(BaseModel):
    """Everything a result depends on; if none changed, the result stands."""

    submission: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    split: str | None = None
    rubric: str | None = None
    rubric_sections: dict[str, str] = Field(default_factory=dict)
    grader_version: str


class RunInfo(BaseModel):
    """How the sandbox ran. backend, isolation and image_digest are the host's; device, torch_version,
    parameter_count and weights_format are what the run reported (student code could rewrite them), kept only in
    the form the runner writes them and shown as the run's report; warnings are codes the host words itself
    (protocol.WARNING_WORDS). A result stored by an older grader loads: a field not of that form is dropped."""

    backend: str
    isolation: str
    device: ClaimedDevice = None
    torch_version: ClaimedVersion = None
    parameter_count: ClaimedCount = None
    weights_format: ClaimedFormat = None
    image_digest: str | None = None
    cold_rerun: str | None = Field(
        default=None, description="why the warm sandbox's run was set aside and the submission graded again cold"
    )
    warnings: Annotated[list[RunWarning], BeforeValidator(partial(read_warnings, legacy=True))] = Field(
        default_factory=list
    )
    diagnostics: Diagnostics | None = Field(default=None, description="The self-check's findings (grader check)")
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def sandboxed(self) -> bool:
        """Whether the run was inside a real boundary (bubblewrap or Docker), not the plain-process fallback."""
        return not self.isolation.startswith("process")


class Timings(BaseModel):
    """Wall-clock figures: the only fields that differ between two gradings of the same submission."""

    load_seconds: float | None = None
    inference_seconds: float | None = None
    sandbox_seconds: float | None = None
    total_seconds: float | None = None
    graded_at: str | None = None


class BaselineComparison(BaseModel):
    baseline: str
    accuracy: float
    difference: float = Field(description="student accuracy minus the baseline's")
    beats: bool


class LateInfo(BaseModel):
    submitted_at: str | None = None
    days_late: int = 0
    penalty_fraction: float = 0.0
    reason: str = ""


class OverrideRecord(BaseModel):
    item: str
    points: float
    reason: str
    decided_by: str


class DecisionRecord(BaseModel):
    """A TA's decision from `grader review` (results/review.sqlite) on one answer, error or integrity flag."""

    subject: str = Field(description="q<N> (an answer), error, answers-error or integrity:<code>")
    item: str = Field(description="The graded item whose points it decides")
    question: int | None = None
    points: float | None = Field(description="The TA's points; None: the machine's points stand")
    machine_points: float | None = None
    comment: str = Field(default="", description="For the student: shown on their page and in the feedback")
    decided_by: str
    decided_at: str
    status: Literal["applied", "reopened", "rescored"] = Field(
        description="reopened: the answer (or error, flag) changed since the decision, which waits for a TA again; "
        "rescored: not a TA's decision but the grader's points after the TA's grades of similar answers"
    )


class Result(BaseModel):
    schema_version: int = SCHEMA_VERSION
    student: str
    status: Literal["graded", "error"]
    accuracy: float | None = None
    per_class_accuracy: list[float] | None = None
    confusion_matrix: list[list[int]] | None = None
    predictions_sha256: str | None = None
    predictions: str | None = Field(
        default=None, description="The predicted class of each test image, one digit each, in the split's order"
    )
    points: Points = Field(default_factory=Points, description="The machine's figures, never overwritten")
    final_points: Points = Field(default_factory=Points, description="After review decisions, late penalty, overrides")
    items: list[ItemPoints] = Field(default_factory=list)
    late: LateInfo | None = None
    overrides: list[OverrideRecord] = Field(default_factory=list)
    decisions: list[DecisionRecord] = Field(
        default_factory=list, description="The TA's decisions from grader review, applied before the late penalty"
    )
    error: str | None = None
    error_kind: str | None = None
    sample: bool = Field(
        default=False,
        description="A sample shipped with the grader (a SAMPLE file): graded alone, never in a class view",
    )
    split_name: str | None = None
    files: dict[str, str | None] = Field(default_factory=dict, description="role -> file name in the submission")
    notes: list[str] = Field(default_factory=list, description="How the submission's files were recognised")
    answers: dict[str, Any] | None = Field(default=None, description="Exercise 2 details")
    comparison: list[BaselineComparison] = Field(default_factory=list)
    integrity: IntegrityReport | None = Field(default=None, description="Replay, test-training, copy checks")
    run: RunInfo | None = None
    inputs: InputHashes
    timings: Timings = Timings()
