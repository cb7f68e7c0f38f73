"""reference/baselines.json: each baseline's figures, measured by grading it like a student."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

BASELINES_FILE = "baselines.json"


class Baseline(BaseModel):
    name: str
    trained: bool
    accuracy: float | None = None
    points: float | None = None
    split_name: str | None = None
    split_sha256: str | None = None
    parameters: int | None = None
    macs_per_image: int | None = None
    recipe: dict = Field(default_factory=dict)
    training: dict = Field(default_factory=dict, description="epochs, wall time, device, training data hash")
    note: str = ""


class BaselineFile(BaseModel):
    baselines: list[Baseline] = Field(default_factory=list)


def load_baselines(reference_dir: Path) -> BaselineFile:
    path = Path(reference_dir) / BASELINES_FILE
    if not path.is_file():
        return BaselineFile()
    return BaselineFile.model_validate_json(path.read_text(encoding="utf-8"))


def baseline_accuracies(reference_dir: Path, split_sha256: str) -> dict[str, float]:
    """Accuracies of the trained baselines measured on this very split; others do not compare."""
    return {
        baseline.name: baseline.accuracy
        for baseline in load_baselines(reference_dir).baselines
        if baseline.trained and baseline.accuracy is not None and baseline.split_sha256 == split_sha256
    }
