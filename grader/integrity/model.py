"""What the integrity checks record in a result, and the rules they flag by (rubric.yaml `integrity:`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class IntegrityFlag(BaseModel):
    code: str = Field(description="perturbation-collapse, no-generalisation-gap, copied-predictions, ...")
    message: str = Field(description="One plain sentence for the TA: what was seen and why it matters")
    evidence: dict[str, Any] = Field(default_factory=dict, description="The figures behind the flag")


class IntegrityReport(BaseModel):
    """`result.integrity`; an empty `flags` list for an honest model."""

    flags: list[IntegrityFlag] = Field(default_factory=list)
    order_permuted: bool = Field(default=False, description="The sandbox saw the test images in a secret order")
    sample_images: int = Field(default=0, description="Test images in the perturbation sample")
    sample_accuracy: float | None = Field(default=None, description="Accuracy on that sample, unperturbed")
    perturbed_accuracy: dict[str, float] = Field(default_factory=dict, description="perturbation -> accuracy")
    train_images: int = Field(default=0, description="Pinned training images run through the model")
    train_accuracy: float | None = None
    generalisation_gap: float | None = Field(default=None, description="train accuracy minus test accuracy")
    not_measured: list[str] = Field(default_factory=list, description="Checks that could not run, and why")


class IntegritySettings(BaseModel):
    """rubric.yaml `integrity:`; every rule is stated here, in the rubric, where a TA can read it."""

    model_config = ConfigDict(extra="forbid")

    permute_order: bool = Field(default=True, description="Show the sandbox the test images in a secret order")
    perturbation_sample: int = Field(default=1000, ge=0, description="Test images (every k-th) run perturbed too")
    max_perturbation_drop: float = Field(
        default=0.25, gt=0, le=1,
        description="Flag when a perturbation (flip, +-1 grey level, 1-pixel shift) costs more accuracy than this",
    )  # fmt: skip
    train_sample: int = Field(
        default=1000, ge=0, description="Training images (every k-th of the pinned train_split) run beside the test"
    )
    min_generalisation_gap: float = Field(
        default=0.02, ge=0, le=1,
        description="Flag when training accuracy exceeds test accuracy by less than this (test-trained models)",
    )  # fmt: skip
    gap_from_accuracy: float = Field(
        default=0.5, ge=0, le=1, description="The gap rule applies only to models at least this accurate on test"
    )
    copy_kappa: float = Field(
        default=0.9, gt=0, le=1,
        description="Flag two students whose error consistency (Cohen's kappa on which images each gets wrong) "
        "is above this; calibrated on published models and on honest LeNets trained with different seeds",
    )  # fmt: skip
    copy_mistake_agreement: float = Field(
        default=0.9, gt=0, le=1,
        description="... and who pick the same wrong class on at least this share of the images both get wrong",
    )  # fmt: skip
    copy_min_shared_mistakes: int = Field(
        default=20, ge=1, description="... among at least this many shared mistakes (fewer say too little)"
    )
