"""What the integrity checks record in a result, and the rules they flag by (rubric.yaml `integrity:`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class IntegrityFlag(BaseModel):
    code: str = Field(description="perturbation-collapse, no-generalisation-gap, copied-predictions, ...")
    message: str = Field(description="One plain sentence for the TA: what was seen and why it matters")
    evidence: dict[str, Any] = Field(default_factory=dict, description="The figures behind the flag")


class LogitFingerprint(BaseModel):
    """What a model answers on the same secret sample of test images as every classmate: per image, its logits
    over the nine wrong classes, standardised, less its mean over the images of the same class, standardised again
    (grader/integrity/fingerprint.py), as float16 in base64. Independent models see the images alike only in
    part; a copy sees them as its original does."""

    sample: str = Field(description="Names the images (a hash of the split and the indices): only equals compare")
    images: int
    values: str = Field(description="base64 of float16 [images, 9], row-major")


class IntegrityReport(BaseModel):
    """`result.integrity`; an empty `flags` list for an honest model."""

    flags: list[IntegrityFlag] = Field(default_factory=list)
    order_permuted: bool = Field(default=False, description="The sandbox saw the test images in a secret order")
    sample_images: int = Field(default=0, description="Test images in the perturbation sample")
    sample_accuracy: float | None = Field(default=None, description="Accuracy on that sample, unperturbed")
    perturbed_accuracy: dict[str, float] = Field(
        default_factory=dict, description="'perturbed test' and 'perturbed train' -> accuracy on the perturbed copies"
    )
    perturbation_drop: float | None = Field(default=None, description="Sample accuracy minus its perturbed copies'")
    train_perturbation_drop: float | None = Field(
        default=None, description="The same on the training images: an honest model loses as much there or more"
    )
    train_images: int = Field(default=0, description="Training images (drawn by the course secret) run beside the test")
    train_accuracy: float | None = None
    generalisation_gap: float | None = Field(default=None, description="train accuracy minus test accuracy")
    private_images: int = Field(default=0, description="Images of the instructor's private split run beside the test")
    private_accuracy: float | None = None
    private_gap: float | None = Field(default=None, description="test accuracy minus private split accuracy")
    fingerprint: LogitFingerprint | None = Field(
        default=None, description="The logits on the course's fingerprint images, for the class's copy check"
    )
    not_measured: list[str] = Field(default_factory=list, description="Checks that could not run, and why")


class IntegritySettings(BaseModel):
    """rubric.yaml `integrity:`; every rule is stated here, in the rubric, where a TA can read it."""

    model_config = ConfigDict(extra="forbid")

    permute_order: bool = Field(default=True, description="Show the sandbox the test images in a secret order")
    perturbation_sample: int = Field(
        default=500, ge=0,
        description="Test images (drawn per submission) run perturbed too, and as many of the training sample: crop "
        "and rescale, small rotation, mirror, colour jitter, JPEG or noise, every parameter drawn per image",
    )  # fmt: skip
    max_perturbation_drop: float = Field(
        default=0.25, gt=0, le=1,
        description="Flag when the perturbations cost more accuracy than this on the test sample",
    )  # fmt: skip
    max_perturbation_excess: float = Field(
        default=0.10, gt=0, le=1,
        description="Flag when they cost more on the test images than on the training images by more than this: an "
        "honest model loses as much on both, or more on its training images; a table of the test images collapses "
        "on them alone",
    )  # fmt: skip
    train_sample: int = Field(
        default=1000, ge=0,
        description="Training images of the pinned train_split, drawn by the course secret, run beside the test",
    )  # fmt: skip
    min_generalisation_gap: float = Field(
        default=0.02, ge=0, le=1,
        description="Flag when training accuracy exceeds test accuracy by less than this (test-trained models)",
    )  # fmt: skip
    gap_from_accuracy: float = Field(
        default=0.5, ge=0, le=1, description="The gap rule applies only to models at least this accurate on test"
    )
    private_sample: int = Field(
        default=1000, ge=0,
        description="Images of the pinned private_split (drawn by the course secret) run beside the test",
    )  # fmt: skip
    max_private_gap: float = Field(
        default=0.20, gt=0, le=1,
        description="Flag when test accuracy exceeds private split accuracy by more than this. Published models "
        "lose 3-15 points from CIFAR-10's test set to CIFAR-10.1 (Recht et al. 2019); on a private split drawn "
        "like the test set an honest model loses nothing but noise; a model that memorised the public test set "
        "loses everything it memorised",
    )  # fmt: skip
    fingerprint_sample: int = Field(
        default=500, ge=0,
        description="Test images (drawn by the course secret, the same for every student) whose logits each result "
        "keeps for the class's copy check",
    )  # fmt: skip
    # The copy rule, calibrated with `python -m benchmarks.integrity_calibrate` on CIFAR-10's test set: 30 published
    # models (82-97%, every pair clean) and 5 tutorial LeNets with different seeds (62-63%), plus copies of two of
    # those LeNets fine-tuned for one epoch (lr 0.01), which must be flagged.
    copy_kappa: float = Field(
        default=0.52, gt=0, le=1,
        description="Flag two students whose error consistency (Cohen's kappa on which test images each gets wrong) "
        "reaches this, for a pair of LeNet-level accuracy (mean at most copy_kappa_accuracy[0]), and who also pass "
        "copy_mistake_agreement. Honest LeNets with different seeds reach at most 0.451; their copies fine-tuned "
        "for one epoch 0.559 and 0.645",
    )  # fmt: skip
    copy_kappa_high: float = Field(
        default=0.80, gt=0, le=1,
        description="The kappa bar for a pair whose mean accuracy is copy_kappa_accuracy[1] or more; linear in "
        "between. Independent accurate models share their mistakes more: the 435 pairs of published models "
        "(82-97%) reach at most 0.735 (random features 256k vs 32k, 84%); 0.663 at 97%",
    )  # fmt: skip
    copy_kappa_accuracy: tuple[float, float] = Field(
        default=(0.62, 0.84), description="The mean accuracies where the kappa bar is copy_kappa and copy_kappa_high"
    )
    copy_mistake_agreement: float = Field(
        default=0.60, gt=0, le=1,
        description="... and who pick the same wrong class on at least this share of the images both get wrong: "
        "honest LeNets at most 51.8%, their fine-tuned copies 65.3% and 69.9%. Alone it cannot decide: published "
        "pairs reach 88.3%, as accurate models' mistakes are the few truly ambiguous images",
    )  # fmt: skip
    copy_min_shared_mistakes: int = Field(
        default=20, ge=1, description="... among at least this many shared mistakes (fewer say too little)"
    )
    copy_logit_correlation: float = Field(
        default=0.90, gt=0, le=1,
        description="Flag two students whose logits over the wrong classes correlate at least this much on the "
        "fingerprint images (grader/integrity/fingerprint.py), whatever their predictions: a copy that changes a "
        "few answers keeps its original's logits. In make bench-integrity independently trained models reach at "
        "most 0.59 (a wide LeNet against LeNet-5; two seeds of LeNet-5 0.53; 0.75 for two wide LeNets from the same "
        "initial weights, one trained on the test set too), a copy fine-tuned for an epoch 0.99, a copy answering "
        "its second choice where the top two lie within 0.75 1.00",
    )  # fmt: skip

    @field_validator("copy_kappa_accuracy")
    @classmethod
    def ascending(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] < value[1] <= 1:
            raise ValueError("two accuracies between 0 and 1, the lower first")
        return value
